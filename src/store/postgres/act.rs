//! [`Acts`] on PostgreSQL.

use jiff::Timestamp;

use crate::commitment::StoredCommitment;
use crate::store::act::{Read, acted, decide_and_write};
use crate::store::postgres::PostgresStore;
use crate::store::*;

impl PostgresStore {
    /// Writes `write` in the caller's transaction; returns its revision's id.
    fn write(&self, write: &Write, now: Timestamp) -> Result<i64> {
        match write {
            Write::Action(action) => self.record_action(action, now),
            Write::ReviseDue(revision, deed) => self.revise_due_as(revision, deed, now),
            Write::Resume(revision, deed) => {
                let id = self.revise_due_as(revision, deed, now)?;
                self.end_wait(revision.commitment_id)?;
                Ok(id)
            }
            Write::Edit(edit) => self.edit_commitment(edit, now),
        }
    }
}

impl Acts for PostgresStore {
    fn facts(&self, row: StoredCommitment) -> Box<dyn Facts + '_> {
        Box::new(Read { store: self, row })
    }

    /// The commitment's row is locked (`FOR UPDATE`) before `decide` sees it: two verbs
    /// on one commitment, from two daemons or pages, then decide one after the other,
    /// each on the row the other left, as SQLite's `BEGIN IMMEDIATE` has them.
    fn act_or_refuse(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> Option<Act>,
    ) -> Result<Option<Applied>> {
        acted(self.transaction(|s| {
            let facts = Read {
                store: s,
                row: s.commitment_for_update(id)?,
            };
            decide_and_write(&facts, decide, |record| s.write(record, now))
        }))
    }
}
