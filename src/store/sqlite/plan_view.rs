//! [`PlanViews`] on SQLite.

use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl PlanViews for SqliteStore {
    fn plan_view(&self, id: i64, customer: &str) -> Result<PlanView> {
        self.snapshot(|s| {
            Ok(PlanView {
                history: s.history(id)?,
                revisions: s.revisions_of(id)?,
                steps: s.steps_of(id)?,
                customer_rows: s.customer_rows(customer)?,
            })
        })?
    }
}
