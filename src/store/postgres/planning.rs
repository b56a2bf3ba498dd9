//! [`Planning`] on PostgreSQL, where several daemons may plan one database at once.
//!
//! A batch of `changes` is taken `FOR UPDATE SKIP LOCKED`, so each queued change is
//! planned by one daemon: another's batch is the next rows no one holds. The changed
//! commitments' rows are then locked in id order, so two daemons whose batches share a
//! commitment (changed twice) plan it one after the other, the second from what the
//! first wrote, and never deadlock. Only the changes taken are deleted, not every one
//! up to the last: a lower one may be another daemon's.

use jiff::Timestamp;

use super::commitments::{COLUMNS, stored_from_row};
use crate::clock::Clock;
use crate::planner::StepChange;
use crate::store::planning::{PlanWrites, plan_one};
use crate::store::postgres::{PostgresStore, from_ms, in_words, to_ms};
use crate::store::*;

/// A batch of changes this transaction holds: the commitments to plan, and the rows
/// of `changes` to delete once they are.
struct Taken {
    commitments: Vec<PlannedCommitment>,
    seqs: Vec<i64>,
}

impl PostgresStore {
    /// Takes up to `limit` queued changes no other transaction holds, locks their
    /// commitments, and reads each with its steps and history; `None` when there are
    /// none to take.
    fn take_changes(&self, limit: usize) -> Result<Option<Taken>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.query(
            "SELECT seq, commitment_id, changed_at FROM changes
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
            &[&limit],
        )?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut seqs = Vec::with_capacity(rows.len());
        // Each commitment once, in the order of its first change, with its earliest time.
        let mut groups: Vec<(i64, i64)> = Vec::new();
        for row in &rows {
            let (seq, id, at): (i64, i64, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            seqs.push(seq);
            match groups.iter_mut().find(|(g, _)| *g == id) {
                Some(group) => group.1 = group.1.min(at),
                None => groups.push((id, at)),
            }
        }
        let mut ids: Vec<i64> = groups.iter().map(|g| g.0).collect();
        ids.sort_unstable();
        // Read after the lock: each statement of a READ COMMITTED transaction sees what
        // was committed before it, so this is the row as the last planner left it.
        let locked = self.query(
            &format!("SELECT {COLUMNS} FROM commitments WHERE id = ANY($1) ORDER BY id FOR UPDATE"),
            &[&ids],
        )?;
        let mut rows_by_id = Vec::with_capacity(locked.len());
        for row in &locked {
            let stored = stored_from_row(row, 0)?;
            rows_by_id.push((stored.id, stored));
        }
        let mut commitments = Vec::with_capacity(groups.len());
        for (id, since) in groups {
            let row = rows_by_id
                .iter()
                .position(|(r, _)| *r == id)
                .map(|i| rows_by_id.swap_remove(i).1);
            commitments.push(PlannedCommitment {
                id,
                row,
                since: from_ms(since),
                steps: self.steps_of(id)?,
                history: self.history(id)?,
            });
        }
        Ok(Some(Taken { commitments, seqs }))
    }

    /// Records that commitment `id` cannot be planned, and why. Returns true when the
    /// problem is new or its reason changed, so it is logged once.
    pub(super) fn set_problem(&self, id: i64, reason: &str, now: Timestamp) -> Result<bool> {
        let previous: Option<String> = self
            .query_opt(
                "SELECT reason FROM problems WHERE commitment_id = $1",
                &[&id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if previous.as_deref() == Some(reason) {
            return Ok(false);
        }
        self.execute(
            "INSERT INTO problems (commitment_id, reason, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (commitment_id) DO UPDATE SET reason = excluded.reason, seen_at = excluded.seen_at",
            &[&id, &reason, &to_ms(now)],
        )?;
        Ok(true)
    }

    /// Clears the problem of commitment `id` once its row plans again.
    pub(super) fn clear_problem(&self, id: i64) -> Result<()> {
        self.execute("DELETE FROM problems WHERE commitment_id = $1", &[&id])?;
        Ok(())
    }
}

impl PlanWrites for PostgresStore {
    fn withdraw_ahead(&self, commitment_id: i64, now: Timestamp) -> Result<Vec<i64>> {
        PostgresStore::withdraw_ahead(self, commitment_id, now)
    }

    fn set_problem(&self, id: i64, reason: &str, now: Timestamp) -> Result<bool> {
        PostgresStore::set_problem(self, id, reason, now)
    }

    fn clear_problem(&self, id: i64) -> Result<()> {
        PostgresStore::clear_problem(self, id)
    }

    fn apply_step_changes(&self, id: i64, changes: &[StepChange], now: Timestamp) -> Result<()> {
        PostgresStore::apply_step_changes(self, id, changes, now)
    }
}

impl Planning for PostgresStore {
    fn plan_changes(
        &self,
        limit: usize,
        now: Timestamp,
        clock: &Clock,
        plan: &dyn Fn(&PlannedCommitment) -> Planned,
    ) -> Result<usize> {
        self.transaction(|s| {
            let Some(mut taken) = s.take_changes(limit)? else {
                return Ok::<_, StoreError>(0);
            };
            for changed in &mut taken.commitments {
                if changed.row.is_none() {
                    continue;
                }
                if let Err(e) = s.isolated(|s| plan_one(s, changed, now, clock, plan)) {
                    let e = in_words(&e);
                    tracing::error!(commitment = changed.id, cause = %e, "cannot plan a commitment");
                    s.set_problem(changed.id, &format!("cannot be planned: {e}"), now)?;
                }
            }
            s.execute("DELETE FROM changes WHERE seq = ANY($1)", &[&taken.seqs])?;
            Ok(taken.commitments.len().max(1))
        })
    }
}
