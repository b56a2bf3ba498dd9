//! How messages leave: an SMTP relay (pooled connections, STARTTLS or TLS, AUTH), the
//! local sendmail program, or `.eml` files in a directory.
//!
//! Every failure is sorted into [`SendError::Unreachable`] (the relay cannot be used at
//! all: connection refused, timeouts, TLS, 421, a refused login; every message waits),
//! [`SendError::Transient`] (a 4xx reply about this message: try it again later) or
//! [`SendError::Permanent`] (a 5xx reply about the message or its recipient: retrying
//! cannot help). Error texts never include the password.

use std::path::{Path, PathBuf};

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{MailSettings, PasswordError, SmtpSettings, TlsMode, TransportSettings};

/// A send attempt that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The transport cannot be used now; no message can go until it can.
    #[error("{0}")]
    Unreachable(String),
    /// This message is worth retrying later.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

/// Why a transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The password could not be read.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// TLS settings were refused.
    #[error("TLS settings for {host}: {source}")]
    Tls {
        /// The relay.
        host: String,
        /// Why.
        source: lettre::transport::smtp::Error,
    },
}

/// A configured transport.
pub enum Mailer {
    /// `.eml` files.
    File(FileOutbox),
    /// SMTP relay.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// sendmail program.
    Sendmail(AsyncSendmailTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport `settings` describe, reading the SMTP password if one is set.
    pub fn build(settings: &MailSettings) -> Result<Mailer, TransportError> {
        Ok(match &settings.transport {
            TransportSettings::File { dir } => Mailer::File(FileOutbox::new(dir)),
            TransportSettings::Sendmail { command } => Mailer::Sendmail(
                AsyncSendmailTransport::new_with_command(command.as_os_str()),
            ),
            TransportSettings::Smtp(smtp) => Mailer::Smtp(smtp_transport(smtp)?),
        })
    }

    /// Hands one message over. `name` names the `.eml` file for the file transport; the
    /// same name always writes the same file, so a repeated attempt leaves one file.
    pub async fn send(
        &self,
        envelope: &Envelope,
        message: &[u8],
        name: &str,
    ) -> Result<(), SendError> {
        match self {
            Mailer::File(outbox) => outbox.write(name, message).await,
            Mailer::Smtp(smtp) => smtp
                .send_raw(envelope, message)
                .await
                .map(|_| ())
                .map_err(|e| classify_smtp(&e)),
            Mailer::Sendmail(sendmail) => sendmail
                .send_raw(envelope, message)
                .await
                .map_err(|e| SendError::Unreachable(format!("sendmail: {e}"))),
        }
    }

    /// Checks that the transport can be reached (SMTP: connect, TLS, EHLO, AUTH).
    pub async fn check(&self) -> Result<(), SendError> {
        match self {
            Mailer::File(outbox) => outbox.check().await,
            Mailer::Smtp(smtp) => match smtp.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(SendError::Unreachable(
                    "the SMTP server did not answer NOOP".into(),
                )),
                Err(e) => Err(classify_smtp(&e)),
            },
            Mailer::Sendmail(_) => Ok(()),
        }
    }
}

fn smtp_transport(
    smtp: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, TransportError> {
    let tls_parameters = || {
        TlsParameters::builder(smtp.host.clone())
            .dangerous_accept_invalid_certs(smtp.accept_invalid_certs)
            .dangerous_accept_invalid_hostnames(smtp.accept_invalid_certs)
            .build_rustls()
            .map_err(|source| TransportError::Tls {
                host: smtp.host.clone(),
                source,
            })
    };
    let tls = match smtp.tls {
        TlsMode::None => Tls::None,
        TlsMode::Starttls => Tls::Required(tls_parameters()?),
        TlsMode::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.clone())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(smtp.timeout))
        .pool_config(PoolConfig::new().max_size(smtp.connections));
    if let Some(name) = &smtp.hello_name {
        builder = builder.hello_name(ClientId::Domain(name.clone()));
    }
    if let Some(user) = &smtp.username
        && let Some(password) = smtp.password.read()?
    {
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// Sorts an SMTP failure. Authentication replies (530, 534, 535, 538) are transient:
/// the fix is in the config, and mail must wait for it rather than be lost.
fn classify_smtp(e: &lettre::transport::smtp::Error) -> SendError {
    let code: Option<u16> = e.status().and_then(|c| c.to_string().parse().ok());
    let text = describe_smtp(e);
    match code {
        Some(530 | 534 | 535 | 538) => SendError::Unreachable(format!(
            "the SMTP server refused the login (check [mail.smtp] username and the password): {text}"
        )),
        Some(421) => SendError::Unreachable(text),
        None => SendError::Unreachable(match failed_part(e) {
            Some(part) => format!("{part}: {text}"),
            None => text,
        }),
        Some(_) if e.is_permanent() => SendError::Permanent(text),
        Some(_) => SendError::Transient(text),
    }
}

/// Which part of the exchange failed, when the causes say: the connection or TLS.
fn failed_part(e: &lettre::transport::smtp::Error) -> Option<&'static str> {
    use std::io::ErrorKind;
    let tls = |e: &rustls::Error| match e {
        rustls::Error::InvalidCertificate(_) => {
            "TLS failed: the SMTP server's certificate was not accepted (set [mail.smtp] accept_invalid_certs = true only for a test relay with a self-signed certificate)"
        }
        _ => "TLS with the SMTP server failed",
    };
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = source {
        if let Some(rustls_error) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls(rustls_error));
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(rustls_error) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
            {
                return Some(tls(rustls_error));
            }
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::TimedOut
            ) {
                return Some("cannot connect to the SMTP server");
            }
        }
        source = cause.source();
    }
    e.is_tls().then_some("TLS with the SMTP server failed")
}

/// The error and its causes on one line, each part once.
fn describe_smtp(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    crate::commitment::one_line(&parts.join(": "))
}

/// The file transport: one `NAME.eml` per message in a directory, written to a
/// temporary name and renamed, so a reader never sees half a message and a repeated
/// attempt replaces rather than duplicates.
#[derive(Clone, Debug)]
pub struct FileOutbox {
    dir: PathBuf,
}

impl FileOutbox {
    /// An outbox writing into `dir` (created when first needed).
    pub fn new(dir: &Path) -> Self {
        FileOutbox {
            dir: dir.to_path_buf(),
        }
    }

    async fn write(&self, name: &str, message: &[u8]) -> Result<(), SendError> {
        let fail = |what: &str, path: &Path, e: std::io::Error| {
            SendError::Unreachable(format!("cannot {what} {}: {e}", path.display()))
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| fail("create", &self.dir, e))?;
        let path = self.dir.join(format!("{name}.eml"));
        let tmp = self.dir.join(format!(".{name}.eml.tmp"));
        tokio::fs::write(&tmp, message)
            .await
            .map_err(|e| fail("write", &tmp, e))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| fail("rename into", &path, e))
    }

    async fn check(&self) -> Result<(), SendError> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| {
            SendError::Unreachable(format!("cannot create {}: {e}", self.dir.display()))
        })
    }
}
