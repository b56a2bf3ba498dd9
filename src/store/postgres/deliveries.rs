//! The outbox's bookkeeping that planning and `followup retry` need: emails composed
//! ahead taken back, held mail made due. Putting emails in and sending them, with
//! their claims, come with the groups that send.

mod records;

use ::postgres::Row;
use jiff::Timestamp;

use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

/// The columns [`record_from_row`] reads.
const RECORD_COLUMNS: &str =
    "id, step_id, audience, recipient, subject, message_id, state, attempts, last_error,
     created_at, sent_at, next_attempt_at";

/// Holds for a step (`s`) whose emails were all composed before its time and are
/// pending, never tried and due after `$2`.
const AHEAD_UNSENT: &str = "EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = s.id)
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = s.id
                    AND NOT (d.state = 'pending' AND d.attempts = 0
                             AND d.created_at < s.fire_at AND d.next_attempt_at > $2))";

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
    /// Takes back the emails of `commitment_id` composed ahead of their time, for the
    /// commitment changed before they left: every queued step whose emails were all
    /// composed before its time and are pending, never tried and due after `now` loses
    /// them and is planned again. Returns those steps. (An email composed at its time
    /// and held back by an outage is not taken back.)
    ///
    /// `now` must be read in the caller's transaction, which holds the commitment's
    /// row: an email a sender has taken was due before this `now`, so it is never
    /// taken back.
    pub fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>> {
        let steps = self
            .query(
                &format!(
                    "SELECT s.id FROM steps s
                     WHERE s.commitment_id = $1 AND s.state = 'queued' AND {AHEAD_UNSENT}
                     ORDER BY s.id"
                ),
                &[&commitment_id, &to_ms(now)],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<Vec<i64>, _>>()?;
        if !steps.is_empty() {
            self.execute("DELETE FROM deliveries WHERE step_id = ANY($1)", &[&steps])?;
            self.execute(
                "UPDATE steps SET state = 'planned', late = false, updated_at = $2 WHERE id = ANY($1)",
                &[&steps, &to_ms(now)],
            )?;
        }
        Ok(steps)
    }

    /// Makes every held email due at `now`, or only those of commitment `of`: the
    /// pending ones waiting for a retry (tried before) or held back by an outage (with
    /// the reason as their last error). Attempts made stay counted. An email never
    /// tried still goes no earlier than its step's time: one composed ahead and held
    /// by an outage keeps that. Returns how many emails it brought forward.
    pub fn retry_held(&self, now: Timestamp, of: Option<i64>) -> Result<usize> {
        const DUE: &str = "CASE WHEN attempts > 0 THEN $1 ELSE GREATEST($1, COALESCE(
            (SELECT s.fire_at FROM steps s WHERE s.id = deliveries.step_id), $1)) END";
        let brought = self.execute(
            &format!(
                "UPDATE deliveries SET next_attempt_at = {DUE}
                 WHERE state = 'pending' AND next_attempt_at > {DUE}
                   AND (attempts > 0 OR last_error IS NOT NULL)
                   AND ($2::BIGINT IS NULL OR commitment_id = $2)"
            ),
            &[&to_ms(now), &of],
        )?;
        Ok(brought as usize)
    }
}
