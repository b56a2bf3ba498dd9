//! The "promises kept" report: per owner, kind or customer, how the commitments due in a
//! period went. Pure: the caller passes the facts and the period.
//!
//! Definitions (also in the README). A commitment belongs to the period when the time it
//! was first promised for (its due time before any change) falls in the period;
//! cancelled commitments are left out. Each one lands in exactly one bucket:
//!
//! - **kept on time**: done no later than first promised;
//! - **kept after notice**: done later, and the customer was sent an update or a delay
//!   notice before it was done;
//! - **kept late, no notice**: done later, and the customer was told nothing before;
//! - **missed silently**: not done, its (current) due time has passed, and the customer
//!   was never sent an update;
//! - **open after notice**: not done, and the customer was sent an update;
//! - **open**: not done, not yet due, and no update sent (its due time was moved without
//!   telling the customer, or it is not due yet).
//!
//! **% kept** is the share kept on time or after notice of the commitments settled: done,
//! or missed silently. Those still open with the customer told, or moved without notice
//! and not due yet, are not counted in it until they settle; `None` (shown `-`) when
//! none is settled.
//!
//! **Median lateness** is the median, over the commitments kept late (with or without
//! notice) and those missed silently, of how late they are: the time they were done (or
//! the end of the period, if still open) minus the time first promised. **Updates sent**
//! counts the updates and delay notices sent to these commitments' customers.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::commitment::{Commitment, Status};

/// How the report groups commitments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// By the owner's address.
    #[default]
    Owner,
    /// By kind.
    Kind,
    /// By the customer's address.
    Customer,
}

impl GroupBy {
    fn heading(self) -> &'static str {
        match self {
            GroupBy::Owner => "OWNER",
            GroupBy::Kind => "KIND",
            GroupBy::Customer => "CUSTOMER",
        }
    }
}

/// What the report needs to know of one commitment.
#[derive(Clone, Debug)]
pub struct Fact {
    /// The commitment as it is now.
    pub commitment: Commitment,
    /// The time first promised: the due time before any change.
    pub first_due: Timestamp,
    /// When updates or delay notices were sent to the customer.
    pub updates_sent: Vec<Timestamp>,
}

/// The figures of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    /// The owner, kind or customer; `total` for the last row.
    pub group: String,
    /// Commitments first promised for a time in the period.
    pub due: u32,
    /// Done no later than first promised.
    pub kept_on_time: u32,
    /// Done later, with the customer told before.
    pub kept_after_notice: u32,
    /// Done later, with the customer told nothing.
    pub kept_late_no_notice: u32,
    /// Not done, past due, never an update.
    pub missed_silently: u32,
    /// Not done, the customer was told.
    pub open_after_notice: u32,
    /// Not done, not due yet, no update.
    pub open: u32,
    /// Kept on time or after notice, in percent (rounded) of those settled: on time,
    /// after notice, late with no notice and missed silently.
    pub kept_percent: Option<u32>,
    /// Median lateness of the late and missed ones, in seconds.
    pub median_lateness_seconds: Option<i64>,
    /// Updates and delay notices sent.
    pub updates_sent: u32,
}

/// The length of a report's period as people write it: `30d`, `12h`, `2 days`, and
/// weeks (`2w`), which are seven days of 24 hours; `None` for months and years (no
/// fixed length), zero, negative or unreadable text.
pub fn parse_period(text: &str) -> Option<SignedDuration> {
    let span: jiff::Span = text.trim().parse().ok()?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return None;
    }
    span.to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .ok()
        .filter(|d| d.is_positive())
}

fn group_of(by: GroupBy, c: &Commitment) -> String {
    match by {
        GroupBy::Owner => c.owner.email.to_string(),
        GroupBy::Customer => c.customer.email.to_string(),
        GroupBy::Kind => c.kind.clone().unwrap_or_else(|| "(none)".to_string()),
    }
}

impl Figures {
    fn kept_percent(&self) -> Option<u32> {
        let kept = self.kept_on_time + self.kept_after_notice;
        let settled = kept + self.kept_late_no_notice + self.missed_silently;
        (settled > 0).then(|| (kept * 100 + settled / 2) / settled)
    }
}

fn median(mut values: Vec<SignedDuration>) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let mid = values.len() / 2;
    let seconds = if values.len() % 2 == 1 {
        values[mid].as_secs()
    } else {
        (values[mid - 1].as_secs() + values[mid].as_secs()) / 2
    };
    Some(seconds)
}

/// The figures per group (sorted by name) and a last `total` row, for commitments first
/// promised in `[from, to)`.
pub fn compute(facts: &[Fact], from: Timestamp, to: Timestamp, by: GroupBy) -> Vec<Figures> {
    let mut groups: BTreeMap<String, (Figures, Vec<SignedDuration>)> = BTreeMap::new();
    let mut total = (
        Figures {
            group: "total".into(),
            ..Figures::default()
        },
        Vec::new(),
    );
    for fact in facts {
        let c = &fact.commitment;
        if c.status == Status::Cancelled || fact.first_due < from || fact.first_due >= to {
            continue;
        }
        let entry = groups
            .entry(group_of(by, c))
            .or_insert_with(|| (Figures::default(), Vec::new()));
        for (figures, lateness) in [entry, &mut total] {
            figures.due += 1;
            figures.updates_sent += fact.updates_sent.len() as u32;
            match (c.status, c.done_at) {
                (Status::Done, done) => {
                    let done = done.unwrap_or(c.due_at);
                    if done <= fact.first_due {
                        figures.kept_on_time += 1;
                    } else {
                        if fact.updates_sent.iter().any(|sent| *sent <= done) {
                            figures.kept_after_notice += 1;
                        } else {
                            figures.kept_late_no_notice += 1;
                        }
                        lateness.push(fact.first_due.duration_until(done));
                    }
                }
                _ if !fact.updates_sent.is_empty() => figures.open_after_notice += 1,
                _ if c.due_at < to => {
                    figures.missed_silently += 1;
                    lateness.push(fact.first_due.duration_until(to));
                }
                _ => figures.open += 1,
            }
        }
    }
    let mut rows: Vec<Figures> = groups
        .into_iter()
        .map(|(group, (mut figures, lateness))| {
            figures.group = group;
            figures.median_lateness_seconds = median(lateness);
            figures.kept_percent = figures.kept_percent();
            figures
        })
        .collect();
    total.0.median_lateness_seconds = median(total.1);
    total.0.kept_percent = total.0.kept_percent();
    rows.push(total.0);
    rows
}

/// The columns of the table `followup report` prints, named for what they count.
const COLUMNS: [&str; 10] = [
    "DUE IN PERIOD",
    "KEPT ON TIME",
    "KEPT AFTER NOTICE",
    "KEPT LATE, NO NOTICE",
    "MISSED SILENTLY",
    "OPEN AFTER NOTICE",
    "OPEN, NOT YET DUE",
    "% KEPT",
    "MEDIAN LATENESS",
    "UPDATES SENT",
];

/// The same columns in the emailed report, short enough for 72 columns, each with the
/// line of the legend that says what it counts.
const EMAIL_COLUMNS: [(&str, &str); 10] = [
    ("DUE", "commitments first promised for a time in the period"),
    ("ON TIME", "done no later than first promised"),
    ("NOTICE", "done later, the customer told before"),
    ("LATE", "done later, the customer told nothing"),
    ("MISSED", "past due, not done, no update ever sent"),
    ("TOLD", "not done, an update sent to the customer"),
    ("OPEN", "not done, not yet due, no update"),
    (
        "%KEPT",
        "ON TIME + NOTICE, of those settled (all but TOLD, OPEN)",
    ),
    (
        "MEDIAN",
        "median lateness of LATE and MISSED (d days, h hours)",
    ),
    ("UPDATES", "updates and delay notices sent to the customers"),
];

/// The figures of a row as text, with `lateness` to write the median lateness.
fn cells(f: &Figures, lateness: impl Fn(i64) -> String) -> [String; 10] {
    [
        f.due.to_string(),
        f.kept_on_time.to_string(),
        f.kept_after_notice.to_string(),
        f.kept_late_no_notice.to_string(),
        f.missed_silently.to_string(),
        f.open_after_notice.to_string(),
        f.open.to_string(),
        f.kept_percent
            .map_or_else(|| "-".to_string(), |p| format!("{p}%")),
        f.median_lateness_seconds
            .map_or_else(|| "-".to_string(), lateness),
        f.updates_sent.to_string(),
    ]
}

/// A lateness in words, as `show` and the digest write distances: `2 days`.
fn in_words(seconds: i64) -> String {
    crate::calendar::humanize(
        Timestamp::UNIX_EPOCH,
        Timestamp::UNIX_EPOCH + SignedDuration::from_secs(seconds),
    )
}

/// A lateness in at most six characters for the emailed table: `2d`, `1d3h`, `6h`,
/// `45m`, rounded down to the minute.
fn compact(seconds: i64) -> String {
    let minutes = seconds.max(0) / 60;
    let (days, hours, minutes) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    match (days, hours) {
        (0, 0) => format!("{minutes}m"),
        (0, h) if minutes == 0 => format!("{h}h"),
        (0, h) => format!("{h}h{minutes}m"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d{h}h"),
    }
}

/// Lines of cells in aligned columns: the first cell of each line to the left, the
/// others to the right, two spaces apart.
fn aligned(lines: &[Vec<String>]) -> String {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in lines {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                if i == 0 {
                    format!("{cell:<w$}", w = widths[i])
                } else {
                    format!("{cell:>w$}", w = widths[i])
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The report as an aligned text table, for the command line.
pub fn table(rows: &[Figures], by: GroupBy) -> String {
    let mut lines: Vec<Vec<String>> = vec![
        std::iter::once(by.heading().to_string())
            .chain(COLUMNS.iter().map(|c| c.to_string()))
            .collect(),
    ];
    for f in rows {
        lines.push(
            std::iter::once(f.group.clone())
                .chain(cells(f, in_words))
                .collect(),
        );
    }
    aligned(&lines)
}

/// The report for an email: each group's name on a line of its own above its figures,
/// so that every line fits in 72 columns however long the names, then a legend with a
/// line for every column.
pub fn email_table(rows: &[Figures], by: GroupBy) -> String {
    // The figures are right-aligned under their headers; a blank first cell keeps
    // `aligned` from setting the first column to the left.
    let mut figures: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(EMAIL_COLUMNS.iter().map(|(c, _)| c.to_string()))
            .collect(),
    ];
    for f in rows {
        figures.push(
            std::iter::once(String::new())
                .chain(cells(f, compact))
                .collect(),
        );
    }
    let figures = aligned(&figures);
    let mut lines = figures.lines().map(|l| l.strip_prefix("  ").unwrap_or(l));
    let mut out = String::new();
    let _ = writeln!(out, "{}", by.heading());
    let _ = writeln!(out, "{}", lines.next().unwrap_or_default());
    for (f, line) in rows.iter().zip(lines) {
        let _ = writeln!(out, "{}", f.group);
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let width = EMAIL_COLUMNS
        .iter()
        .map(|(c, _)| c.len())
        .max()
        .unwrap_or(0);
    for (column, meaning) in EMAIL_COLUMNS {
        let _ = writeln!(out, "{column:<width$}  {meaning}");
    }
    out
}

/// The report as CSV with a header row.
pub fn csv(rows: &[Figures], by: GroupBy) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let heading = by.heading().to_lowercase();
    writer.write_record([
        heading.as_str(),
        "due",
        "kept_on_time",
        "kept_after_notice",
        "kept_late_no_notice",
        "missed_silently",
        "open_after_notice",
        "open",
        "kept_percent",
        "median_lateness_seconds",
        "updates_sent",
    ])?;
    for f in rows {
        writer.write_record([
            f.group.clone(),
            f.due.to_string(),
            f.kept_on_time.to_string(),
            f.kept_after_notice.to_string(),
            f.kept_late_no_notice.to_string(),
            f.missed_silently.to_string(),
            f.open_after_notice.to_string(),
            f.open.to_string(),
            f.kept_percent.map(|p| p.to_string()).unwrap_or_default(),
            f.median_lateness_seconds
                .map(|s| s.to_string())
                .unwrap_or_default(),
            f.updates_sent.to_string(),
        ])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests;
