//! Validated `[mail]` settings: who mail comes from and how it leaves.
//!
//! Passwords never live in TOML: `password_file` or `password_env` name where the secret
//! is, and it is read only when the transport is built.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;

pub use super::sections::TlsMode;

/// Everything the mail module needs from config.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// The `From:` of every message, and the domain of Message-IDs.
    pub from: Mailbox,
    /// How messages leave.
    pub transport: TransportSettings,
    /// Plan, render and record everything, send nothing.
    pub dry_run: bool,
}

/// One of the three transports.
#[derive(Clone, Debug)]
pub enum TransportSettings {
    /// One `.eml` file per message in `dir`.
    File {
        /// Where the files go.
        dir: PathBuf,
    },
    /// An SMTP relay.
    Smtp(SmtpSettings),
    /// The local sendmail program.
    Sendmail {
        /// Path of the program.
        command: PathBuf,
    },
}

/// `[mail.smtp]`, checked.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// Relay host name or address.
    pub host: String,
    /// Port; defaults by TLS mode (25, 587, 465).
    pub port: u16,
    /// How the connection is protected.
    pub tls: TlsMode,
    /// User for AUTH, if any.
    pub username: Option<String>,
    /// Where the password comes from.
    pub password: PasswordSource,
    /// How long one SMTP command may take.
    pub timeout: Duration,
    /// How many connections the pool keeps and how many messages go out at once.
    pub connections: u32,
    /// Accept self-signed or otherwise invalid certificates (test relays only).
    pub accept_invalid_certs: bool,
    /// Name sent in EHLO; the host name when unset.
    pub hello_name: Option<String>,
}

/// Where the SMTP password is read from, at transport build time.
#[derive(Clone, Debug, PartialEq)]
pub enum PasswordSource {
    /// No password.
    None,
    /// The first line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
}

/// Why a password could not be had. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The file could not be read.
    #[error("cannot read the SMTP password file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The variable is not set.
    #[error("the SMTP password variable {0} is not set")]
    Env(String),
    /// The secret is empty.
    #[error("the SMTP password from {0} is empty")]
    Empty(String),
}

impl PasswordSource {
    /// Reads the secret. The result is for the SMTP client only; never log it.
    pub fn read(&self) -> Result<Option<String>, PasswordError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| PasswordError::File {
                    path: path.clone(),
                    source,
                })?;
                let secret = text.lines().next().unwrap_or("").to_string();
                non_empty(secret, &path.display().to_string())
            }
            PasswordSource::Env(var) => {
                let secret = std::env::var(var).map_err(|_| PasswordError::Env(var.clone()))?;
                non_empty(secret, var)
            }
        }
    }
}

fn non_empty(secret: String, origin: &str) -> Result<Option<String>, PasswordError> {
    if secret.is_empty() {
        Err(PasswordError::Empty(origin.to_string()))
    } else {
        Ok(Some(secret))
    }
}

/// The default port for a TLS mode: 25 plain, 587 STARTTLS, 465 TLS.
pub fn default_port(tls: TlsMode) -> u16 {
    match tls {
        TlsMode::None => 25,
        TlsMode::Starttls => 587,
        TlsMode::Tls => 465,
    }
}

/// `path` made absolute against `base` if it is relative.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}
