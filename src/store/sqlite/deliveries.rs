//! [`Deliveries`] on SQLite.

use std::collections::HashSet;

use jiff::Timestamp;
use rusqlite::params;

use crate::mail::Audience;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

pub(super) const RECORD_COLUMNS: &str =
    "id, step_id, audience, recipient, subject, message_id, state, attempts, last_error,
     created_at, sent_at, next_attempt_at";

/// Holds for a step (`s`) whose emails were all composed before its time and are
/// pending, never tried and due after `?2`.
const AHEAD_UNSENT: &str = "EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = s.id)
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = s.id
                    AND NOT (d.state = 'pending' AND d.attempts = 0
                             AND d.created_at < s.fire_at AND d.next_attempt_at > ?2))";

pub(super) fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: r.get(0)?,
        step_id: r.get(1)?,
        audience: r.get(2)?,
        recipient: r.get(3)?,
        subject: r.get(4)?,
        message_id: r.get(5)?,
        state: r.get(6)?,
        attempts: r.get(7)?,
        last_error: r.get(8)?,
        created_at: from_ms(r.get(9)?),
        sent_at: r.get::<_, Option<i64>>(10)?.map(from_ms),
        next_attempt_at: from_ms(r.get(11)?),
        taken_over: 0,
    })
}

impl SqliteStore {
    /// The threads commitment `id` already has, one per audience it has emailed.
    pub(super) fn threads_of(&self, commitment_id: i64) -> Result<Threads> {
        // SQLite takes the bare column from the row that has the MIN().
        let mut stmt = self.conn.prepare_cached(
            "SELECT audience, message_id, MIN(id) FROM deliveries WHERE commitment_id = ?1 GROUP BY audience",
        )?;
        let rows = stmt.query_map([commitment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(Threads {
            store_id: self.id.clone(),
            roots: rows.collect::<rusqlite::Result<_>>()?,
        })
    }

    /// Puts an email in the outbox at `now`, due for its first attempt at `due` (later
    /// than `now` for an email composed ahead of its time).
    pub(super) fn add_delivery(
        &self,
        d: &NewDelivery,
        now: Timestamp,
        due: Timestamp,
    ) -> Result<i64> {
        let (step_id, commitment_id, run_id) = match d.origin {
            Origin::Step {
                step_id,
                commitment_id,
            } => (Some(step_id), Some(commitment_id), None),
            Origin::Job { run_id } => (None, None, Some(run_id)),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO deliveries (step_id, commitment_id, job_run_id, audience, sender, recipient, subject,
                                         message_id, message, next_attempt_at, created_at)
                 VALUES (?1, ?2, ?10, ?3, ?4, ?5, ?6, ?7, ?8, ?11, ?9)",
            )?
            .execute(params![
                step_id,
                commitment_id,
                d.audience,
                d.sender,
                d.recipient,
                d.subject,
                d.message_id,
                d.message,
                to_ms(now),
                run_id,
                to_ms(due)
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Takes back the emails of `commitment_id` composed ahead of their time, for the
    /// commitment changed before they left: every queued step whose emails were all
    /// composed before its time and are pending, never tried and due after `now` loses
    /// them and is planned again. Returns those steps. (An email composed at its time
    /// and held back by an outage is not taken back.)
    ///
    /// `now` must be read in the caller's transaction: the sender reads what is due in
    /// transactions of its own, so an email it has taken was due before this `now` and
    /// is never taken back.
    pub fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>> {
        let steps = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.id FROM steps s
                 WHERE s.commitment_id = ?1 AND s.state = 'queued' AND {AHEAD_UNSENT}"
            ))?
            .query_map(params![commitment_id, to_ms(now)], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        self.plan_again(&steps, now)?;
        Ok(steps)
    }

    fn withdraw_all_ahead_in(&self, now: Timestamp) -> Result<usize> {
        // Candidates come from the pending deliveries' index, not from the steps or
        // from every delivery ever sent, so a start costs what is pending.
        let steps = self
            .conn
            .prepare_cached(&format!(
                "SELECT s.id FROM steps s
                 WHERE s.id IN (SELECT d.step_id FROM deliveries d INDEXED BY deliveries_pending
                                WHERE d.state = 'pending' AND d.attempts = 0 AND d.step_id IS NOT NULL)
                   AND s.state = 'queued' AND {AHEAD_UNSENT}"
            ))?
            // ?1 is not used here; ?2 is "due after", and any time will do.
            .query_map(params![Option::<i64>::None, i64::MIN], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        self.plan_again(&steps, now)?;
        Ok(steps.len())
    }

    /// Deletes the emails of `steps` and plans the steps again.
    fn plan_again(&self, steps: &[i64], now: Timestamp) -> Result<()> {
        for id in steps {
            self.conn
                .prepare_cached("DELETE FROM deliveries WHERE step_id = ?1")?
                .execute([id])?;
            self.conn
                .prepare_cached(
                    "UPDATE steps SET state = 'planned', late = 0, updated_at = ?2 WHERE id = ?1",
                )?
                .execute(params![id, to_ms(now)])?;
        }
        Ok(())
    }

    /// Puts an email in the outbox at `now` that waits for the other emails of its step:
    /// it falls due once they are accepted, and is dropped if one fails for good. The
    /// owner's copy of a customer update waits so: it says the customer was told.
    pub(super) fn add_waiting_delivery(&self, d: &NewDelivery, now: Timestamp) -> Result<i64> {
        let id = self.add_delivery(d, now, now)?;
        self.conn
            .prepare_cached("UPDATE deliveries SET state = 'waiting' WHERE id = ?1")?
            .execute([id])?;
        Ok(id)
    }

    /// Records an email that is not sent (a dry run), with the reason, for `show`.
    pub(super) fn add_skipped_delivery(
        &self,
        d: &NewDelivery,
        reason: &str,
        now: Timestamp,
    ) -> Result<i64> {
        let id = self.add_delivery(d, now, now)?;
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'skipped', last_error = ?2 WHERE id = ?1",
            )?
            .execute(params![id, reason])?;
        Ok(id)
    }

    /// Up to `limit` pending deliveries due at `now`, in the order they were queued (the
    /// order of their steps' times), leaving out `skip` (those already taken).
    ///
    /// The ids come from the `deliveries_queue` index alone, so rows in `skip` and rows
    /// not yet due cost an index entry each, and only the rows returned are read.
    pub fn pending_deliveries(
        &self,
        now: Timestamp,
        limit: usize,
        skip: &HashSet<i64>,
    ) -> Result<Vec<PendingDelivery>> {
        let mut ids = Vec::with_capacity(limit);
        {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM deliveries INDEXED BY deliveries_queue
                 WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY id",
            )?;
            let mut rows = stmt.query([to_ms(now)])?;
            while ids.len() < limit
                && let Some(row) = rows.next()?
            {
                let id: i64 = row.get(0)?;
                if !skip.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, sender, recipient, message, attempts, created_at FROM deliveries WHERE id = ?1",
        )?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(stmt.query_row([id], |r| {
                Ok(PendingDelivery {
                    id: r.get(0)?,
                    sender: r.get(1)?,
                    recipient: r.get(2)?,
                    message: r.get(3)?,
                    attempts: r.get(4)?,
                    created_at: from_ms(r.get(5)?),
                })
            })?);
        }
        Ok(out)
    }

    /// When the earliest pending delivery not yet due at `now` is due, if any.
    pub(super) fn next_attempt_at_after(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(next_attempt_at) FROM deliveries WHERE state = 'pending' AND next_attempt_at > ?1")?
            .query_row([to_ms(now)], |r| r.get(0))?;
        Ok(ms.map(from_ms))
    }

    /// Records the outcomes of many attempts, in order, inside the caller's transaction.
    pub(super) fn write_outcomes(&self, outcomes: &[DeliveryOutcome]) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        for outcome in outcomes {
            match outcome {
                DeliveryOutcome::Sent { id, at } => {
                    recorded.followers += self.mark_sent(*id, *at)?
                }
                DeliveryOutcome::Retry {
                    id,
                    error,
                    retry_at,
                } => self.delivery_retry(*id, error, *retry_at)?,
                DeliveryOutcome::Failed { id, error, at } => self.mark_failed(*id, error, *at)?,
                DeliveryOutcome::PlanAgain { delivery, at } => {
                    self.plan_again_of(*delivery, *at)?
                }
                DeliveryOutcome::HoldAll { until, why } => {
                    self.postpone_pending(*until, why)?;
                }
                DeliveryOutcome::ReleaseAll { now } => {
                    recorded.released += self.retry_held(*now, None)?
                }
            }
        }
        Ok(recorded)
    }

    /// Records that the server accepted delivery `id`, makes the emails waiting for it
    /// due (see [`SqliteStore::add_waiting_delivery`]), and settles its step. Returns how
    /// many emails fell due.
    fn mark_sent(&self, id: i64, now: Timestamp) -> Result<usize> {
        use rusqlite::OptionalExtension as _;
        let audience: Option<String> = self
            .conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = ?2,
                     last_error = NULL WHERE id = ?1 RETURNING audience",
            )?
            .query_row(params![id, to_ms(now)], |r| r.get(0))
            .optional()?;
        // Only a customer's email has others waiting for it (the owner's copy of an
        // update): every other one, most of the outbox, skips the look.
        if audience.as_deref() != Some(Audience::Customer.as_str()) {
            self.settle_step_of(id, now)?;
            return Ok(0);
        }
        let followers = self
            .conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = ?2
                 WHERE step_id = (SELECT step_id FROM deliveries WHERE id = ?1) AND state = 'waiting'
                   AND NOT EXISTS (SELECT 1 FROM deliveries o
                                   WHERE o.step_id = deliveries.step_id AND o.state = 'pending')",
            )?
            .execute(params![id, to_ms(now)])?;
        self.settle_step_of(id, now)?;
        Ok(followers)
    }

    /// Records a failed attempt of delivery `id` that will be tried again at `retry_at`.
    pub fn delivery_retry(&self, id: i64, error: &str, retry_at: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, error, to_ms(retry_at)])?;
        Ok(())
    }

    /// Records that delivery `id` failed for good and drops the emails of its step that
    /// waited for it.
    fn mark_failed(&self, id: i64, error: &str, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_error = ?2, failed_at = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, error, to_ms(now)])?;
        self.conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'skipped', last_error = ?2
                 WHERE step_id = (SELECT step_id FROM deliveries WHERE id = ?1) AND state = 'waiting'",
            )?
            .execute(params![id, format!("not sent: email {id} of this step failed")])?;
        self.settle_step_of(id, now)
    }

    /// Queues the commitment of delivery `id`, if it has one, for planning at `now`.
    fn plan_again_of(&self, id: i64, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO changes (commitment_id, changed_at)
                 SELECT commitment_id, ?2 FROM deliveries WHERE id = ?1 AND commitment_id IS NOT NULL",
            )?
            .execute(params![id, to_ms(now)])?;
        Ok(())
    }

    /// Holds every pending delivery due before `until` back to `until`, with `why` as its
    /// last error: the transport is down, so none of them could go sooner. They then go
    /// in order when it is back.
    pub fn postpone_pending(&self, until: Timestamp, why: &str) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE deliveries SET next_attempt_at = ?1, last_error = ?2
                 WHERE state = 'pending' AND next_attempt_at < ?1",
            )?
            .execute(params![to_ms(until), why])?)
    }

    /// Makes every held email due at `now`, or only those of commitment `of`: the
    /// pending ones waiting for a retry (tried before) or held back by an outage (with
    /// the reason as their last error). For when the fault is gone: the transport works
    /// again, a reload changed the mail settings, or `followup retry` asks. Attempts
    /// made stay counted. An email never tried still goes no earlier than its step's
    /// time: one composed ahead and held by an outage keeps that. Returns how many
    /// emails it brought forward.
    pub fn retry_held(&self, now: Timestamp, of: Option<i64>) -> Result<usize> {
        const DUE: &str = "CASE WHEN attempts > 0 THEN ?1 ELSE MAX(?1, COALESCE(
            (SELECT s.fire_at FROM steps s WHERE s.id = deliveries.step_id), ?1)) END";
        Ok(self
            .conn
            .prepare_cached(&format!(
                "UPDATE deliveries SET next_attempt_at = {DUE}
                 WHERE state = 'pending' AND next_attempt_at > {DUE}
                   AND (attempts > 0 OR last_error IS NOT NULL)
                   AND (?2 IS NULL OR commitment_id = ?2)"
            ))?
            .execute(params![to_ms(now), of])?)
    }

    /// Once no delivery of a step is pending, the step is `sent` (all sent) or `failed`.
    fn settle_step_of(&self, delivery_id: i64, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE steps SET updated_at = ?2,
                     state = CASE WHEN EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = steps.id AND d.state = 'failed')
                                  THEN 'failed' ELSE 'sent' END,
                     reason = (SELECT d.last_error FROM deliveries d WHERE d.step_id = steps.id AND d.state = 'failed' LIMIT 1)
                 WHERE id = (SELECT step_id FROM deliveries WHERE id = ?1)
                   AND state = 'queued'
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.step_id = steps.id AND d.state = 'pending')",
            )?
            .execute(params![delivery_id, to_ms(now)])?;
        Ok(())
    }
}

impl Deliveries for SqliteStore {
    fn withdraw_all_ahead(&self, now: Timestamp) -> Result<usize> {
        self.transaction(|s| s.withdraw_all_ahead_in(now))
    }

    fn mail_due(&self, now: Timestamp) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deliveries INDEXED BY deliveries_pending
                                WHERE state = 'pending' AND next_attempt_at <= ?1)",
            )?
            .query_row([to_ms(now)], |r| r.get(0))?)
    }
}

mod records;

#[cfg(test)]
mod tests;
