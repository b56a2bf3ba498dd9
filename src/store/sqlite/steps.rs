//! [`Steps`] on SQLite.

use jiff::{SignedDuration, Timestamp};
use rusqlite::{OptionalExtension, params};

use super::commitments::{COLUMNS, columns_of, stored_from_row};
use crate::planner::{SkipCode, Step, StepChange, StepKind, StepState};
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

/// The kinds composed ahead, as an SQL list: `'remind', 'overdue', ...`.
fn ahead_kinds() -> String {
    StepKind::AHEAD
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns [`step_from_row`] reads, of `steps` named `s`.
const STEP_COLUMNS: &str = "s.id, s.key, s.kind, s.rule, s.label, s.planned_at, s.fire_at, s.state, \
     s.skip_code, s.reason, s.late, s.updated_at, s.commitment_id";

/// The step in [`STEP_COLUMNS`] from `offset` on: the one place a row becomes a
/// [`Step`], its kind and state parsed here once.
fn step_from_row(
    r: &rusqlite::Row<'_>,
    offset: usize,
) -> rusqlite::Result<std::result::Result<Step, UnreadableStep>> {
    let at = |i: usize| offset + i;
    let id = r.get(at(0))?;
    let fire_at = from_ms(r.get(at(6))?);
    let kind: String = r.get(at(2))?;
    let state: String = r.get(at(7))?;
    let (kind, state) = match (kind.parse::<StepKind>(), state.parse::<StepState>()) {
        (Ok(kind), Ok(state)) => (kind, state),
        (Err(reason), _) | (_, Err(reason)) => {
            return Ok(Err(UnreadableStep {
                id,
                commitment_id: r.get(at(12))?,
                fire_at,
                reason,
            }));
        }
    };
    Ok(Ok(Step {
        id,
        key: r.get(at(1))?,
        kind,
        rule: r.get(at(3))?,
        label: r.get(at(4))?,
        planned_at: from_ms(r.get(at(5))?),
        fire_at,
        state,
        skip_code: r.get(at(8))?,
        reason: r.get(at(9))?,
        late: r.get(at(10))?,
        updated_at: from_ms(r.get(at(11))?),
    }))
}

impl SqliteStore {
    /// Up to `limit` queued changes, grouped by commitment, with each commitment's row
    /// and stored steps; `None` when the queue is empty.
    pub fn pending_changes(&self, limit: usize) -> Result<Option<ChangeBatch>> {
        // The limit is written into the statement: a bound LIMIT makes SQLite compile
        // the statement again at every run.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT commitment_id, MIN(changed_at), MAX(seq)
             FROM (SELECT seq, commitment_id, changed_at FROM changes ORDER BY seq LIMIT {limit})
             GROUP BY commitment_id ORDER BY MIN(seq)"
        ))?;
        let groups: Vec<(i64, i64, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        if groups.is_empty() {
            return Ok(None);
        }
        let last_seq = groups.iter().map(|g| g.2).max().unwrap_or(0);
        let mut commitments = Vec::with_capacity(groups.len());
        for (id, since, _) in groups {
            let row = self
                .conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM commitments WHERE id = ?1"))?
                .query_row([id], |r| stored_from_row(r, 0))
                .optional()?;
            commitments.push(PlannedCommitment {
                id,
                row,
                since: from_ms(since),
                steps: self.steps_of(id)?,
                history: self.history(id)?,
            });
        }
        Ok(Some(ChangeBatch {
            commitments,
            last_seq,
        }))
    }

    /// Removes the changes up to `last_seq` from the queue once they are planned.
    pub fn finish_changes(&self, last_seq: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM changes WHERE seq <= ?1")?
            .execute([last_seq])?;
        Ok(())
    }

    /// Writes the changes the planner decided for commitment `commitment_id`.
    pub fn apply_step_changes(
        &self,
        commitment_id: i64,
        changes: &[StepChange],
        now: Timestamp,
    ) -> Result<()> {
        for change in changes {
            match change {
                StepChange::Add { step, skip } => {
                    let (state, code, reason) = match skip {
                        None => (StepState::Planned.as_str(), None, None),
                        Some((code, reason)) => (
                            StepState::Skipped.as_str(),
                            Some(code.as_str()),
                            Some(reason),
                        ),
                    };
                    self.conn
                        .prepare_cached(
                            "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at,
                                                state, skip_code, reason, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                        )?
                        .execute(params![
                            commitment_id,
                            step.key,
                            step.kind.as_str(),
                            step.rule,
                            step.label,
                            to_ms(step.planned_at),
                            to_ms(step.fire_at),
                            state,
                            code,
                            reason,
                            to_ms(now)
                        ])?;
                }
                StepChange::Revive { id, step } | StepChange::Move { id, step } => {
                    self.conn
                        .prepare_cached(
                            "UPDATE steps SET state = 'planned', skip_code = NULL, reason = NULL, rule = ?2,
                                 label = ?3, planned_at = ?4, fire_at = ?5, updated_at = ?6 WHERE id = ?1",
                        )?
                        .execute(params![
                            id,
                            step.rule,
                            step.label,
                            to_ms(step.planned_at),
                            to_ms(step.fire_at),
                            to_ms(now)
                        ])?;
                }
                StepChange::Retire { id, code, reason } => {
                    self.skip_step(*id, *code, reason, now)?
                }
            }
        }
        Ok(())
    }

    /// Holds a planned step until `fire_at` (customer mail outside business hours).
    pub(super) fn hold_step(&self, id: i64, fire_at: Timestamp, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE steps SET fire_at = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![id, to_ms(fire_at), to_ms(now)])?;
        Ok(())
    }

    /// Records that commitment `id` cannot be planned, and why. Returns true when the
    /// problem is new or its reason changed, so it is logged once.
    pub(super) fn set_problem(&self, id: i64, reason: &str, now: Timestamp) -> Result<bool> {
        let previous: Option<String> = self
            .conn
            .prepare_cached("SELECT reason FROM problems WHERE commitment_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if previous.as_deref() == Some(reason) {
            return Ok(false);
        }
        self.conn
            .prepare_cached(
                "INSERT INTO problems (commitment_id, reason, seen_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (commitment_id) DO UPDATE SET reason = excluded.reason, seen_at = excluded.seen_at",
            )?
            .execute(params![id, reason, to_ms(now)])?;
        Ok(true)
    }

    /// Clears the problem of commitment `id` once its row plans again.
    pub(super) fn clear_problem(&self, id: i64) -> Result<()> {
        self.conn
            .prepare_cached("DELETE FROM problems WHERE commitment_id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Up to `limit` planned steps to queue now, in firing order (time, then id): those
    /// whose time is at or before `now`, and those of a kind composed ahead
    /// ([`StepKind::AHEAD`]) whose time is at or before `ahead`. With `after`, a step's
    /// time and id, only steps after it in that order: the planning task reads the next
    /// batch while the one before is still being composed. A step that cannot be read
    /// comes as an [`UnreadableStep`], so that the caller can fail it and go on.
    pub(super) fn due_steps(
        &self,
        now: Timestamp,
        ahead: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: usize,
    ) -> Result<Vec<std::result::Result<DueStep, UnreadableStep>>> {
        let columns = columns_of("c");
        // The limit is written into the statement, as in `pending_changes`.
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM steps n WHERE n.commitment_id = s.commitment_id
                            AND n.state = 'planned' AND n.fire_at <= ?1 AND n.fire_at > s.fire_at),
                    {STEP_COLUMNS}, {columns}
             FROM steps s JOIN commitments c ON c.id = s.commitment_id
             WHERE s.state = 'planned' AND s.fire_at <= ?2 AND (s.fire_at, s.id) > (?3, ?4)
               AND (s.fire_at <= ?1 OR s.kind IN ({kinds}))
             ORDER BY s.fire_at, s.id LIMIT {limit}",
            kinds = ahead_kinds()
        ))?;
        let (after_at, after_id) = after.map_or((i64::MIN, i64::MIN), |(at, id)| (to_ms(at), id));
        let params = params![to_ms(now), to_ms(ahead), after_at, after_id];
        let rows = stmt.query_map(params, |r| {
            let newer_due_exists = r.get(0)?;
            Ok(match step_from_row(r, 1)? {
                Ok(step) => Ok(DueStep {
                    step,
                    newer_due_exists,
                    row: stored_from_row(r, 14)?,
                }),
                Err(unreadable) => Err(unreadable),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks a step skipped with its reason.
    pub fn skip_step(&self, id: i64, code: SkipCode, reason: &str, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE steps SET state = 'skipped', skip_code = ?2, reason = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, code.as_str(), reason, to_ms(now)])?;
        Ok(())
    }

    /// Marks a step failed before any email left (e.g. its template failed).
    pub(super) fn fail_step(&self, id: i64, reason: &str, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE steps SET state = 'failed', reason = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, reason, to_ms(now)])?;
        Ok(())
    }

    /// Marks a step queued: its deliveries are in the outbox.
    pub fn queue_step(&self, id: i64, late: bool, now: Timestamp) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE steps SET state = 'queued', late = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, late, to_ms(now)])?;
        Ok(())
    }
}

impl Steps for SqliteStore {
    fn replan_open(&self, now: Timestamp) -> Result<usize> {
        Ok(self.conn.execute(
            "INSERT INTO changes (commitment_id, changed_at)
             SELECT id, ?1 FROM commitments WHERE status = 'open' OR status IS NULL",
            [to_ms(now)],
        )?)
    }

    fn next_fire_at(&self, now: Timestamp, lead: SignedDuration) -> Result<Option<Timestamp>> {
        let earliest: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(fire_at) FROM steps WHERE state = 'planned'")?
            .query_row([], |r| r.get(0))?;
        let Some(earliest) = earliest.map(from_ms) else {
            return Ok(None);
        };
        if lead.is_zero() {
            return Ok(Some(earliest));
        }
        let ahead: Option<i64> = self
            .conn
            .prepare_cached(&format!(
                "SELECT MIN(fire_at) FROM steps
                 WHERE state = 'planned' AND fire_at > ?1 AND fire_at < ?2 AND kind IN ({})",
                ahead_kinds()
            ))?
            .query_row(params![to_ms(now + lead), to_ms(earliest + lead)], |r| {
                r.get(0)
            })?;
        Ok(Some(match ahead.map(from_ms) {
            Some(at) => earliest.min(at - lead),
            None => earliest,
        }))
    }

    fn steps_of(&self, id: i64) -> Result<Vec<Step>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STEP_COLUMNS} FROM steps s WHERE s.commitment_id = ?1 ORDER BY s.fire_at, s.id"
        ))?;
        let rows = stmt.query_map([id], |r| step_from_row(r, 0))?;
        let mut steps = Vec::new();
        for row in rows {
            steps.push(row??);
        }
        Ok(steps)
    }
}
