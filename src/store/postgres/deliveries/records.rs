//! [`DeliveryRecords`] on PostgreSQL, and the reads of a commitment's emails that the
//! views and the planner's history make.

use super::{RECORD_COLUMNS, record_from_row};
use crate::planner::FailedEmail;
use crate::store::postgres::{PostgresStore, from_ms};
use crate::store::*;

impl PostgresStore {
    /// Every delivery about commitment `id`, oldest first.
    pub(in crate::store::postgres) fn deliveries_of(&self, id: i64) -> Result<Vec<DeliveryRecord>> {
        self.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM deliveries WHERE commitment_id = $1 ORDER BY id"
            ),
            &[&id],
        )?
        .iter()
        .map(record_from_row)
        .collect()
    }

    /// The emails of commitment `id`'s steps that failed for good, in order, with the
    /// audience and the step kind of each.
    pub(in crate::store::postgres) fn failed_emails(&self, id: i64) -> Result<Vec<FailedEmail>> {
        self.query(
            "SELECT d.id, COALESCE(d.failed_at, d.created_at), d.audience, s.kind
             FROM deliveries d JOIN steps s ON s.id = d.step_id
             WHERE d.commitment_id = $1 AND d.state = 'failed'
             ORDER BY d.id",
            &[&id],
        )?
        .iter()
        .map(|r| {
            Ok(FailedEmail {
                delivery: r.try_get(0)?,
                at: from_ms(r.try_get(1)?),
                audience: r.try_get(2)?,
                kind: r.try_get::<_, String>(3)?.parse().ok(),
            })
        })
        .collect()
    }
}

impl DeliveryRecords for PostgresStore {
    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        self.query_opt(
            &format!("SELECT {RECORD_COLUMNS} FROM deliveries WHERE id = $1"),
            &[&id],
        )?
        .as_ref()
        .map(record_from_row)
        .transpose()
    }

    fn deliveries_to(&self, address: &str) -> Result<Vec<DeliveryRecord>> {
        self.query(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM deliveries WHERE lower(recipient) = lower($1) ORDER BY id"
            ),
            &[&address.trim()],
        )?
        .iter()
        .map(record_from_row)
        .collect()
    }

    fn message_of(&self, commitment_id: i64, delivery_id: i64) -> Result<Option<Vec<u8>>> {
        self.query_opt(
            "SELECT message FROM deliveries WHERE id = $1 AND commitment_id = $2",
            &[&delivery_id, &commitment_id],
        )?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(StoreError::from)
    }
}
