//! One operation for every verb a person takes on a commitment: read it, let the
//! caller decide, write what the caller decided, all in one transaction. The store
//! decides nothing here: which action is allowed, and what it writes, is
//! [`crate::actions`]'s, handed over as values ([`Act`], [`Write`]).

use jiff::Timestamp;

use super::{Deed, NewAction, NewEdit, NewRevision, Result, RevisionRecord, StoreError};
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

/// What [`Store::act`](crate::store::Store#method.act) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Nothing: the verb's effect was already there.
    Already(Earlier),
    /// The revisions written, by id, in the order of the writes.
    Wrote(Vec<i64>),
}

/// A person's verbs on one commitment, each one transaction.
pub trait Acts {
    /// The [`Facts`] of `row`, read from this store when asked for (outside any
    /// transaction of the caller's: for a page shown before acting).
    fn facts(&self, row: StoredCommitment) -> Box<dyn Facts + '_>;

    /// [`Store::act`](crate::store::Store#method.act) with the refusal kept by the caller: `decide` returns `None` to
    /// refuse, and then nothing is written and this returns `Ok(None)`. It names no
    /// type of the caller's, so an interface over several stores can hold it.
    fn act_or_refuse(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> Option<Act>,
    ) -> Result<Option<Applied>>;
}

/// Why a verb's transaction stops: a refusal rolls back like a failure.
pub(super) enum Stop {
    Refused,
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Store(e)
    }
}

/// The body of a verb's transaction, the same in every store: `decide` on `facts`,
/// then each record it returns, in order, by `write` (which returns its revision).
pub(super) fn decide_and_write(
    facts: &dyn Facts,
    decide: &mut dyn FnMut(&dyn Facts) -> Option<Act>,
    mut write: impl FnMut(&Write) -> Result<i64>,
) -> std::result::Result<Applied, Stop> {
    let writes = match decide(facts).ok_or(Stop::Refused)? {
        Act::Already(earlier) => return Ok(Applied::Already(earlier)),
        Act::Write(writes) => writes,
    };
    let mut revisions = Vec::with_capacity(writes.len());
    for record in &writes {
        revisions.push(write(record)?);
    }
    Ok(Applied::Wrote(revisions))
}

/// What a verb's transaction came to, as [`Acts::act_or_refuse`] answers.
pub(super) fn acted(acted: std::result::Result<Applied, Stop>) -> Result<Option<Applied>> {
    match acted {
        Ok(applied) => Ok(Some(applied)),
        Err(Stop::Refused) => Ok(None),
        Err(Stop::Store(e)) => Err(e),
    }
}

/// [`Facts`] read from a store when asked for: inside a verb's transaction, or for a
/// page shown before acting.
pub(super) struct Read<'a, S: ?Sized> {
    pub(super) store: &'a S,
    pub(super) row: StoredCommitment,
}

impl<S: super::Revisions + super::Steps + ?Sized> Facts for Read<'_, S> {
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
