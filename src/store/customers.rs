//! What a customer's profile reads: their commitments with the facts the report also
//! uses, the notes about them, the emails to their address. A customer has no row of
//! their own; their address (lower case) is the key.

use jiff::Timestamp;

use super::{DeliveryRecord, ReportRow, Result};
use crate::customer::Note;

/// What the store holds about one customer, read as it stood at one moment: a profile
/// made of it never counts a commitment whose emails it misses.
#[derive(Debug, Clone, Default)]
pub struct CustomerRecords {
    /// Their commitments, as [`Store::customer_rows`](crate::store::Customers::customer_rows) gives them.
    pub rows: Vec<ReportRow>,
    /// The notes about them, oldest first.
    pub notes: Vec<Note>,
    /// Every email to their address, oldest first; empty unless asked for.
    pub emails: Vec<DeliveryRecord>,
}

/// A note kept by [`Store::keep_customer_note`](crate::store::Customers::keep_customer_note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteKept {
    /// The note's id.
    pub id: i64,
    /// Whether any commitment was for the customer when the note was kept; a note
    /// about no one yet is kept all the same, and the person is told.
    pub has_commitments: bool,
}

/// What the store knows of one customer.
pub trait Customers {
    /// What the store holds about the customer with address `address` (any case), in
    /// one read: their rows and notes, and their emails only `with_emails` (an email's
    /// template needs none of them).
    fn customer_records(&self, address: &str, with_emails: bool) -> Result<CustomerRecords>;

    /// True if the store knows the customer with address `address` (any case): a
    /// commitment is for them or a note is about them.
    fn knows_customer(&self, address: &str) -> Result<bool>;

    /// Keeps a note about the customer with address `address`, written by `actor` via
    /// `via` (`cli`, `web`) at `now`, and says whether they have commitments, in one
    /// transaction.
    fn keep_customer_note(
        &self,
        address: &str,
        note: &str,
        actor: &str,
        via: &str,
        now: Timestamp,
    ) -> Result<NoteKept>;

    /// Every commitment to the customer with address `address` (any case), oldest
    /// first, with its first due time and the updates its customer was sent.
    fn customer_rows(&self, address: &str) -> Result<Vec<ReportRow>>;
}
