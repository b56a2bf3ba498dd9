//! The sender's turn at the outbox: the outcomes of finished sends and the reads of
//! what is due next, many at once in one transaction (group commit).

use std::collections::HashSet;

use jiff::Timestamp;

use super::{Claim, DeliveryOutcome, PendingDelivery, Recorded, Result};
use crate::clock::Clock;

/// Deliveries taken from the outbox, and when the next one not yet due is due.
pub type Taken = (Vec<PendingDelivery>, Option<Timestamp>);

/// The answers of one turn: each group's records, then each read.
pub type Turn = (Vec<Result<Recorded>>, Vec<Result<Taken>>);

/// A read of the outbox: up to `limit` deliveries due on `clock` (read when the turn
/// runs) that are not in `skip`.
pub struct TakeDue<'a> {
    /// How many at most.
    pub limit: usize,
    /// Those the sender holds already.
    pub skip: &'a HashSet<i64>,
    /// Where the time is read.
    pub clock: &'a Clock,
}

/// The sender's operation: record what became of emails and take the next due ones.
pub trait Outbox {
    /// Writes each group of `records`, then makes each read of `takes`, in one
    /// transaction, each in a savepoint of its own so that one that fails spoils none of
    /// the others. The answers are in order; the outer error means the commit failed and
    /// none of it holds, or the claim was refused and none of it was done.
    fn record_and_take(
        &self,
        claim: &Claim,
        records: &[&[DeliveryOutcome]],
        takes: &[TakeDue<'_>],
    ) -> Result<Turn>;
}
