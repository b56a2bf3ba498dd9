//! Validated `[mail]` settings: who mail comes from and how it leaves.
//!
//! Passwords never live in TOML: `password_file`, `password_env` or
//! `password_credential` (a systemd credential) name where the secret is, and it is
//! read only when the transport is built.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::sections::{self, TransportKind};
use crate::calendar::Offset;

use lettre::message::Mailbox;
use toml::Spanned;

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
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// At most this many messages a minute leave, if set; the rest wait.
    pub max_per_minute: Option<u32>,
}

/// How transient failures are retried: the first retry after `first`, then doubling up
/// to `longest`, with jitter; after `give_up_after` the delivery fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait before the first retry.
    pub first: jiff::SignedDuration,
    /// Longest wait between two attempts.
    pub longest: jiff::SignedDuration,
    /// How long transient failures are retried before the delivery fails.
    pub give_up_after: jiff::SignedDuration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            first: jiff::SignedDuration::from_secs(30),
            longest: jiff::SignedDuration::from_mins(30),
            give_up_after: jiff::SignedDuration::from_hours(48),
        }
    }
}

impl RetryPolicy {
    /// The wait before the attempt after `attempts` failed ones, with `jitter` in
    /// [0, 1) spreading it over ±25 %, so deliveries that failed together do not all
    /// retry together.
    pub fn backoff(&self, attempts: u32, jitter: f64) -> jiff::SignedDuration {
        let exp = attempts.saturating_sub(1).min(20);
        let base = self
            .first
            .checked_mul(1 << exp)
            .unwrap_or(self.longest)
            .min(self.longest)
            .max(self.first.min(self.longest));
        jiff::SignedDuration::from_secs_f64(base.as_secs_f64() * (0.75 + jitter * 0.5))
    }
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

/// Where a password (SMTP's, the store's) is read from, when it is needed.
#[derive(Clone, Debug, PartialEq)]
pub enum PasswordSource {
    /// No password.
    None,
    /// The first line of this file.
    File(PathBuf),
    /// This environment variable.
    Env(String),
    /// A systemd credential (`LoadCredential=NAME:PATH` in the unit): the file `name`
    /// in `$CREDENTIALS_DIRECTORY`, or, outside a service (an admin running
    /// `test-email`), the file `fallback`, where the shipped unit loads it from.
    Credential {
        /// The credential's ID.
        name: String,
        /// Where to read it without `$CREDENTIALS_DIRECTORY`: `name` in the config
        /// directory.
        fallback: PathBuf,
    },
}

/// Why a password could not be had. Never contains the secret.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The file could not be read.
    #[error("cannot read the {of} password file {path}: {source}")]
    File {
        /// Whose password: SMTP's or the store's.
        of: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The variable is not set.
    #[error("the {0} password variable {1} is not set")]
    Env(&'static str, String),
    /// The credential could not be read.
    #[error("cannot read the {of} password credential '{name}' from {path}: {source}{hint}")]
    Credential {
        /// Whose password.
        of: &'static str,
        /// The credential's ID.
        name: String,
        /// The file tried.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
        /// What to check.
        hint: &'static str,
    },
    /// The secret is empty.
    #[error("the {0} password from {1} is empty")]
    Empty(&'static str, String),
}

impl PasswordSource {
    /// Reads the SMTP password. The result is for the SMTP client only; never log it.
    pub fn read(&self) -> Result<Option<String>, PasswordError> {
        self.read_for("SMTP")
    }

    /// Reads the secret of `of` ("SMTP", "store"), which errors name. Never log it.
    pub fn read_for(&self, of: &'static str) -> Result<Option<String>, PasswordError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::File(path) => {
                let secret = first_line(path).map_err(|source| PasswordError::File {
                    of,
                    path: path.clone(),
                    source,
                })?;
                non_empty(of, secret, &path.display().to_string())
            }
            PasswordSource::Credential { name, fallback } => {
                let (path, hint) = match std::env::var_os("CREDENTIALS_DIRECTORY") {
                    Some(dir) => (
                        PathBuf::from(dir).join(name),
                        " (does the unit load it with LoadCredential=?)",
                    ),
                    None => (
                        fallback.clone(),
                        " ($CREDENTIALS_DIRECTORY is not set, so it is read from the config directory)",
                    ),
                };
                let secret = first_line(&path).map_err(|source| PasswordError::Credential {
                    of,
                    name: name.clone(),
                    path: path.clone(),
                    source,
                    hint,
                })?;
                non_empty(
                    of,
                    secret,
                    &format!("credential '{name}' ({})", path.display()),
                )
            }
            PasswordSource::Env(var) => {
                let secret = std::env::var(var).map_err(|_| PasswordError::Env(of, var.clone()))?;
                non_empty(of, secret, var)
            }
        }
    }
}

/// The first line of the file at `path`: the secret, without its line ending.
fn first_line(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn non_empty(
    of: &'static str,
    secret: String,
    origin: &str,
) -> Result<Option<String>, PasswordError> {
    if secret.is_empty() {
        Err(PasswordError::Empty(of, origin.to_string()))
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

/// Whether `host` is this machine (127.0.0.0/8, ::1, `localhost`), the only place a
/// password may go without TLS.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `path` made absolute against `base` if it is relative.
pub fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The exact length of a positive wall-clock offset; `None` for zero, negative or
/// business-time offsets.
pub fn positive_exact(offset: &Offset) -> Option<jiff::SignedDuration> {
    offset.exact().filter(|d| d.is_positive())
}

/// Checks `[mail]` from `file` (whose text is `source`) into settings; pushes every
/// problem to `errors`.
pub(super) fn check(
    dir: &Path,
    base: &Path,
    mail: sections::MailSection,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<MailSettings> {
    let transport = match mail.transport {
        TransportKind::File => TransportSettings::File {
            dir: resolve(base, &mail.file.unwrap_or_default().dir),
        },
        TransportKind::Sendmail => TransportSettings::Sendmail {
            command: mail.sendmail.unwrap_or_default().command,
        },
        TransportKind::Smtp => {
            // Without a [mail.smtp] table every key takes its default, and no check
            // below can fail, so no error needs the table's place.
            let (span, smtp) = match mail.smtp {
                Some(smtp) => (smtp.span(), smtp.into_inner()),
                None => (0..0, sections::SmtpSection::default()),
            };
            let at = |span, message: &str| ConfigError::at(file, source, Some(span), message);
            if smtp.host.trim().is_empty() {
                errors.push(at(span.clone(), "[mail.smtp] host is empty"));
            }
            let keys = PasswordKeys {
                file: smtp.password_file.as_ref(),
                env: smtp.password_env.as_ref(),
                credential: smtp.password_credential.as_ref(),
            };
            let password = password_source(dir, base, keys, file, source, errors);
            let username = smtp
                .username
                .as_ref()
                .map(|u| u.get_ref().trim().to_string())
                .filter(|u| !u.is_empty());
            if username.is_none() && password != PasswordSource::None {
                errors.push(at(span.clone(), "a password is set but username is empty"));
            }
            if let Some(user) = smtp.username.as_ref().filter(|_| username.is_some())
                && smtp.tls == TlsMode::None
                && !is_loopback(smtp.host.trim())
            {
                errors.push(at(
                    user.span(),
                    &format!(
                        "username is set with tls = \"none\", so the password would cross the network to {} in clear text: set tls = \"starttls\" (usually port 587) or tls = \"tls\" (usually port 465)",
                        smtp.host.trim()
                    ),
                ));
            }
            let timeout = match &smtp.timeout {
                None => Duration::from_secs(30),
                Some(offset) => match offset.exact().map(Duration::try_from) {
                    Some(Ok(d)) if !d.is_zero() => d,
                    _ => {
                        errors.push(at(
                            span.clone(),
                            "timeout must be a positive duration such as \"30s\"",
                        ));
                        Duration::from_secs(30)
                    }
                },
            };
            let connections = smtp.connections.unwrap_or(4);
            if connections == 0 {
                errors.push(at(span.clone(), "connections must be at least 1"));
            }
            TransportSettings::Smtp(SmtpSettings {
                host: smtp.host.trim().to_string(),
                port: smtp.port.unwrap_or_else(|| default_port(smtp.tls)),
                tls: smtp.tls,
                username,
                password,
                timeout,
                connections: connections.max(1),
                accept_invalid_certs: smtp.accept_invalid_certs,
                hello_name: smtp.hello_name,
            })
        }
    };
    let place = |span: std::ops::Range<usize>, message: String| {
        ConfigError::at(file, source, Some(span), message)
    };
    let mut retry = RetryPolicy::default();
    if let Some(first) = &mail.retry_after {
        match positive_exact(first.get_ref()) {
            Some(d) => retry.first = d,
            None => errors.push(place(
                first.span(),
                format!(
                    "retry_after '{}' must be a positive wall-clock duration such as \"30s\"",
                    first.get_ref()
                ),
            )),
        }
    }
    if let Some(horizon) = &mail.retry_for {
        match positive_exact(horizon.get_ref()) {
            Some(d) => retry.give_up_after = d,
            None => errors.push(place(
                horizon.span(),
                format!(
                    "retry_for '{}' must be a positive wall-clock duration such as \"2d\"",
                    horizon.get_ref()
                ),
            )),
        }
    }
    let max_per_minute = match &mail.max_per_minute {
        Some(n) if *n.get_ref() == 0 => {
            errors.push(place(
                n.span(),
                "max_per_minute must be at least 1 (leave it out for no limit)".into(),
            ));
            None
        }
        Some(n) => Some(*n.get_ref()),
        None => None,
    };
    Some(MailSettings {
        from: mail.from.0,
        transport,
        dry_run: mail.dry_run,
        retry,
        max_per_minute,
    })
}

/// The three keys that may say where a password is, as a table has them.
pub(super) struct PasswordKeys<'a> {
    pub file: Option<&'a Spanned<PathBuf>>,
    pub env: Option<&'a Spanned<String>>,
    pub credential: Option<&'a Spanned<String>>,
}

/// Where a table says the password is: at most one of `password_file`,
/// `password_env` and `password_credential`; an empty value means none.
pub(super) fn password_source(
    dir: &Path,
    base: &Path,
    keys: PasswordKeys<'_>,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> PasswordSource {
    let at = |span, message: &str| ConfigError::at(file, source, Some(span), message);
    let set = [
        keys.file.map(Spanned::span),
        keys.env.map(Spanned::span),
        keys.credential.map(Spanned::span),
    ];
    if let Some(second) = set.iter().flatten().nth(1) {
        errors.push(at(
            second.clone(),
            "set one of password_file, password_env and password_credential, not several",
        ));
        return PasswordSource::None;
    }
    if let Some(f) = keys.file {
        if f.get_ref().as_os_str().is_empty() {
            return PasswordSource::None;
        }
        return PasswordSource::File(resolve(base, f.get_ref()));
    }
    if let Some(v) = keys.env {
        if v.get_ref().is_empty() {
            return PasswordSource::None;
        }
        return PasswordSource::Env(v.get_ref().clone());
    }
    let Some(c) = keys.credential else {
        return PasswordSource::None;
    };
    let name = c.get_ref().trim();
    if name.is_empty() {
        return PasswordSource::None;
    }
    if name.contains('/') || name == "." || name == ".." {
        errors.push(at(
            c.span(),
            "password_credential is a credential name such as \"smtp-password\" (the ID in the unit's LoadCredential=), not a path",
        ));
        return PasswordSource::None;
    }
    PasswordSource::Credential {
        name: name.to_string(),
        fallback: dir.join(name),
    }
}
