//! [`Revisions`] on PostgreSQL.

use std::collections::HashMap;

use ::postgres::Row;
use ::postgres::types::ToSql;
use jiff::Timestamp;

use crate::planner::History;
use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::revisions::history_from;
use crate::store::*;

const REVISION_COLUMNS: &str = "id, old_due, new_due, reason, source, automatic, notify, created_at, \
     undone, undone_at, changes, action, actor, via, step_key, until_at";

/// The revision in the columns of `r` from `at` on ([`REVISION_COLUMNS`]).
fn revision_from_row(r: &Row, at: usize) -> Result<RevisionRecord> {
    Ok(RevisionRecord {
        id: r.try_get(at)?,
        old_due: r.try_get(at + 1)?,
        new_due: r.try_get(at + 2)?,
        reason: r.try_get(at + 3)?,
        source: r.try_get(at + 4)?,
        automatic: r.try_get(at + 5)?,
        notify: r.try_get(at + 6)?,
        created_at: from_ms(r.try_get(at + 7)?),
        undone: r.try_get(at + 8)?,
        undone_at: r.try_get::<_, Option<i64>>(at + 9)?.map(from_ms),
        changes: changes_from(r.try_get(at + 10)?),
        action: r.try_get(at + 11)?,
        actor: r.try_get(at + 12)?,
        via: r.try_get(at + 13)?,
        step_key: r.try_get(at + 14)?,
        until_at: r.try_get::<_, Option<i64>>(at + 15)?.map(from_ms),
    })
}

/// The changes of an edit as stored; none for a move of the due time, or for text
/// another program wrote that is not such a list.
fn changes_from(stored: Option<String>) -> Vec<FieldChange> {
    stored
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

impl PostgresStore {
    /// Records a revision and moves the commitment's due time (and its reason, when the
    /// revision has one), taken as `deed` says, in the caller's transaction.
    pub(super) fn revise_due_as(
        &self,
        revision: &NewRevision,
        deed: &Deed,
        now: Timestamp,
    ) -> Result<i64> {
        let changed = self.execute(
            "UPDATE commitments SET due_at = $2, reason = COALESCE($3, reason) WHERE id = $1",
            &[&revision.commitment_id, &revision.new_due, &revision.reason],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(revision.commitment_id));
        }
        let row = self.query_one(
            "INSERT INTO revisions (commitment_id, old_due, new_due, reason, source, automatic, notify, created_at,
                                    action, actor, via)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             RETURNING id",
            &[
                &revision.commitment_id,
                &revision.old_due,
                &revision.new_due,
                &revision.reason,
                &revision.source,
                &revision.automatic,
                &revision.notify,
                &to_ms(now),
                &deed.action,
                &deed.actor,
                &deed.via,
            ],
        )?;
        Ok(row.try_get(0)?)
    }

    /// Like [`PostgresStore::revise_due_as`], for the automatic update of step
    /// `step_id`: the revision names the step, so that the move can be undone if its
    /// email bounces, and is the daemon's `update`.
    pub(super) fn revise_due_by_step(
        &self,
        revision: &NewRevision,
        step_id: i64,
        now: Timestamp,
    ) -> Result<i64> {
        let id = self.revise_due_as(revision, &Deed::daemon_update(), now)?;
        self.execute(
            "UPDATE revisions SET step_id = $2 WHERE id = $1",
            &[&id, &step_id],
        )?;
        Ok(id)
    }

    /// The revision step `step_id` made, if it made one.
    pub(super) fn revision_of_step(&self, step_id: i64) -> Result<Option<RevisionRecord>> {
        self.query_opt(
            &format!("SELECT {REVISION_COLUMNS} FROM revisions WHERE step_id = $1"),
            &[&step_id],
        )?
        .as_ref()
        .map(|r| revision_from_row(r, 0))
        .transpose()
    }

    /// Marks revision `id` undone with `why`, and, if `restore`, moves its
    /// commitment's due time back to the revision's old one, provided nothing moved it
    /// since. Returns whether the due time went back.
    pub(super) fn undo_revision(
        &self,
        id: i64,
        why: &str,
        restore: bool,
        now: Timestamp,
    ) -> Result<bool> {
        self.execute(
            "UPDATE revisions SET undone = $2, undone_at = $3 WHERE id = $1",
            &[&id, &why, &to_ms(now)],
        )?;
        if !restore {
            return Ok(false);
        }
        let restored = self.execute(
            "UPDATE commitments SET due_at = r.old_due FROM revisions r
             WHERE r.id = $1 AND commitments.id = r.commitment_id
               AND commitments.due_at = r.new_due",
            &[&id],
        )?;
        Ok(restored > 0)
    }

    /// Records an edit and writes the changed fields in the caller's transaction; the
    /// update trigger has the daemon plan the commitment again.
    pub(super) fn edit_commitment(&self, edit: &NewEdit, now: Timestamp) -> Result<i64> {
        let changes =
            serde_json::to_string(&edit.changes).map_err(|e| StoreError::Database(Box::new(e)))?;
        // The columns come from `Field::column`, never from the caller's text.
        let sets: Vec<String> = edit
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ${}", c.field.column(), i + 3))
            .collect();
        let mut values: Vec<&(dyn ToSql + Sync)> = vec![&edit.commitment_id, &edit.due_at];
        values.extend(edit.changes.iter().map(|c| &c.new as &(dyn ToSql + Sync)));
        let changed = self.execute(
            &format!(
                "UPDATE commitments SET due_at = $2, {} WHERE id = $1",
                sets.join(", ")
            ),
            &values,
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(edit.commitment_id));
        }
        let row = self.query_one(
            "INSERT INTO revisions (commitment_id, old_due, new_due, source, changes, created_at,
                                    action, actor, via)
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8)
             RETURNING id",
            &[
                &edit.commitment_id,
                &edit.due_at,
                &edit.source,
                &changes,
                &to_ms(now),
                &edit.deed.action,
                &edit.deed.actor,
                &edit.deed.via,
            ],
        )?;
        Ok(row.try_get(0)?)
    }
}

impl PostgresStore {
    /// The revisions of each of commitments `ids`, in order, in one statement; a
    /// commitment without any has none in the map.
    pub(super) fn revisions_of_all(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<RevisionRecord>>> {
        let mut all: HashMap<i64, Vec<RevisionRecord>> = HashMap::new();
        for row in self.query(
            &format!(
                "SELECT commitment_id, {REVISION_COLUMNS} FROM revisions
                 WHERE commitment_id = ANY($1) ORDER BY commitment_id, id"
            ),
            &[&ids],
        )? {
            let commitment: i64 = row.try_get(0)?;
            all.entry(commitment)
                .or_default()
                .push(revision_from_row(&row, 1)?);
        }
        Ok(all)
    }
}

impl Revisions for PostgresStore {
    fn revisions_of(&self, id: i64) -> Result<Vec<RevisionRecord>> {
        Ok(self
            .revisions_of_all(&[id])?
            .remove(&id)
            .unwrap_or_default())
    }

    fn history(&self, id: i64) -> Result<History> {
        let (late_from, snoozed_until) = match self.query_opt(
            "SELECT late_from, snoozed_until FROM commitments WHERE id = $1",
            &[&id],
        )? {
            Some(r) => (
                r.try_get::<_, Option<i64>>(0)?,
                r.try_get::<_, Option<i64>>(1)?,
            ),
            None => (None, None),
        };
        Ok(history_from(
            self.revisions_of(id)?,
            self.failed_emails(id)?,
            late_from.map(from_ms),
            snoozed_until.map(from_ms),
        ))
    }
}
