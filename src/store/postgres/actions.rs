//! [`Glances`] on PostgreSQL, and the recording of actions that keep the due time.

use jiff::Timestamp;

use super::commitments::{WIDTH, columns_of, stored_from_row};
use crate::planner::StepKind;
use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

/// `at` as the time columns `done_at`, `closed_at` and `waiting_since` hold it: RFC
/// 3339 in UTC, to the millisecond.
fn stored_time(at: Timestamp) -> String {
    at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string()
}

impl PostgresStore {
    /// Records `action` as a revision that keeps the due time, and applies its effect;
    /// both queue the commitment for planning (the row's update trigger, or a change
    /// written here). Returns the revision's id.
    pub(super) fn record_action(&self, action: &NewAction, now: Timestamp) -> Result<i64> {
        let id = action.commitment_id;
        let due: Option<String> = self
            .query_opt("SELECT due_at FROM commitments WHERE id = $1", &[&id])?
            .ok_or(StoreError::NotFound(id))?
            .try_get(0)?;
        let until = match action.effect {
            Effect::Snooze(until) => Some(to_ms(until)),
            _ => None,
        };
        let revision: i64 = self
            .query_one(
                "INSERT INTO revisions (commitment_id, old_due, new_due, reason, source, automatic, notify,
                                        created_at, action, actor, via, step_key, until_at)
                 VALUES ($1, $2, $2, $3, $4, false, false, $5, $6, $7, $8, $9, $10)
                 RETURNING id",
                &[
                    &id,
                    &due.unwrap_or_default(),
                    &action.reason,
                    &action.words,
                    &to_ms(now),
                    &action.deed.action,
                    &action.deed.actor,
                    &action.deed.via,
                    &action.step_key,
                    &until,
                ],
            )?
            .try_get(0)?;
        match action.effect {
            Effect::Status(status) => {
                self.execute(
                    "UPDATE commitments SET status = $2 WHERE id = $1",
                    &[&id, &status.as_str()],
                )?;
            }
            Effect::Snooze(_) => {
                self.execute(
                    "UPDATE commitments SET snoozed_until = $2 WHERE id = $1",
                    &[&id, &until],
                )?;
            }
            Effect::Close(ending, at) => {
                self.execute(
                    "UPDATE commitments SET outcome = $2, closed_at = $3 WHERE id = $1",
                    &[&id, &ending.as_str(), &stored_time(at)],
                )?;
            }
            Effect::Wait(since) => {
                self.execute(
                    "UPDATE commitments SET waiting_since = $2 WHERE id = $1",
                    &[&id, &stored_time(since)],
                )?;
            }
            Effect::Plan => {
                self.execute(
                    "INSERT INTO changes (commitment_id, changed_at) VALUES ($1, $2)",
                    &[&id, &to_ms(now)],
                )?;
            }
        }
        Ok(revision)
    }
}

impl Glances for PostgresStore {
    fn glance(&self, id: i64, update_kind: StepKind) -> Result<Glance> {
        let row = self
            .query_opt(
                &format!(
                    "SELECT {}, c.snoozed_until, s.key, s.fire_at
                     FROM commitments c LEFT JOIN LATERAL (
                         SELECT key, fire_at FROM steps
                         WHERE commitment_id = c.id AND kind = $2 AND state = 'planned'
                         ORDER BY fire_at, id LIMIT 1
                     ) s ON true
                     WHERE c.id = $1",
                    columns_of("c")
                ),
                &[&id, &update_kind.as_str()],
            )?
            .ok_or(StoreError::NotFound(id))?;
        let key: Option<String> = row.try_get(WIDTH + 1)?;
        let fire_at: Option<i64> = row.try_get(WIDTH + 2)?;
        Ok(Glance {
            row: stored_from_row(&row, 0)?,
            snoozed_until: row.try_get::<_, Option<i64>>(WIDTH)?.map(from_ms),
            next_planned: key.zip(fire_at.map(from_ms)),
        })
    }

    fn snoozed_until(&self, id: i64) -> Result<Option<Timestamp>> {
        let until: Option<i64> = self
            .query_opt(
                "SELECT snoozed_until FROM commitments WHERE id = $1",
                &[&id],
            )?
            .ok_or(StoreError::NotFound(id))?
            .try_get(0)?;
        Ok(until.map(from_ms))
    }
}
