//! [`Outbox`] on PostgreSQL: the sender's records and reads of due emails, where several
//! daemons send from one outbox.
//!
//! A daemon takes due emails by writing its claim's token into them (`claimed_by`),
//! choosing among the unclaimed ones with `FOR UPDATE SKIP LOCKED`, so two daemons never
//! take one email. It records an attempt's outcome only on an email it still holds, and
//! the record frees the email (a retry may go from any daemon). An email whose daemon
//! was taken over is free again and goes from another: at most the emails that daemon
//! had in flight go twice, with their Message-ID. Everything runs under the claim
//! ([`PostgresStore::check_claim`]), in one transaction with a savepoint per group.

use std::collections::HashSet;

use jiff::Timestamp;

use super::{PostgresStore, from_ms, to_ms};
use crate::mail::Audience;
use crate::store::{
    Claim, DeliveryOutcome, Outbox, PendingDelivery, Recorded, Result, TakeDue, Taken, Turn,
};

impl Outbox for PostgresStore {
    fn record_and_take(
        &self,
        claim: &Claim,
        records: &[&[DeliveryOutcome]],
        takes: &[TakeDue<'_>],
    ) -> Result<Turn> {
        let token = claim.token as i64;
        // Nearly every turn only records emails sent: one statement, its own
        // transaction, writes them all. Should it fail, the turn runs as below.
        let mut fast = None;
        if !records.is_empty() && records.iter().all(|group| only_sent(group)) {
            match self.record_sent(token, records) {
                Ok(Some(recorded)) => fast = Some(recorded),
                Ok(None) => return Err(super::claims::refused(claim)),
                Err(e) => {
                    tracing::debug!(cause = %e, "recording sent emails at once failed; recording them one by one")
                }
            }
        }
        if takes.is_empty()
            && let Some(recorded) = fast.take()
        {
            return Ok((recorded.into_iter().map(Ok).collect(), Vec::new()));
        }
        self.transaction(|s| {
            s.check_claim(claim)?;
            let written = match fast {
                Some(recorded) => recorded.into_iter().map(Ok).collect(),
                None => records
                    .iter()
                    .map(|outcomes| s.isolated(|s| s.write_outcomes(token, outcomes)))
                    .collect(),
            };
            let taken = takes
                .iter()
                .map(|due| s.isolated(|s| s.take_due(token, due)))
                .collect();
            Ok((written, taken))
        })
    }
}

/// How a step whose emails are all sent or failed is settled: failed, with the
/// reason, if one of them failed, else sent.
const SETTLED_AS: &str = "
    state = CASE WHEN EXISTS (SELECT 1 FROM deliveries d
                              WHERE d.step_id = steps.id AND d.state = 'failed')
                 THEN 'failed' ELSE 'sent' END,
    reason = (SELECT d.last_error FROM deliveries d
              WHERE d.step_id = steps.id AND d.state = 'failed' LIMIT 1)";

/// Every outcome of `group` is an email sent.
fn only_sent(group: &[DeliveryOutcome]) -> bool {
    group
        .iter()
        .all(|o| matches!(o, DeliveryOutcome::Sent { .. }))
}

impl PostgresStore {
    /// Makes the rest of the transaction read a queue (due steps, pending emails) in
    /// the order of its index, stopping at the first rows it needs. While the tables'
    /// statistics are older than a burst of new rows, which they are until the
    /// server's autovacuum has looked (up to a minute), the planner takes the queue
    /// for nearly empty and prefers to read all of it and sort; with thousands due,
    /// that is milliseconds for every batch.
    pub(super) fn in_queue_order(&self) -> Result<()> {
        self.batch("SET LOCAL enable_bitmapscan = off")
    }

    /// Runs `f` inside a savepoint of the current transaction: if it fails, its writes
    /// are undone and the error returned, and the transaction goes on.
    pub(super) fn isolated<T>(&self, f: impl FnOnce(&PostgresStore) -> Result<T>) -> Result<T> {
        self.batch("SAVEPOINT item")?;
        match f(self) {
            Ok(value) => {
                self.batch("RELEASE SAVEPOINT item")?;
                Ok(value)
            }
            Err(e) => {
                self.batch("ROLLBACK TO SAVEPOINT item; RELEASE SAVEPOINT item")?;
                Err(e)
            }
        }
    }

    fn take_due(&self, token: i64, due: &TakeDue<'_>) -> Result<Taken> {
        let now = due.clock.now();
        let batch = self.take_pending(token, now, due.limit, due.skip)?;
        let next = if batch.len() < due.limit {
            self.in_queue_order()?;
            self.query_opt(
                "SELECT next_attempt_at FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at > $1 AND claimed_by IS NULL
                 ORDER BY next_attempt_at LIMIT 1",
                &[&to_ms(now)],
            )?
            .map(|row| from_ms(row.get(0)))
        } else {
            None
        };
        Ok((batch, next))
    }

    /// Claims up to `limit` pending emails due at `now` for the daemon of `token`, in
    /// the order they were queued, leaving out `skip` and those another daemon holds or
    /// is taking at this moment.
    fn take_pending(
        &self,
        token: i64,
        now: Timestamp,
        limit: usize,
        skip: &HashSet<i64>,
    ) -> Result<Vec<PendingDelivery>> {
        let skip: Vec<i64> = skip.iter().copied().collect();
        let rows = self.query(
            "WITH taken AS (
                 SELECT id FROM deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $2
                   AND (claimed_by IS NULL OR claimed_by = $1) AND NOT (id = ANY($4))
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             UPDATE deliveries d SET claimed_by = $1 FROM taken WHERE d.id = taken.id
             RETURNING d.id, d.sender, d.recipient, d.message, d.attempts, d.created_at",
            &[&token, &to_ms(now), &(limit as i64), &skip],
        )?;
        let mut out: Vec<PendingDelivery> = rows
            .iter()
            .map(|r| PendingDelivery {
                id: r.get(0),
                sender: r.get(1),
                recipient: r.get(2),
                message: r.get(3),
                attempts: r.get::<_, i32>(4).max(0) as u32,
                created_at: from_ms(r.get(5)),
            })
            .collect();
        // RETURNING keeps no order.
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// Records every email of `groups` as sent, each outcome a
    /// [`DeliveryOutcome::Sent`], in one statement that is its own transaction: what
    /// [`PostgresStore::mark_sent`] does one email at a time, under the claim of
    /// `token`. `None` if that claim no longer holds, and then nothing is written.
    ///
    /// Every part of the statement sees the tables as they were before it, so a step
    /// is settled when none of its emails is pending but those sent here, and none
    /// that waited falls due here. A step's emails are found by step alone, as in
    /// [`PostgresStore::settle_step_of`].
    fn record_sent(
        &self,
        token: i64,
        groups: &[&[DeliveryOutcome]],
    ) -> Result<Option<Vec<Recorded>>> {
        let mut ids = Vec::new();
        let mut ats = Vec::new();
        for group in groups {
            for outcome in group.iter() {
                if let DeliveryOutcome::Sent { id, at } = outcome {
                    ids.push(*id);
                    ats.push(to_ms(*at));
                }
            }
        }
        let row = self.query_one(
            &format!(
                "WITH claim AS (SELECT token FROM daemons WHERE token = $1 FOR SHARE),
             sent AS (
                 UPDATE deliveries d SET state = 'sent', attempts = d.attempts + 1,
                     sent_at = x.at, last_error = NULL, claimed_by = NULL
                 FROM UNNEST($2::BIGINT[], $3::BIGINT[]) AS x(id, at), claim
                 WHERE d.id = x.id AND d.claimed_by = claim.token
                 RETURNING d.id, d.step_id, d.audience, x.at),
             released AS (
                 UPDATE deliveries w SET state = 'pending', next_attempt_at = sent.at
                 FROM sent
                 WHERE sent.audience = 'customer' AND w.step_id = sent.step_id
                   AND w.state = 'waiting'
                   AND (SELECT count(*) FILTER (WHERE o.state = 'pending'
                                                AND o.id NOT IN (SELECT id FROM sent))
                        FROM deliveries o WHERE o.step_id = w.step_id) = 0
                 RETURNING sent.id, w.step_id),
             settled AS (
                 UPDATE steps SET updated_at = sent.at, {SETTLED_AS}
                 FROM sent
                 WHERE steps.id = sent.step_id AND steps.state = 'queued'
                   AND (SELECT count(*) FILTER (WHERE o.state = 'pending'
                                                AND o.id NOT IN (SELECT id FROM sent))
                        FROM deliveries o WHERE o.step_id = steps.id) = 0
                   AND steps.id NOT IN (SELECT step_id FROM released))
             SELECT EXISTS (SELECT 1 FROM claim), ARRAY(SELECT id FROM released)"
            ),
            &[&token, &ids, &ats],
        )?;
        if !row.try_get::<_, bool>(0)? {
            return Ok(None);
        }
        let released: Vec<i64> = row.try_get(1)?;
        Ok(Some(
            groups
                .iter()
                .map(|group| Recorded {
                    released: 0,
                    followers: released
                        .iter()
                        .filter(|id| group.iter().any(|o| matches!(o, DeliveryOutcome::Sent { id: sent, .. } if sent == *id)))
                        .count(),
                })
                .collect(),
        ))
    }

    /// Records the outcomes of many attempts, in order, on the emails the daemon of
    /// `token` holds; an outcome for one it no longer holds is left out.
    fn write_outcomes(&self, token: i64, outcomes: &[DeliveryOutcome]) -> Result<Recorded> {
        let mut recorded = Recorded::default();
        for outcome in outcomes {
            match outcome {
                DeliveryOutcome::Sent { id, at } => {
                    recorded.followers += self.mark_sent(token, *id, *at)?
                }
                DeliveryOutcome::Retry {
                    id,
                    error,
                    retry_at,
                } => {
                    self.execute(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $3,
                             next_attempt_at = $4, claimed_by = NULL
                         WHERE id = $1 AND claimed_by = $2",
                        &[id, &token, error, &to_ms(*retry_at)],
                    )?;
                }
                DeliveryOutcome::Failed { id, error, at } => {
                    self.mark_failed(token, *id, error, *at)?
                }
                DeliveryOutcome::PlanAgain { delivery, at } => {
                    self.execute(
                        "INSERT INTO changes (commitment_id, changed_at)
                         SELECT commitment_id, $2 FROM deliveries
                         WHERE id = $1 AND commitment_id IS NOT NULL",
                        &[delivery, &to_ms(*at)],
                    )?;
                }
                DeliveryOutcome::HoldAll { until, why } => {
                    // Others' emails in flight are theirs to record.
                    self.execute(
                        "UPDATE deliveries SET next_attempt_at = $1, last_error = $2
                         WHERE state = 'pending' AND next_attempt_at < $1
                           AND (claimed_by IS NULL OR claimed_by = $3)",
                        &[&to_ms(*until), why, &token],
                    )?;
                }
                DeliveryOutcome::ReleaseAll { now } => {
                    recorded.released += self.retry_held(*now, None)?
                }
            }
        }
        Ok(recorded)
    }

    /// Records that the server accepted email `id`, makes the emails waiting for it due
    /// and settles its step; returns how many fell due. Nothing if the daemon of
    /// `token` no longer holds it.
    fn mark_sent(&self, token: i64, id: i64, now: Timestamp) -> Result<usize> {
        let Some(row) = self.query_opt(
            "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, sent_at = $3,
                 last_error = NULL, claimed_by = NULL
             WHERE id = $1 AND claimed_by = $2 RETURNING audience",
            &[&id, &token, &to_ms(now)],
        )?
        else {
            return Ok(0);
        };
        let audience: String = row.get(0);
        let followers = if audience == Audience::Customer.as_str() {
            self.execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = $2
                 WHERE step_id = (SELECT step_id FROM deliveries WHERE id = $1) AND state = 'waiting'
                   AND (SELECT count(*) FILTER (WHERE o.state = 'pending') FROM deliveries o
                        WHERE o.step_id = deliveries.step_id) = 0",
                &[&id, &to_ms(now)],
            )?
        } else {
            0
        };
        self.settle_step_of(id, now)?;
        Ok(followers as usize)
    }

    /// Records that email `id` failed for good and drops the emails of its step that
    /// waited for it. Nothing if the daemon of `token` no longer holds it.
    fn mark_failed(&self, token: i64, id: i64, error: &str, now: Timestamp) -> Result<()> {
        let failed = self.execute(
            "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_error = $3,
                 failed_at = $4, claimed_by = NULL
             WHERE id = $1 AND claimed_by = $2",
            &[&id, &token, &error, &to_ms(now)],
        )?;
        if failed == 0 {
            return Ok(());
        }
        self.execute(
            "UPDATE deliveries SET state = 'skipped', last_error = $2
             WHERE step_id = (SELECT step_id FROM deliveries WHERE id = $1) AND state = 'waiting'",
            &[&id, &format!("not sent: email {id} of this step failed")],
        )?;
        self.settle_step_of(id, now)
    }

    /// Marks the step of email `delivery_id` sent, or failed if one of its emails
    /// failed, once none of them is pending. Its emails are found by their step alone
    /// (`FILTER`, not a condition an index of pending emails could serve), since a
    /// planner working from statistics older than a burst may otherwise scan every
    /// pending email for each one sent.
    fn settle_step_of(&self, delivery_id: i64, now: Timestamp) -> Result<()> {
        self.execute(
            &format!(
                "UPDATE steps SET updated_at = $2, {SETTLED_AS}
             WHERE id = (SELECT step_id FROM deliveries WHERE id = $1)
               AND state = 'queued'
               AND (SELECT count(*) FILTER (WHERE d.state = 'pending') FROM deliveries d
                    WHERE d.step_id = steps.id) = 0"
            ),
            &[&delivery_id, &to_ms(now)],
        )?;
        Ok(())
    }
}
