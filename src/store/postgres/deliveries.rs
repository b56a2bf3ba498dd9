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

/// Holds for an email (`d`) of step `s` composed before the step's time that is
/// pending, never tried, due after `$2` and held by no sender.
const UNSENT: &str = "d.state = 'pending' AND d.attempts = 0 AND d.claimed_by IS NULL
    AND d.created_at < s.fire_at AND d.next_attempt_at > $2";

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
    /// An email a sender holds (`claimed_by`) is not taken back, nor are the others
    /// of its step; nor is one locked at this moment, which a sender may be taking
    /// (`SKIP LOCKED`: planning never waits for a sender, so the two cannot deadlock).
    /// The emails taken back stay locked until the transaction ends, so no sender
    /// takes one meanwhile, whatever the daemons' clocks say.
    pub fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>> {
        let emails: Vec<(i64, i64)> = self
            .query(
                "SELECT d.id, s.id FROM steps s JOIN deliveries d ON d.step_id = s.id
                 WHERE s.commitment_id = $1 AND s.state = 'queued'",
                &[&commitment_id],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        if emails.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = emails.iter().map(|e| e.0).collect();
        let free: Vec<i64> = self
            .query(
                &format!(
                    "SELECT d.id FROM deliveries d JOIN steps s ON s.id = d.step_id
                     WHERE d.id = ANY($1) AND {UNSENT}
                     FOR UPDATE OF d SKIP LOCKED"
                ),
                &[&ids, &to_ms(now)],
            )?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let kept: Vec<i64> = emails
            .iter()
            .filter(|(id, _)| !free.contains(id))
            .map(|e| e.1)
            .collect();
        let mut steps: Vec<i64> = emails
            .iter()
            .map(|e| e.1)
            .filter(|step| !kept.contains(step))
            .collect();
        steps.sort_unstable();
        steps.dedup();
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
