//! The outbox's records as `show`, the pages and the owner's notices read them: what
//! was sent to whom, what failed, and the messages exactly as they left.

use super::DeliveryRecord;
use crate::store::Result;

/// Emails as records, for `show`, the notices and the pages.
pub trait DeliveryRecords {
    /// One delivery, for the notice that tells the owner it failed.
    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>>;

    /// Every email to `address` (any case), oldest first.
    fn deliveries_to(&self, address: &str) -> Result<Vec<DeliveryRecord>>;

    /// The stored message of email `delivery_id` of commitment `commitment_id`, exactly
    /// as it was (or, in a dry run, would have been) sent; `None` if the commitment has
    /// no such email.
    fn message_of(&self, commitment_id: i64, delivery_id: i64) -> Result<Option<Vec<u8>>>;
}
