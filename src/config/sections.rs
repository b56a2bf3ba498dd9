//! The shape of a config file, as serde reads it: one struct per table, unknown keys
//! refused (a typo is an error, not a silent default), and typed values (zones, offsets,
//! addresses) checked while parsing so their errors carry a line and column.

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::calendar::{Offset, Zone};
use crate::commitment::parse_mailbox;
use crate::rule::CatchUp;

/// One `*.toml` file. Every table is optional; `[[rule]]` blocks add up across files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub store: Option<Spanned<StoreSection>>,
    pub calendar: Option<Spanned<CalendarSection>>,
    pub mail: Option<Spanned<MailSection>>,
    pub log: Option<Spanned<LogSection>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleSection>>,
}

/// `[log]`: how much the daemon says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    pub level: LogLevel,
}

/// The daemon's log level; `RUST_LOG`, when set, overrides it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Only failures.
    Error,
    /// Failures and things an admin should look at.
    Warn,
    /// What the daemon does: starts, reloads, sends.
    #[default]
    Info,
    /// Each decision, for finding out why something happened.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name `tracing` filters use.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `[store]`: where the SQLite file lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    pub path: PathBuf,
}

/// `[calendar]`: the zone local times are read and shown in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarSection {
    pub timezone: Zone,
}

/// `[mail]` with its per-transport subtables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailSection {
    pub from: MailboxSetting,
    #[serde(default)]
    pub transport: TransportKind,
    #[serde(default)]
    pub file: Option<FileSection>,
    #[serde(default)]
    pub smtp: Option<Spanned<SmtpSection>>,
    #[serde(default)]
    pub sendmail: Option<SendmailSection>,
}

/// Which transport `[mail] transport` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Each message as an `.eml` file in a directory.
    #[default]
    File,
    /// An SMTP relay.
    Smtp,
    /// The local `sendmail` program.
    Sendmail,
}

/// `[mail.file]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSection {
    pub dir: PathBuf,
}

/// `[mail.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SmtpSection {
    pub host: String,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub password_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub timeout: Option<Offset>,
    #[serde(default)]
    pub connections: Option<u32>,
    #[serde(default)]
    pub accept_invalid_certs: bool,
    #[serde(default)]
    pub hello_name: Option<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text; only for a relay on the same host or network.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// `[mail.sendmail]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendmailSection {
    pub command: PathBuf,
}

/// One `[[rule]]` block as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleSection {
    pub name: Spanned<String>,
    #[serde(default, rename = "match")]
    pub matcher: MatchSection,
    #[serde(default)]
    pub remind: Vec<Offset>,
    #[serde(default)]
    pub overdue_every: Option<Spanned<Offset>>,
    #[serde(default)]
    pub overdue_max: Option<Spanned<u32>>,
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// `match = { ... }`: which commitments a rule is for. Empty matches every one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSection {
    #[serde(default)]
    pub kind: Option<OneOrMany>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// An address in config, read with the same rules as addresses in commitments.
#[derive(Debug, Clone)]
pub(crate) struct MailboxSetting(pub Mailbox);

impl<'de> Deserialize<'de> for MailboxSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_mailbox(&text)
            .map(MailboxSetting)
            .map_err(serde::de::Error::custom)
    }
}
