//! [`DeliveryRecords`] on SQLite.

use rusqlite::params;

use crate::planner::FailedEmail;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::deliveries::{RECORD_COLUMNS, record_from_row};
use crate::store::sqlite::from_ms;
use crate::store::*;

impl SqliteStore {
    /// The emails of commitment `id`'s steps that failed for good, in order, with the
    /// audience and the step kind of each; which ones the owner hears of is the
    /// planner's to say ([`crate::planner::failures_to_report`]).
    pub fn failed_emails(&self, id: i64) -> Result<Vec<FailedEmail>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, COALESCE(d.failed_at, d.created_at), d.audience, s.kind
             FROM deliveries d JOIN steps s ON s.id = d.step_id
             WHERE d.commitment_id = ?1 AND d.state = 'failed'
             ORDER BY d.id",
        )?;
        let rows = stmt.query_map([id], |r| {
            Ok(FailedEmail {
                delivery: r.get(0)?,
                at: from_ms(r.get(1)?),
                audience: r.get(2)?,
                kind: r.get::<_, String>(3)?.parse().ok(),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every delivery about commitment `id`, oldest first.
    pub fn deliveries_of(&self, id: i64) -> Result<Vec<DeliveryRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM deliveries WHERE commitment_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], record_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl DeliveryRecords for SqliteStore {
    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM deliveries WHERE id = ?1"
        ))?;
        let mut rows = stmt.query_map([id], record_from_row)?;
        Ok(rows.next().transpose()?)
    }

    fn deliveries_to(&self, address: &str) -> Result<Vec<DeliveryRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM deliveries WHERE recipient = ?1 COLLATE NOCASE ORDER BY id"
        ))?;
        let rows = stmt.query_map([address.trim()], record_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn message_of(&self, commitment_id: i64, delivery_id: i64) -> Result<Option<Vec<u8>>> {
        use rusqlite::OptionalExtension as _;
        Ok(self
            .conn
            .query_row(
                "SELECT message FROM deliveries WHERE id = ?1 AND commitment_id = ?2",
                params![delivery_id, commitment_id],
                |r| r.get(0),
            )
            .optional()?)
    }
}
