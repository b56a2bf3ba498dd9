//! Revisions: every move of a due time, with the old and new time, the reason and who or
//! what moved it. They are the commitment's history, and they tell the planner how many
//! automatic updates were made and which hand-made delays the customer must hear of.

use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use super::{Result, Store, StoreError, from_ms, to_ms};
use crate::planner::History;

/// A move of a due time to record.
#[derive(Debug, Clone)]
pub struct NewRevision {
    /// The commitment.
    pub commitment_id: i64,
    /// The due time before, as stored.
    pub old_due: String,
    /// The due time after, as stored.
    pub new_due: String,
    /// Why, in words for the customer.
    pub reason: Option<String>,
    /// Who or what moved it: `automatic update 1 of 2`, `followup delay`, ...
    pub source: String,
    /// True for the daemon's automatic updates.
    pub automatic: bool,
    /// True if the customer is still to be told (hand-made delays).
    pub notify: bool,
}

/// A recorded revision.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionRecord {
    /// Revision id.
    pub id: i64,
    /// The due time before.
    pub old_due: String,
    /// The due time after.
    pub new_due: String,
    /// Why.
    pub reason: Option<String>,
    /// Who or what moved it.
    pub source: String,
    /// Made by the daemon.
    pub automatic: bool,
    /// The customer is told.
    pub notify: bool,
    /// When.
    pub created_at: Timestamp,
    /// Why the move was taken back (the customer's update bounced), if it was.
    pub undone: Option<String>,
    /// When it was taken back.
    pub undone_at: Option<Timestamp>,
}

const REVISION_COLUMNS: &str =
    "id, old_due, new_due, reason, source, automatic, notify, created_at, undone, undone_at";

fn revision_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRecord> {
    Ok(RevisionRecord {
        id: r.get(0)?,
        old_due: r.get(1)?,
        new_due: r.get(2)?,
        reason: r.get(3)?,
        source: r.get(4)?,
        automatic: r.get(5)?,
        notify: r.get(6)?,
        created_at: from_ms(r.get(7)?),
        undone: r.get(8)?,
        undone_at: r.get::<_, Option<i64>>(9)?.map(from_ms),
    })
}

impl Store {
    /// Records a revision and moves the commitment's due time (and its reason, when the
    /// revision has one) in the same transaction as the caller's.
    pub fn revise_due(&self, revision: &NewRevision, now: Timestamp) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO revisions (commitment_id, old_due, new_due, reason, source, automatic, notify, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                revision.commitment_id,
                revision.old_due,
                revision.new_due,
                revision.reason,
                revision.source,
                revision.automatic,
                revision.notify,
                to_ms(now)
            ])?;
        let id = self.conn.last_insert_rowid();
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE commitments SET due_at = ?2, reason = COALESCE(?3, reason) WHERE id = ?1",
            )?
            .execute(params![
                revision.commitment_id,
                revision.new_due,
                revision.reason
            ])?;
        if changed == 0 {
            return Err(StoreError::NotFound(revision.commitment_id));
        }
        Ok(id)
    }

    /// Like [`Store::revise_due`], for the automatic update of step `step_id`: the
    /// revision names the step, so that the move can be undone if its email bounces.
    pub fn revise_due_by_step(
        &self,
        revision: &NewRevision,
        step_id: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let id = self.revise_due(revision, now)?;
        self.conn
            .prepare_cached("UPDATE revisions SET step_id = ?2 WHERE id = ?1")?
            .execute(params![id, step_id])?;
        Ok(id)
    }

    /// The revision step `step_id` made, if it made one.
    pub fn revision_of_step(&self, step_id: i64) -> Result<Option<RevisionRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REVISION_COLUMNS} FROM revisions WHERE step_id = ?1"
        ))?;
        let mut rows = stmt.query_map([step_id], revision_from_row)?;
        Ok(rows.next().transpose()?)
    }

    /// Marks revision `id` undone with `why`, and, if `restore`, moves its
    /// commitment's due time back to the revision's old one, provided nothing moved it
    /// since. Returns whether the due time went back.
    pub fn undo_revision(&self, id: i64, why: &str, restore: bool, now: Timestamp) -> Result<bool> {
        self.conn
            .prepare_cached("UPDATE revisions SET undone = ?2, undone_at = ?3 WHERE id = ?1")?
            .execute(params![id, why, to_ms(now)])?;
        if !restore {
            return Ok(false);
        }
        let restored = self
            .conn
            .prepare_cached(
                "UPDATE commitments SET due_at = r.old_due FROM revisions r
                 WHERE r.id = ?1 AND commitments.id = r.commitment_id
                   AND commitments.due_at = r.new_due",
            )?
            .execute([id])?;
        Ok(restored > 0)
    }

    /// Every revision of commitment `id`, oldest first.
    pub fn revisions_of(&self, id: i64) -> Result<Vec<RevisionRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REVISION_COLUMNS} FROM revisions WHERE commitment_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], revision_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the planner needs to know of commitment `id`'s past.
    pub fn history(&self, id: i64) -> Result<History> {
        let mut history = History::default();
        for revision in self.revisions_of(id)? {
            // An update that bounced is not counted, so the plan's next update is the
            // one whose step failed, and it is not tried again: the next would go to
            // the same address.
            if revision.automatic && revision.undone.is_none() {
                history.auto_updates += 1;
            }
            if revision.notify {
                history.notices.push((revision.id, revision.created_at));
            }
        }
        history.failures = self.failures_to_report(id)?;
        Ok(history)
    }
}
