//! [`PlanViews`] on PostgreSQL.

use crate::store::postgres::PostgresStore;
use crate::store::*;

impl PlanViews for PostgresStore {
    /// One `REPEATABLE READ` snapshot: the steps are those the history led to.
    fn plan_view(&self, id: i64, customer: &str) -> Result<PlanView> {
        self.snapshot(|s| {
            Ok(PlanView {
                history: s.history(id)?,
                revisions: s.revisions_of(id)?,
                steps: s.steps_of(id)?,
                customer_rows: s.customer_rows(customer)?,
            })
        })
    }
}
