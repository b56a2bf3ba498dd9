//! The reads of `deliveries` that the groups done so far need (a commitment's emails,
//! a customer's, the failed ones the planner counts). The outbox itself, with its
//! claims, comes with the groups that send.

use ::postgres::Row;

use crate::planner::FailedEmail;
use crate::store::postgres::{PostgresStore, from_ms};
use crate::store::*;

/// The columns [`record_from_row`] reads.
const RECORD_COLUMNS: &str =
    "id, step_id, audience, recipient, subject, message_id, state, attempts, last_error,
     created_at, sent_at, next_attempt_at";

fn record_from_row(r: &Row) -> Result<DeliveryRecord> {
    let attempts: i32 = r.try_get(7)?;
    Ok(DeliveryRecord {
        id: r.try_get(0)?,
        step_id: r.try_get(1)?,
        audience: r.try_get(2)?,
        recipient: r.try_get(3)?,
        subject: r.try_get(4)?,
        message_id: r.try_get(5)?,
        state: r.try_get(6)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error: r.try_get(8)?,
        created_at: from_ms(r.try_get(9)?),
        sent_at: r.try_get::<_, Option<i64>>(10)?.map(from_ms),
        next_attempt_at: from_ms(r.try_get(11)?),
    })
}

impl PostgresStore {
    /// Every delivery about commitment `id`, oldest first.
    pub(super) fn deliveries_of(&self, id: i64) -> Result<Vec<DeliveryRecord>> {
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

    /// Every delivery to `address` (any case), oldest first.
    pub(super) fn deliveries_to(&self, address: &str) -> Result<Vec<DeliveryRecord>> {
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

    /// The emails of commitment `id`'s steps that failed for good, in order, with the
    /// audience and the step kind of each.
    pub(super) fn failed_emails(&self, id: i64) -> Result<Vec<FailedEmail>> {
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
