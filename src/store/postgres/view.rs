//! [`Views`] on PostgreSQL.

use crate::planner::StepKind;
use crate::store::postgres::PostgresStore;
use crate::store::*;

impl Views for PostgresStore {
    fn commitment_view(&self, id: i64, update_kind: StepKind) -> Result<CommitmentView> {
        self.snapshot(|s| {
            Ok(CommitmentView {
                glance: s.glance(id, update_kind)?,
                revisions: s.revisions_of(id)?,
                steps: s.steps_of(id)?,
                deliveries: s.deliveries_of(id)?,
            })
        })
    }
}
