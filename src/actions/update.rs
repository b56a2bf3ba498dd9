//! The owner's say over one automatic customer update (hold it, send it now), and
//! what a page shows before any action.

use jiff::Timestamp;

use super::{
    ActionError, Actor, Decided, Earlier, Outcome, Result, act, check, closed_by, given_reason,
    status_of,
};
use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::planner::{Step, StepKind, StepState};
use crate::rule::rule_for;
use crate::store::{CommitmentView, Effect, Facts, NewAction, Store, Write};

/// A customer update step as a page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStep {
    /// Its key, `customer_update#N`.
    pub key: String,
    /// When it goes.
    pub fire_at: Timestamp,
}

/// What a page needs before acting on a commitment.
#[derive(Debug, Clone)]
pub struct CommitmentState {
    /// The commitment, checked.
    pub commitment: Commitment,
    /// The name of the rule it falls under, if one matches.
    pub rule: Option<String>,
    /// The next customer update still planned, if any.
    pub next_update: Option<UpdateStep>,
    /// Until when the owner's reminders are snoozed, if a snooze was set (its end may
    /// have passed).
    pub snoozed_until: Option<Timestamp>,
    /// What closed it, if it is closed.
    pub closed: Option<Earlier>,
    /// How it ended, if it was closed with an outcome (`close`).
    pub ended: Option<Earlier>,
    /// Since when and why it waits on the customer, if it does.
    pub waiting: Option<Earlier>,
}

/// The commitment `id` as a page shows it before acting: read in one statement, and
/// its revisions only if it is closed or waits.
pub fn state(store: &dyn Store, config: &Config, id: i64) -> Result<CommitmentState> {
    let glance = store.glance(id, StepKind::CustomerUpdate)?;
    let facts = store.facts(glance.row);
    state_of(config, &*facts, glance.snoozed_until, glance.next_planned)
}

/// The commitment of `view` as the Open page shows it, from what the view read.
pub fn viewed(config: &Config, view: &CommitmentView) -> Result<CommitmentState> {
    state_of(
        config,
        view,
        view.glance.snoozed_until,
        view.glance.next_planned.clone(),
    )
}

fn state_of(
    config: &Config,
    facts: &dyn Facts,
    snoozed_until: Option<Timestamp>,
    next_planned: Option<(String, Timestamp)>,
) -> Result<CommitmentState> {
    let commitment = check(facts.commitment(), config)?;
    let rule = rule_for(&config.rules, &commitment).map(|r| r.name.clone());
    let closed = match commitment.status {
        Status::Open => None,
        status => Some(closed_by(facts, status)?),
    };
    let ended = super::close::closed_with(facts)?;
    let waiting = match commitment.waiting_since {
        Some(since) => Some(super::close::waiting(facts, since)?),
        None => None,
    };
    Ok(CommitmentState {
        ended,
        waiting,
        snoozed_until,
        next_update: next_planned.map(|(key, fire_at)| UpdateStep { key, fire_at }),
        commitment,
        rule,
        closed,
    })
}

/// Holds back the customer update whose step key is `step_key` (`customer_update#N`),
/// with the owner's reason: it is not sent, and no later automatic update follows from
/// it; the owner is still reminded at the due time.
pub fn hold(
    store: &dyn Store,
    config: &Config,
    id: i64,
    step_key: &str,
    reason: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let reason = given_reason(
        reason,
        "is empty: say why the update is held (\"I called him\")",
    )?;
    let cal = &config.calendar;
    let decision = Decision {
        action: "hold",
        words: format!(
            "held by {} on {}: {reason}",
            actor.words(),
            cal.display(now)
        ),
        reason: Some(reason.to_string()),
    };
    decide(store, id, step_key, decision, actor, now, |step| {
        format!(
            "commitment {id}: the customer update {} due {} is held; the owner is still \
             reminded at the due time",
            step.key,
            cal.display(step.fire_at)
        )
    })
}

/// Sends the customer update whose step key is `step_key` now instead of at its time
/// (not held for business hours: the owner asked for it).
pub fn send_now(
    store: &dyn Store,
    config: &Config,
    id: i64,
    step_key: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let cal = &config.calendar;
    let decision = Decision {
        action: "send_now",
        words: format!("asked to be sent now by {}", actor.words()),
        reason: None,
    };
    decide(store, id, step_key, decision, actor, now, |step| {
        format!(
            "commitment {id}: the customer update {} (due {}) goes now",
            step.key,
            cal.display(step.fire_at)
        )
    })
}

/// The owner's say over one customer update, as the revision records it.
struct Decision {
    action: &'static str,
    words: String,
    reason: Option<String>,
}

/// Records `decision` about the customer update `step_key` if the owner may still
/// decide about it; `said` tells what happens to the step.
fn decide(
    store: &dyn Store,
    id: i64,
    step_key: &str,
    decision: Decision,
    actor: &Actor,
    now: Timestamp,
    said: impl Fn(&Step) -> String,
) -> Result<Outcome> {
    act(store, id, now, |facts| {
        let step = match update_to_decide(facts, id, step_key)? {
            Ok(step) => step,
            Err(earlier) => return Ok(Decided::Already(earlier)),
        };
        Ok(Decided::Acted {
            writes: vec![Write::Action(NewAction {
                commitment_id: id,
                deed: actor.deed(decision.action),
                words: decision.words.clone(),
                reason: decision.reason.clone(),
                step_key: Some(step.key.clone()),
                effect: Effect::Plan,
            })],
            said: vec![said(&step)],
        })
    })
}

/// The customer update `step_key` of commitment `id` if the owner may still decide
/// about it, or what already decided it: the commitment's closing, an earlier hold or
/// send-now, or the step's own end (sent, skipped, failed).
fn update_to_decide(
    facts: &dyn Facts,
    id: i64,
    step_key: &str,
) -> Result<std::result::Result<Step, Earlier>> {
    let row = facts.commitment();
    let prefix = format!("{}#", StepKind::CustomerUpdate.as_str());
    let number = step_key.strip_prefix(&prefix).unwrap_or_default();
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ActionError::Field {
            field: "update",
            problem: format!("'{step_key}' is not a customer update (customer_update#N)"),
        });
    }
    if let Some(closed @ (Status::Done | Status::Cancelled)) = status_of(row) {
        return Ok(Err(closed_by(facts, closed)?));
    }
    let revisions = facts.revisions()?;
    let decided = revisions.iter().rev().find(|r| {
        r.step_key.as_deref() == Some(step_key)
            && matches!(r.action.as_deref(), Some("hold" | "send_now"))
    });
    let step = facts.steps()?.into_iter().find(|s| s.key == step_key);
    let ended = |step: Step, action: &str| Earlier {
        action: action.to_string(),
        at: Some(step.updated_at),
        who: None,
        via: Some("daemon".to_string()),
        detail: step.reason,
    };
    // An update sent says so even when the owner asked for it: that is the news. A
    // held one is skipped, and the hold says more than the skip.
    match (step, decided) {
        (Some(step), _) if matches!(step.state, StepState::Queued | StepState::Sent) => {
            Ok(Err(ended(step, "sent")))
        }
        (_, Some(revision)) => Ok(Err(Earlier::from_revision(revision))),
        (Some(step), None) if step.state == StepState::Planned => Ok(Ok(step)),
        (Some(step), None) => {
            let state = step.state.as_str();
            Ok(Err(ended(step, state)))
        }
        (None, None) => Err(ActionError::Field {
            field: "update",
            problem: format!(
                "{number}: commitment {id} has no customer update {number} planned \
                 (`followup show {id}` lists its timeline)"
            ),
        }),
    }
}
