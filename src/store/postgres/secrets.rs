//! The link key of a store shared by several daemons, kept in the database.

use super::PostgresStore;
use crate::store::Result;

impl PostgresStore {
    /// The key links are signed with: the one kept in the store, or `fresh`, kept from
    /// now on, if there was none. Two daemons making one at once keep the first.
    pub fn link_key(&self, fresh: &[u8]) -> Result<Vec<u8>> {
        self.execute(
            "UPDATE store_identity SET link_key = $1 WHERE link_key IS NULL",
            &[&fresh],
        )?;
        let row = self.query_one("SELECT link_key FROM store_identity", &[])?;
        Ok(row.get(0))
    }
}
