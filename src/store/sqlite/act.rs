//! [`Acts`] on SQLite.

use jiff::Timestamp;

use crate::commitment::StoredCommitment;
use crate::store::act::{Read, acted, decide_and_write};
use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl SqliteStore {
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

impl Acts for SqliteStore {
    fn facts(&self, row: StoredCommitment) -> Box<dyn Facts + '_> {
        Box::new(Read { store: self, row })
    }

    fn act_or_refuse(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> Option<Act>,
    ) -> Result<Option<Applied>> {
        acted(self.transaction(|s| {
            let facts = Read {
                store: s,
                row: s.commitment(id)?,
            };
            decide_and_write(&facts, decide, |record| s.write(record, now))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::Status;
    use crate::store::{Effect, NewCommitment};

    #[derive(Debug)]
    enum Refused {
        Mine(&'static str),
        Store(StoreError),
    }

    impl From<StoreError> for Refused {
        fn from(e: StoreError) -> Refused {
            Refused::Store(e)
        }
    }

    fn done(id: i64) -> Write {
        Write::Action(NewAction {
            commitment_id: id,
            deed: Deed {
                action: "done",
                actor: Some("ana".into()),
                via: Some("cli"),
            },
            words: "marked done by ana".into(),
            reason: None,
            step_key: None,
            effect: Effect::Status(Status::Done),
        })
    }

    fn fixture() -> (tempfile::TempDir, SqliteStore, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let id = store
            .insert_commitment(&NewCommitment::sample("2026-12-03T12:00:00Z"))
            .unwrap();
        (dir, store, id)
    }

    #[test]
    fn a_refusal_reaches_the_caller_as_it_was_and_nothing_is_written() {
        let (_dir, store, id) = fixture();
        let store: &dyn Store = &store;
        let now = Timestamp::now();
        let err = store
            .act::<Refused>(id, now, &mut |_| Err(Refused::Mine("closed stays closed")))
            .unwrap_err();
        assert!(
            matches!(err, Refused::Mine("closed stays closed")),
            "{err:?}"
        );
        assert!(store.revisions_of(id).unwrap().is_empty());
        assert_eq!(
            store.commitment(id).unwrap().status.as_deref(),
            Some("open")
        );
    }

    #[test]
    fn the_writes_go_in_order_and_each_says_its_revision() {
        let (_dir, store, id) = fixture();
        let store: &dyn Store = &store;
        let applied = store
            .act::<Refused>(id, Timestamp::now(), &mut |facts| {
                assert_eq!(facts.commitment().id, id);
                assert!(facts.revisions()?.is_empty());
                Ok(Act::Write(vec![done(id), done(id)]))
            })
            .unwrap();
        let ids: Vec<i64> = store
            .revisions_of(id)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(applied, Applied::Wrote(ids.clone()));
        assert_eq!(ids.len(), 2);
        assert_eq!(
            store.commitment(id).unwrap().status.as_deref(),
            Some("done")
        );
    }

    #[test]
    fn a_refusal_without_a_type_of_the_callers_writes_nothing() {
        let (_dir, store, id) = fixture();
        let refused = store
            .act_or_refuse(id, Timestamp::now(), &mut |_| None)
            .unwrap();
        assert_eq!(refused, None);
        assert!(store.revisions_of(id).unwrap().is_empty());
        let applied = store
            .act_or_refuse(id, Timestamp::now(), &mut |_| {
                Some(Act::Write(vec![done(id)]))
            })
            .unwrap();
        assert!(matches!(applied, Some(Applied::Wrote(ref ids)) if ids.len() == 1));
    }

    #[test]
    fn a_missing_commitment_is_not_found_before_deciding() {
        let (_dir, store, id) = fixture();
        let store: &dyn Store = &store;
        let err = store
            .act::<Refused>(id + 1, Timestamp::now(), &mut |_| {
                panic!("nothing to decide about")
            })
            .unwrap_err();
        assert!(
            matches!(err, Refused::Store(StoreError::NotFound(missing)) if missing == id + 1),
            "{err:?}"
        );
    }
}
