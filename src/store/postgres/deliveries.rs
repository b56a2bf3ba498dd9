//! The outbox's bookkeeping: emails put in, emails composed ahead taken back, held
//! mail made due. Sending them, with their claims, is `outbox.rs`.

mod records;

use std::collections::HashMap;

use ::postgres::Row;
use jiff::Timestamp;

use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

/// The columns [`record_from_row`] reads.
const RECORD_COLUMNS: &str =
    "id, step_id, audience, recipient, subject, message_id, state, attempts, last_error,
     created_at, sent_at, next_attempt_at, taken_over";

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
        taken_over: u32::try_from(r.try_get::<_, i32>(12)?).unwrap_or(0),
    })
}

/// The columns an email's origin fills: its step, commitment and job run.
fn origin_columns(origin: Origin) -> (Option<i64>, Option<i64>, Option<i64>) {
    match origin {
        Origin::Step {
            step_id,
            commitment_id,
        } => (Some(step_id), Some(commitment_id), None),
        Origin::Job { run_id } => (None, None, Some(run_id)),
    }
}

impl PostgresStore {
    /// The threads of a commitment that has emailed no one yet.
    pub(super) fn no_threads(&self) -> Threads {
        Threads {
            store_id: self.id.clone(),
            roots: Vec::new(),
        }
    }

    /// The threads each of commitments `ids` already has, one per audience it has
    /// emailed, in one statement.
    pub(super) fn threads_of_all(&self, ids: &[i64]) -> Result<HashMap<i64, Threads>> {
        let mut all: HashMap<i64, Threads> =
            ids.iter().map(|id| (*id, self.no_threads())).collect();
        for row in self.query(
            "SELECT DISTINCT ON (commitment_id, audience) commitment_id, audience, message_id
             FROM deliveries WHERE commitment_id = ANY($1) ORDER BY commitment_id, audience, id",
            &[&ids],
        )? {
            if let Some(threads) = all.get_mut(&row.try_get(0)?) {
                threads.roots.push((row.try_get(1)?, row.try_get(2)?));
            }
        }
        Ok(all)
    }

    /// Puts an email in the outbox at `now` in `state`, due for its first attempt at
    /// `due` (later than `now` for an email composed ahead of its time), with
    /// `last_error` as the reason for one that is not sent.
    fn insert_delivery(
        &self,
        d: &NewDelivery,
        now: Timestamp,
        due: Timestamp,
        state: &str,
        last_error: Option<&str>,
    ) -> Result<i64> {
        let (step_id, commitment_id, run_id) = origin_columns(d.origin);
        let row = self.query_one(
            "INSERT INTO deliveries (step_id, commitment_id, job_run_id, audience, sender, recipient,
                                     subject, message_id, message, next_attempt_at, created_at,
                                     state, last_error)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
            &[
                &step_id,
                &commitment_id,
                &run_id,
                &d.audience,
                &d.sender,
                &d.recipient,
                &d.subject,
                &d.message_id,
                &d.message,
                &to_ms(due),
                &to_ms(now),
                &state,
                &last_error,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    /// Puts emails in the outbox at `now` in one statement, their ids in the order
    /// given: each due for its first attempt at its time, or, without one, waiting
    /// for the other emails of its step ([`PostgresStore::add_waiting_delivery`]).
    pub(super) fn add_deliveries(
        &self,
        emails: &[(&NewDelivery, Option<Timestamp>)],
        now: Timestamp,
    ) -> Result<()> {
        let mut step_ids = Vec::new();
        let mut commitment_ids = Vec::new();
        let mut run_ids = Vec::new();
        for (d, _) in emails {
            let (step, commitment, run) = origin_columns(d.origin);
            step_ids.push(step);
            commitment_ids.push(commitment);
            run_ids.push(run);
        }
        let text =
            |f: fn(&NewDelivery) -> &str| emails.iter().map(|(d, _)| f(d)).collect::<Vec<_>>();
        let messages: Vec<&[u8]> = emails.iter().map(|(d, _)| d.message.as_slice()).collect();
        let due: Vec<i64> = emails
            .iter()
            .map(|(_, at)| to_ms(at.unwrap_or(now)))
            .collect();
        let states: Vec<&str> = emails
            .iter()
            .map(|(_, at)| if at.is_some() { "pending" } else { "waiting" })
            .collect();
        self.execute(
            "INSERT INTO deliveries (step_id, commitment_id, job_run_id, audience, sender, recipient,
                                     subject, message_id, message, next_attempt_at, created_at,
                                     state)
             SELECT step_id, commitment_id, job_run_id, audience, sender, recipient, subject,
                    message_id, message, next_attempt_at, $12, state
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[],
                         $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BYTEA[], $10::BIGINT[],
                         $11::TEXT[])
                  WITH ORDINALITY AS x(step_id, commitment_id, job_run_id, audience, sender,
                                       recipient, subject, message_id, message,
                                       next_attempt_at, state, n)
             ORDER BY n",
            &[
                &step_ids,
                &commitment_ids,
                &run_ids,
                &text(|d| &d.audience),
                &text(|d| &d.sender),
                &text(|d| &d.recipient),
                &text(|d| &d.subject),
                &text(|d| &d.message_id),
                &messages,
                &due,
                &states,
                &to_ms(now),
            ],
        )?;
        Ok(())
    }

    /// Puts an email in the outbox at `now`, due for its first attempt at `due`.
    pub(super) fn add_delivery(
        &self,
        d: &NewDelivery,
        now: Timestamp,
        due: Timestamp,
    ) -> Result<i64> {
        self.insert_delivery(d, now, due, "pending", None)
    }

    /// Puts an email in the outbox at `now` that waits for the other emails of its step:
    /// it falls due once they are accepted, and is dropped if one fails for good.
    pub(super) fn add_waiting_delivery(&self, d: &NewDelivery, now: Timestamp) -> Result<i64> {
        self.insert_delivery(d, now, now, "waiting", None)
    }

    /// Records an email that is not sent (a dry run), with the reason, for `show`.
    pub(super) fn add_skipped_delivery(
        &self,
        d: &NewDelivery,
        reason: &str,
        now: Timestamp,
    ) -> Result<i64> {
        self.insert_delivery(d, now, now, "skipped", Some(reason))
    }

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
        self.take_back(commitment_id, now, now)
    }

    /// [`PostgresStore::withdraw_ahead`] of the emails due after `after`, the steps
    /// planned again at `now`.
    fn take_back(&self, commitment_id: i64, after: Timestamp, now: Timestamp) -> Result<Vec<i64>> {
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
                &[&ids, &to_ms(after)],
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

/// A daemon taking back at its start the emails an earlier run composed ahead
/// ([`Deliveries::withdraw_all_ahead`]) does so only while no other daemon serves the
/// database: another one running has planned every change meanwhile, and its emails
/// composed ahead are as they should be. An email a daemon holds is never taken back.
impl Deliveries for PostgresStore {
    fn withdraw_all_ahead(&self, now: Timestamp) -> Result<usize> {
        self.transaction(|s| {
            let others: i64 = s
                .query_one(
                    &format!(
                        "SELECT count(*) FROM daemons WHERE lease_until >= {}",
                        super::claims::DB_NOW
                    ),
                    &[],
                )?
                .try_get(0)?;
            // The caller's own claim is one of them.
            if others > 1 {
                return Ok(0);
            }
            let commitments: Vec<i64> = s
                .query(
                    "SELECT DISTINCT s.commitment_id FROM steps s
                     JOIN deliveries d ON d.step_id = s.id
                     WHERE d.state = 'pending' AND d.attempts = 0 AND s.state = 'queued'
                     ORDER BY 1",
                    &[],
                )?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            let mut taken = 0;
            for id in commitments {
                // Whether their time has come or not.
                taken += s.take_back(id, Timestamp::MIN, now)?.len();
            }
            Ok(taken)
        })
    }

    fn mail_due(&self, now: Timestamp) -> Result<bool> {
        Ok(self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM deliveries
                                WHERE state = 'pending' AND next_attempt_at <= $1)",
                &[&to_ms(now)],
            )?
            .try_get(0)?)
    }
}
