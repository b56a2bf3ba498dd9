//! The shape of a config file, as serde reads it: one struct per table, unknown keys
//! refused (a typo is an error, not a silent default), and typed values (zones, offsets,
//! addresses) checked while parsing so their errors carry a line and column.

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::de::{IntoDeserializer, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::calendar::{Hours, Offset, Week, Zone};
use crate::commitment::parse_mailbox;
use crate::rule::{CatchUp, CheckInTo};

// What a table that is present takes for the keys it leaves out, as README.md lists
// them; the same values as the shipped `config/followup.toml`, which a table left out
// altogether takes (a unit test holds the two together).
const DEFAULT_STORE_PATH: &str = "var/followup.db";
const DEFAULT_ZONE: &str = "Europe/London";
const DEFAULT_FROM: &str = "Followup <followup@example.com>";
const DEFAULT_OUTBOX: &str = "var/outbox";
const DEFAULT_SMTP_HOST: &str = "127.0.0.1";
const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";

/// One `*.toml` file. Every table is optional; `[[rule]]` blocks add up across files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    pub store: Option<Spanned<StoreSection>>,
    pub calendar: Option<Spanned<CalendarSection>>,
    pub mail: Option<Spanned<MailSection>>,
    pub log: Option<Spanned<LogSection>>,
    pub daemon: Option<Spanned<DaemonSection>>,
    pub report: Option<Spanned<ReportSection>>,
    pub web: Option<Spanned<super::web::WebSection>>,
    pub business: Option<Spanned<super::business::BusinessSection>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleSection>>,
    #[serde(default)]
    pub schedule: Vec<Spanned<ScheduleSection>>,
}

/// One `[[schedule]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleSection {
    pub name: Spanned<String>,
    pub cron: Spanned<String>,
    #[serde(default)]
    pub timezone: Option<Spanned<String>>,
    pub job: crate::jobs::Job,
    #[serde(default)]
    pub catch_up: bool,
}

/// `[report]`: who gets the report job's email, and what it covers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportSection {
    #[serde(default)]
    pub to: Option<OneOrMany<MailboxSetting>>,
    #[serde(default)]
    pub since: Option<Spanned<Offset>>,
    #[serde(default)]
    pub by: Option<crate::jobs::report::GroupBy>,
}

/// `[daemon]`: how the scheduler treats time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaemonSection {
    #[serde(default)]
    pub late_after: Option<Spanned<Offset>>,
}

/// `[log]`: how much the daemon says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogSection {
    #[serde(default)]
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

/// `[store]`: which database, and where.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoreSection {
    #[serde(default)]
    pub backend: Option<Spanned<String>>,
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    #[serde(default)]
    pub url: Option<Spanned<String>>,
    #[serde(default)]
    pub password_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    #[serde(default)]
    pub password_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub keep: Option<Spanned<Offset>>,
}

/// `[calendar]`: the zone local times are read and shown in, business hours, holidays.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalendarSection {
    #[serde(default = "default_zone")]
    pub timezone: Zone,
    #[serde(default)]
    pub business_hours: Option<Spanned<WeekSection>>,
    #[serde(default)]
    pub holidays: Vec<jiff::civil::Date>,
}

/// `business_hours = { mon = "09:00-17:30", ... }`: days left out are closed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeekSection {
    pub mon: Option<Hours>,
    pub tue: Option<Hours>,
    pub wed: Option<Hours>,
    pub thu: Option<Hours>,
    pub fri: Option<Hours>,
    pub sat: Option<Hours>,
    pub sun: Option<Hours>,
}

impl WeekSection {
    pub fn week(&self) -> Week {
        [
            self.mon, self.tue, self.wed, self.thu, self.fri, self.sat, self.sun,
        ]
    }
}

/// `[mail]` with its per-transport subtables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailSection {
    #[serde(default = "default_from")]
    pub from: MailboxSetting,
    #[serde(default)]
    pub transport: TransportKind,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub retry_after: Option<Spanned<Offset>>,
    #[serde(default)]
    pub retry_for: Option<Spanned<Offset>>,
    #[serde(default)]
    pub max_per_minute: Option<Spanned<u32>>,
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
#[serde(default, deny_unknown_fields)]
pub(crate) struct FileSection {
    pub dir: PathBuf,
}

impl Default for FileSection {
    fn default() -> Self {
        FileSection {
            dir: PathBuf::from(DEFAULT_OUTBOX),
        }
    }
}

/// `[mail.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SmtpSection {
    pub host: String,
    pub port: Option<u16>,
    pub tls: TlsMode,
    pub username: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_env: Option<Spanned<String>>,
    pub password_credential: Option<Spanned<String>>,
    pub timeout: Option<Offset>,
    pub connections: Option<u32>,
    pub accept_invalid_certs: bool,
    pub hello_name: Option<String>,
}

impl Default for SmtpSection {
    fn default() -> Self {
        SmtpSection {
            host: DEFAULT_SMTP_HOST.to_string(),
            port: None,
            tls: TlsMode::default(),
            username: None,
            password_file: None,
            password_env: None,
            password_credential: None,
            timeout: None,
            connections: None,
            accept_invalid_certs: false,
            hello_name: None,
        }
    }
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
#[serde(default, deny_unknown_fields)]
pub(crate) struct SendmailSection {
    pub command: PathBuf,
}

impl Default for SendmailSection {
    fn default() -> Self {
        SendmailSection {
            command: PathBuf::from(DEFAULT_SENDMAIL),
        }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from(DEFAULT_STORE_PATH)
}

fn default_zone() -> Zone {
    Zone(
        jiff::tz::TimeZone::get(DEFAULT_ZONE)
            .expect("the built-in zone database has the default zone"),
    )
}

fn default_from() -> MailboxSetting {
    MailboxSetting(
        DEFAULT_FROM
            .parse()
            .expect("the default sender is an address"),
    )
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
    #[serde(default)]
    pub customer_update: Option<Spanned<CustomerUpdateSection>>,
    #[serde(default)]
    pub alert: Option<Spanned<AlertSection>>,
    #[serde(default)]
    pub escalate: Option<Spanned<EscalateSection>>,
    #[serde(default)]
    pub check_in: Option<Spanned<CheckInSection>>,
    #[serde(default)]
    pub after_done: Option<Spanned<Vec<Spanned<CheckInSection>>>>,
    #[serde(default)]
    pub digest_only: bool,
    #[serde(default)]
    pub due_in: Option<Spanned<Offset>>,
    #[serde(default)]
    pub on_open: Option<Spanned<OnOpenSection>>,
    #[serde(default)]
    pub owner_hours: bool,
}

/// `on_open = { to, template }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OnOpenSection {
    pub to: OneOrMany<MailboxSetting>,
    #[serde(default)]
    pub template: Option<String>,
}

/// `customer_update = { at, extend_by, max, template, ask_owner }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CustomerUpdateSection {
    pub at: Offset,
    pub extend_by: Offset,
    #[serde(default)]
    pub max: Option<u32>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub ask_owner: Option<Offset>,
}

/// `alert = { at, to, owner_hours }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlertSection {
    #[serde(default)]
    pub at: Option<Offset>,
    pub to: OneOrMany<MailboxSetting>,
    #[serde(default)]
    pub owner_hours: Option<bool>,
}

/// `escalate = { after, to }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateSection {
    pub after: Offset,
    pub to: OneOrMany<MailboxSetting>,
}

/// `check_in = { after, to, template }`, and each entry of `after_done`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckInSection {
    pub after: Offset,
    #[serde(default)]
    pub to: CheckInTo,
    #[serde(default)]
    pub template: Option<String>,
}

/// `match = { ... }`: which commitments a rule is for. Empty matches every one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MatchSection {
    #[serde(default)]
    pub kind: Option<OneOrMany<String>>,
}

/// One value or a list of them, written as a string or a list of strings.
#[derive(Debug, Clone)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Either<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(OneOrMany::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }
        deserializer.deserialize_any(Either(std::marker::PhantomData))
    }
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// An address in config, read with the same rules as addresses in commitments, and
/// refused if its domain has no dot ([`crate::address::check_domain`]).
#[derive(Debug, Clone)]
pub(crate) struct MailboxSetting(pub Mailbox);

impl<'de> Deserialize<'de> for MailboxSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor, not `String::deserialize` then a check: an error raised inside
        // the deserializer gets this value's place, so a bad address in a list is
        // reported at the address rather than at the list.
        struct Address;
        impl Visitor<'_> for Address {
            type Value = MailboxSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an email address such as \"Name <name@example.com>\"")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Self::Value, E> {
                let mailbox = parse_mailbox(text).map_err(E::custom)?;
                Ok(MailboxSetting(mailbox))
            }
        }
        deserializer.deserialize_str(Address)
    }
}
