//! `status`: what the store holds, for an admin checking on the service: open and
//! quarantined commitments, planned steps and the next one, emails waiting, retried,
//! failed and last sent. It reads the store only, so it works whether the daemon runs
//! or not.

use clap::Args;
use jiff::{SignedDuration, Timestamp};
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
    daemon: Daemon,
    /// `[mail] dry_run`: nothing is sent, whatever the figures below say.
    dry_run: bool,
    #[serde(flatten)]
    summary: &'a Summary,
    /// Owners' own emails that failed for good lately, oldest first.
    owner_mail_failed: &'a [OwnerFailure],
}

/// How far back `status` looks for owners' own emails that failed for good.
const OWNER_FAILURES_FOR: SignedDuration = SignedDuration::from_hours(7 * 24);

/// An owner's own email that failed for good: nobody is told of it by email, so
/// `status` shows it (and the owner's next digest lists it).
#[derive(Debug, Serialize)]
struct OwnerFailure {
    commitment_id: i64,
    owner: String,
    subject: String,
    failed_at: Timestamp,
    error: String,
}

/// Whether a daemon serves the store: from the lock it holds (SQLite), or from the
/// claims that hold (PostgreSQL, where several may).
#[derive(Serialize)]
struct Daemon {
    running: bool,
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    daemons: Option<Vec<String>>,
}

/// Prints the summary of the configured store.
pub fn status(config: &Config, args: StatusArgs) -> anyhow::Result<()> {
    let opened = open(config)?;
    let summary = opened.summary()?;
    let serving = opened.daemons_serving()?;
    let holder = match serving {
        Some(_) => None,
        None => crate::store::running_daemon(&config.store.path)?,
    };
    let running = match &serving {
        Some(names) if names.is_empty() => None,
        Some(names) => Some(format!("yes, {}", names.join(", "))),
        None => holder.as_ref().map(|holder| format!("yes, {holder}")),
    };
    let daemon = Daemon {
        running: running.is_some(),
        pid: holder.and_then(|h| h.pid),
        daemons: serving,
    };
    let now = super::now();
    let failed: Vec<OwnerFailure> = opened
        .owner_mail_failed_since(now - OWNER_FAILURES_FOR)?
        .into_iter()
        .map(|(row, failed_at, subject, error)| OwnerFailure {
            commitment_id: row.id,
            owner: row.owner.unwrap_or_default(),
            subject,
            failed_at,
            error,
        })
        .collect();
    let store = config.store.describe();
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&Shown {
                store,
                daemon,
                dry_run: config.mail.dry_run,
                summary: &summary,
                owner_mail_failed: &failed,
            })?
        ),
        Format::Table => {
            println!("{:<13}{store}", "store:");
            let running = running.unwrap_or_else(|| {
                "no: nothing will be sent until `followup run` starts".to_string()
            });
            println!("{:<13}{running}", "running:");
            if config.mail.dry_run {
                println!(
                    "{:<13}[mail] dry_run = true: emails are rendered and recorded, not sent",
                    "DRY RUN:"
                );
            }
            let mut all = lines(&summary, &config.calendar, now);
            all.extend(owner_failures(&failed, &config.calendar));
            for (label, text) in all {
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
    if s.customer_mail_maybe_twice > 0 {
        out.push((
            "maybe twice",
            format!(
                "{} to customers, taken over from a daemon that stopped while sending",
                count(s.customer_mail_maybe_twice, "email")
            ),
        ));
    }
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

/// The line for owners' own failed emails, if there are any.
fn owner_failures(failed: &[OwnerFailure], calendar: &Calendar) -> Option<(&'static str, String)> {
    let latest = failed.last()?;
    Some((
        "not told",
        format!(
            "{} to their owners failed for good in the last 7 days; their next digest lists them. Latest: commitment {}, to {} at {}, \"{}\": {}",
            count(failed.len() as u64, "email"),
            latest.commitment_id,
            latest.owner,
            calendar.display(latest.failed_at),
            latest.subject,
            latest.error
        ),
    ))
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
            customer_mail_maybe_twice: 0,
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

    #[test]
    fn an_owners_own_failed_email_is_named_with_its_commitment_and_owner() {
        let calendar = Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap());
        assert_eq!(owner_failures(&[], &calendar), None);
        let failed = [OwnerFailure {
            commitment_id: 5,
            owner: "Ana Ruiz <ana@example.com>".into(),
            subject: "Due now: the quote".into(),
            failed_at: "2026-11-24T14:57:00Z".parse().unwrap(),
            error: "500 Line too long".into(),
        }];
        let (label, text) = owner_failures(&failed, &calendar).unwrap();
        assert_eq!(label, "not told");
        assert_eq!(
            text,
            "1 email to their owners failed for good in the last 7 days; their next digest lists them. \
             Latest: commitment 5, to Ana Ruiz <ana@example.com> at Tue 24 Nov 2026 14:57 GMT, \
             \"Due now: the quote\": 500 Line too long"
        );
    }
}
