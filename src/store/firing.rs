//! Firing due steps, as the store's side of it: [`Store::take_due_steps`] reads a
//! batch of due steps with what deciding them needs, and [`Store::queue_decided`]
//! writes the decisions made off the store's thread and reads the next batch, in one
//! transaction (one trip to the store per batch). Deciding is the caller's, pure; the
//! decisions arrive here as values ([`Decision`]).
//!
//! The store may change between reading a batch and writing its decisions. A batch
//! carries a [`WriteMark`]: if another program committed since, the decisions may rest on
//! rows that changed, so they are dropped, and the steps due then are read and
//! decided again (the caller's `redecide`) inside the writing transaction. The
//! daemon's own writes in between are the sender's records, which touch deliveries'
//! states and queued steps only: nothing a decision rests on.

use std::collections::HashSet;

use jiff::Timestamp;

use super::{
    Claim, DeliveryRecord, DueStep, NewDelivery, NewRevision, ReportRow, Result, RevisionRecord,
    Store, StoreError, Threads, UnreadableStep, WriteMark,
};
use crate::planner::{SkipCode, Step};

/// What deciding one due step needs read besides the step and its commitment's row
/// and revisions and threads, which every step gets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// A delivery, with the revision its step made (a failure notice's failed email).
    pub delivery: Option<i64>,
    /// The commitment's steps (the owner's say reads the update it asks about).
    pub steps: bool,
    /// The commitments of the customer with this address (what the emails say of them).
    pub customer: Option<String>,
}

/// What the store read for a due step, as [`Wanted`] asked.
#[derive(Debug, Clone)]
pub struct StepFacts {
    /// The commitment's due-time revisions, which number automatic updates.
    pub revisions: Vec<RevisionRecord>,
    /// The delivery asked for, if recorded, and the revision its step made, if any.
    pub delivery: Option<(DeliveryRecord, Option<RevisionRecord>)>,
    /// The threads the commitment already has.
    pub threads: Threads,
    /// The commitment's steps, if asked for.
    pub steps: Vec<Step>,
    /// The customer's commitments, if asked for.
    pub customer_rows: Vec<ReportRow>,
}

/// A due step with what deciding it needs, or why that could not be read.
#[derive(Debug)]
pub struct DueWork {
    /// The step and its commitment.
    pub step: DueStep,
    /// The store's answers.
    pub facts: Result<StepFacts, String>,
}

/// Due steps read in one transaction.
#[derive(Debug)]
pub struct DueBatch {
    mark: WriteMark,
    /// The steps, at most one of each commitment.
    pub steps: Vec<DueWork>,
    /// Due steps whose rows do not read: they fail.
    pub unreadable: Vec<UnreadableStep>,
}

impl DueBatch {
    /// What others had written when it was read; its [`Decisions`] carry it back.
    pub fn mark(&self) -> WriteMark {
        self.mark
    }

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

/// Which due steps to read: up to `limit` steps due by `now`, or by `ahead` for a kind
/// composed ahead, after `after`, ending before a step of a commitment in `busy` (a batch
/// not yet written) or already in the batch, so that each decision sees what those
/// before it wrote: a customer update's revision numbers the next one.
pub struct DueAsk<'a> {
    /// The time the steps are due by.
    pub now: Timestamp,
    /// The time steps composed ahead are due by.
    pub ahead: Timestamp,
    /// Where the batch before ended.
    pub after: Option<(Timestamp, i64)>,
    /// Commitments whose steps are being decided.
    pub busy: &'a HashSet<i64>,
    /// At most this many steps.
    pub limit: usize,
    /// What each step needs read.
    pub wants: &'a dyn Fn(&DueStep) -> Wanted,
}

/// What becomes of a due step.
#[derive(Debug)]
pub enum Decision {
    /// It waits for business hours: fires again at `until`.
    Hold {
        /// When it fires again.
        until: Timestamp,
    },
    /// It does not go.
    Skip {
        /// Why, as a code.
        code: SkipCode,
        /// Why, in words.
        reason: String,
    },
    /// Its emails cannot be composed.
    Fail {
        /// Why.
        reason: String,
    },
    /// Its emails go, due at `at`; a customer update also moves the due time, and the
    /// notice of a bounced one takes that move back.
    Send {
        /// The emails.
        deliveries: Vec<NewDelivery>,
        /// Emails that go only once `deliveries` are accepted: the owner's copy of a
        /// customer update says the customer was told.
        waiting: Vec<NewDelivery>,
        /// A customer update's move of the due time.
        revision: Option<NewRevision>,
        /// A bounced update's move taken back.
        undo: Option<Undo>,
        /// Whether it goes after its time.
        late: bool,
        /// When its emails are due.
        at: Timestamp,
    },
    /// A dry run: its emails are recorded as not sent, and the step skipped.
    DryRun {
        /// The emails it would have sent.
        deliveries: Vec<NewDelivery>,
    },
}

/// Taking back the move of a customer update that did not reach the customer.
#[derive(Debug)]
pub struct Undo {
    /// The revision that moved the due time.
    pub revision_id: i64,
    /// Why, for the revision: the delivery error.
    pub why: String,
    /// The due time goes back (nothing moved it since the update).
    pub restore: bool,
}

/// One step's decision.
#[derive(Debug)]
pub struct StepDecision {
    /// The step.
    pub step_id: i64,
    /// Its commitment.
    pub commitment_id: i64,
    /// What becomes of it.
    pub decision: Decision,
}

/// A batch's decisions, to be written only if the store did not change since the
/// batch was read (`mark`).
#[derive(Debug)]
pub struct Decisions {
    /// The batch's [`DueBatch::mark`].
    pub mark: WriteMark,
    /// One per step of the batch.
    pub decided: Vec<StepDecision>,
}

/// What one trip of [`Store::queue_decided`] did.
#[derive(Debug)]
pub struct Queued {
    /// How many steps put mail in the outbox (or, in a dry run, recorded it).
    pub sent: usize,
    /// The next batch of due steps, to be decided.
    pub next: Option<DueBatch>,
    /// Another program committed since the decisions' batch was read: they were
    /// decided again here, and a batch being decided meanwhile must be dropped.
    pub stale: bool,
}

/// Why a batch of decisions was not written.
enum Queueing {
    Store(StoreError),
    /// A step failed outside a savepoint: the batch must run again with them.
    StepFailed,
}

impl From<StoreError> for Queueing {
    fn from(e: StoreError) -> Self {
        Queueing::Store(e)
    }
}

impl From<rusqlite::Error> for Queueing {
    fn from(e: rusqlite::Error) -> Self {
        Queueing::Store(e.into())
    }
}

impl Store {
    /// The first batch of due steps `ask` describes, in a transaction of its own, or
    /// `None` when nothing is due.
    pub fn take_due_steps(&self, claim: &Claim, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        self.check_claim(claim)?;
        self.transaction(|s| s.read_due(ask))
    }

    /// Writes `decisions` and reads the next batch `ask` describes, in one transaction.
    /// If another program committed since the decisions' batch was read, the steps due
    /// now are read again and decided by `redecide` here instead, and the next batch is
    /// read from the first due step.
    pub fn queue_decided(
        &self,
        claim: &Claim,
        decisions: &Decisions,
        ask: &DueAsk<'_>,
        redecide: &dyn Fn(DueBatch) -> Decisions,
    ) -> Result<Queued> {
        self.check_claim(claim)?;
        // Savepoints cost a statement journal of every page a step touches, and steps
        // almost never fail: the batch runs without them first, and only if a step
        // fails runs again with them.
        let run = |isolate| {
            self.transaction(|s| {
                let from_first = HashSet::new();
                let again = DueAsk {
                    after: None,
                    busy: &from_first,
                    ..*ask
                };
                if !s.others_wrote_since(decisions.mark)? {
                    let sent = s.apply_all(decisions, ask.now, isolate)?;
                    let next = s.read_due(ask)?;
                    return Ok(Queued {
                        sent,
                        next,
                        stale: false,
                    });
                }
                tracing::debug!(
                    "the store changed while steps were composed; composing them again"
                );
                let sent = match s.read_due(&again)? {
                    Some(batch) => s.apply_all(&redecide(batch), ask.now, isolate)?,
                    None => 0,
                };
                Ok(Queued {
                    sent,
                    next: s.read_due(&again)?,
                    stale: true,
                })
            })
        };
        match run(false) {
            Err(Queueing::StepFailed) => run(true),
            result => result,
        }
        .map_err(|e| match e {
            Queueing::Store(e) => e,
            Queueing::StepFailed => unreachable!("steps in savepoints record their failures"),
        })
    }

    fn read_due(&self, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        let mark = self.write_mark()?;
        let mut commitments = HashSet::new();
        let mut steps = Vec::new();
        let mut unreadable = Vec::new();
        for step in self.due_steps(ask.now, ask.ahead, ask.after, ask.limit)? {
            let step = match step {
                Ok(step) => step,
                Err(bad) => {
                    unreadable.push(bad);
                    continue;
                }
            };
            if ask.busy.contains(&step.row.id) || !commitments.insert(step.row.id) {
                break;
            }
            let wanted = (ask.wants)(&step);
            let facts = self
                .step_facts(&step, &wanted)
                .map_err(|e| format!("cannot be queued: {e}"));
            steps.push(DueWork { step, facts });
        }
        let batch = DueBatch {
            mark,
            steps,
            unreadable,
        };
        Ok((!batch.steps.is_empty() || !batch.unreadable.is_empty()).then_some(batch))
    }

    fn step_facts(&self, step: &DueStep, wanted: &Wanted) -> Result<StepFacts> {
        let id = step.row.id;
        let delivery = match wanted.delivery {
            Some(delivery) => match self.delivery(delivery)? {
                Some(d) => {
                    let bounced = match d.step_id {
                        Some(step_id) => self.revision_of_step(step_id)?,
                        None => None,
                    };
                    Some((d, bounced))
                }
                None => None,
            },
            None => None,
        };
        Ok(StepFacts {
            revisions: self.revisions_of(id)?,
            delivery,
            threads: self.threads_of(id)?,
            steps: if wanted.steps {
                self.steps_of(id)?
            } else {
                Vec::new()
            },
            customer_rows: match &wanted.customer {
                Some(address) => self.customer_rows(address)?,
                None => Vec::new(),
            },
        })
    }

    /// Writes the decisions; how many steps put mail in the outbox. With `isolate`,
    /// each step in a savepoint of its own, so one that cannot be written fails alone.
    fn apply_all(
        &self,
        decisions: &Decisions,
        now: Timestamp,
        isolate: bool,
    ) -> std::result::Result<usize, Queueing> {
        let mut sent = 0;
        for decided in &decisions.decided {
            let applied = if isolate {
                self.isolated(|s| s.apply(decided, now))
            } else {
                self.apply(decided, now)
            };
            match applied {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(_) if !isolate => return Err(Queueing::StepFailed),
                Err(e) => {
                    tracing::error!(step = decided.step_id, cause = %e, "cannot queue a step");
                    self.fail_step(decided.step_id, &format!("cannot be queued: {e}"), now)?;
                }
            }
        }
        Ok(sent)
    }

    /// Writes one decision; true if it put mail in the outbox.
    fn apply(&self, decided: &StepDecision, now: Timestamp) -> Result<bool> {
        let id = decided.step_id;
        match &decided.decision {
            Decision::Hold { until } => self.hold_step(id, *until, now)?,
            Decision::Skip { code, reason } => self.skip_step(id, *code, reason, now)?,
            Decision::Fail { reason } => {
                tracing::error!(commitment = decided.commitment_id, step = id, cause = %reason, "cannot compose the email for a step");
                self.fail_step(id, reason, now)?;
            }
            Decision::DryRun { deliveries } => {
                const DRY_RUN: &str = "dry run: rendered and recorded, not sent";
                for delivery in deliveries {
                    self.add_skipped_delivery(delivery, DRY_RUN, now)?;
                }
                self.skip_step(id, SkipCode::DryRun, DRY_RUN, now)?;
                return Ok(true);
            }
            Decision::Send {
                deliveries,
                waiting,
                revision,
                undo,
                late,
                at,
            } => {
                if let Some(revision) = revision {
                    self.revise_due_by_step(revision, id, now)?;
                }
                if let Some(undo) = undo {
                    let restored =
                        self.undo_revision(undo.revision_id, &undo.why, undo.restore, now)?;
                    tracing::warn!(
                        commitment = decided.commitment_id,
                        revision = undo.revision_id,
                        restored,
                        "a customer update bounced; its move of the due time is undone"
                    );
                }
                for delivery in deliveries {
                    self.add_delivery(delivery, now, *at)?;
                }
                for delivery in waiting {
                    self.add_waiting_delivery(delivery, now)?;
                }
                self.queue_step(id, *late, now)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}
