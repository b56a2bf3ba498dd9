//! Calendar jobs: `[[schedule]]` blocks that run a job (a digest for each owner, the
//! "promises kept" report, pruning old records) at the times of a cron expression.
//!
//! Each next occurrence is computed in the schedule's real time zone (`croner` over
//! `chrono-tz`), so a job at 08:00 Europe/London runs at 08:00 local time on both sides of
//! a clock change. The planning task sleeps until the earliest occurrence, like it sleeps
//! until the earliest step, and records every run in `job_runs` under the occurrence it
//! was for, so an occurrence runs once, also across restarts.
//!
//! `tokio-cron-scheduler` is not used: its scheduler wakes every 500 ms whatever the
//! schedule (120 wake-ups a minute for a daemon that should sleep), computes the next
//! run of a zoned job with the UTC offset captured when the job was created (an 08:00
//! job drifts an hour after each clock change), and does not make up missed runs.

pub mod digest;
pub mod report;

use std::fmt;
use std::str::FromStr;

use chrono::TimeZone as _;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use serde::Deserialize;

/// What a schedule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Job {
    /// One email per owner with open work.
    Digest,
    /// The "promises kept" report to `[report] to`.
    Report,
    /// Delete sent-delivery records older than `[store] keep`.
    Prune,
}

impl Job {
    /// The word used in config and in `job_runs.job`.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Digest => "digest",
            Job::Report => "report",
            Job::Prune => "prune",
        }
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cron expression, six or seven fields with seconds first (`0 0 8 * * Mon-Fri`).
#[derive(Clone, Debug)]
pub struct CronExpr {
    text: String,
    cron: Cron,
}

impl FromStr for CronExpr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parser = CronParser::builder().seconds(Seconds::Required).build();
        let cron = parser.parse(text).map_err(|e| {
            format!("cron '{text}' is not valid ({e}): write six fields with seconds first, e.g. \"0 0 8 * * Mon-Fri\"")
        })?;
        Ok(CronExpr {
            text: text.trim().to_string(),
            cron,
        })
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A time zone for schedules, as `chrono-tz` knows it.
pub fn schedule_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        format!(
            "unknown time zone '{name}': use an IANA name such as Europe/London or America/New_York"
        )
    })
}

/// One `[[schedule]]` block, checked.
#[derive(Clone, Debug)]
pub struct Schedule {
    /// Unique name; runs are recorded under it.
    pub name: String,
    /// When.
    pub cron: CronExpr,
    /// The zone the cron expression is read in.
    pub zone: chrono_tz::Tz,
    /// What runs.
    pub job: Job,
    /// Make up one run missed while the daemon was down.
    pub catch_up: bool,
}

impl Schedule {
    /// The first occurrence strictly after `at`, in the schedule's zone: a wall-clock
    /// time that a clock change skips runs at the first moment after the gap; one that
    /// happens twice runs once.
    pub fn next_after(&self, at: Timestamp) -> Option<Timestamp> {
        // Whole seconds: cron has no finer unit, and croner keeps the fraction it is given.
        let start = self.zone.timestamp_opt(at.as_second(), 0).single()?;
        let next = self.cron.cron.find_next_occurrence(&start, false).ok()?;
        Timestamp::from_millisecond(next.timestamp_millis()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: &str) -> Schedule {
        Schedule {
            name: "s".into(),
            cron: cron.parse().unwrap(),
            zone: schedule_zone(zone).unwrap(),
            job: Job::Digest,
            catch_up: false,
        }
    }

    fn runs(s: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut at: Timestamp = from.parse().unwrap();
        let zone = jiff::tz::TimeZone::get(s.zone.name()).unwrap();
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                at.to_zoned(zone.clone())
                    .strftime("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn an_eight_oclock_job_stays_at_eight_local_across_both_2027_clock_changes() {
        let london = schedule("0 0 8 * * *", "Europe/London");
        assert_eq!(
            runs(&london, "2027-03-26T12:00:00Z", 4),
            [
                "2027-03-27 08:00 GMT",
                "2027-03-28 08:00 BST",
                "2027-03-29 08:00 BST",
                "2027-03-30 08:00 BST"
            ]
        );
        assert_eq!(
            runs(&london, "2027-10-29T12:00:00Z", 4),
            [
                "2027-10-30 08:00 BST",
                "2027-10-31 08:00 GMT",
                "2027-11-01 08:00 GMT",
                "2027-11-02 08:00 GMT"
            ]
        );
        let new_york = schedule("0 0 8 * * *", "America/New_York");
        assert_eq!(
            runs(&new_york, "2027-03-12T17:00:00Z", 4),
            [
                "2027-03-13 08:00 EST",
                "2027-03-14 08:00 EDT",
                "2027-03-15 08:00 EDT",
                "2027-03-16 08:00 EDT"
            ]
        );
        assert_eq!(
            runs(&new_york, "2027-11-05T17:00:00Z", 4),
            [
                "2027-11-06 08:00 EDT",
                "2027-11-07 08:00 EST",
                "2027-11-08 08:00 EST",
                "2027-11-09 08:00 EST"
            ]
        );
    }

    #[test]
    fn occurrences_fall_on_whole_seconds() {
        let s = schedule("*/2 * * * * *", "UTC");
        let next = s
            .next_after("2026-11-23T11:55:33.714Z".parse().unwrap())
            .unwrap();
        assert_eq!(next, "2026-11-23T11:55:34Z".parse::<Timestamp>().unwrap());
        let next = s.next_after(next).unwrap();
        assert_eq!(next, "2026-11-23T11:55:36Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn weekday_ranges_skip_the_weekend() {
        let s = schedule("0 0 8 * * Mon-Fri", "Europe/London");
        // Friday 27 Nov 2026 09:00: next is Monday 30 Nov 08:00.
        assert_eq!(
            runs(&s, "2026-11-27T09:00:00Z", 1),
            ["2026-11-30 08:00 GMT"]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_once_after_it_and_a_time_in_the_fold_once() {
        let gap = schedule("0 30 2 * * *", "America/New_York");
        assert_eq!(
            runs(&gap, "2027-03-13T17:00:00Z", 2),
            ["2027-03-14 03:00 EDT", "2027-03-15 02:30 EDT"]
        );
        let fold = schedule("0 30 1 * * *", "America/New_York");
        assert_eq!(
            runs(&fold, "2027-11-06T17:00:00Z", 2),
            ["2027-11-07 01:30 EDT", "2027-11-08 01:30 EST"]
        );
    }

    #[test]
    fn cron_expressions_need_seconds_and_valid_fields() {
        assert!("0 0 8 * * Mon-Fri".parse::<CronExpr>().is_ok());
        assert!("* * * * * *".parse::<CronExpr>().is_ok());
        for bad in [
            "0 8 * * *",
            "0 61 8 * * *",
            "every morning",
            "",
            "0 0 8 * * Mon-Fry",
        ] {
            let err = bad.parse::<CronExpr>().unwrap_err();
            assert!(err.contains("seconds first"), "{bad}: {err}");
        }
        assert!(schedule_zone("Mars/Base").is_err());
    }
}
