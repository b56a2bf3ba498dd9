//! Configuration: every `*.toml` in the config directory, merged and checked before use.
//!
//! Two layers, as in ntpd-rs: serde reads each file strictly (unknown keys, bad zones,
//! bad offsets and bad addresses fail with their line and column), then [`load`] checks
//! that the merged whole makes sense. Every problem found is returned, each as
//! `FILE:LINE:COL: message`, so one `check-config` run lists them all.
//!
//! Merging: files are read in file-name order. `[store]`, `[calendar]`, `[mail]` and
//! `[log]` may each appear in one file only; `[[rule]]` blocks from all files add up. A
//! table left out everywhere (or no `[[rule]]` at all) takes its value from the defaults
//! built into the binary, which are the shipped `config/followup.toml`.

mod error;
pub mod mail;
mod sections;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use crate::calendar::Calendar;
use crate::mail::templates::Templates;
use crate::rule::{Overdue, Rule};
pub use error::{ConfigError, ConfigErrors, line_column};
pub use mail::{
    MailSettings, PasswordError, PasswordSource, SmtpSettings, TlsMode, TransportSettings,
};
pub use sections::LogLevel;
use sections::{FileConfig, RuleSection, SmtpSection, TransportKind};

/// The defaults built into the binary: the shipped `config/followup.toml`.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../../config/followup.toml");

/// Name under which errors in the built-in defaults are reported.
const EMBEDDED_NAME: &str = "<built-in defaults>";

/// The checked configuration the daemon and the CLI run on.
#[derive(Clone, Debug)]
pub struct Config {
    /// The config directory it was read from.
    pub dir: PathBuf,
    /// `[store]`.
    pub store: StoreSettings,
    /// `[calendar]`.
    pub calendar: Calendar,
    /// `[mail]`.
    pub mail: MailSettings,
    /// `[[rule]]` blocks in match order.
    pub rules: Vec<Rule>,
    /// `[log] level`: the daemon's log level.
    pub log_level: LogLevel,
    /// Mail templates: built-in, with overrides from `templates/` in the config dir.
    pub templates: Arc<Templates>,
    /// How to call this program with this config, for commands quoted in mail.
    pub command: String,
}

/// `[store]`, checked.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// The SQLite file, absolute.
    pub path: PathBuf,
}

/// The config directory to use when none is given: `$FOLLOWUP_CONFIG`, else
/// `/etc/followup` if it exists, else `./config`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FOLLOWUP_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let etc = Path::new("/etc/followup");
    if etc.is_dir() {
        etc.to_path_buf()
    } else {
        PathBuf::from("config")
    }
}

/// Reads and checks every `*.toml` in `dir`. If `dir` does not exist, that is an error
/// unless `allow_missing` is set, in which case the built-in defaults are used with
/// paths resolved against the current directory.
pub fn load(dir: &Path, allow_missing: bool) -> Result<Config, ConfigErrors> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut errors = Vec::new();
    let mut files = Vec::new();
    if dir.is_dir() {
        match toml_files(&dir) {
            Ok(paths) => {
                for path in paths {
                    match std::fs::read_to_string(&path) {
                        Ok(text) => files.push((path, text)),
                        Err(e) => {
                            errors.push(ConfigError::whole(&path, format!("cannot read: {e}")))
                        }
                    }
                }
            }
            Err(e) => errors.push(ConfigError::whole(
                &dir,
                format!("cannot list the directory: {e}"),
            )),
        }
    } else if !allow_missing {
        return Err(ConfigErrors(vec![ConfigError::whole(
            &dir,
            "the config directory does not exist (set --config or FOLLOWUP_CONFIG)",
        )]));
    }
    let parsed: Vec<(PathBuf, String, FileConfig)> = files
        .into_iter()
        .filter_map(|(path, text)| match toml::from_str::<FileConfig>(&text) {
            Ok(cfg) => Some((path, text, cfg)),
            Err(e) => {
                errors.push(ConfigError::at(&path, &text, e.span(), e.message().trim()));
                None
            }
        })
        .collect();
    let defaults: FileConfig = toml::from_str(EMBEDDED_DEFAULTS).expect("built-in defaults parse");
    let base = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.clone());
    let config = build(&dir, &base, parsed, defaults, &mut errors);
    let templates = Templates::load(&dir.join("templates"));
    match (config, templates) {
        (Some(mut config), Ok(templates)) if errors.is_empty() => {
            config.templates = Arc::new(templates);
            Ok(config)
        }
        (_, Err(template_errors)) => {
            errors.extend(template_errors);
            Err(ConfigErrors(errors))
        }
        _ => Err(ConfigErrors(errors)),
    }
}

fn toml_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// A table taken from one file, remembered with where it came from.
struct Located<'a, T> {
    value: T,
    file: &'a Path,
    source: &'a str,
    span: std::ops::Range<usize>,
}

/// Picks the one file that defines a table, reporting any second definition.
fn single<'a, T: Clone>(
    name: &str,
    parsed: &'a [(PathBuf, String, FileConfig)],
    get: impl Fn(&FileConfig) -> Option<&Spanned<T>>,
    errors: &mut Vec<ConfigError>,
) -> Option<Located<'a, T>> {
    let mut found: Option<Located<'a, T>> = None;
    for (path, text, cfg) in parsed {
        let Some(table) = get(cfg) else { continue };
        match &found {
            None => {
                found = Some(Located {
                    value: table.get_ref().clone(),
                    file: path,
                    source: text,
                    span: table.span(),
                })
            }
            Some(first) => {
                let (line, _) = line_column(first.source, first.span.start);
                errors.push(ConfigError::at(
                    path,
                    text,
                    Some(table.span()),
                    format!(
                        "[{name}] is already defined in {}:{line}; each table may appear in one file only",
                        first.file.display()
                    ),
                ));
            }
        }
    }
    found
}

fn build(
    dir: &Path,
    base: &Path,
    parsed: Vec<(PathBuf, String, FileConfig)>,
    defaults: FileConfig,
    errors: &mut Vec<ConfigError>,
) -> Option<Config> {
    let embedded = Path::new(EMBEDDED_NAME);

    let store = single("store", &parsed, |c| c.store.as_ref(), errors)
        .map(|l| l.value)
        .or_else(|| default_of(&defaults.store))?;
    let calendar = single("calendar", &parsed, |c| c.calendar.as_ref(), errors)
        .map(|l| l.value)
        .or_else(|| default_of(&defaults.calendar))?;
    let mail = single("mail", &parsed, |c| c.mail.as_ref(), errors);
    let (mail, mail_file, mail_source) = match mail {
        Some(l) => (l.value, l.file.to_path_buf(), l.source.to_string()),
        None => (
            default_of(&defaults.mail)?,
            embedded.to_path_buf(),
            EMBEDDED_DEFAULTS.to_string(),
        ),
    };
    let mail = check_mail(dir, base, mail, &mail_file, &mail_source, errors);
    let log_level = single("log", &parsed, |c| c.log.as_ref(), errors)
        .map(|l| l.value)
        .or_else(|| default_of(&defaults.log))
        .map(|log| log.level)
        .unwrap_or_default();

    let mut rule_sources: Vec<(&Path, &str, &Spanned<RuleSection>)> = Vec::new();
    for (path, text, cfg) in &parsed {
        for rule in &cfg.rule {
            rule_sources.push((path, text, rule));
        }
    }
    if rule_sources.is_empty() {
        for rule in &defaults.rule {
            rule_sources.push((embedded, EMBEDDED_DEFAULTS, rule));
        }
    }
    let mut rules: Vec<Rule> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (path, text, spanned) in rule_sources {
        if let Some(rule) = check_rule(spanned.get_ref(), &mut names, path, text, errors) {
            rules.push(rule);
        }
    }

    let command = if dir == std::path::absolute(default_dir()).unwrap_or_default() {
        "followup".to_string()
    } else {
        format!("followup --config {}", dir.display())
    };
    Some(Config {
        dir: dir.to_path_buf(),
        store: StoreSettings {
            path: mail::resolve(base, &store.path),
        },
        calendar: Calendar::new(calendar.timezone.0),
        mail: mail?,
        rules,
        log_level,
        templates: Arc::new(Templates::builtin()),
        command,
    })
}

fn default_of<T: Clone>(table: &Option<Spanned<T>>) -> Option<T> {
    table.as_ref().map(|t| t.get_ref().clone())
}

fn check_rule(
    section: &RuleSection,
    names: &mut Vec<String>,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Rule> {
    let at = |span, message: String| ConfigError::at(file, source, Some(span), message);
    let name = section.name.get_ref().trim().to_string();
    let before = errors.len();
    if name.is_empty() {
        errors.push(at(
            section.name.span(),
            "a rule needs a non-empty name".into(),
        ));
    } else if names.contains(&name) {
        errors.push(at(
            section.name.span(),
            format!("a rule named '{name}' is already defined; rule names must be unique"),
        ));
    }
    names.push(name.clone());
    let overdue = match (&section.overdue_every, &section.overdue_max) {
        (None, None) => None,
        (None, Some(max)) => {
            errors.push(at(
                max.span(),
                "overdue_max needs overdue_every (e.g. overdue_every = \"1d\")".into(),
            ));
            None
        }
        (Some(every), max) => {
            if !every.get_ref().is_positive() {
                errors.push(at(
                    every.span(),
                    format!(
                        "overdue_every '{}' must be a positive interval such as \"1d\"",
                        every.get_ref()
                    ),
                ));
            }
            let max_value = max.as_ref().map_or(3, |m| *m.get_ref());
            if let Some(m) = max.as_ref().filter(|m| *m.get_ref() > 100) {
                errors.push(at(m.span(), "overdue_max may be at most 100".into()));
            }
            Some(Overdue {
                every: every.get_ref().clone(),
                max: max_value,
            })
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Rule {
        name,
        kinds: section.matcher.kind.clone().map(|k| k.into_vec()),
        remind: section.remind.clone(),
        overdue,
        catch_up: section.catch_up,
    })
}

fn check_mail(
    dir: &Path,
    base: &Path,
    mail: sections::MailSection,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<MailSettings> {
    let transport = match mail.transport {
        TransportKind::File => TransportSettings::File {
            dir: mail::resolve(
                base,
                &mail
                    .file
                    .map(|f| f.dir)
                    .unwrap_or_else(|| PathBuf::from("var/outbox")),
            ),
        },
        TransportKind::Sendmail => TransportSettings::Sendmail {
            command: mail
                .sendmail
                .map(|s| s.command)
                .unwrap_or_else(|| PathBuf::from("/usr/sbin/sendmail")),
        },
        TransportKind::Smtp => {
            let Some(smtp) = mail.smtp else {
                errors.push(ConfigError::whole(
                    file,
                    "transport = \"smtp\" needs a [mail.smtp] table with at least host",
                ));
                return None;
            };
            let span = smtp.span();
            let smtp = smtp.into_inner();
            let at = |span, message: &str| ConfigError::at(file, source, Some(span), message);
            if smtp.host.trim().is_empty() {
                errors.push(at(span.clone(), "[mail.smtp] host is empty"));
            }
            let password = password_source(dir, base, &smtp, file, source, errors);
            let username = Some(smtp.username.trim().to_string()).filter(|u| !u.is_empty());
            if username.is_none() && password != PasswordSource::None {
                errors.push(at(span.clone(), "a password is set but username is empty"));
            }
            let timeout = match &smtp.timeout {
                None => Duration::from_secs(30),
                Some(offset) => match Duration::try_from(offset.exact()) {
                    Ok(d) if !d.is_zero() => d,
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
                port: smtp.port.unwrap_or_else(|| mail::default_port(smtp.tls)),
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
    Some(MailSettings {
        from: mail.from.0,
        transport,
    })
}

/// Where `[mail.smtp]` says the password is: at most one of `password_file`,
/// `password_env` and `password_credential`; an empty value means none.
fn password_source(
    dir: &Path,
    base: &Path,
    smtp: &SmtpSection,
    file: &Path,
    source: &str,
    errors: &mut Vec<ConfigError>,
) -> PasswordSource {
    let at = |span, message: &str| ConfigError::at(file, source, Some(span), message);
    let set = [
        smtp.password_file.as_ref().map(Spanned::span),
        smtp.password_env.as_ref().map(Spanned::span),
        smtp.password_credential.as_ref().map(Spanned::span),
    ];
    if let Some(second) = set.iter().flatten().nth(1) {
        errors.push(at(
            second.clone(),
            "set one of password_file, password_env and password_credential, not several",
        ));
        return PasswordSource::None;
    }
    if let Some(f) = smtp.password_file.as_ref() {
        if f.get_ref().as_os_str().is_empty() {
            return PasswordSource::None;
        }
        return PasswordSource::File(mail::resolve(base, f.get_ref()));
    }
    if let Some(v) = smtp.password_env.as_ref() {
        if v.get_ref().is_empty() {
            return PasswordSource::None;
        }
        return PasswordSource::Env(v.get_ref().clone());
    }
    let Some(c) = smtp.password_credential.as_ref() else {
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

#[cfg(test)]
mod tests;
