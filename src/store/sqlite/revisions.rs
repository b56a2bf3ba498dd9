//! [`Revisions`] on SQLite.

use jiff::Timestamp;
use rusqlite::{OptionalExtension as _, params};

use crate::planner::History;
use crate::store::revisions::history_from;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

pub(super) const REVISION_COLUMNS: &str = "id, old_due, new_due, reason, source, automatic, notify, created_at, \
     undone, undone_at, changes, action, actor, via, step_key, until_at";

pub(super) fn revision_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RevisionRecord> {
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
        changes: changes_from(r.get(10)?),
        action: r.get(11)?,
        actor: r.get(12)?,
        via: r.get(13)?,
        step_key: r.get(14)?,
        until_at: r.get::<_, Option<i64>>(15)?.map(from_ms),
    })
}

/// The changes of an edit as stored; none for a move of the due time, or for text
/// another program wrote that is not such a list.
fn changes_from(stored: Option<String>) -> Vec<FieldChange> {
    stored
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

impl SqliteStore {
    /// Records a revision and moves the commitment's due time (and its reason, when the
    /// revision has one) in the same transaction as the caller's. Without a [`Deed`]
    /// it is a delay by no one known.
    pub fn revise_due(&self, revision: &NewRevision, now: Timestamp) -> Result<i64> {
        let deed = Deed {
            action: "delay",
            actor: None,
            via: None,
        };
        self.revise_due_as(revision, &deed, now)
    }

    /// [`SqliteStore::revise_due`], saying what it was, who took it and how.
    pub(super) fn revise_due_as(
        &self,
        revision: &NewRevision,
        deed: &Deed,
        now: Timestamp,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO revisions (commitment_id, old_due, new_due, reason, source, automatic, notify, created_at,
                                        action, actor, via)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                revision.commitment_id,
                revision.old_due,
                revision.new_due,
                revision.reason,
                revision.source,
                revision.automatic,
                revision.notify,
                to_ms(now),
                deed.action,
                deed.actor,
                deed.via
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

    /// Records an edit and writes the changed fields in the same transaction as the
    /// caller's; the update trigger has the daemon plan the commitment again.
    pub(super) fn edit_commitment(&self, edit: &NewEdit, now: Timestamp) -> Result<i64> {
        let changes =
            serde_json::to_string(&edit.changes).map_err(|e| StoreError::Database(Box::new(e)))?;
        self.conn
            .prepare_cached(
                "INSERT INTO revisions (commitment_id, old_due, new_due, source, changes, created_at,
                                        action, actor, via)
                 VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                edit.commitment_id,
                edit.due_at,
                edit.source,
                changes,
                to_ms(now),
                edit.deed.action,
                edit.deed.actor,
                edit.deed.via
            ])?;
        let id = self.conn.last_insert_rowid();
        let sets: Vec<String> = edit
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", c.field.column(), i + 3))
            .collect();
        use rusqlite::types::Value;
        let mut values = vec![
            Value::Integer(edit.commitment_id),
            Value::Text(edit.due_at.clone()),
        ];
        values.extend(
            edit.changes
                .iter()
                .map(|c| c.new.clone().map_or(Value::Null, Value::Text)),
        );
        let changed = self.conn.execute(
            &format!(
                "UPDATE commitments SET due_at = ?2, {} WHERE id = ?1",
                sets.join(", ")
            ),
            rusqlite::params_from_iter(values),
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(edit.commitment_id));
        }
        Ok(id)
    }

    /// Like [`SqliteStore::revise_due`], for the automatic update of step `step_id`: the
    /// revision names the step, so that the move can be undone if its email bounces,
    /// and is the daemon's `update`.
    pub fn revise_due_by_step(
        &self,
        revision: &NewRevision,
        step_id: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let id = self.revise_due_as(revision, &Deed::daemon_update(), now)?;
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
}

impl Revisions for SqliteStore {
    fn revisions_of(&self, id: i64) -> Result<Vec<RevisionRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {REVISION_COLUMNS} FROM revisions WHERE commitment_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([id], revision_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn history(&self, id: i64) -> Result<History> {
        let (late_from, snoozed_until) = self
            .conn
            .prepare_cached("SELECT late_from, snoozed_until FROM commitments WHERE id = ?1")?
            .query_row([id], |r| {
                Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .optional()?
            .unwrap_or_default();
        Ok(history_from(
            self.revisions_of(id)?,
            self.failed_emails(id)?,
            late_from.map(from_ms),
            snoozed_until.map(from_ms),
        ))
    }
}
