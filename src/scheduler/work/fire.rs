//! Firing due steps, in three parts so that composing, the slow part, runs off the
//! store's thread: [`read`] takes a batch of due steps with what deciding them needs
//! from the store, [`decide_all`] (pure) decides each one and composes its emails, and
//! [`apply_all`] writes the decisions inside a transaction.
//!
//! The store may change between reading and applying. Another program's commit moves
//! the store's write mark, and the caller then throws the decisions away (see
//! `queue_batch`). The daemon's own writes in between are the sender's records, which
//! touch deliveries' states and queued steps only: nothing a decision rests on.

use std::collections::HashSet;

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
use crate::planner::Step;
use crate::planner::{SkipCode, StepKind};
use crate::store::{
    DueStep, NewDelivery, NewRevision, Origin, ReportRow, RevisionRecord, Store, StoreError,
    Threads, UnreadableStep, WriteMark,
};
use crate::web::link::Links;
use crate::when::{format_stored, parse_stored};

use super::checked;

mod ask;
mod rules;

/// A due step and what deciding it needs from the store.
struct Due {
    step: DueStep,
    /// The store's answers, or why they could not be read.
    facts: Result<Facts, String>,
}

/// What a step's decision reads besides the step and its commitment.
struct Facts {
    /// The commitment's due-time revisions, which number automatic updates.
    revisions: Vec<RevisionRecord>,
    /// For a failure notice, the email that failed, and for a customer update's, the
    /// revision its step made.
    failure: Result<Option<FailedEmail>, String>,
    /// The threads the commitment already has.
    threads: Threads,
    /// For the owner's say before a customer update, that update's step, if stored.
    asked: Option<Step>,
    /// The customer's commitments, for what the emails say of them (`customer.*`).
    customer_rows: Vec<ReportRow>,
}

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

/// Due steps read in one transaction, and where others' writes to the store stood then.
pub struct Batch {
    others: WriteMark,
    steps: Vec<Due>,
    /// Due steps whose rows do not read: they fail.
    unreadable: Vec<UnreadableStep>,
}

/// A batch's decisions, to be applied only if no other program wrote the store since
/// `others`.
pub struct Decided {
    /// Where others' writes stood when the steps were read.
    pub others: WriteMark,
    decisions: Vec<(Target, Decision)>,
}

/// The step a decision is about.
struct Target {
    step_id: i64,
    commitment_id: i64,
}

/// What becomes of a due step.
enum Decision {
    /// It waits for business hours: fires again at `until`.
    Hold { until: Timestamp },
    /// It does not go.
    Skip { code: SkipCode, reason: String },
    /// Its emails cannot be composed.
    Fail { reason: String },
    /// Its emails go, due at `at`; a customer update also moves the due time, and the
    /// notice of a bounced one takes that move back.
    Send {
        deliveries: Vec<NewDelivery>,
        /// Emails that go only once `deliveries` are accepted: the owner's copy of a
        /// customer update says the customer was told.
        waiting: Vec<NewDelivery>,
        revision: Option<NewRevision>,
        undo: Option<Undo>,
        late: bool,
        at: Timestamp,
    },
}

/// Taking back the move of a customer update that did not reach the customer.
#[derive(Debug)]
struct Undo {
    revision_id: i64,
    /// Why, for the revision: the delivery error.
    why: String,
    /// The due time goes back (nothing moved it since the update).
    restore: bool,
}

/// Why a batch of decisions was not applied.
pub enum Queueing {
    /// The store failed.
    Store(StoreError),
    /// A step failed outside a savepoint: the batch must run again with them.
    StepFailed,
}

impl From<StoreError> for Queueing {
    fn from(e: StoreError) -> Self {
        Queueing::Store(e)
    }
}

impl Queueing {
    /// The store's error; a failed step is recorded once steps run in savepoints.
    pub fn into_store_error(self) -> StoreError {
        match self {
            Queueing::Store(e) => e,
            Queueing::StepFailed => unreachable!("steps in savepoints record their failures"),
        }
    }
}

/// Up to `limit` due steps after `after` (see [`Store::due_steps`]) with what deciding
/// them needs, or `None` when nothing is due. The batch ends before a step of a
/// commitment in `busy` (another batch not yet written) or already in the batch, so
/// that each decision sees what those before it wrote: a customer update's revision
/// numbers the next one.
pub fn read(
    store: &Store,
    templates: &Templates,
    now: Timestamp,
    ahead: Timestamp,
    after: Option<(Timestamp, i64)>,
    busy: &HashSet<i64>,
    limit: usize,
) -> Result<Option<Batch>, StoreError> {
    let others = store.write_mark()?;
    let mut commitments = HashSet::new();
    let mut steps = Vec::new();
    let mut unreadable = Vec::new();
    for step in store.due_steps(now, ahead, after, limit)? {
        let step = match step {
            Ok(step) => step,
            Err(bad) => {
                unreadable.push(bad);
                continue;
            }
        };
        if busy.contains(&step.row.id) || !commitments.insert(step.row.id) {
            break;
        }
        let customer = templates.reads_customer(step.step.kind);
        let facts = facts(store, &step, customer).map_err(|e| format!("cannot be queued: {e}"));
        steps.push(Due { step, facts });
    }
    let batch = Batch {
        others,
        steps,
        unreadable,
    };
    Ok((!batch.steps.is_empty() || !batch.unreadable.is_empty()).then_some(batch))
}

impl Batch {
    /// Where the next read goes on from: this batch's last step.
    pub fn last(&self) -> Option<(Timestamp, i64)> {
        let steps = self
            .steps
            .iter()
            .map(|due| (due.step.step.fire_at, due.step.step.id));
        let unreadable = self.unreadable.iter().map(|bad| (bad.fire_at, bad.id));
        steps.chain(unreadable).max()
    }

    /// The commitments of this batch's steps.
    pub fn commitments(&self) -> HashSet<i64> {
        self.steps.iter().map(|due| due.step.row.id).collect()
    }
}

/// With `customer`, the customer's commitments too: a scan of `commitments`, so only
/// for steps whose templates say something of the customer.
fn facts(store: &Store, step: &DueStep, customer: bool) -> Result<Facts, StoreError> {
    Ok(Facts {
        revisions: store.revisions_of(step.row.id)?,
        failure: failure_for(store, step)?,
        threads: store.threads_of(step.row.id)?,
        asked: ask::asked_step(store, step)?,
        customer_rows: match step.row.customer.as_deref().map(parse_mailbox) {
            Some(Ok(to)) if customer => store.customer_rows(to.email.as_ref())?,
            _ => Vec::new(),
        },
    })
}

/// Decides every step of `batch` as of `now` and composes the emails of those that go.
pub fn decide_all(composing: &Composing<'_>, batch: Batch, now: Timestamp) -> Decided {
    let decisions = batch
        .steps
        .iter()
        .map(|due| {
            let target = Target {
                step_id: due.step.step.id,
                commitment_id: due.step.row.id,
            };
            (target, decide(composing, due, now))
        })
        .chain(batch.unreadable.iter().map(|bad| {
            let target = Target {
                step_id: bad.id,
                commitment_id: bad.commitment_id,
            };
            (target, fail(&bad.to_string()))
        }))
        .collect();
    Decided {
        others: batch.others,
        decisions,
    }
}

/// Writes `decided`; how many steps put mail in the outbox (or, in a dry run, recorded
/// the mail they would have sent).
///
/// A step that cannot be written must not take the others down with it, so each step
/// can run in a savepoint of its own. Savepoints cost a statement journal of every
/// page a step touches, and steps almost never fail: the caller runs the batch without
/// them first (`isolate` false), and only if a step fails runs it again with them.
pub fn apply_all(
    store: &Store,
    config: &Config,
    decided: &Decided,
    now: Timestamp,
    isolate: bool,
) -> Result<usize, Queueing> {
    let mut sent = 0;
    for (target, decision) in &decided.decisions {
        let applied = if isolate {
            store.isolated(|s| apply(s, config, target, decision, now))
        } else {
            apply(store, config, target, decision, now)
        };
        match applied {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(_) if !isolate => return Err(Queueing::StepFailed),
            Err(e) => {
                tracing::error!(step = target.step_id, cause = %e, "cannot queue a step");
                store.fail_step(target.step_id, &format!("cannot be queued: {e}"), now)?;
            }
        }
    }
    Ok(sent)
}

/// Decides one due step. A step composed ahead is decided and dated as of its own
/// time, when its emails will leave.
fn decide(composing: &Composing<'_>, due: &Due, now: Timestamp) -> Decision {
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
        StepKind::AskOwner => match ask::asked_update(facts.asked.as_ref(), at) {
            Ok(asked) => Some((asked.key.as_str(), asked.fire_at)),
            Err((code, reason)) => return Decision::Skip { code, reason },
        },
        _ => None,
    };
    let (failure, undo) = match &facts.failure {
        Ok(None) => (None, None),
        Ok(Some((failure, bounced))) => {
            let (failure, undo) = bounce(&mut commitment, row, failure, bounced.as_ref(), config);
            (Some(failure), undo)
        }
        Err(reason) => return fail(reason),
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

/// Writes one decision; true if it put mail in the outbox.
fn apply(
    store: &Store,
    config: &Config,
    target: &Target,
    decision: &Decision,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let id = target.step_id;
    match decision {
        Decision::Hold { until } => store.hold_step(id, *until, now)?,
        Decision::Skip { code, reason } => store.skip_step(id, *code, reason, now)?,
        Decision::Fail { reason } => {
            tracing::error!(commitment = target.commitment_id, step = id, cause = %reason, "cannot compose the email for a step");
            store.fail_step(id, reason, now)?;
        }
        Decision::Send {
            deliveries,
            waiting,
            revision,
            undo,
            late,
            at,
        } => {
            if config.mail.dry_run {
                const DRY_RUN: &str = "dry run: rendered and recorded, not sent";
                for delivery in deliveries.iter().chain(waiting) {
                    store.add_skipped_delivery(delivery, DRY_RUN, now)?;
                }
                store.skip_step(id, SkipCode::DryRun, DRY_RUN, now)?;
                return Ok(true);
            }
            if let Some(revision) = revision {
                store.revise_due_by_step(revision, id, now)?;
            }
            if let Some(undo) = undo {
                let restored =
                    store.undo_revision(undo.revision_id, &undo.why, undo.restore, now)?;
                tracing::warn!(
                    commitment = target.commitment_id,
                    revision = undo.revision_id,
                    restored,
                    "a customer update bounced; its move of the due time is undone"
                );
            }
            for delivery in deliveries {
                store.add_delivery(delivery, now, *at)?;
            }
            for delivery in waiting {
                store.add_waiting_delivery(delivery, now)?;
            }
            store.queue_step(id, *late, now)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// For a failure notice, the email that failed, and the revision its step made, if it
/// was a customer's.
fn failure_for(
    store: &Store,
    step: &DueStep,
) -> Result<Result<Option<FailedEmail>, String>, StoreError> {
    if step.step.kind != StepKind::DeliveryFailed {
        return Ok(Ok(None));
    }
    let Some(id) = step
        .step
        .key
        .strip_prefix("delivery_failed#")
        .and_then(|id| id.parse().ok())
    else {
        return Ok(Err(format!("'{}' names no delivery", step.step.key)));
    };
    let Some(d) = store.delivery(id)? else {
        return Ok(Err(format!("delivery {id} is not recorded")));
    };
    let bounced = match d.step_id {
        Some(step_id) if d.audience == Audience::Customer.as_str() => {
            store.revision_of_step(step_id)?
        }
        _ => None,
    };
    let failure = Failure {
        recipient: d.recipient,
        audience: d.audience,
        subject: d.subject,
        error: d.last_error.unwrap_or_default(),
        attempts: d.attempts,
        update: None,
    };
    Ok(Ok(Some((failure, bounced))))
}

/// The outbox entries for a step's emails: Message-IDs that thread per audience (a
/// thread is started by the audience's first email about the commitment), and the
/// messages built.
fn deliveries(
    config: &Config,
    due: &Due,
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
