//! Steps: the change queue that says which commitments to plan, the planned steps, and
//! the ones whose time has come.

use jiff::{SignedDuration, Timestamp};

use super::Result;
use crate::commitment::StoredCommitment;
use crate::planner::{History, Step};

/// A commitment that changed since it was last planned.
#[derive(Debug)]
pub struct PlannedCommitment {
    /// Its id.
    pub id: i64,
    /// The row as stored now, or `None` if it is gone.
    pub row: Option<StoredCommitment>,
    /// When the earliest change not yet planned was written.
    pub since: Timestamp,
    /// Its steps as stored.
    pub steps: Vec<Step>,
    /// Its revisions, as the planner needs them.
    pub history: History,
}

/// A batch from the change queue.
#[derive(Debug)]
pub struct ChangeBatch {
    /// The changed commitments, each once.
    pub commitments: Vec<PlannedCommitment>,
    /// The last change in the batch; [`Store::finish_changes`](crate::store::SqliteStore::finish_changes) takes it.
    pub last_seq: i64,
}

/// A planned step whose time has come, with its commitment's row.
#[derive(Debug, Clone)]
pub struct DueStep {
    /// The step.
    pub step: Step,
    /// Whether a later step of the same commitment is also due.
    pub newer_due_exists: bool,
    /// The commitment as stored.
    pub row: StoredCommitment,
}

/// A step whose row this program cannot read: a kind or state it does not know, which
/// another version of it (or a hand edit) wrote.
#[derive(Debug, Clone, thiserror::Error)]
#[error("step {id} of commitment {commitment_id} cannot be read: {reason}")]
pub struct UnreadableStep {
    /// Its row id.
    pub id: i64,
    /// Its commitment.
    pub commitment_id: i64,
    /// When it was to fire.
    pub fire_at: Timestamp,
    /// What is wrong with it.
    pub reason: String,
}

/// Steps at large: planning everything again, the next time to look, one commitment's steps.
pub trait Steps {
    /// Queues every open commitment for planning again (after the rules changed).
    fn replan_open(&self, now: Timestamp) -> Result<usize>;

    /// When the planning task must next look at the steps: the earliest planned step's
    /// time, or `lead` before the earliest one of a kind composed ahead
    /// ([`StepKind::AHEAD`](crate::planner::StepKind::AHEAD)) that lies beyond `now + lead`, whichever comes first.
    ///
    /// Both are ranges of the index of planned steps by time (`steps_due`, on PostgreSQL `steps_due_order`); the second is bounded by the first, so
    /// neither reads more than the steps within `lead` of the earliest.
    fn next_fire_at(&self, now: Timestamp, lead: SignedDuration) -> Result<Option<Timestamp>>;

    /// Every step of commitment `id`, in firing order; a step that cannot be read is
    /// an error that names it.
    fn steps_of(&self, id: i64) -> Result<Vec<Step>>;
}
