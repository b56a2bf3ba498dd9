//! `status`: what the store holds, for an admin checking on the service: open and
//! quarantined commitments, planned steps and the next one, emails waiting, retried,
//! failed and last sent. It reads the store only, so it works whether the daemon runs
//! or not.

use clap::Args;
use jiff::Timestamp;
use serde::Serialize;

use super::Format;
use super::commitments::open;
use crate::calendar::{Calendar, humanize};
use crate::config::Config;
use crate::store::Summary;

/// `followup status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Serialize)]
struct Shown<'a> {
    store: String,
    /// `[mail] dry_run`: nothing is sent, whatever the figures below say.
    dry_run: bool,
    #[serde(flatten)]
    summary: &'a Summary,
}

/// Prints the summary of the configured store.
pub fn status(config: &Config, args: StatusArgs) -> anyhow::Result<()> {
    let summary = open(config)?.summary()?;
    let store = config.store.path.display().to_string();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&Shown {
                store,
                dry_run: config.mail.dry_run,
                summary: &summary
            })?
        ),
        Format::Table => {
            println!("{:<13}{store}", "store:");
            if config.mail.dry_run {
                println!(
                    "{:<13}[mail] dry_run = true: emails are rendered and recorded, not sent",
                    "DRY RUN:"
                );
            }
            for (label, text) in lines(&summary, &config.calendar, Timestamp::now()) {
                println!("{:<13}{text}", format!("{label}:"));
            }
        }
    }
    Ok(())
}

/// The summary as labelled lines for people.
fn lines(s: &Summary, calendar: &Calendar, now: Timestamp) -> Vec<(&'static str, String)> {
    let when = |at: Timestamp| {
        let distance = humanize(now, at);
        if at > now {
            format!("{}, in {distance}", calendar.display(at))
        } else {
            format!("{}, {distance} ago", calendar.display(at))
        }
    };
    let mut out = vec![("open", count(s.open_commitments, "commitment"))];
    let attention = [
        (
            "unplanned",
            s.changes_waiting,
            "written since the daemon last planned (is it running?)",
        ),
        (
            "quarantined",
            s.quarantined_commitments,
            "that cannot be planned; `followup list` shows why",
        ),
    ];
    for (label, n, text) in attention {
        if n > 0 {
            out.push((label, format!("{} {text}", count(n, "commitment"))));
        }
    }
    let w = &s.workload;
    out.push((
        "planned",
        match &w.next_step {
            None => "no steps".to_string(),
            Some(next) => format!(
                "{}; next {} (commitment {}, {} {})",
                count(w.planned_steps, "step"),
                when(next.fire_at),
                next.commitment_id,
                next.kind,
                next.label
            ),
        },
    ));
    out.push((
        "pending",
        match s.retrying_deliveries {
            0 => format!(
                "{} waiting to be sent",
                count(w.pending_deliveries, "email")
            ),
            n => format!(
                "{} waiting to be sent, {n} of them after a failed attempt",
                count(w.pending_deliveries, "email")
            ),
        },
    ));
    out.push(("failed", count(s.failed_deliveries, "email")));
    out.push((
        "last sent",
        match s.last_sent_at {
            None => "never".to_string(),
            Some(at) => format!("{} ({} sent in all)", when(at), s.sent_deliveries),
        },
    ));
    if let Some(e) = &s.last_error {
        let fate = if e.state == "pending" {
            "will be retried"
        } else {
            "failed"
        };
        out.push((
            "last error",
            format!(
                "email {} about commitment {} ({fate}): {}",
                e.delivery_id, e.commitment_id, e.error
            ),
        ));
    }
    out
}

fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeliveryError, NextStep, Workload};

    #[test]
    fn the_summary_reads_as_sentences() {
        let calendar = Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap());
        let now: Timestamp = "2026-11-24T15:00:00Z".parse().unwrap();
        let summary = Summary {
            workload: Workload {
                planned_steps: 3,
                next_step: Some(NextStep {
                    fire_at: "2026-11-24T17:00:00Z".parse().unwrap(),
                    commitment_id: 12,
                    kind: "remind".into(),
                    label: "0s".into(),
                }),
                pending_deliveries: 2,
            },
            open_commitments: 1,
            changes_waiting: 0,
            quarantined_commitments: 1,
            retrying_deliveries: 1,
            failed_deliveries: 0,
            sent_deliveries: 7,
            last_sent_at: Some("2026-11-24T14:57:00Z".parse().unwrap()),
            last_error: Some(DeliveryError {
                delivery_id: 9,
                commitment_id: 4,
                state: "pending".into(),
                error: "Connection refused".into(),
            }),
        };
        let text: Vec<String> = lines(&summary, &calendar, now)
            .into_iter()
            .map(|(label, text)| format!("{label}: {text}"))
            .collect();
        assert_eq!(
            text,
            [
                "open: 1 commitment",
                "quarantined: 1 commitment that cannot be planned; `followup list` shows why",
                "planned: 3 steps; next Tue 24 Nov 2026 17:00 GMT, in 2 hours (commitment 12, remind 0s)",
                "pending: 2 emails waiting to be sent, 1 of them after a failed attempt",
                "failed: 0 emails",
                "last sent: Tue 24 Nov 2026 14:57 GMT, 3 minutes ago (7 sent in all)",
                "last error: email 9 about commitment 4 (will be retried): Connection refused",
            ]
        );
    }
}
