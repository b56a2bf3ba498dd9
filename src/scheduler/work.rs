//! One pass of the planning task, run on the store's thread: plan every commitment in
//! the change queue, then turn each due step into deliveries.
//!
//! A bad row (unreadable due time, invalid address, no matching rule) is recorded in
//! `problems`, logged once, and its planned steps are held; it never stops the pass.

use jiff::Timestamp;

use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::mail::Audience;
use crate::mail::context::{StepInfo, context};
use crate::mail::message::{Outgoing, build, id_domain, reply_id, thread_root};
use crate::planner::{SkipCode, StepKind, plan, reconcile};
use crate::rule::{FireDecision, rule_for};
use crate::store::{DueStep, NewDelivery, PlannedCommitment, Store, StoreError};

/// How many changes or due steps one transaction takes.
const BATCH: usize = 1000;

/// What a pass did and what comes next.
#[derive(Debug)]
pub struct Pass {
    /// Commitments planned.
    pub planned: usize,
    /// Steps queued for delivery.
    pub queued: usize,
    /// When the next planned step fires.
    pub next_fire_at: Option<Timestamp>,
    /// The store's `data_version` after the pass.
    pub data_version: i64,
}

/// Plans all queued changes and queues all due steps as of `now`.
pub fn pass(store: &Store, config: &Config, now: Timestamp) -> Result<Pass, StoreError> {
    let planned = plan_changes(store, config, now)?;
    let queued = queue_due(store, config, now)?;
    Ok(Pass {
        planned,
        queued,
        next_fire_at: store.next_fire_at()?,
        data_version: store.data_version()?,
    })
}

/// Drains the change queue, a batch per transaction.
pub fn plan_changes(store: &Store, config: &Config, now: Timestamp) -> Result<usize, StoreError> {
    let mut planned = 0;
    loop {
        let n = store.transaction(|s| {
            let Some(batch) = s.pending_changes(BATCH)? else {
                return Ok::<_, StoreError>(0);
            };
            for changed in &batch.commitments {
                plan_one(s, config, changed, now)?;
            }
            s.finish_changes(batch.last_seq)?;
            Ok(batch.commitments.len().max(1))
        })?;
        if n == 0 {
            return Ok(planned);
        }
        planned += n;
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
    let checked = row
        .check(config.calendar.zone())
        .map_err(|problems| problems.join("; "))
        .and_then(|c| match rule_for(&config.rules, &c) {
            Some(rule) => Ok((c, rule)),
            None => Err(format!(
                "no rule matches kind '{}'; add a rule for it or one without match keys",
                c.kind.as_deref().unwrap_or("")
            )),
        });
    match checked {
        Ok((commitment, rule)) => {
            store.clear_problem(commitment.id)?;
            let fresh = plan(&commitment, rule, &config.calendar);
            let closed = (commitment.status != Status::Open).then_some(commitment.status);
            let changes = reconcile(&changed.steps, fresh, changed.since, closed);
            store.apply_step_changes(commitment.id, &changes, now)
        }
        Err(reason) => {
            if store.set_problem(changed.id, &reason, now)? {
                tracing::warn!(commitment = changed.id, problem = %reason, "commitment cannot be planned; its steps are held until the row is fixed");
            }
            for step in changed
                .steps
                .iter()
                .filter(|s| s.state == crate::planner::StepState::Planned)
            {
                store.skip_step(
                    step.id,
                    SkipCode::Replanned,
                    &format!("held: the row has problems ({reason})"),
                    now,
                )?;
            }
            Ok(())
        }
    }
}

/// Turns due steps into deliveries, a batch per transaction.
pub fn queue_due(store: &Store, config: &Config, now: Timestamp) -> Result<usize, StoreError> {
    let mut queued = 0;
    loop {
        let (seen, sent) = store.transaction(|s| {
            let due = s.due_steps(now, BATCH)?;
            let mut sent = 0;
            for step in &due {
                if fire(s, config, step, now)? {
                    sent += 1;
                }
            }
            Ok::<_, StoreError>((due.len(), sent))
        })?;
        queued += sent;
        if seen < BATCH {
            return Ok(queued);
        }
    }
}

/// Decides one due step; returns true if it put mail in the outbox.
fn fire(
    store: &Store,
    config: &Config,
    step: &DueStep,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let commitment = match step.row.check(config.calendar.zone()) {
        Ok(c) => c,
        Err(problems) => {
            let reason = format!("held: the row has problems ({})", problems.join("; "));
            store.skip_step(step.id, SkipCode::Replanned, &reason, now)?;
            return Ok(false);
        }
    };
    if commitment.status != Status::Open {
        let reason = format!("the commitment was marked {}", commitment.status);
        store.skip_step(step.id, SkipCode::Closed, &reason, now)?;
        return Ok(false);
    }
    let kind: StepKind = match step.kind.parse() {
        Ok(kind) => kind,
        Err(e) => {
            store.fail_step(step.id, &e, now)?;
            return Ok(false);
        }
    };
    let policy = config
        .rules
        .iter()
        .find(|r| r.name == step.rule)
        .map(|r| r.catch_up)
        .unwrap_or_default();
    let late = match policy.decide(step.fire_at, now, step.newer_due_exists) {
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
    match owner_delivery(store, config, &commitment, step, &info, now) {
        Ok(delivery) => {
            store.add_delivery(&delivery, now)?;
            store.queue_step(step.id, late, now)?;
            Ok(true)
        }
        Err(Compose::Store(e)) => Err(e),
        Err(Compose::Failed(reason)) => {
            tracing::error!(commitment = commitment.id, step = step.id, cause = %reason, "cannot compose the email for a step");
            store.fail_step(step.id, &reason, now)?;
            Ok(false)
        }
    }
}

enum Compose {
    Store(StoreError),
    Failed(String),
}

impl From<StoreError> for Compose {
    fn from(e: StoreError) -> Self {
        Compose::Store(e)
    }
}

fn owner_delivery(
    store: &Store,
    config: &Config,
    commitment: &Commitment,
    step: &DueStep,
    info: &StepInfo,
    now: Timestamp,
) -> Result<NewDelivery, Compose> {
    let audience = Audience::Owner;
    let ctx = context(commitment, info, &config.calendar, &config.command, now);
    let rendered = config
        .templates
        .render("owner_reminder", &ctx)
        .map_err(|e| Compose::Failed(e.to_string()))?;
    let domain = id_domain(&config.mail.from);
    let root = thread_root(commitment.id, audience, &domain);
    let (message_id, reply_to_thread) = if store.thread_started(commitment.id, audience.as_str())? {
        (
            reply_id(commitment.id, audience, step.id, &domain),
            Some(root.as_str()),
        )
    } else {
        (root.clone(), None)
    };
    let message = build(&Outgoing {
        from: &config.mail.from,
        to: &commitment.owner,
        rendered: &rendered,
        message_id: &message_id,
        reply_to_thread,
        commitment_id: commitment.id,
        date: now,
    })
    .map_err(|e| Compose::Failed(e.to_string()))?;
    Ok(NewDelivery {
        step_id: step.id,
        commitment_id: commitment.id,
        audience: audience.as_str().to_string(),
        sender: config.mail.from.email.to_string(),
        recipient: commitment.owner.email.to_string(),
        subject: rendered.subject,
        message_id,
        message,
    })
}
