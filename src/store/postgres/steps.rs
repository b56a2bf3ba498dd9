//! The one read of `steps` the groups done so far need: a commitment's timeline.
//! Planning and firing, which write steps, come with the groups that claim.

use ::postgres::Row;

use crate::planner::{Step, StepKind, StepState};
use crate::store::postgres::{PostgresStore, from_ms};
use crate::store::*;

/// The columns [`step_from_row`] reads.
const STEP_COLUMNS: &str = "s.id, s.key, s.kind, s.rule, s.label, s.planned_at, s.fire_at, s.state, \
     s.skip_code, s.reason, s.late, s.updated_at, s.commitment_id";

/// The step in [`STEP_COLUMNS`]: the one place a row becomes a [`Step`], its kind and
/// state parsed here once.
fn step_from_row(r: &Row) -> Result<Step> {
    let id = r.try_get(0)?;
    let fire_at = from_ms(r.try_get(6)?);
    let kind: String = r.try_get(2)?;
    let state: String = r.try_get(7)?;
    let (kind, state) = match (kind.parse::<StepKind>(), state.parse::<StepState>()) {
        (Ok(kind), Ok(state)) => (kind, state),
        (Err(reason), _) | (_, Err(reason)) => {
            return Err(StoreError::Step(UnreadableStep {
                id,
                commitment_id: r.try_get(12)?,
                fire_at,
                reason,
            }));
        }
    };
    Ok(Step {
        id,
        key: r.try_get(1)?,
        kind,
        rule: r.try_get(3)?,
        label: r.try_get(4)?,
        planned_at: from_ms(r.try_get(5)?),
        fire_at,
        state,
        skip_code: r.try_get(8)?,
        reason: r.try_get(9)?,
        late: r.try_get(10)?,
        updated_at: from_ms(r.try_get(11)?),
    })
}

impl PostgresStore {
    /// Commitment `id`'s steps, in the order they fire.
    pub(super) fn steps_of(&self, id: i64) -> Result<Vec<Step>> {
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
