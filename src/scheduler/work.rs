//! One pass of the planning task, a batch at a time: plan every commitment in the change
//! queue, then turn each due step into deliveries, composed off the store's thread
//! (`fire`).
//!
//! A bad row (unreadable due time, invalid address, no matching rule) is recorded in
//! `problems`, logged once, and its planned steps are held; it never stops the pass.
//! A step for the customer whose time comes outside business hours is held until they
//! open. A customer update moves the due time and records the revision in the same
//! transaction that queues its emails, so it happens exactly once.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use crate::clock::Clock;
use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::planner::{SkipCode, Step, StepState, plan, reconcile};
use crate::rule::{Rule, rule_for};
use crate::store::{PlannedCommitment, Store, StoreError, WriteMark};

use super::Shared;
use fire::Queueing;

/// How many changes one transaction plans.
const BATCH: usize = 250;

/// How long before their time the emails of an owner's or team's step
/// ([`StepKind::AHEAD`](crate::planner::StepKind::AHEAD)) are composed and put in the
/// outbox, due at that time: the sender then only has to send them when it comes, so a
/// burst of reminders due at one instant leaves at it instead of as fast as they can be
/// composed. A change to the commitment planned before they leave takes them back
/// ([`Store::withdraw_ahead`](crate::store::Store::withdraw_ahead)).
pub const LEAD: SignedDuration = SignedDuration::from_secs(5);

/// How many due steps one transaction reads to be composed, and the next writes: few
/// enough that a trip to the store takes about a millisecond, so that during a burst
/// the sender's trips to record what was sent (which free its connections) wait no
/// longer than that.
const QUEUE_BATCH: usize = 32;

/// What a pass did and what comes next.
#[derive(Debug)]
pub struct Pass {
    /// Commitments planned.
    pub planned: usize,
    /// Steps queued for delivery.
    pub queued: usize,
    /// When the next planned step fires or the next calendar job runs.
    pub next_fire_at: Option<Timestamp>,
    /// Where others' writes to the store stood when the pass began.
    pub others: WriteMark,
}

/// Plans one batch of the change queue in one transaction; 0 when it was empty.
fn plan_batch(
    store: &Store,
    config: &Config,
    now: Timestamp,
    clock: &Clock,
) -> Result<usize, StoreError> {
    store.transaction(|s| {
        let Some(batch) = s.pending_changes(BATCH)? else {
            return Ok::<_, StoreError>(0);
        };
        for changed in &batch.commitments {
            if let Err(e) = s.isolated(|s| plan_one(s, config, changed, now, clock)) {
                tracing::error!(commitment = changed.id, cause = %e, "cannot plan a commitment");
                s.set_problem(changed.id, &format!("cannot be planned: {e}"), now)?;
            }
        }
        s.finish_changes(batch.last_seq)?;
        Ok(batch.commitments.len().max(1))
    })
}

/// Plans all queued changes and queues all due steps as of now, then runs the calendar
/// jobs whose time has come (`shared.started` bounds the runs they make up). Steps that
/// move due times queue changes of their own, which the pass plans before it ends.
///
/// Each batch is its own trip to the store: between batches the store is free for the
/// sender, and the outbox bell rings as soon as a batch of deliveries is committed, so
/// the first emails leave while later steps are still being composed.
pub async fn pass_in_batches(shared: &Shared, replan_all: bool) -> Result<Pass, StoreError> {
    let config = shared.config();
    let links = shared.links();
    let started = shared.started;
    let now = shared.now();
    // Read before any of the work: a commit by another program while the pass runs,
    // between two of its batches, then shows as a change after it.
    let others = shared
        .store
        .call(move |s| {
            if replan_all {
                s.replan_open(now)?;
            }
            s.write_mark()
        })
        .await?;
    let plan_all = || async {
        let mut planned = 0;
        loop {
            let (config, clock) = (config.clone(), shared.clock.clone());
            let n = shared
                .store
                .call(move |s| plan_batch(s, &config, now, &clock))
                .await?;
            if n == 0 {
                return Ok::<_, StoreError>(planned);
            }
            planned += n;
        }
    };
    let mut planned = plan_all().await?;
    // Composing runs on a thread of its own. Each trip to the store writes one batch
    // and reads the one after the batch being composed meanwhile.
    let mut queued = 0;
    let mut decided: Option<fire::Decided> = None;
    let mut composing: Option<fire::Batch> = None;
    loop {
        let after = composing.as_ref().and_then(fire::Batch::last);
        let busy = composing
            .as_ref()
            .map(fire::Batch::commitments)
            .unwrap_or_default();
        let cfg = config.clone();
        let ahead_links = links.clone();
        let trip = shared.store.call(move |s| {
            let links = ahead_links.as_deref();
            let composing = fire::Composing {
                config: &cfg,
                links,
            };
            queue_batch(s, &composing, now, decided.as_ref(), after, &busy)
        });
        let (cfg, links) = (config.clone(), links.clone());
        let compose = async move {
            let batch = composing?;
            let composed = tokio::task::spawn_blocking(move || {
                let composing = fire::Composing {
                    config: &cfg,
                    links: links.as_deref(),
                };
                fire::decide_all(&composing, batch, now)
            })
            .await;
            Some(composed.expect("composing does not panic"))
        };
        let (trip, composed) = tokio::join!(trip, compose);
        let trip = trip?;
        if trip.sent > 0 {
            shared.outbox.notify_one();
        }
        queued += trip.sent;
        decided = if trip.stale { None } else { composed };
        composing = trip.next;
        if decided.is_none() && composing.is_none() {
            break;
        }
    }
    if queued > 0 {
        planned += plan_all().await?;
    }
    let clock = shared.clock.clone();
    let (pass, mail_due) = shared
        .store
        .call(move |store| {
            let jobs = super::jobs::run_due(store, &config, links.as_deref(), started, now)?;
            let next_fire_at = match (store.next_fire_at(now, lead(&config))?, jobs.next_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let pass = Pass {
                planned,
                queued: queued + jobs.queued,
                next_fire_at,
                others,
            };
            Ok::<_, StoreError>((pass, store.mail_due(clock.now())?))
        })
        .await?;
    // Mail may have fallen due by another program's hand (`followup retry` makes held
    // mail due): the sender hears of writes only through this bell.
    if mail_due {
        shared.outbox.notify_one();
    }
    Ok(pass)
}

/// The rule for a checked commitment, or the reason there is none.
fn checked<'c>(
    config: &'c Config,
    row: &crate::commitment::StoredCommitment,
) -> Result<(Commitment, &'c Rule), String> {
    let commitment = row
        .check(config.calendar.zone())
        .map_err(|problems| problems.join("; "))?;
    match rule_for(&config.rules, &commitment) {
        Some(rule) => Ok((commitment, rule)),
        None => Err(format!(
            "no rule matches kind '{}'; add a rule for it or one without match keys",
            commitment.kind.as_deref().unwrap_or("")
        )),
    }
}

/// How long before their time steps are composed: [`LEAD`], or none in a dry run, which
/// records its emails as not sent at once and has nothing to take back.
fn lead(config: &Config) -> SignedDuration {
    if config.mail.dry_run {
        SignedDuration::ZERO
    } else {
        LEAD
    }
}

fn plan_one(
    store: &Store,
    config: &Config,
    changed: &PlannedCommitment,
    now: Timestamp,
    clock: &Clock,
) -> Result<(), StoreError> {
    let Some(row) = &changed.row else {
        return Ok(());
    };
    let steps = withdraw_ahead(store, changed, clock)?;
    match checked(config, row) {
        Ok((commitment, rule)) => {
            store.clear_problem(commitment.id)?;
            let fresh = plan(&commitment, rule, &config.calendar, &changed.history);
            let closed = (commitment.status != Status::Open).then_some(commitment.status);
            let changes = reconcile(&steps, fresh, changed.since, closed);
            store.apply_step_changes(commitment.id, &changes, now)
        }
        Err(reason) => {
            if store.set_problem(changed.id, &reason, now)? {
                tracing::warn!(commitment = changed.id, problem = %reason, "commitment cannot be planned; its steps are held until the row is fixed");
            }
            for step in steps.iter().filter(|s| s.state == StepState::Planned) {
                let held = format!("held: the row has problems ({reason})");
                store.skip_step(step.id, SkipCode::Replanned, &held, now)?;
            }
            Ok(())
        }
    }
}

/// The commitment's steps, after taking back the emails composed ahead of their time
/// that have not left yet: those steps are planned again, so the fresh plan decides
/// whether they still go, and when. Only commitments with a queued step are looked at.
fn withdraw_ahead<'c>(
    store: &Store,
    changed: &'c PlannedCommitment,
    clock: &Clock,
) -> Result<std::borrow::Cow<'c, [Step]>, StoreError> {
    if !changed.steps.iter().any(|s| s.state == StepState::Queued) {
        return Ok(changed.steps.as_slice().into());
    }
    // The time of this transaction, not of the pass: see `Store::withdraw_ahead`.
    let withdrawn = store.withdraw_ahead(changed.id, clock.now())?;
    if withdrawn.is_empty() {
        return Ok(changed.steps.as_slice().into());
    }
    tracing::debug!(commitment = changed.id, steps = ?withdrawn, "emails composed ahead taken back");
    let mut steps = changed.steps.clone();
    for step in steps.iter_mut().filter(|s| withdrawn.contains(&s.id)) {
        step.state = StepState::Planned;
    }
    Ok(steps.into())
}

/// What one trip of the planning task to the store did.
struct Trip {
    /// How many steps put mail in the outbox.
    sent: usize,
    /// The next batch of due steps, to be decided.
    next: Option<fire::Batch>,
    /// Another program committed since the batches in flight were read: the one
    /// decided was decided again here, and the one being decided must be dropped.
    stale: bool,
}

/// One trip to the store, one transaction: writes `decided` (a batch decided off the
/// store's thread) and reads the next batch of due
/// steps after `after`, ending it before a step of a commitment in `busy` (see
/// [`fire::read`]).
///
/// If another program committed since `decided` was read, its decisions may rest on
/// rows that changed: the steps due now are then read and decided again here, inside
/// the transaction, and the next batch is read from the first due step.
fn queue_batch(
    store: &Store,
    composing: &fire::Composing<'_>,
    now: Timestamp,
    decided: Option<&fire::Decided>,
    after: Option<(Timestamp, i64)>,
    busy: &HashSet<i64>,
) -> Result<Trip, StoreError> {
    let config = composing.config;
    let ahead = now + lead(config);
    let run = |isolate| {
        store.transaction(|s| {
            let from_first = HashSet::new();
            let read = |after, busy| {
                fire::read(s, &config.templates, now, ahead, after, busy, QUEUE_BATCH)
            };
            let (sent, stale) = match decided {
                None => (0, false),
                Some(decided) if decided.others == s.write_mark()? => {
                    (fire::apply_all(s, config, decided, now, isolate)?, false)
                }
                Some(_) => {
                    tracing::debug!(
                        "the store changed while steps were composed; composing them again"
                    );
                    let sent = match read(None, &from_first)? {
                        Some(batch) => {
                            let decided = fire::decide_all(composing, batch, now);
                            fire::apply_all(s, config, &decided, now, isolate)?
                        }
                        None => 0,
                    };
                    (sent, true)
                }
            };
            let next = if stale {
                read(None, &from_first)?
            } else {
                read(after, busy)?
            };
            Ok(Trip { sent, next, stale })
        })
    };
    match run(false) {
        Err(Queueing::StepFailed) => run(true),
        result => result,
    }
    .map_err(Queueing::into_store_error)
}

mod fire;
#[cfg(test)]
mod tests;
