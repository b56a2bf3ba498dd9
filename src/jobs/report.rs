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
    /// Median lateness of the late and missed ones, in seconds.
    pub median_lateness_seconds: Option<i64>,
    /// Updates and delay notices sent.
    pub updates_sent: u32,
}

fn group_of(by: GroupBy, c: &Commitment) -> String {
    match by {
        GroupBy::Owner => c.owner.email.to_string(),
        GroupBy::Customer => c.customer.email.to_string(),
        GroupBy::Kind => c.kind.clone().unwrap_or_else(|| "(none)".to_string()),
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
            figures
        })
        .collect();
    total.0.median_lateness_seconds = median(total.1);
    rows.push(total.0);
    rows
}

const COLUMNS: [&str; 9] = [
    "DUE",
    "ON TIME",
    "AFTER NOTICE",
    "LATE NO NOTICE",
    "MISSED SILENTLY",
    "OPEN AFTER NOTICE",
    "OPEN",
    "MEDIAN LATENESS",
    "UPDATES SENT",
];

fn cells(f: &Figures) -> [String; 9] {
    let lateness = f.median_lateness_seconds.map_or_else(
        || "-".to_string(),
        |s| {
            crate::calendar::humanize(
                Timestamp::UNIX_EPOCH,
                Timestamp::UNIX_EPOCH + SignedDuration::from_secs(s),
            )
        },
    );
    [
        f.due.to_string(),
        f.kept_on_time.to_string(),
        f.kept_after_notice.to_string(),
        f.kept_late_no_notice.to_string(),
        f.missed_silently.to_string(),
        f.open_after_notice.to_string(),
        f.open.to_string(),
        lateness,
        f.updates_sent.to_string(),
    ]
}

/// The report as an aligned text table.
pub fn table(rows: &[Figures], by: GroupBy) -> String {
    let mut all: Vec<Vec<String>> = vec![
        std::iter::once(by.heading().to_string())
            .chain(COLUMNS.iter().map(|c| c.to_string()))
            .collect(),
    ];
    for f in rows {
        all.push(std::iter::once(f.group.clone()).chain(cells(f)).collect());
    }
    let widths: Vec<usize> = (0..all[0].len())
        .map(|i| all.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &all {
        let line: Vec<String> = row
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
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
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
