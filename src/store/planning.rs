//! Planning changed commitments as one operation: [`Store::plan_changes`](crate::store::Planning::plan_changes) drains a
//! batch of the change queue in one transaction, asks the caller's pure `plan` what
//! to write for each changed commitment, and writes it in a savepoint of its own, so
//! that a commitment that cannot be written is recorded as a problem and spoils none
//! of the others.

use jiff::Timestamp;

use super::{PlannedCommitment, Result};
use crate::clock::Clock;
use crate::planner::StepChange;

/// What planning one changed commitment writes: the changes to its steps, and the
/// problem its row has (`None` clears a problem recorded before).
#[derive(Debug, Default)]
pub struct Planned {
    /// Why the commitment cannot be planned, recorded as its problem.
    pub problem: Option<String>,
    /// The changes to its stored steps.
    pub changes: Vec<StepChange>,
}

/// Planning the commitments that changed.
pub trait Planning {
    /// Plans up to `limit` queued changes in one transaction: for each changed
    /// commitment still stored, first takes back the emails composed ahead of their
    /// time that have not left (their steps are planned again, so the fresh plan
    /// decides whether they still go, and when), then writes what `plan` makes of it
    /// as of `now`. Returns how many commitments were planned, 0 when the queue was
    /// empty.
    ///
    /// Emails are taken back as of the time on `clock` read inside the transaction,
    /// not as of `now`: see [`Store::withdraw_ahead`](crate::store::SqliteStore::withdraw_ahead).
    fn plan_changes(
        &self,
        limit: usize,
        now: Timestamp,
        clock: &Clock,
        plan: &dyn Fn(&PlannedCommitment) -> Planned,
    ) -> Result<usize>;
}
