//! One operation for every verb a person takes on a commitment: read it, let the
//! caller decide, write what the caller decided, all in one transaction. The store
//! decides nothing here: which action is allowed, and what it writes, is
//! [`crate::actions`]'s, handed over as values ([`Act`], [`Write`]).

use jiff::Timestamp;

use super::{Deed, NewAction, NewEdit, NewRevision, Result, RevisionRecord, Store, StoreError};
use crate::actions::Earlier;
use crate::commitment::StoredCommitment;
use crate::planner::Step;

/// What deciding about one commitment may look at: its row, read first, and its
/// revisions and steps, read only if asked for (most verbs need neither).
pub trait Facts {
    /// The commitment's row, as stored.
    fn commitment(&self) -> &StoredCommitment;
    /// Its revisions, oldest first.
    fn revisions(&self) -> Result<Vec<RevisionRecord>>;
    /// Its steps, in the order they fire.
    fn steps(&self) -> Result<Vec<Step>>;
}

/// What a verb decided.
#[derive(Debug, Clone)]
pub enum Act {
    /// Its effect is already there: nothing is written.
    Already(Earlier),
    /// These records, in this order; each is a revision.
    Write(Vec<Write>),
}

/// One record a verb writes; each records a revision saying what, who and how, and has
/// the daemon plan the commitment again.
#[derive(Debug, Clone)]
pub enum Write {
    /// An action that keeps the due time (done, cancel, snooze, close, wait, hold,
    /// send now), with its effect on the row.
    Action(NewAction),
    /// A move of the due time, taken as the deed says (a delay).
    ReviseDue(NewRevision, Deed),
    /// A move of the due time that also ends the wait on the customer (a resume).
    Resume(NewRevision, Deed),
    /// Corrected fields.
    Edit(NewEdit),
}

/// What [`Store::act`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Nothing: the verb's effect was already there.
    Already(Earlier),
    /// The revisions written, by id, in the order of the writes.
    Wrote(Vec<i64>),
}

/// [`Facts`] read from the store inside the verb's transaction.
struct Read<'a> {
    store: &'a Store,
    row: StoredCommitment,
}

impl Facts for Read<'_> {
    fn commitment(&self) -> &StoredCommitment {
        &self.row
    }

    fn revisions(&self) -> Result<Vec<RevisionRecord>> {
        self.store.revisions_of(self.row.id)
    }

    fn steps(&self) -> Result<Vec<Step>> {
        self.store.steps_of(self.row.id)
    }
}

impl Store {
    /// The [`Facts`] of `row`, read from this store when asked for (outside any
    /// transaction of the caller's: for a page shown before acting).
    pub fn facts(&self, row: StoredCommitment) -> Box<dyn Facts + '_> {
        Box::new(Read { store: self, row })
    }

    /// Takes one verb on commitment `id` in one transaction: reads the commitment
    /// ([`StoreError::NotFound`] if there is none), calls `decide` with what it may look
    /// at, and writes what it returns at `now`. An error from `decide` reaches the caller
    /// unchanged, and nothing is written. Made of [`Store::act_or_refuse`], which takes
    /// no type of the caller's.
    pub fn act<E: From<StoreError>>(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> std::result::Result<Act, E>,
    ) -> std::result::Result<Applied, E> {
        let mut refusal = None;
        let applied = self.act_or_refuse(id, now, &mut |facts| match decide(facts) {
            Ok(act) => Some(act),
            Err(e) => {
                refusal = Some(e);
                None
            }
        })?;
        match (applied, refusal) {
            (_, Some(e)) => Err(e),
            (Some(applied), None) => Ok(applied),
            (None, None) => unreachable!("a refused act keeps its refusal"),
        }
    }

    /// [`Store::act`] with the refusal kept by the caller: `decide` returns `None` to
    /// refuse, and then nothing is written and this returns `Ok(None)`. It names no
    /// type of the caller's, so an interface over several stores can hold it.
    pub fn act_or_refuse(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> Option<Act>,
    ) -> Result<Option<Applied>> {
        /// Why the transaction stops: a refusal rolls back like a failure.
        enum Stop {
            Refused,
            Store(StoreError),
        }
        impl From<StoreError> for Stop {
            fn from(e: StoreError) -> Stop {
                Stop::Store(e)
            }
        }
        let acted = self.transaction(|s| {
            let facts = Read {
                store: s,
                row: s.commitment(id)?,
            };
            let writes = match decide(&facts).ok_or(Stop::Refused)? {
                Act::Already(earlier) => return Ok(Applied::Already(earlier)),
                Act::Write(writes) => writes,
            };
            let mut revisions = Vec::with_capacity(writes.len());
            for write in &writes {
                revisions.push(s.write(write, now)?);
            }
            Ok(Applied::Wrote(revisions))
        });
        match acted {
            Ok(applied) => Ok(Some(applied)),
            Err(Stop::Refused) => Ok(None),
            Err(Stop::Store(e)) => Err(e),
        }
    }

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

    fn fixture() -> (tempfile::TempDir, Store, i64) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("followup.db")).unwrap();
        let id = store
            .insert_commitment(&NewCommitment::sample("2026-12-03T12:00:00Z"))
            .unwrap();
        (dir, store, id)
    }

    #[test]
    fn a_refusal_reaches_the_caller_as_it_was_and_nothing_is_written() {
        let (_dir, store, id) = fixture();
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
