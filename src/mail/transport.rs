//! How messages leave: an SMTP relay (pooled connections, STARTTLS or TLS, AUTH), the
//! local sendmail program ([`super::sendmail`], sorted by its exit status), or `.eml`
//! files in a directory.
//!
//! Every failure is sorted into [`SendError::Unreachable`] (the relay cannot be used at
//! all: connection refused, timeouts, TLS, 421, a refused login; every message waits),
//! [`SendError::Transient`] (a 4xx reply about this message: try it again later) or
//! [`SendError::Permanent`] (a 5xx reply about the message or its recipient: retrying
//! cannot help). Error texts never include the password.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::TlsParameters;
use lettre::transport::smtp::extension::ClientId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::sendmail::Sendmail;
use super::smtp::{Relay, Security, SmtpError, SmtpPool};
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
    Smtp(SmtpPool),
    /// sendmail program.
    Sendmail(Sendmail),
}

impl Mailer {
    /// Builds the transport `settings` describe, reading the SMTP password if one is set.
    pub fn build(settings: &MailSettings) -> Result<Mailer, TransportError> {
        Ok(match &settings.transport {
            TransportSettings::File { dir } => Mailer::File(FileOutbox::new(dir)),
            TransportSettings::Sendmail { command } => Mailer::Sendmail(Sendmail::new(command)),
            TransportSettings::Smtp(smtp) => Mailer::Smtp(smtp_pool(smtp)?),
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
        self.send_gated(envelope, message, name, None).await.0
    }

    /// Hands one message over like [`Mailer::send`]. With a `gate`, a permit is taken
    /// from it before the message can have reached its destination (for SMTP, after the
    /// relay said it is ready for the data) and returned with the result: whoever
    /// records the outcome keeps it until the record is written, so the messages sent
    /// but not yet recorded never outnumber the gate's permits.
    pub async fn send_gated(
        &self,
        envelope: &Envelope,
        message: &[u8],
        name: &str,
        gate: Option<&Arc<Semaphore>>,
    ) -> (Result<(), SendError>, Option<OwnedSemaphorePermit>) {
        let take = || async {
            match gate {
                Some(gate) => Some(
                    gate.clone()
                        .acquire_owned()
                        .await
                        .expect("the gate is never closed"),
                ),
                None => None,
            }
        };
        match self {
            Mailer::File(outbox) => {
                let permit = take().await;
                (outbox.write(name, message).await, permit)
            }
            Mailer::Smtp(smtp) => {
                let (result, permit) = smtp.send(envelope, message, gate).await;
                (result.map_err(|e| classify(&e)), permit)
            }
            Mailer::Sendmail(sendmail) => {
                let permit = take().await;
                (sendmail.send(envelope, message).await, permit)
            }
        }
    }

    /// Checks that the transport can be reached (SMTP: connect, TLS, EHLO, AUTH).
    pub async fn check(&self) -> Result<(), SendError> {
        match self {
            Mailer::File(outbox) => outbox.check().await,
            Mailer::Smtp(smtp) => smtp.check().await.map_err(|e| classify(&e)),
            Mailer::Sendmail(_) => Ok(()),
        }
    }
}

fn smtp_pool(smtp: &SmtpSettings) -> Result<SmtpPool, TransportError> {
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
    let security = match smtp.tls {
        TlsMode::None => Security::None,
        TlsMode::Starttls => Security::Starttls(tls_parameters()?),
        TlsMode::Tls => Security::Wrapper(tls_parameters()?),
    };
    let hello = match &smtp.hello_name {
        Some(name) => ClientId::Domain(name.clone()),
        None => ClientId::default(),
    };
    let credentials = match &smtp.username {
        Some(user) => smtp
            .password
            .read()?
            .map(|password| Credentials::new(user.clone(), password)),
        None => None,
    };
    Ok(SmtpPool::new(Relay {
        host: smtp.host.clone(),
        port: smtp.port,
        security,
        hello,
        credentials,
        timeout: smtp.timeout,
        max_idle: smtp.connections as usize,
    }))
}

/// Sorts a failure of the SMTP client.
fn classify(e: &SmtpError) -> SendError {
    match e {
        SmtpError::Protocol(e) => classify_smtp(e),
        SmtpError::Unsupported(_) => SendError::Permanent(e.to_string()),
        SmtpError::NoLogin(_) => SendError::Unreachable(e.to_string()),
        SmtpError::Connect { .. } | SmtpError::Timeout { .. } => {
            SendError::Unreachable(crate::commitment::one_line(&e.to_string()))
        }
    }
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
