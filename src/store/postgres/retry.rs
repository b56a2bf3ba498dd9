//! [`Retries`] on PostgreSQL.

use jiff::Timestamp;

use crate::store::postgres::PostgresStore;
use crate::store::*;

impl Retries for PostgresStore {
    fn retry(&self, of: Option<i64>, now: Timestamp) -> Result<usize> {
        self.transaction(|s| {
            if let Some(id) = of
                && !s.has_commitment(id)?
            {
                return Err(StoreError::NotFound(id));
            }
            s.retry_held(now, of)
        })
    }
}
