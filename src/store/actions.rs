//! Recording an action a person took on a commitment that does not move its due time
//! (done, cancel, snooze, hold, send now): a revision saying what, who and how, and the
//! change to the row, in the caller's transaction. Which action is allowed is decided
//! above the store ([`crate::actions`]).

use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, params};

use super::{Deed, Result, Store, StoreError, from_ms, to_ms};
use crate::commitment::Status;

/// What an action changes in the commitment's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Sets its status (done, cancelled).
    Status(Status),
    /// Snoozes the owner's reminders until then.
    Snooze(Timestamp),
    /// Nothing in the row: the revision alone says it (a hold, a send-now), and the
    /// commitment is queued for planning.
    Plan,
}

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// The commitment.
    pub commitment_id: i64,
    /// What it is, who took it and how.
    pub deed: Deed,
    /// The action in words for people (`held by ana@example.com (by email link) on Tue
    /// 1 Dec 15:02: I called him`), kept as the revision's source.
    pub words: String,
    /// Why, when the person said (a hold's reason).
    pub reason: Option<String>,
    /// The customer update it is about (`customer_update#N`).
    pub step_key: Option<String>,
    /// What it changes in the row.
    pub effect: Effect,
}

impl Store {
    /// Records `action` as a revision that keeps the due time, and applies its effect;
    /// both queue the commitment for planning (the row's update trigger, or a change
    /// written here). Returns the revision's id.
    pub fn record_action(&self, action: &NewAction, now: Timestamp) -> Result<i64> {
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

    /// Until when the owner's reminders of commitment `id` are snoozed, if they are.
    pub fn snoozed_until(&self, id: i64) -> Result<Option<Timestamp>> {
        Ok(self
            .conn
            .prepare_cached("SELECT snoozed_until FROM commitments WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .ok_or(StoreError::NotFound(id))?
            .map(from_ms))
    }
}
