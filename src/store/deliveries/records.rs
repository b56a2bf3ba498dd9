//! The outbox's records as `show`, the pages and the owner's notices read them: what
//! was sent to whom, what failed, and the messages exactly as they left.

use rusqlite::params;

use super::{DeliveryRecord, RECORD_COLUMNS, record_from_row};
use crate::planner::FailedEmail;
use crate::store::{Result, Store, from_ms};

impl Store {
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

    /// One delivery, for the notice that tells the owner it failed.
    pub fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM deliveries WHERE id = ?1"
        ))?;
        let mut rows = stmt.query_map([id], record_from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// Every email to `address` (any case), oldest first.
    pub fn deliveries_to(&self, address: &str) -> Result<Vec<DeliveryRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM deliveries WHERE recipient = ?1 COLLATE NOCASE ORDER BY id"
        ))?;
        let rows = stmt.query_map([address.trim()], record_from_row)?;
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

    /// The stored message of email `delivery_id` of commitment `commitment_id`, exactly
    /// as it was (or, in a dry run, would have been) sent; `None` if the commitment has
    /// no such email.
    pub fn message_of(&self, commitment_id: i64, delivery_id: i64) -> Result<Option<Vec<u8>>> {
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
