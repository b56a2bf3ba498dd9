//! [`Jobs`] on SQLite.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::commitments::{columns_of, stored_from_row};
use crate::commitment::StoredCommitment;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

impl SqliteStore {
    /// Records a run of schedule `name` for the occurrence `planned_at`; `None` if that
    /// occurrence already ran.
    pub(super) fn record_run(
        &self,
        name: &str,
        job: &str,
        planned_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO job_runs (schedule, job, planned_at, ran_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (schedule, planned_at) DO NOTHING",
            )?
            .execute(params![name, job, to_ms(planned_at), to_ms(now)])?;
        Ok((inserted == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Notes what a run did.
    pub(super) fn finish_run(&self, id: i64, summary: &str) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE job_runs SET summary = ?2 WHERE id = ?1")?
            .execute(params![id, summary])?;
        Ok(())
    }

    /// [`SqliteStore::report_rows`] of the commitments (`c`) for which `filter` holds.
    pub(crate) fn report_rows_where(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<ReportRow>> {
        let columns = columns_of("c");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT (SELECT r.old_due FROM revisions r WHERE r.commitment_id = c.id ORDER BY r.id LIMIT 1),
                    (SELECT group_concat(d.sent_at) FROM deliveries d JOIN steps s ON s.id = d.step_id
                      WHERE d.commitment_id = c.id AND d.state = 'sent' AND d.audience = 'customer'
                        AND s.kind IN ('customer_update', 'delay_notice')),
                    {columns}
             FROM commitments c WHERE {filter} ORDER BY c.id"
        ))?;
        let rows = stmt.query_map(params, |r| {
            let sent: Option<String> = r.get(1)?;
            Ok(ReportRow {
                first_old_due: r.get(0)?,
                updates_sent: sent
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|ms| ms.parse().ok().map(from_ms))
                    .collect(),
                row: stored_from_row(r, 2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes the records of emails sent before `before`; commitments, steps and
    /// failed emails stay. Returns how many were deleted.
    pub(super) fn prune_sent(&self, before: Timestamp) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM deliveries WHERE state = 'sent' AND sent_at < ?1")?
            .execute([to_ms(before)])?)
    }

    /// When the last run of schedule `name` happened (wall-clock), if it ever ran.
    pub(super) fn last_ran_at(&self, name: &str) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT ran_at FROM job_runs WHERE schedule = ?1 ORDER BY planned_at DESC LIMIT 1",
            )?
            .query_row([name], |r| r.get(0))
            .optional()?;
        Ok(ms.map(from_ms))
    }
}

impl Jobs for SqliteStore {
    fn run_occurrence(
        &self,
        claim: &Claim,
        occurrence: &Occurrence<'_>,
        now: Timestamp,
        compose: &dyn Fn(JobReads<'_>, &JobRun) -> Result<JobOutput>,
    ) -> Result<usize> {
        self.check_claim(claim)?;
        self.transaction(|s| {
            let previous = s.last_ran_at(occurrence.schedule)?;
            let Some(id) = s.record_run(occurrence.schedule, occurrence.job, occurrence.at, now)?
            else {
                return Ok(0);
            };
            let pruned = match occurrence.prune_before {
                Some(before) => s.prune_sent(before)?,
                None => 0,
            };
            let run = JobRun {
                id,
                previous,
                pruned,
            };
            let output = compose(JobReads(s), &run)?;
            for delivery in &output.deliveries {
                match output.not_sent {
                    Some(why) => s.add_skipped_delivery(delivery, why, now)?,
                    None => s.add_delivery(delivery, now, now)?,
                };
            }
            s.finish_run(id, &output.summary)?;
            Ok(output.deliveries.len())
        })
    }

    fn last_run(&self, name: &str) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(planned_at) FROM job_runs WHERE schedule = ?1")?
            .query_row([name], |r| r.get(0))?;
        Ok(ms.map(from_ms))
    }

    fn customer_updates_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(StoredCommitment, Timestamp, String)>> {
        let columns = columns_of("c");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT d.sent_at, d.subject, {columns}
             FROM deliveries d JOIN steps s ON s.id = d.step_id JOIN commitments c ON c.id = d.commitment_id
             WHERE d.state = 'sent' AND d.audience = 'customer' AND d.sent_at >= ?1
               AND s.kind IN ('customer_update', 'delay_notice')
             ORDER BY d.sent_at"
        ))?;
        let rows = stmt.query_map([to_ms(since)], |r| {
            Ok((stored_from_row(r, 2)?, from_ms(r.get(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn owner_mail_failed_since(&self, since: Timestamp) -> Result<Vec<OwnerMailFailed>> {
        let columns = columns_of("c");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT COALESCE(d.failed_at, d.created_at), d.subject, COALESCE(d.last_error, ''), {columns}
             FROM deliveries d JOIN commitments c ON c.id = d.commitment_id
             WHERE d.state = 'failed' AND d.audience = 'owner'
               AND COALESCE(d.failed_at, d.created_at) >= ?1
             ORDER BY COALESCE(d.failed_at, d.created_at), d.id"
        ))?;
        let rows = stmt.query_map([to_ms(since)], |r| {
            Ok((
                stored_from_row(r, 3)?,
                from_ms(r.get(0)?),
                r.get(1)?,
                r.get(2)?,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn report_rows(&self) -> Result<Vec<ReportRow>> {
        self.report_rows_where("1", [])
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use jiff::SignedDuration;

    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_occurrence_runs_once_and_not_under_a_stale_claim() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let lease = SignedDuration::from_secs(15);
        let stale = store.claim_work("host:1", lease, now).unwrap();
        let claim = store.claim_work("host:1", lease, now).unwrap();
        let occurrence = Occurrence {
            schedule: "nightly",
            job: "prune",
            at: now,
            prune_before: Some(now),
        };
        let composed = Cell::new(0);
        let compose = |_: JobReads<'_>, run: &JobRun| {
            composed.set(composed.get() + 1);
            Ok(JobOutput {
                summary: format!("pruned {}", run.pruned),
                ..JobOutput::default()
            })
        };
        assert!(matches!(
            store.run_occurrence(&stale, &occurrence, now, &compose),
            Err(StoreError::Claim(_))
        ));
        assert_eq!(composed.get(), 0);
        assert_eq!(store.last_run("nightly").unwrap(), None);
        store
            .run_occurrence(&claim, &occurrence, now, &compose)
            .unwrap();
        store
            .run_occurrence(&claim, &occurrence, now, &compose)
            .unwrap();
        assert_eq!(
            composed.get(),
            1,
            "the second run of the occurrence did nothing"
        );
        assert_eq!(store.last_run("nightly").unwrap(), Some(now));
    }
}
