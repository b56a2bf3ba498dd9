//! [`Steps`] on PostgreSQL, and the writes of steps that planning makes.

use ::postgres::Row;
use ::postgres::types::ToSql;
use jiff::{SignedDuration, Timestamp};

use crate::planner::{SkipCode, Step, StepChange, StepKind, StepState};
use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

/// The kinds composed ahead, as an SQL list: `'remind', 'overdue', ...`.
pub(super) fn ahead_kinds() -> String {
    StepKind::AHEAD
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns [`step_from_row`] reads.
pub(super) const STEP_COLUMNS: &str = "s.id, s.key, s.kind, s.rule, s.label, s.planned_at, s.fire_at, s.state, \
     s.skip_code, s.reason, s.late, s.updated_at, s.commitment_id";

/// The step in [`STEP_COLUMNS`]: the one place a row becomes a [`Step`], its kind and
/// state parsed here once.
fn step_from_row(r: &Row) -> Result<Step> {
    step_at(r, 0)
}

/// The step in [`STEP_COLUMNS`] from column `offset` on; a kind or state that does not
/// read is [`StoreError::Step`].
pub(super) fn step_at(r: &Row, offset: usize) -> Result<Step> {
    let at = |i: usize| offset + i;
    let id = r.try_get(at(0))?;
    let fire_at = from_ms(r.try_get(at(6))?);
    let kind: String = r.try_get(at(2))?;
    let state: String = r.try_get(at(7))?;
    let (kind, state) = match (kind.parse::<StepKind>(), state.parse::<StepState>()) {
        (Ok(kind), Ok(state)) => (kind, state),
        (Err(reason), _) | (_, Err(reason)) => {
            return Err(StoreError::Step(UnreadableStep {
                id,
                commitment_id: r.try_get(at(12))?,
                fire_at,
                reason,
            }));
        }
    };
    Ok(Step {
        id,
        key: r.try_get(at(1))?,
        kind,
        rule: r.try_get(at(3))?,
        label: r.try_get(at(4))?,
        planned_at: from_ms(r.try_get(at(5))?),
        fire_at,
        state,
        skip_code: r.try_get(at(8))?,
        reason: r.try_get(at(9))?,
        late: r.try_get(at(10))?,
        updated_at: from_ms(r.try_get(at(11))?),
    })
}

impl PostgresStore {
    /// Writes the changes the planner decided for commitment `commitment_id`. A step
    /// it rewrites is no longer any daemon's: a decision made on it before is dropped
    /// (see `firing.rs`).
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
                            Some(reason.as_str()),
                        ),
                    };
                    let params: [&(dyn ToSql + Sync); 11] = [
                        &commitment_id,
                        &step.key,
                        &step.kind.as_str(),
                        &step.rule,
                        &step.label,
                        &to_ms(step.planned_at),
                        &to_ms(step.fire_at),
                        &state,
                        &code,
                        &reason,
                        &to_ms(now),
                    ];
                    self.execute(
                        "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at,
                                            state, skip_code, reason, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                        &params,
                    )?;
                }
                StepChange::Revive { id, step } | StepChange::Move { id, step } => {
                    self.execute(
                        "UPDATE steps SET state = 'planned', skip_code = NULL, reason = NULL, rule = $2,
                             label = $3, planned_at = $4, fire_at = $5, updated_at = $6,
                             claimed_by = NULL
                         WHERE id = $1",
                        &[
                            id,
                            &step.rule,
                            &step.label,
                            &to_ms(step.planned_at),
                            &to_ms(step.fire_at),
                            &to_ms(now),
                        ],
                    )?;
                }
                StepChange::Retire { id, code, reason } => {
                    self.skip_step(*id, *code, reason, now)?
                }
            }
        }
        Ok(())
    }

    /// Marks a step skipped with its reason.
    pub fn skip_step(&self, id: i64, code: SkipCode, reason: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE steps SET state = 'skipped', skip_code = $2, reason = $3, updated_at = $4,
                 claimed_by = NULL
             WHERE id = $1",
            &[&id, &code.as_str(), &reason, &to_ms(now)],
        )?;
        Ok(())
    }

    /// Holds a planned step until `fire_at` (customer mail outside business hours).
    pub(super) fn hold_step(&self, id: i64, fire_at: Timestamp, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE steps SET fire_at = $2, updated_at = $3, claimed_by = NULL WHERE id = $1",
            &[&id, &to_ms(fire_at), &to_ms(now)],
        )?;
        Ok(())
    }

    /// Marks a step failed before any email left (e.g. its template failed).
    pub(super) fn fail_step(&self, id: i64, reason: &str, now: Timestamp) -> Result<()> {
        self.execute(
            "UPDATE steps SET state = 'failed', reason = $2, updated_at = $3, claimed_by = NULL
             WHERE id = $1",
            &[&id, &reason, &to_ms(now)],
        )?;
        Ok(())
    }

    /// Marks a step queued: its deliveries are in the outbox.
    pub fn queue_step(&self, id: i64, late: bool, now: Timestamp) -> Result<()> {
        self.queue_steps(&[(id, late)], now)
    }

    /// [`PostgresStore::queue_step`] for each of `steps` (id, late), in one statement.
    pub(super) fn queue_steps(&self, steps: &[(i64, bool)], now: Timestamp) -> Result<()> {
        let (ids, late): (Vec<i64>, Vec<bool>) = steps.iter().copied().unzip();
        self.execute(
            "UPDATE steps SET state = 'queued', late = x.late, updated_at = $3, claimed_by = NULL
             FROM UNNEST($1::BIGINT[], $2::BOOLEAN[]) AS x(id, late)
             WHERE steps.id = ANY($1) AND steps.id = x.id",
            &[&ids, &late, &to_ms(now)],
        )?;
        Ok(())
    }
}

impl Steps for PostgresStore {
    fn replan_open(&self, now: Timestamp) -> Result<usize> {
        let queued = self.execute(
            "INSERT INTO changes (commitment_id, changed_at)
             SELECT id, $1 FROM commitments WHERE status = 'open' OR status IS NULL",
            &[&to_ms(now)],
        )?;
        Ok(queued as usize)
    }

    fn next_fire_at(&self, now: Timestamp, lead: SignedDuration) -> Result<Option<Timestamp>> {
        let earliest: Option<i64> = self
            .query_one(
                "SELECT MIN(fire_at) FROM steps WHERE state = 'planned'",
                &[],
            )?
            .try_get(0)?;
        let Some(earliest) = earliest.map(from_ms) else {
            return Ok(None);
        };
        if lead.is_zero() {
            return Ok(Some(earliest));
        }
        let ahead: Option<i64> = self
            .query_one(
                &format!(
                    "SELECT MIN(fire_at) FROM steps
                     WHERE state = 'planned' AND fire_at > $1 AND fire_at < $2 AND kind IN ({})",
                    ahead_kinds()
                ),
                &[&to_ms(now + lead), &to_ms(earliest + lead)],
            )?
            .try_get(0)?;
        Ok(Some(match ahead.map(from_ms) {
            Some(at) => earliest.min(at - lead),
            None => earliest,
        }))
    }

    fn steps_of(&self, id: i64) -> Result<Vec<Step>> {
        self.query(
            &format!(
                "SELECT {STEP_COLUMNS} FROM steps s WHERE s.commitment_id = $1 ORDER BY s.fire_at, s.id"
            ),
            &[&id],
        )?
        .iter()
        .map(step_from_row)
        .collect()
    }
}
