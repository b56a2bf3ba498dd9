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
use crate::planner::{SkipCode, StepChange, StepState, plan, reconcile};
use crate::rule::{Rule, rule_for};
use crate::store::{
    Claim, Decisions, DueAsk, DueBatch, DueStep, Planned, PlannedCommitment, Queued, Store,
    StoreError, WriteMark,
};

use super::Shared;

/// How many changes one transaction plans.
const BATCH: usize = 250;

/// How long before their time the emails of an owner's or team's step
/// ([`StepKind::AHEAD`](crate::planner::StepKind::AHEAD)) are composed and put in the
/// outbox, due at that time: the sender then only has to send them when it comes, so a
/// burst of reminders due at one instant leaves at it instead of as fast as they can be
/// composed. A change to the commitment planned before they leave takes them back
/// ([`Store::withdraw_ahead`](crate::store::SqliteStore::withdraw_ahead)).
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
    /// What other programs had written when the pass began.
    pub mark: WriteMark,
}

/// Plans one batch of the change queue in one transaction; 0 when it was empty.
fn plan_batch(
    store: &dyn Store,
    config: &Config,
    now: Timestamp,
    clock: &Clock,
) -> Result<usize, StoreError> {
    store.plan_changes(BATCH, now, clock, &|changed| plan_one(config, changed))
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
    let mark = shared
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
    let mut decided: Option<Decisions> = None;
    let mut composing: Option<DueBatch> = None;
    loop {
        let after = composing.as_ref().and_then(DueBatch::last);
        let busy = composing
            .as_ref()
            .map(DueBatch::commitments)
            .unwrap_or_default();
        let (cfg, ahead_links, claim) = (config.clone(), links.clone(), shared.claim.clone());
        let trip = shared.store.call(move |s| {
            let composing = fire::Composing {
                config: &cfg,
                links: ahead_links.as_deref(),
            };
            queue_batch(s, &claim, &composing, now, decided.as_ref(), after, &busy)
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
    let (clock, claim) = (shared.clock.clone(), shared.claim.clone());
    let (pass, mail_due) = shared
        .store
        .call(move |store| {
            let jobs =
                super::jobs::run_due(store, &claim, &config, links.as_deref(), started, now)?;
            let next_fire_at = match (store.next_fire_at(now, lead(&config))?, jobs.next_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let pass = Pass {
                planned,
                queued: queued + jobs.queued,
                next_fire_at,
                mark,
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

/// What planning a changed commitment (still stored) writes: the fresh plan reconciled
/// with its stored steps, or, if its row cannot be planned, the problem and its planned
/// steps held.
fn plan_one(config: &Config, changed: &PlannedCommitment) -> Planned {
    let Some(row) = &changed.row else {
        return Planned::default();
    };
    match checked(config, row) {
        Ok((commitment, rule)) => {
            let fresh = plan(&commitment, rule, &config.calendar, &changed.history);
            let closed = (commitment.status != Status::Open).then_some(commitment.status);
            Planned {
                problem: None,
                changes: reconcile(&changed.steps, fresh, changed.since, closed),
            }
        }
        Err(reason) => {
            let held = format!("held: the row has problems ({reason})");
            let changes = changed
                .steps
                .iter()
                .filter(|s| s.state == StepState::Planned)
                .map(|step| StepChange::Retire {
                    id: step.id,
                    code: SkipCode::Replanned,
                    reason: held.clone(),
                })
                .collect();
            Planned {
                problem: Some(reason),
                changes,
            }
        }
    }
}

/// One trip to the store, one transaction: writes `decided` (a batch decided off the
/// store's thread) and reads the next batch of due steps after `after`, ending it
/// before a step of a commitment in `busy` (see [`DueAsk`]). If another program
/// committed since `decided` was read, the store decides the steps due now again
/// with [`fire::decide_all`], inside the transaction.
fn queue_batch(
    store: &dyn Store,
    claim: &Claim,
    composing: &fire::Composing<'_>,
    now: Timestamp,
    decided: Option<&Decisions>,
    after: Option<(Timestamp, i64)>,
    busy: &HashSet<i64>,
) -> Result<Queued, StoreError> {
    let config = composing.config;
    let wants = |step: &DueStep| fire::wants(&config.templates, step);
    let ask = DueAsk {
        now,
        ahead: now + lead(config),
        after,
        busy,
        limit: QUEUE_BATCH,
        wants: &wants,
    };
    match decided {
        None => Ok(Queued {
            sent: 0,
            next: store.take_due_steps(claim, &ask)?,
            stale: false,
        }),
        Some(decided) => store.queue_decided(claim, decided, &ask, &|batch| {
            fire::decide_all(composing, batch, now)
        }),
    }
}

mod fire;
#[cfg(test)]
mod tests;
