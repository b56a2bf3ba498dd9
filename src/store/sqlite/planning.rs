//! [`Planning`] on SQLite.

use jiff::Timestamp;

use crate::clock::Clock;
use crate::planner::StepChange;
use crate::store::planning::{PlanWrites, plan_one};
use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl PlanWrites for SqliteStore {
    fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>> {
        SqliteStore::withdraw_ahead(self, commitment_id, now)
    }

    fn set_problem(&self, id: i64, reason: &str, now: Timestamp) -> Result<bool> {
        SqliteStore::set_problem(self, id, reason, now)
    }

    fn clear_problem(&self, id: i64) -> Result<()> {
        SqliteStore::clear_problem(self, id)
    }

    fn apply_step_changes(&self, id: i64, changes: &[StepChange], now: Timestamp) -> Result<()> {
        SqliteStore::apply_step_changes(self, id, changes, now)
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
                if let Err(e) = s.isolated(|s| plan_one(s, changed, now, clock, plan)) {
                    tracing::error!(commitment = changed.id, cause = %e, "cannot plan a commitment");
                    s.set_problem(changed.id, &format!("cannot be planned: {e}"), now)?;
                }
            }
            s.finish_changes(batch.last_seq)?;
            Ok(batch.commitments.len().max(1))
        })
    }
}
