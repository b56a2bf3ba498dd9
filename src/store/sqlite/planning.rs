//! [`Planning`] on SQLite.

use jiff::Timestamp;

use crate::clock::Clock;
use crate::planner::StepState;
use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl SqliteStore {
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

impl Planning for SqliteStore {
    fn plan_changes(
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
}
