//! Planning changed commitments as one operation: [`Store::plan_changes`](crate::store::Planning::plan_changes) drains a
//! batch of the change queue in one transaction, asks the caller's pure `plan` what
//! to write for each changed commitment, and writes it in a savepoint of its own, so
//! that a commitment that cannot be written is recorded as a problem and spoils none
//! of the others.

use jiff::Timestamp;

use super::{PlannedCommitment, Result};
use crate::clock::Clock;
use crate::planner::{StepChange, StepState};

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

/// The writes planning one commitment makes, as each store makes them.
pub(super) trait PlanWrites {
    /// Takes back the emails of the commitment composed ahead and not yet left;
    /// returns their steps, planned again.
    fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>>;
    /// Records the row's problem; `true` if it is new.
    fn set_problem(&self, id: i64, reason: &str, now: Timestamp) -> Result<bool>;
    /// Clears a problem recorded before.
    fn clear_problem(&self, id: i64) -> Result<()>;
    /// Writes the changes to the commitment's steps.
    fn apply_step_changes(&self, id: i64, changes: &[StepChange], now: Timestamp) -> Result<()>;
}

/// Plans one changed commitment in the caller's savepoint, the same in every store:
/// first takes back what was composed ahead of a queued step (as of `clock`, read
/// here), then writes what `plan` makes of it as of `now`.
pub(super) fn plan_one(
    store: &impl PlanWrites,
    changed: &mut PlannedCommitment,
    now: Timestamp,
    clock: &Clock,
    plan: &dyn Fn(&PlannedCommitment) -> Planned,
) -> Result<()> {
    if changed.steps.iter().any(|s| s.state == StepState::Queued) {
        let withdrawn = store.withdraw_ahead(changed.id, clock.now())?;
        if !withdrawn.is_empty() {
            tracing::debug!(commitment = changed.id, steps = ?withdrawn, "emails composed ahead taken back");
        }
        for step in changed.steps.iter_mut() {
            if withdrawn.contains(&step.id) {
                step.state = StepState::Planned;
            }
        }
    }
    let planned = plan(changed);
    match &planned.problem {
        None => store.clear_problem(changed.id)?,
        Some(reason) => {
            if store.set_problem(changed.id, reason, now)? {
                tracing::warn!(commitment = changed.id, problem = %reason, "commitment cannot be planned; its steps are held until the row is fixed");
            }
        }
    }
    store.apply_step_changes(changed.id, &planned.changes, now)
}
