//! Reading and writing `commitments` rows. Rows are read as they are stored
//! ([`StoredCommitment`]); checking them is the commitment module's job.

use super::Result;
use crate::commitment::{Status, StoredCommitment};

/// A commitment to insert, already checked by the caller.
#[derive(Clone, Debug)]
pub struct NewCommitment {
    /// What was promised.
    pub title: String,
    /// Owner, `Name <address>`.
    pub owner: String,
    /// Customer, `Name <address>`.
    pub customer: String,
    /// IANA zone of the commitment, if any.
    pub timezone: Option<String>,
    /// Due time as RFC 3339.
    pub due_at: String,
    /// Kind, if any.
    pub kind: Option<String>,
    /// Notes.
    pub note: Option<String>,
    /// External reference.
    pub external_ref: Option<String>,
    /// Why it may be late, for the customer.
    pub reason: Option<String>,
    /// When a promise already late was recorded, if it was (`add --overdue`): see
    /// [`History::late_from`](crate::planner::History::late_from).
    pub late_from: Option<jiff::Timestamp>,
    /// What the customer was promised, in their words, for customer mail.
    pub promise: Option<String>,
}

#[cfg(test)]
impl NewCommitment {
    /// For tests: a quote Ana owes Joe, due at `due_at` (RFC 3339).
    pub fn sample(due_at: &str) -> NewCommitment {
        NewCommitment {
            title: "Quote".into(),
            owner: "ana@example.com".into(),
            customer: "joe@example.org".into(),
            timezone: None,
            due_at: due_at.into(),
            kind: None,
            note: None,
            external_ref: None,
            reason: None,
            late_from: None,
            promise: None,
        }
    }
}

/// A commitment read from an import file, with what `add` cannot set.
#[derive(Clone, Debug)]
pub struct Imported {
    /// Keep this id, if the file gives one.
    pub id: Option<i64>,
    /// The fields `add` also has.
    pub commitment: NewCommitment,
    /// Its status.
    pub status: Status,
    /// When it was written, as stored.
    pub created_at: Option<String>,
    /// When it was done, as stored.
    pub done_at: Option<String>,
}

/// Which commitments `list` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// Only this status.
    Only(Status),
    /// Every row, including rows with an unreadable status.
    All,
}

/// The commitments' rows: written by the commands and the import, read by the views.
pub trait Commitments {
    /// Inserts a commitment and returns its id.
    fn insert_commitment(&self, c: &NewCommitment) -> Result<i64>;

    /// The row with `id`, as stored.
    fn commitment(&self, id: i64) -> Result<StoredCommitment>;

    /// Rows in id order, filtered by status.
    fn commitments(&self, filter: StatusFilter) -> Result<Vec<StoredCommitment>>;

    /// Inserts imported commitments in one transaction: all or nothing. Ids, statuses and
    /// times are kept where the file gives them. Returns the ids.
    fn import_commitments(&self, rows: &[Imported]) -> Result<Vec<i64>>;

    /// True if a commitment has id `id`.
    fn has_commitment(&self, id: i64) -> Result<bool>;

    /// The ids of the commitments whose external reference is `reference` (ignoring
    /// spaces around it), in id order.
    fn ids_with_ref(&self, reference: &str) -> Result<Vec<i64>>;

    /// Every commitment to the customer with address `address` (any case), in id order.
    fn commitments_of_customer(&self, address: &str) -> Result<Vec<StoredCommitment>>;

    /// Every commitment whose customer column (name or address) contains `text`, in
    /// any case, in id order.
    fn commitments_of_customers_like(&self, text: &str) -> Result<Vec<StoredCommitment>>;

    /// Appends a dated line to the notes of commitment `id`.
    fn append_note(&self, id: i64, line: &str) -> Result<()>;

    /// Sets the reason the customer is given for a delay of commitment `id`.
    fn set_reason(&self, id: i64, reason: &str) -> Result<()>;

    /// Every commitment whose row cannot be planned, with the reason, in id order, in
    /// one read.
    fn commitments_with_problems(&self) -> Result<Vec<(StoredCommitment, String)>>;

    /// The recorded problem of commitment `id`, if its row could not be planned.
    fn problem(&self, id: i64) -> Result<Option<String>>;
}
