//! Deciding due steps and composing their emails, off the store's thread: the store
//! reads a batch of due steps with what deciding them needs
//! ([`Store::take_due_steps`](crate::store::DueSteps::take_due_steps)), [`decide_all`]
//! (pure) decides each one and composes its emails, and the store writes the
//! decisions ([`Store::queue_decided`](crate::store::DueSteps::queue_decided)), deciding
//! again with [`decide_all`] if the store changed meanwhile. [`wants`] says what a
//! step's decision needs read.

use jiff::Timestamp;

use crate::calendar::display_in;
use crate::commitment::{Commitment, StoredCommitment, parse_mailbox};
use crate::config::Config;
use crate::customer::Standing;
use crate::mail::Audience;
use crate::mail::compose::{Composed, Email, Firing};
use crate::mail::context::{BouncedUpdate, Failure, StepInfo};
use crate::mail::message::{MessageIds, Outgoing, build};
use crate::mail::templates::Templates;
use crate::planner::{SkipCode, StepKind};
use crate::store::{
    Decision, Decisions, DueBatch, DueStep, DueWork, NewDelivery, NewRevision, Origin,
    RevisionRecord, StepDecision, StepFacts, Threads, Undo, Wanted,
};
use crate::web::link::Links;
use crate::when::{format_stored, parse_stored};

use super::checked;

mod ask;
mod rules;

/// What composing needs besides the steps: the running config and the links the
/// business's own emails carry.
#[derive(Clone, Copy)]
pub struct Composing<'a> {
    /// The running config.
    pub config: &'a Config,
    /// The links, once the pages listen; `None` without `[web]`.
    pub links: Option<&'a Links>,
}

/// An email that failed for good, and for a customer's, the revision its step made.
type FailedEmail = (Failure, Option<RevisionRecord>);

/// What deciding `step` needs read: for a failure notice the email that failed, for
/// the owner's say the update it asks about, and the customer's commitments only for
/// steps whose templates say something of the customer (a scan of `commitments`).
pub fn wants(templates: &Templates, step: &DueStep) -> Wanted {
    let kind = step.step.kind;
    Wanted {
        delivery: failed_delivery(step).ok().flatten(),
        steps: kind == StepKind::AskOwner,
        customer: match step.row.customer.as_deref().map(parse_mailbox) {
            Some(Ok(to)) if templates.reads_customer(kind) => Some(to.email.to_string()),
            _ => None,
        },
    }
}

/// Decides every step of `batch` as of `now` and composes the emails of those that go.
pub fn decide_all(composing: &Composing<'_>, batch: DueBatch, now: Timestamp) -> Decisions {
    let dry_run = composing.config.mail.dry_run;
    let decided = batch
        .steps
        .iter()
        .map(|due| StepDecision {
            step_id: due.step.step.id,
            commitment_id: due.step.row.id,
            decision: match decide(composing, due, now) {
                Decision::Send {
                    deliveries,
                    waiting,
                    ..
                } if dry_run => Decision::DryRun {
                    deliveries: deliveries.into_iter().chain(waiting).collect(),
                },
                decision => decision,
            },
        })
        .chain(batch.unreadable.iter().map(|bad| StepDecision {
            step_id: bad.id,
            commitment_id: bad.commitment_id,
            decision: fail(&bad.to_string()),
        }))
        .collect();
    Decisions {
        mark: batch.mark(),
        decided,
    }
}

/// Decides one due step. A step composed ahead is decided and dated as of its own
/// time, when its emails will leave.
fn decide(composing: &Composing<'_>, due: &DueWork, now: Timestamp) -> Decision {
    let config = composing.config;
    let (step, row) = (&due.step.step, &due.step.row);
    let kind = step.kind;
    let at = now.max(step.fire_at);
    let (mut commitment, matched) = match checked(config, row) {
        Ok(found) => found,
        Err(reason) => {
            return Decision::Skip {
                code: SkipCode::Replanned,
                reason: format!("held: the row has problems ({reason})"),
            };
        }
    };
    let facts = match &due.facts {
        Ok(facts) => facts,
        Err(reason) => return fail(reason),
    };
    let rule = config
        .rules
        .iter()
        .find(|r| r.name == step.rule)
        .unwrap_or(matched);
    let zone = &commitment.zone(config.calendar.zone()).clone();
    if let Some(decision) = rules::paused(config, &commitment, rule, kind, &step.key, at) {
        return decision;
    }
    let late = match rule.catch_up.decide(
        step.fire_at,
        at,
        config.daemon.late_after,
        due.step.newer_due_exists,
    ) {
        crate::rule::FireDecision::Skip(reason) => {
            return Decision::Skip {
                code: SkipCode::CatchUp,
                reason,
            };
        }
        crate::rule::FireDecision::Send { late } => late,
    };
    let info = StepInfo {
        kind,
        key: step.key.clone(),
        label: step.label.clone(),
        rule: step.rule.clone(),
        planned_at: step.planned_at,
        late,
    };
    // The owner's say is about an update still to come, with the numbers it will have
    // when it goes.
    let asked = match kind {
        StepKind::AskOwner => match ask::asked_update(ask::asked_step(&due.step, facts), at) {
            Ok(asked) => Some((asked.key.as_str(), asked.fire_at)),
            Err((code, reason)) => return Decision::Skip { code, reason },
        },
        _ => None,
    };
    let (failure, undo) = match failure_for(&due.step, facts) {
        Ok(None) => (None, None),
        Ok(Some((failure, bounced))) => {
            let (failure, undo) = bounce(&mut commitment, row, &failure, bounced.as_ref(), config);
            (Some(failure), undo)
        }
        Err(reason) => return fail(&reason),
    };
    let moves: Vec<_> = facts.revisions.iter().map(|r| r.due_move(zone)).collect();
    let rows = facts.customer_rows.iter().cloned();
    let standing = Standing::from_rows(&commitment, rows, config.calendar.zone(), at);
    let firing = Firing {
        commitment: &commitment,
        rule,
        step: &info,
        asked,
        moves: &moves,
        customer: &standing,
        failure: failure.as_ref(),
        links: composing.links,
        at,
    };
    let Composed { emails, update } = match firing.compose(config) {
        Ok(composed) => composed,
        Err(reason) => return fail(&reason),
    };
    let (deliveries, waiting) = match deliveries(config, due, &facts.threads, &emails, at) {
        // The owner's copy of an update says the customer was told: it waits for that.
        Ok(all) if kind == StepKind::CustomerUpdate => all
            .into_iter()
            .partition(|d| d.audience != Audience::Owner.as_str()),
        Ok(all) => (all, Vec::new()),
        Err(reason) => return fail(&reason),
    };
    let revision = match (kind, &update, &rule.customer_update) {
        (StepKind::CustomerUpdate, Some(update), Some(rule_update)) => Some(NewRevision {
            commitment_id: commitment.id,
            old_due: row.due_at.clone().unwrap_or_default(),
            new_due: format_stored(update.new_due, zone),
            reason: None,
            source: format!(
                "automatic update {} of {} (rule \"{}\")",
                update.number, rule_update.max, rule.name
            ),
            automatic: true,
            notify: false,
        }),
        _ => None,
    };
    Decision::Send {
        deliveries,
        waiting,
        revision,
        undo,
        late,
        at,
    }
}

/// For the notice of a failed email: if it was a customer update whose move is still in
/// force, the move is undone (`Undo`), and the notice says so (`failure.update`) and
/// is composed as of after it, with the old promise as the due time.
fn bounce(
    commitment: &mut Commitment,
    row: &StoredCommitment,
    failure: &Failure,
    bounced: Option<&RevisionRecord>,
    config: &Config,
) -> (Failure, Option<Undo>) {
    let mut failure = failure.clone();
    let Some(revision) = bounced.filter(|r| r.undone.is_none()) else {
        return (failure, None);
    };
    let zone = commitment.zone(config.calendar.zone()).clone();
    let (Ok(promise), Ok(not_told)) = (
        parse_stored(&revision.old_due, &zone),
        parse_stored(&revision.new_due, &zone),
    ) else {
        return (failure, None);
    };
    let restore = row.due_at.as_deref() == Some(revision.new_due.as_str());
    if restore {
        commitment.due_at = promise;
    }
    let owner_zone = config.calendar.zone();
    failure.update = Some(BouncedUpdate {
        promise: display_in(owner_zone, promise),
        not_told: display_in(owner_zone, not_told),
        restored: restore,
        due: display_in(owner_zone, commitment.due_at),
    });
    let undo = Undo {
        revision_id: revision.id,
        why: format!("the update did not reach the customer: {}", failure.error),
        restore,
    };
    (failure, Some(undo))
}

fn fail(reason: &str) -> Decision {
    Decision::Fail {
        reason: reason.to_string(),
    }
}

/// For a failure notice, the delivery its key names (`delivery_failed#ID`).
fn failed_delivery(step: &DueStep) -> Result<Option<i64>, String> {
    if step.step.kind != StepKind::DeliveryFailed {
        return Ok(None);
    }
    match step
        .step
        .key
        .strip_prefix("delivery_failed#")
        .and_then(|id| id.parse().ok())
    {
        Some(id) => Ok(Some(id)),
        None => Err(format!("'{}' names no delivery", step.step.key)),
    }
}

/// For a failure notice, the email that failed, and the revision its step made, if it
/// was a customer's.
fn failure_for(step: &DueStep, facts: &StepFacts) -> Result<Option<FailedEmail>, String> {
    let Some(id) = failed_delivery(step)? else {
        return Ok(None);
    };
    let Some((d, bounced)) = &facts.delivery else {
        return Err(format!("delivery {id} is not recorded"));
    };
    let bounced = bounced
        .as_ref()
        .filter(|_| d.audience == Audience::Customer.as_str());
    let failure = Failure {
        recipient: d.recipient.clone(),
        audience: d.audience.clone(),
        subject: d.subject.clone(),
        error: d.last_error.clone().unwrap_or_default(),
        attempts: d.attempts,
        update: None,
    };
    Ok(Some((failure, bounced.cloned())))
}

/// The outbox entries for a step's emails: Message-IDs that thread per audience (a
/// thread is started by the audience's first email about the commitment), and the
/// messages built.
fn deliveries(
    config: &Config,
    due: &DueWork,
    threads: &Threads,
    emails: &[Email],
    at: Timestamp,
) -> Result<Vec<NewDelivery>, String> {
    let (step, commitment_id) = (&due.step.step, due.step.row.id);
    let ids = MessageIds::new(&threads.store_id, &config.mail.from);
    let mut out = Vec::with_capacity(emails.len());
    for (index, email) in emails.iter().enumerate() {
        let audience = email.audience.as_str();
        // The thread's first email, stored or composed for this step, is its root.
        let root = threads
            .roots
            .iter()
            .map(|(a, id)| (a, id))
            .chain(
                out.iter()
                    .map(|d: &NewDelivery| (&d.audience, &d.message_id)),
            )
            .find(|(a, _)| *a == audience)
            .map(|(_, id)| id.clone());
        let (message_id, reply_to_thread) = match &root {
            Some(root) => (
                ids.reply(commitment_id, email.audience, step.id, index),
                Some(root.as_str()),
            ),
            None => (ids.thread_root(commitment_id, email.audience), None),
        };
        let from = email.from(&config.mail.from);
        let message = build(&Outgoing {
            from: &from,
            to: &email.to,
            reply_to: email.reply_to.as_ref(),
            rendered: &email.rendered,
            message_id: &message_id,
            reply_to_thread,
            commitment_id: email.audience.is_internal().then_some(commitment_id),
            date: at,
        })
        .map_err(|e| e.to_string())?;
        out.push(NewDelivery {
            origin: Origin::Step {
                step_id: step.id,
                commitment_id,
            },
            audience: audience.to_string(),
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
