//! One pass of the planning task, a batch at a time on the store's thread: plan every
//! commitment in the change queue, then turn each due step into deliveries.
//!
//! A bad row (unreadable due time, invalid address, no matching rule) is recorded in
//! `problems`, logged once, and its planned steps are held; it never stops the pass.
//! A step for the customer whose time comes outside business hours is held until they
//! open. A customer update moves the due time and records the revision in the same
//! transaction that queues its emails, so it happens exactly once.

use jiff::{SignedDuration, Timestamp};

use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::mail::compose::{Email, Situation, update_for, writes_to_customer};
use crate::mail::context::{Failure, StepInfo};
use crate::mail::message::{Outgoing, build, id_domain, reply_id, thread_root};
use crate::planner::{SkipCode, StepKind, StepState, StoredStep, plan, reconcile};
use crate::rule::{FireDecision, Rule, rule_for};
use crate::store::{
    DueStep, NewDelivery, NewRevision, Origin, PlannedCommitment, Store, StoreError,
};
use crate::when::format_stored;

use super::Shared;
use super::records::{Records, Taken};

/// How many changes one transaction plans.
const BATCH: usize = 250;

/// How long before their time the emails of an owner's or team's step
/// ([`StepKind::AHEAD`]) are composed and put in the outbox, due at that time: the
/// sender then only has to send them when it comes, so a burst of reminders due at one
/// instant leaves at it instead of as fast as they can be composed. A change to the
/// commitment planned before they leave takes them back
/// ([`Store::withdraw_ahead`](crate::store::Store::withdraw_ahead)).
pub const LEAD: SignedDuration = SignedDuration::from_secs(5);

/// How many due steps one transaction turns into emails: few enough that composing
/// them takes a few milliseconds, so that during a burst the sender's trips to record
/// what was sent (which free its connections) wait no longer than that.
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
    /// The store's `data_version` when the pass began.
    pub data_version: i64,
}

/// Plans one batch of the change queue in one transaction; 0 when it was empty.
fn plan_batch(store: &Store, config: &Config, now: Timestamp) -> Result<usize, StoreError> {
    store.transaction(|s| {
        let Some(batch) = s.pending_changes(BATCH)? else {
            return Ok::<_, StoreError>(0);
        };
        for changed in &batch.commitments {
            if let Err(e) = s.isolated(|s| plan_one(s, config, changed, now)) {
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
    let started = shared.started;
    let now = Timestamp::now();
    // Read before any of the work: a commit by another program while the pass runs,
    // between two of its batches, then shows as a change after it.
    let data_version = shared
        .store
        .call(move |s| {
            if replan_all {
                s.replan_open()?;
            }
            s.data_version()
        })
        .await?;
    let plan_all = || async {
        let mut planned = 0;
        loop {
            let config = config.clone();
            let n = shared
                .store
                .call(move |s| plan_batch(s, &config, now))
                .await?;
            if n == 0 {
                return Ok::<_, StoreError>(planned);
            }
            planned += n;
        }
    };
    let mut planned = plan_all().await?;
    let mut queued = 0;
    loop {
        let config = config.clone();
        let records = shared.records.clone();
        let (seen, sent) = shared
            .store
            .call(move |s| queue_batch(s, &config, now, &records))
            .await?;
        if sent > 0 {
            shared.outbox.notify_one();
        }
        queued += sent;
        if seen < QUEUE_BATCH {
            break;
        }
    }
    if queued > 0 {
        planned += plan_all().await?;
    }
    shared
        .store
        .call(move |store| {
            let jobs = super::jobs::run_due(store, &config, started, now)?;
            let next_fire_at = match (store.next_fire_at(now, lead(&config))?, jobs.next_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            Ok(Pass {
                planned,
                queued: queued + jobs.queued,
                next_fire_at,
                data_version,
            })
        })
        .await
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
) -> Result<(), StoreError> {
    let Some(row) = &changed.row else {
        return Ok(());
    };
    let steps = withdraw_ahead(store, changed)?;
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
) -> Result<std::borrow::Cow<'c, [StoredStep]>, StoreError> {
    if !changed.steps.iter().any(|s| s.state == StepState::Queued) {
        return Ok(changed.steps.as_slice().into());
    }
    // The time of this transaction, not of the pass: see `Store::withdraw_ahead`.
    let withdrawn = store.withdraw_ahead(changed.id, Timestamp::now())?;
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

/// Turns one batch of due steps into deliveries in one transaction: how many steps it
/// took, and how many of them put mail in the outbox.
///
/// A step that cannot be queued must not take the others down with it, so each step
/// can run in a savepoint of its own. Savepoints cost a statement journal of every
/// page a step touches, and steps almost never fail: the batch runs without them
/// first, and only if a step fails is it rolled back and run again with them.
fn queue_batch(
    store: &Store,
    config: &Config,
    now: Timestamp,
    records: &Records,
) -> Result<(usize, usize), StoreError> {
    // The sender's records ride along: its connections wait for them.
    let mut taken = Taken::default();
    let mut run = |isolate| {
        store.transaction(|s| {
            let queued = queue_steps(s, config, now, isolate)?;
            records.write(s, &mut taken);
            Ok(queued)
        })
    };
    let result = match run(false) {
        Err(Queueing::StepFailed) => run(true),
        result => result,
    }
    .map_err(Queueing::into_store_error);
    records.settle(taken, &result);
    result
}

/// Why a batch of steps was not queued.
enum Queueing {
    /// The store failed.
    Store(StoreError),
    /// A step failed, outside a savepoint: the batch must run again with them.
    StepFailed,
}

impl From<StoreError> for Queueing {
    fn from(e: StoreError) -> Self {
        Queueing::Store(e)
    }
}

impl Queueing {
    fn into_store_error(self) -> StoreError {
        match self {
            Queueing::Store(e) => e,
            Queueing::StepFailed => unreachable!("steps in savepoints record their failures"),
        }
    }
}

fn queue_steps(
    s: &Store,
    config: &Config,
    now: Timestamp,
    isolate: bool,
) -> Result<(usize, usize), Queueing> {
    let due = s.due_steps(now, now + lead(config), QUEUE_BATCH)?;
    let mut sent = 0;
    for step in &due {
        let fired = if isolate {
            s.isolated(|s| fire(s, config, step, now))
        } else {
            fire(s, config, step, now)
        };
        match fired {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(_) if !isolate => return Err(Queueing::StepFailed),
            Err(e) => {
                tracing::error!(step = step.id, cause = %e, "cannot queue a step");
                s.fail_step(step.id, &format!("cannot be queued: {e}"), now)?;
            }
        }
    }
    Ok((due.len(), sent))
}

/// Decides one due step; returns true if it put mail in the outbox (or, in a dry run,
/// recorded the mail it would have sent).
///
/// A step composed ahead is decided and written as of its own time, when its emails
/// will leave; what is recorded about the decision carries `now`.
fn fire(
    store: &Store,
    config: &Config,
    step: &DueStep,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let at = now.max(step.fire_at);
    let (commitment, matched) = match checked(config, &step.row) {
        Ok(found) => found,
        Err(reason) => {
            let held = format!("held: the row has problems ({reason})");
            store.skip_step(step.id, SkipCode::Replanned, &held, now)?;
            return Ok(false);
        }
    };
    let kind: StepKind = match step.kind.parse() {
        Ok(kind) => kind,
        Err(e) => {
            store.fail_step(step.id, &e, now)?;
            return Ok(false);
        }
    };
    if kind.needs_open() && commitment.status != Status::Open {
        let reason = format!("the commitment was marked {}", commitment.status);
        store.skip_step(step.id, SkipCode::Closed, &reason, now)?;
        return Ok(false);
    }
    let rule = config
        .rules
        .iter()
        .find(|r| r.name == step.rule)
        .unwrap_or(matched);
    if writes_to_customer(kind, rule) {
        let zone = commitment
            .timezone
            .as_ref()
            .unwrap_or(config.calendar.zone());
        let opens = config.calendar.next_open_in(at, zone);
        if opens > at {
            store.hold_step(step.id, opens, now)?;
            return Ok(false);
        }
    }
    let late = match rule.catch_up.decide(
        step.fire_at,
        at,
        config.daemon.late_after,
        step.newer_due_exists,
    ) {
        FireDecision::Skip(reason) => {
            store.skip_step(step.id, SkipCode::CatchUp, &reason, now)?;
            return Ok(false);
        }
        FireDecision::Send { late } => late,
    };
    let info = StepInfo {
        kind,
        label: step.label.clone(),
        rule: step.rule.clone(),
        planned_at: step.planned_at,
        late,
    };
    let revisions = store.revisions_of(commitment.id)?;
    let update = match update_for(
        kind,
        &step.key,
        &commitment,
        rule,
        &config.calendar,
        &revisions,
        at,
    ) {
        Ok(update) => update,
        Err(reason) => return fail(store, &commitment, step, &reason, now),
    };
    let failure = match failure_for(store, kind, &step.key)? {
        Ok(failure) => failure,
        Err(reason) => return fail(store, &commitment, step, &reason, now),
    };
    let situation = Situation {
        commitment: &commitment,
        rule,
        step: &info,
        calendar: &config.calendar,
        templates: &config.templates,
        command: &config.command,
        update: update.as_ref(),
        failure: failure.as_ref(),
        now: at,
    };
    let emails = match situation.emails() {
        Ok(emails) => emails,
        Err(e) => return fail(store, &commitment, step, &e.to_string(), now),
    };
    let deliveries = match deliveries(store, config, &commitment, step, &emails, at) {
        Ok(deliveries) => deliveries,
        Err(Failed::Store(e)) => return Err(e),
        Err(Failed::Step(reason)) => return fail(store, &commitment, step, &reason, now),
    };
    if config.mail.dry_run {
        for delivery in &deliveries {
            store.add_skipped_delivery(
                delivery,
                "dry run: rendered and recorded, not sent",
                now,
            )?;
        }
        store.skip_step(
            step.id,
            SkipCode::DryRun,
            "dry run: rendered and recorded, not sent",
            now,
        )?;
        return Ok(true);
    }
    if kind == StepKind::CustomerUpdate
        && let (Some(update), Some(rule_update)) = (&update, &rule.customer_update)
    {
        let zone = commitment
            .timezone
            .as_ref()
            .unwrap_or(config.calendar.zone());
        store.revise_due(
            &NewRevision {
                commitment_id: commitment.id,
                old_due: step.row.due_at.clone().unwrap_or_default(),
                new_due: format_stored(update.new_due, zone),
                reason: None,
                source: format!(
                    "automatic update {} of {} (rule \"{}\")",
                    update.number, rule_update.max, rule.name
                ),
                automatic: true,
                notify: false,
            },
            now,
        )?;
    }
    for delivery in &deliveries {
        store.add_delivery(delivery, now, at)?;
    }
    store.queue_step(step.id, late, now)?;
    Ok(true)
}

enum Failed {
    Store(StoreError),
    Step(String),
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Failed::Store(e)
    }
}

fn fail(
    store: &Store,
    commitment: &Commitment,
    step: &DueStep,
    reason: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    tracing::error!(commitment = commitment.id, step = step.id, cause = %reason, "cannot compose the email for a step");
    store.fail_step(step.id, reason, now)?;
    Ok(false)
}

/// For failure notices, the email that failed.
fn failure_for(
    store: &Store,
    kind: StepKind,
    key: &str,
) -> Result<Result<Option<Failure>, String>, StoreError> {
    if kind != StepKind::DeliveryFailed {
        return Ok(Ok(None));
    }
    let Some(id) = key
        .strip_prefix("delivery_failed#")
        .and_then(|id| id.parse().ok())
    else {
        return Ok(Err(format!("'{key}' names no delivery")));
    };
    Ok(match store.delivery(id)? {
        None => Err(format!("delivery {id} is not recorded")),
        Some(d) => Ok(Some(Failure {
            recipient: d.recipient,
            audience: d.audience,
            subject: d.subject,
            error: d.last_error.unwrap_or_default(),
            attempts: d.attempts,
        })),
    })
}

/// The outbox entries for a step's emails: Message-IDs that thread per audience, and
/// the messages built.
fn deliveries(
    store: &Store,
    config: &Config,
    commitment: &Commitment,
    step: &DueStep,
    emails: &[Email],
    now: Timestamp,
) -> Result<Vec<NewDelivery>, Failed> {
    let domain = id_domain(&config.mail.from);
    let mut out = Vec::with_capacity(emails.len());
    for (index, email) in emails.iter().enumerate() {
        let root = thread_root(commitment.id, email.audience, &domain);
        let started = store.thread_started(commitment.id, email.audience.as_str())?
            || out
                .iter()
                .any(|d: &NewDelivery| d.audience == email.audience.as_str());
        let (message_id, reply_to_thread) = if started {
            (
                reply_id(commitment.id, email.audience, step.id, index, &domain),
                Some(root.as_str()),
            )
        } else {
            (root.clone(), None)
        };
        let message = build(&Outgoing {
            from: &config.mail.from,
            to: &email.to,
            rendered: &email.rendered,
            message_id: &message_id,
            reply_to_thread,
            commitment_id: Some(commitment.id),
            date: now,
        })
        .map_err(|e| Failed::Step(e.to_string()))?;
        out.push(NewDelivery {
            origin: Origin::Step {
                step_id: step.id,
                commitment_id: commitment.id,
            },
            audience: email.audience.as_str().to_string(),
            sender: config.mail.from.email.to_string(),
            recipient: email.to.email.to_string(),
            subject: email.rendered.subject.clone(),
            message_id,
            message,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
