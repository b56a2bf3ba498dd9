//! Configuration: every `*.toml` in the config directory, merged and checked before use.
//!
//! Two layers, as in ntpd-rs: serde reads each file strictly (unknown keys, bad zones,
//! bad offsets and bad addresses fail with their line and column; `read` carries on
//! past each one), then [`load`] checks that the merged whole makes sense. Every
//! problem found is returned, each as `FILE:LINE:COL: message` in file and line order,
//! so one `check-config` run lists them all.
//!
//! Merging: files are read in file-name order. `[store]`, `[calendar]`, `[mail]`, `[web]`
//! and `[log]` may each appear in one file only; `[[rule]]` blocks from all files add up. A
//! table left out everywhere (or no `[[rule]]` at all) takes its value from the defaults
//! built into the binary, which are the shipped `config/followup.toml`.

mod business;
mod error;
mod jobs;
pub mod mail;
mod read;
mod rules;
mod sections;
mod store;
mod web;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;

use crate::calendar::Calendar;
use crate::mail::templates::{TemplateKind, Templates};
use crate::rule::Rule;
pub use business::{Business, ReplyTo};
pub use error::{ConfigError, ConfigErrors, line_column};
pub use jobs::ReportSettings;
pub use mail::{
    MailSettings, PasswordError, PasswordSource, SmtpSettings, TlsMode, TransportSettings,
};
pub use sections::LogLevel;
use sections::{FileConfig, RuleSection};
pub use store::{Backend, StoreSettings};
pub use web::{DEFAULT_LISTEN, WebSettings};

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
    /// `[daemon]`.
    pub daemon: DaemonSettings,
    /// `[[schedule]]` blocks.
    pub schedules: Vec<crate::jobs::Schedule>,
    /// `[report]`.
    pub report: ReportSettings,
    /// `[business]`: who signs customer mail and where replies go.
    pub business: Business,
    /// `[web]`: the pages behind the links in mail; `None` when turned off.
    pub web: Option<WebSettings>,
    /// `[[rule]]` blocks in match order.
    pub rules: Vec<Rule>,
    /// `[log] level`: the daemon's log level.
    pub log_level: LogLevel,
    /// Mail templates: built-in, with overrides from `templates/` in the config dir.
    pub templates: Arc<Templates>,
    /// How to call this program with this config, for commands quoted in mail.
    pub command: String,
}

/// `[daemon]`, checked.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// How late a step may fire and still count as on time; later ones go through the
    /// rule's `catch_up` policy.
    pub late_after: jiff::SignedDuration,
}

impl Default for DaemonSettings {
    fn default() -> Self {
        DaemonSettings {
            late_after: jiff::SignedDuration::from_secs(60),
        }
    }
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
    let mut echoes = Vec::new();
    let parsed: Vec<(PathBuf, String, FileConfig)> = files
        .into_iter()
        .filter_map(|(path, text)| {
            let read = read::file::<FileConfig>(&path, &text, &mut errors)?;
            echoes.extend(read.echoes.into_iter().map(|(l, c)| (path.clone(), l, c)));
            Some((path, text, read.value))
        })
        .collect();
    let defaults: FileConfig = toml::from_str(EMBEDDED_DEFAULTS).expect("built-in defaults parse");
    let base = dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.clone());
    let mut second_layer = Vec::new();
    let (config, wanted) = match build(&dir, &base, parsed, defaults, &mut second_layer) {
        Some((config, wanted)) => (Some(config), wanted),
        None => (None, Vec::new()),
    };
    second_layer.retain(|e| {
        !echoes
            .iter()
            .any(|(file, l, c)| *file == e.file && Some(*l) == e.line && Some(*c) == e.column)
    });
    errors.extend(second_layer);
    let templates = Templates::load(&dir.join("templates"), &wanted);
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
    .map_err(|mut errors| {
        // In reading order, whichever layer found them.
        errors
            .0
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
        errors
    })
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
) -> Option<(Config, Vec<(String, TemplateKind)>)> {
    let embedded = Path::new(EMBEDDED_NAME);

    let (store, store_place) = match single("store", &parsed, |c| c.store.as_ref(), errors) {
        Some(l) => (l.value, Some((l.file.to_path_buf(), l.source.to_string()))),
        None => (default_of(&defaults.store)?, None),
    };
    let (calendar, calendar_place) =
        match single("calendar", &parsed, |c| c.calendar.as_ref(), errors) {
            Some(l) => (l.value, Some((l.file.to_path_buf(), l.source.to_string()))),
            None => (default_of(&defaults.calendar)?, None),
        };
    let mail = single("mail", &parsed, |c| c.mail.as_ref(), errors);
    let (mail, mail_file, mail_source) = match mail {
        Some(l) => (l.value, l.file.to_path_buf(), l.source.to_string()),
        None => (
            default_of(&defaults.mail)?,
            embedded.to_path_buf(),
            EMBEDDED_DEFAULTS.to_string(),
        ),
    };
    let mail = mail::check(dir, base, mail, &mail_file, &mail_source, errors);
    let mut daemon = DaemonSettings::default();
    if let Some(l) = single("daemon", &parsed, |c| c.daemon.as_ref(), errors)
        && let Some(late_after) = &l.value.late_after
    {
        match mail::positive_exact(late_after.get_ref()) {
            Some(d) => daemon.late_after = d,
            None => errors.push(ConfigError::at(
                l.file,
                l.source,
                Some(late_after.span()),
                format!(
                    "late_after '{}' must be a positive wall-clock duration such as \"1m\"",
                    late_after.get_ref()
                ),
            )),
        }
    }
    let web = match single("web", &parsed, |c| c.web.as_ref(), errors) {
        Some(l) => web::check(&l.value, l.file, l.source, errors),
        None => match &defaults.web {
            Some(section) => web::check(section.get_ref(), embedded, EMBEDDED_DEFAULTS, errors),
            None => None,
        },
    };
    let business = single("business", &parsed, |c| c.business.as_ref(), errors)
        .map(|l| business::check(&l.value, l.file, l.source, errors))
        .unwrap_or_default();
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
    // Read from the blocks as written, so a rule with a mistake elsewhere still claims
    // its templates and their own mistakes are reported.
    let wanted = rule_sources
        .iter()
        .flat_map(|(_, _, rule)| rules::templates_of(rule.get_ref()))
        .collect();
    let mut rules: Vec<Rule> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (path, text, spanned) in rule_sources {
        let place = rules::Place {
            file: path,
            source: text,
        };
        if let Some(rule) = rules::check(spanned.get_ref(), &mut names, &place, errors) {
            rules.push(rule);
        }
    }

    let calendar = check_calendar(calendar, calendar_place, errors);
    let calendar_zone_name = calendar.zone_name().to_string();
    let command = if dir == std::path::absolute(default_dir()).unwrap_or_default() {
        "followup".to_string()
    } else {
        format!("followup --config {}", dir.display())
    };
    let config = Config {
        dir: dir.to_path_buf(),
        store: store::settings(dir, base, &store, store_place.as_ref(), errors),
        calendar,
        mail: mail?,
        daemon,
        schedules: jobs::schedules(&parsed, &calendar_zone_name, errors),
        report: jobs::report(&parsed, errors),
        business,
        web,
        rules,
        log_level,
        templates: Arc::new(Templates::builtin()),
        command,
    };
    Some((config, wanted))
}

fn check_calendar(
    section: sections::CalendarSection,
    place: Option<(PathBuf, String)>,
    errors: &mut Vec<ConfigError>,
) -> Calendar {
    let week = match &section.business_hours {
        None => crate::calendar::DEFAULT_WEEK,
        Some(hours) => {
            let week = hours.get_ref().week();
            if week.iter().all(Option::is_none)
                && let Some((file, source)) = &place
            {
                errors.push(ConfigError::at(
                    file,
                    source,
                    Some(hours.span()),
                    "business_hours opens on no day: give at least one day, e.g. mon = \"09:00-17:00\"",
                ));
            }
            week
        }
    };
    Calendar::with_hours(
        section.timezone.0,
        week,
        section.holidays.into_iter().collect(),
    )
}

fn default_of<T: Clone>(table: &Option<Spanned<T>>) -> Option<T> {
    table.as_ref().map(|t| t.get_ref().clone())
}

#[cfg(test)]
mod tests;
