//! [`Glances`] on SQLite.

use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, params};

use super::commitments::{COLUMNS, columns_of, stored_from_row};
use crate::planner::StepKind;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

/// `at` as the time columns `done_at`, `closed_at` and `waiting_since` hold it: RFC
/// 3339 in UTC, to the millisecond.
fn stored_time(at: Timestamp) -> String {
    at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string()
}

impl SqliteStore {
    /// Records `action` as a revision that keeps the due time, and applies its effect;
    /// both queue the commitment for planning (the row's update trigger, or a change
    /// written here). Returns the revision's id.
    pub(super) fn record_action(&self, action: &NewAction, now: Timestamp) -> Result<i64> {
        let id = action.commitment_id;
        let due: Option<String> = self
            .conn
            .prepare_cached("SELECT due_at FROM commitments WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?
            .ok_or(StoreError::NotFound(id))?;
        let until = match action.effect {
            Effect::Snooze(until) => Some(to_ms(until)),
            _ => None,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO revisions (commitment_id, old_due, new_due, reason, source, automatic, notify,
                                        created_at, action, actor, via, step_key, until_at)
                 VALUES (?1, ?2, ?2, ?3, ?4, 0, 0, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                id,
                due.unwrap_or_default(),
                action.reason,
                action.words,
                to_ms(now),
                action.deed.action,
                action.deed.actor,
                action.deed.via,
                action.step_key,
                until
            ])?;
        let revision = self.conn.last_insert_rowid();
        match action.effect {
            Effect::Status(status) => {
                self.conn
                    .prepare_cached("UPDATE commitments SET status = ?2 WHERE id = ?1")?
                    .execute(params![id, status.as_str()])?;
            }
            Effect::Snooze(_) => {
                self.conn
                    .prepare_cached("UPDATE commitments SET snoozed_until = ?2 WHERE id = ?1")?
                    .execute(params![id, until])?;
            }
            Effect::Close(ending, at) => {
                self.conn
                    .prepare_cached(
                        "UPDATE commitments SET outcome = ?2, closed_at = ?3 WHERE id = ?1",
                    )?
                    .execute(params![id, ending.as_str(), stored_time(at)])?;
            }
            Effect::Wait(since) => {
                self.conn
                    .prepare_cached("UPDATE commitments SET waiting_since = ?2 WHERE id = ?1")?
                    .execute(params![id, stored_time(since)])?;
            }
            Effect::Plan => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO changes (commitment_id, changed_at) VALUES (?1, ?2)",
                    )?
                    .execute(params![id, to_ms(now)])?;
            }
        }
        Ok(revision)
    }
}

impl Glances for SqliteStore {
    fn glance(&self, id: i64, update_kind: StepKind) -> Result<Glance> {
        // A plain join (one row per planned step of the kind, a handful at most) and the
        // earliest picked here: an aggregate or ORDER BY would make SQLite build a
        // temporary table on every page view.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, c.snoozed_until, s.key, s.fire_at
                 FROM commitments c LEFT JOIN steps s
                     ON s.commitment_id = c.id AND s.kind = ?2 AND s.state = 'planned'
                 WHERE c.id = ?1",
                columns_of("c")
            )
        });
        let at = COLUMNS.split(", ").count();
        let mut stmt = self.conn.prepare_cached(&SQL)?;
        let mut rows = stmt.query(params![id, update_kind.as_str()])?;
        let Some(first) = rows.next()? else {
            return Err(StoreError::NotFound(id));
        };
        let step = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<(String, Timestamp)>> {
            let key: Option<String> = r.get(at + 1)?;
            let fire_at: Option<i64> = r.get(at + 2)?;
            Ok(key.zip(fire_at.map(from_ms)))
        };
        let mut glance = Glance {
            row: stored_from_row(first, 0)?,
            snoozed_until: first.get::<_, Option<i64>>(at)?.map(from_ms),
            next_planned: step(first)?,
        };
        while let Some(r) = rows.next()? {
            if let Some(next) = step(r)?
                && glance.next_planned.as_ref().is_none_or(|n| next.1 < n.1)
            {
                glance.next_planned = Some(next);
            }
        }
        Ok(glance)
    }

    fn snoozed_until(&self, id: i64) -> Result<Option<Timestamp>> {
        Ok(self
            .conn
            .prepare_cached("SELECT snoozed_until FROM commitments WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .ok_or(StoreError::NotFound(id))?
            .map(from_ms))
    }
}
