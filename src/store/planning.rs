//! Planning changed commitments as one operation: [`Store::plan_changes`] drains a
//! batch of the change queue in one transaction, asks the caller's pure `plan` what
//! to write for each changed commitment, and writes it in a savepoint of its own, so
//! that a commitment that cannot be written is recorded as a problem and spoils none
//! of the others.

use jiff::Timestamp;

use super::{PlannedCommitment, Result, Store, StoreError};
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

impl Store {
    /// Plans up to `limit` queued changes in one transaction: for each changed
    /// commitment still stored, first takes back the emails composed ahead of their
    /// time that have not left (their steps are planned again, so the fresh plan
    /// decides whether they still go, and when), then writes what `plan` makes of it
    /// as of `now`. Returns how many commitments were planned, 0 when the queue was
    /// empty.
    ///
    /// Emails are taken back as of the time on `clock` read inside the transaction,
    /// not as of `now`: see [`Store::withdraw_ahead`].
    pub fn plan_changes(
        &self,
        limit: usize,
        now: Timestamp,
        clock: &Clock,
        plan: &dyn Fn(&PlannedCommitment) -> Planned,
    ) -> Result<usize> {
        self.transaction(|s| {
            let Some(mut batch) = s.pending_changes(limit)? else {
                return Ok::<_, StoreError>(0);
            };
            for changed in &mut batch.commitments {
                if changed.row.is_none() {
                    continue;
                }
                if let Err(e) = s.isolated(|s| s.plan_one(changed, now, clock, plan)) {
                    tracing::error!(commitment = changed.id, cause = %e, "cannot plan a commitment");
                    s.set_problem(changed.id, &format!("cannot be planned: {e}"), now)?;
                }
            }
            s.finish_changes(batch.last_seq)?;
            Ok(batch.commitments.len().max(1))
        })
    }

    fn plan_one(
        &self,
        changed: &mut PlannedCommitment,
        now: Timestamp,
        clock: &Clock,
        plan: &dyn Fn(&PlannedCommitment) -> Planned,
    ) -> Result<()> {
        if changed.steps.iter().any(|s| s.state == StepState::Queued) {
            let withdrawn = self.withdraw_ahead(changed.id, clock.now())?;
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
            None => self.clear_problem(changed.id)?,
            Some(reason) => {
                if self.set_problem(changed.id, reason, now)? {
                    tracing::warn!(commitment = changed.id, problem = %reason, "commitment cannot be planned; its steps are held until the row is fixed");
                }
            }
        }
        self.apply_step_changes(changed.id, &planned.changes, now)
    }
}
