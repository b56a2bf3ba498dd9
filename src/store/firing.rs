//! Firing due steps, as the store's side of it: [`Store::take_due_steps`](crate::store::DueSteps::take_due_steps) reads a
//! batch of due steps with what deciding them needs, and [`Store::queue_decided`](crate::store::DueSteps::queue_decided)
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
    Threads, UnreadableStep, WriteMark,
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
    pub(super) mark: WriteMark,
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

/// What one trip of [`Store::queue_decided`](crate::store::DueSteps::queue_decided) did.
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

/// Taking due steps and queueing what was decided about them, fenced by a claim.
pub trait DueSteps {
    /// The first batch of due steps `ask` describes, in a transaction of its own, or
    /// `None` when nothing is due.
    fn take_due_steps(&self, claim: &Claim, ask: &DueAsk<'_>) -> Result<Option<DueBatch>>;

    /// Writes `decisions` and reads the next batch `ask` describes, in one transaction.
    /// If another program committed since the decisions' batch was read, the steps due
    /// now are read again and decided by `redecide` here instead, and the next batch is
    /// read from the first due step.
    fn queue_decided(
        &self,
        claim: &Claim,
        decisions: &Decisions,
        ask: &DueAsk<'_>,
        redecide: &dyn Fn(DueBatch) -> Decisions,
    ) -> Result<Queued>;
}
