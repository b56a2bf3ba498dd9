//! `followup retry` as one operation: held mail, of one commitment or all, made due now.

use jiff::Timestamp;

use super::Result;

/// Making held or failed emails due again (`followup retry`).
pub trait Retries {
    /// Makes the held emails of commitment `of` (of every commitment, digests and
    /// reports too, without one) due at `now`, in one transaction; returns how many.
    /// A commitment that does not exist is [`StoreError::NotFound`](super::StoreError::NotFound).
    fn retry(&self, of: Option<i64>, now: Timestamp) -> Result<usize>;
}
