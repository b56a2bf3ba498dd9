//! [`Jobs`] on PostgreSQL: an occurrence of a calendar job runs once across every
//! daemon of the database, by whichever records it first. The record is a row unique
//! per (schedule, occurrence): a second daemon inserting the same one waits for the
//! first's transaction on the unique index, and then finds it there and does nothing.
//! No leader is needed.

use jiff::Timestamp;

use super::commitments::{columns_of, stored_from_row};
use crate::commitment::StoredCommitment;
use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

impl PostgresStore {
    /// Records a run of schedule `name` for the occurrence `planned_at`; `None` if that
    /// occurrence already ran.
    fn record_run(
        &self,
        name: &str,
        job: &str,
        planned_at: Timestamp,
        now: Timestamp,
    ) -> Result<Option<i64>> {
        let row = self.query_opt(
            "INSERT INTO job_runs (schedule, job, planned_at, ran_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (schedule, planned_at) DO NOTHING RETURNING id",
            &[&name, &job, &to_ms(planned_at), &to_ms(now)],
        )?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// When the last run of schedule `name` happened (wall-clock), if it ever ran.
    fn last_ran_at(&self, name: &str) -> Result<Option<Timestamp>> {
        let row = self.query_opt(
            "SELECT ran_at FROM job_runs WHERE schedule = $1 ORDER BY planned_at DESC LIMIT 1",
            &[&name],
        )?;
        Ok(row
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()?
            .map(from_ms))
    }

    /// Deletes the records of emails sent before `before`; commitments, steps and
    /// failed emails stay. Returns how many were deleted.
    fn prune_sent(&self, before: Timestamp) -> Result<usize> {
        let pruned = self.execute(
            "DELETE FROM deliveries WHERE state = 'sent' AND sent_at < $1",
            &[&to_ms(before)],
        )?;
        Ok(pruned as usize)
    }
}

impl Jobs for PostgresStore {
    fn run_occurrence(
        &self,
        claim: &Claim,
        occurrence: &Occurrence<'_>,
        now: Timestamp,
        compose: &dyn Fn(JobReads<'_>, &JobRun) -> Result<JobOutput>,
    ) -> Result<usize> {
        self.transaction(|s| {
            s.check_claim(claim)?;
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
            s.execute(
                "UPDATE job_runs SET summary = $2 WHERE id = $1",
                &[&id, &output.summary],
            )?;
            Ok(output.deliveries.len())
        })
    }

    fn last_run(&self, name: &str) -> Result<Option<Timestamp>> {
        let ms: Option<i64> = self
            .query_one(
                "SELECT MAX(planned_at) FROM job_runs WHERE schedule = $1",
                &[&name],
            )?
            .try_get(0)?;
        Ok(ms.map(from_ms))
    }

    fn customer_updates_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(StoredCommitment, Timestamp, String)>> {
        self.query(
            &format!(
                "SELECT d.sent_at, d.subject, {}
                 FROM deliveries d JOIN steps s ON s.id = d.step_id JOIN commitments c ON c.id = d.commitment_id
                 WHERE d.state = 'sent' AND d.audience = 'customer' AND d.sent_at >= $1
                   AND s.kind IN ('customer_update', 'delay_notice')
                 ORDER BY d.sent_at",
                columns_of("c")
            ),
            &[&to_ms(since)],
        )?
        .iter()
        .map(|r| Ok((stored_from_row(r, 2)?, from_ms(r.try_get(0)?), r.try_get(1)?)))
        .collect()
    }

    fn owner_mail_failed_since(&self, since: Timestamp) -> Result<Vec<OwnerMailFailed>> {
        self.query(
            &format!(
                "SELECT COALESCE(d.failed_at, d.created_at), d.subject, COALESCE(d.last_error, ''), {}
                 FROM deliveries d JOIN commitments c ON c.id = d.commitment_id
                 WHERE d.state = 'failed' AND d.audience = 'owner'
                   AND COALESCE(d.failed_at, d.created_at) >= $1
                 ORDER BY COALESCE(d.failed_at, d.created_at), d.id",
                columns_of("c")
            ),
            &[&to_ms(since)],
        )?
        .iter()
        .map(|r| {
            Ok((
                stored_from_row(r, 3)?,
                from_ms(r.try_get(0)?),
                r.try_get(1)?,
                r.try_get(2)?,
            ))
        })
        .collect()
    }

    fn report_rows(&self) -> Result<Vec<ReportRow>> {
        self.report_rows_where("true", &[])
    }
}
