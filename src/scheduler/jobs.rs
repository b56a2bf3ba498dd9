//! Running calendar jobs inside the planning pass, on the store's thread.
//!
//! For each schedule the pass works out the next occurrence after its last run (or after
//! the daemon started: occurrences missed while it was down are made up only with
//! `catch_up = true`, and then once, for the latest). An occurrence whose time has come
//! runs in one transaction that records the run under its occurrence and puts its emails
//! in the outbox, so it runs once, also across restarts and crashes.

use jiff::{SignedDuration, Timestamp};

use crate::commitment::Status;
use crate::config::Config;
use crate::jobs::digest;
use crate::jobs::report::{self, Fact};
use crate::jobs::{Job, Schedule};
use crate::mail::message::{MessageIds, Outgoing, build};
use crate::mail::templates::Rendered;
use crate::store::{
    Claim, JobOutput, JobReads, JobRun, NewDelivery, Occurrence, Origin, ReportRow, StatusFilter,
    Store, StoreError,
};
use crate::web::link::Links;
use crate::when::parse_stored;

/// What running the due jobs did, and when the next one is.
#[derive(Debug, Default)]
pub struct JobsPass {
    /// Emails put in the outbox.
    pub queued: usize,
    /// The earliest next occurrence of any schedule.
    pub next_at: Option<Timestamp>,
}

/// How many past occurrences are walked to find the latest missed one.
const MAX_WALK: usize = 1_000_000;

/// Runs every schedule whose time has come, and says when the next one is.
pub fn run_due(
    store: &dyn Store,
    claim: &Claim,
    config: &Config,
    links: Option<&Links>,
    started: Timestamp,
    now: Timestamp,
) -> Result<JobsPass, StoreError> {
    let mut pass = JobsPass::default();
    for schedule in &config.schedules {
        let last = store.last_run(&schedule.name)?;
        let base = match last {
            Some(last) if schedule.catch_up => last,
            Some(last) => last.max(started),
            None => started,
        };
        let Some(mut due) = schedule.next_after(base) else {
            continue;
        };
        if due <= now {
            for _ in 0..MAX_WALK {
                match schedule.next_after(due) {
                    Some(next) if next <= now => due = next,
                    _ => break,
                }
            }
            if due < now - config.daemon.late_after {
                tracing::info!(schedule = %schedule.name, missed = %due, "making up a run missed while the daemon was down");
            }
            let occurrence = Occurrence {
                schedule: &schedule.name,
                job: schedule.job.as_str(),
                at: due,
                prune_before: (schedule.job == Job::Prune).then(|| now - config.store.keep),
            };
            pass.queued += store.run_occurrence(claim, &occurrence, now, &|reads, run| {
                compose(reads, run, config, links, schedule, now)
            })?;
        }
        let next = if due <= now {
            schedule.next_after(now)
        } else {
            Some(due)
        };
        pass.next_at = match (pass.next_at, next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(pass)
}

/// The emails of one run of `schedule` and what it did.
fn compose(
    reads: JobReads<'_>,
    run: &JobRun,
    config: &Config,
    links: Option<&Links>,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<JobOutput, StoreError> {
    let (emails, summary) = match schedule.job {
        Job::Digest => {
            let since = run.previous.unwrap_or(now - SignedDuration::from_hours(24));
            let emails = digests(reads, config, links, since, now)?;
            let summary = format!("{} digests", emails.len());
            (emails, summary)
        }
        Job::Report => {
            let emails = report_emails(reads, config, now)?;
            let summary = format!("report to {} recipients", emails.len());
            (emails, summary)
        }
        Job::Prune => (
            Vec::new(),
            format!("pruned {} records of sent emails", run.pruned),
        ),
    };
    let ids = MessageIds::new(reads.store_id(), &config.mail.from);
    let mut deliveries = Vec::with_capacity(emails.len());
    for (index, (audience, to, rendered)) in emails.into_iter().enumerate() {
        let message_id = ids.job(schedule.job.as_str(), run.id, index);
        let message = match build(&Outgoing {
            from: &config.mail.from,
            to: &to,
            reply_to: None,
            rendered: &rendered,
            message_id: &message_id,
            reply_to_thread: None,
            commitment_id: None,
            date: now,
        }) {
            Ok(message) => message,
            Err(e) => {
                tracing::error!(schedule = %schedule.name, cause = %e, "cannot build a job's email");
                continue;
            }
        };
        deliveries.push(NewDelivery {
            origin: Origin::Job { run_id: run.id },
            audience: audience.to_string(),
            sender: config.mail.from.email.to_string(),
            recipient: to.email.to_string(),
            subject: rendered.subject.clone(),
            message_id,
            message,
        });
    }
    tracing::info!(schedule = %schedule.name, job = %schedule.job, "{summary}");
    Ok(JobOutput {
        deliveries,
        not_sent: config
            .mail
            .dry_run
            .then_some("dry run: rendered and recorded, not sent"),
        summary,
    })
}

type Email = (&'static str, lettre::message::Mailbox, Rendered);

fn digests(
    store: JobReads<'_>,
    config: &Config,
    links: Option<&Links>,
    since: Timestamp,
    now: Timestamp,
) -> Result<Vec<Email>, StoreError> {
    let zone = config.calendar.zone();
    let open: Vec<_> = store
        .commitments(StatusFilter::Only(Status::Open))?
        .into_iter()
        .filter_map(|row| row.check(zone).ok())
        .collect();
    let updates: Vec<_> = store
        .customer_updates_since(since)?
        .into_iter()
        .filter_map(|(row, sent, subject)| row.check(zone).ok().map(|c| (c, sent, subject)))
        .collect();
    let failed: Vec<_> = store
        .owner_mail_failed_since(since)?
        .into_iter()
        .filter_map(|(row, at, subject, error)| {
            row.check(zone).ok().map(|c| (c, at, subject, error))
        })
        .collect();
    let mut emails = Vec::new();
    let digests = digest::build(
        &open,
        &updates,
        &failed,
        &config.calendar,
        &config.command,
        now,
    );
    for digest in digests {
        let ctx = digest.context(&config.calendar, &config.command, links, now);
        match config.templates.render("digest", &ctx) {
            Ok(rendered) => emails.push(("digest", digest.owner.clone(), rendered)),
            Err(e) => {
                tracing::error!(owner = %digest.owner.email, cause = %e, "cannot render a digest")
            }
        }
    }
    Ok(emails)
}

/// The report's facts from the store's rows; rows that do not check are left out.
pub fn facts(rows: Vec<ReportRow>, zone: &jiff::tz::TimeZone) -> Vec<Fact> {
    rows.into_iter()
        .filter_map(|r| fact(r, zone).ok())
        .collect()
}

/// One row's fact, or the problems of a row that does not check.
pub fn fact(r: ReportRow, zone: &jiff::tz::TimeZone) -> Result<Fact, Vec<String>> {
    let commitment = r.row.check(zone)?;
    let row_zone = commitment.zone(zone).clone();
    let first_due = r
        .first_old_due
        .as_deref()
        .and_then(|text| parse_stored(text, &row_zone).ok())
        .unwrap_or(commitment.due_at);
    Ok(Fact {
        commitment,
        first_due,
        updates_sent: r.updates_sent,
    })
}

#[derive(serde::Serialize)]
struct ReportContext {
    report: ReportView,
    date: String,
}

#[derive(serde::Serialize)]
struct ReportView {
    table: String,
    from: String,
    to: String,
    by: String,
}

fn report_emails(
    store: JobReads<'_>,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<Email>, StoreError> {
    let settings = &config.report;
    let from = now - settings.since;
    let rows = report::compute(
        &facts(store.report_rows()?, config.calendar.zone()),
        from,
        now,
        settings.by,
    );
    let ctx = ReportContext {
        report: ReportView {
            table: report::email_table(&rows, settings.by),
            from: config.calendar.display(from),
            to: config.calendar.display(now),
            by: format!("{:?}", settings.by).to_lowercase(),
        },
        date: config.calendar.display(now),
    };
    let rendered = match config.templates.render("report", &ctx) {
        Ok(rendered) => rendered,
        Err(e) => {
            tracing::error!(cause = %e, "cannot render the report");
            return Ok(Vec::new());
        }
    };
    Ok(settings
        .to
        .iter()
        .map(|to| ("report", to.clone(), rendered.clone()))
        .collect())
}
