//! Checking `[[schedule]]` blocks, `[report]` and `[store] keep`.

use std::path::PathBuf;

use super::error::ConfigError;
use super::sections::{FileConfig, StoreSection};
use super::single;
use crate::jobs::report::GroupBy;
use crate::jobs::{CronExpr, Schedule, schedule_zone};

/// `[report]`, checked.
#[derive(Clone, Debug)]
pub struct ReportSettings {
    /// Who gets the report job's email.
    pub to: Vec<lettre::message::Mailbox>,
    /// The period the report covers, ending when it runs.
    pub since: jiff::SignedDuration,
    /// How commitments are grouped.
    pub by: GroupBy,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            to: Vec::new(),
            since: jiff::SignedDuration::from_hours(30 * 24),
            by: GroupBy::Owner,
        }
    }
}

/// `[store] keep`, 400 days unless set.
pub(super) fn keep(
    store: &StoreSection,
    place: Option<&(PathBuf, String)>,
    errors: &mut Vec<ConfigError>,
) -> jiff::SignedDuration {
    let default = jiff::SignedDuration::from_hours(400 * 24);
    let Some(keep) = &store.keep else {
        return default;
    };
    match super::mail::positive_exact(keep.get_ref()) {
        Some(d) => d,
        None => {
            if let Some((file, source)) = place {
                errors.push(ConfigError::at(
                    file,
                    source,
                    Some(keep.span()),
                    format!(
                        "keep '{}' must be a positive wall-clock duration such as \"400d\"",
                        keep.get_ref()
                    ),
                ));
            }
            default
        }
    }
}

/// Every `[[schedule]]` block; `default_zone` is the calendar's.
pub(super) fn schedules(
    parsed: &[(PathBuf, String, FileConfig)],
    default_zone: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Schedule> {
    let mut out: Vec<Schedule> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let has_recipients = parsed.iter().any(|(_, _, c)| {
        c.report
            .as_ref()
            .and_then(|r| r.get_ref().to.as_ref())
            .is_some_and(|to| !to.clone().into_vec().is_empty())
    });
    for (file, source, cfg) in parsed {
        for spanned in &cfg.schedule {
            let at = |span, message: String| ConfigError::at(file, source, Some(span), message);
            let section = spanned.get_ref();
            let before = errors.len();
            let name = section.name.get_ref().trim().to_string();
            if name.is_empty() {
                errors.push(at(
                    section.name.span(),
                    "a schedule needs a non-empty name".into(),
                ));
            } else if names.contains(&name) {
                errors.push(at(
                    section.name.span(),
                    format!("a schedule named '{name}' is already defined; schedule names must be unique"),
                ));
            }
            names.push(name.clone());
            let cron = section
                .cron
                .get_ref()
                .parse::<CronExpr>()
                .map_err(|e| errors.push(at(section.cron.span(), e)));
            let zone = match &section.timezone {
                Some(zone) => {
                    schedule_zone(zone.get_ref()).map_err(|e| errors.push(at(zone.span(), e)))
                }
                None => schedule_zone(default_zone).map_err(|e| errors.push(at(spanned.span(), e))),
            };
            if section.job == crate::jobs::Job::Report && !has_recipients {
                errors.push(at(
                    spanned.span(),
                    "this schedule runs the report job, but [report] to names nobody".into(),
                ));
            }
            if let (Ok(cron), Ok(zone)) = (cron, zone)
                && errors.len() == before
            {
                out.push(Schedule {
                    name,
                    cron,
                    zone,
                    job: section.job,
                    catch_up: section.catch_up,
                });
            }
        }
    }
    out
}

/// `[report]`, from the one file that defines it.
pub(super) fn report(
    parsed: &[(PathBuf, String, FileConfig)],
    errors: &mut Vec<ConfigError>,
) -> ReportSettings {
    let mut settings = ReportSettings::default();
    let Some(located) = single("report", parsed, |c| c.report.as_ref(), errors) else {
        return settings;
    };
    let section = located.value;
    if let Some(to) = section.to {
        settings.to = to.into_vec().into_iter().map(|m| m.0).collect();
    }
    if let Some(by) = section.by {
        settings.by = by;
    }
    if let Some(since) = section.since {
        match super::mail::positive_exact(since.get_ref()) {
            Some(d) => settings.since = d,
            None => errors.push(ConfigError::at(
                located.file,
                located.source,
                Some(since.span()),
                format!(
                    "since '{}' must be a positive wall-clock duration such as \"30d\"",
                    since.get_ref()
                ),
            )),
        }
    }
    settings
}
