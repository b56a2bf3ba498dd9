//! The sender's turn at the outbox: the outcomes of its sends recorded and due
//! deliveries taken, every request of a turn in one transaction, each isolated in a
//! savepoint of its own so that one bad record spoils none of the others. Outcomes
//! that finish together are so committed together (group commit).

use std::collections::HashSet;

use jiff::Timestamp;

use super::{Claim, DeliveryOutcome, PendingDelivery, Recorded, Result, Store, StoreError};
use crate::clock::Clock;

/// Deliveries taken from the outbox, and when the next one not yet due is due.
pub type Taken = (Vec<PendingDelivery>, Option<Timestamp>);

/// A request to take up to `limit` deliveries due on `clock` that are not in `skip`.
pub struct TakeDue<'a> {
    /// At most this many.
    pub limit: usize,
    /// Deliveries the sender holds already.
    pub skip: &'a HashSet<i64>,
    /// The clock they are due on, read inside the transaction.
    pub clock: &'a Clock,
}

/// The answers of one turn, in the order asked; an error is the request's own, or
/// the turn's when it did not commit (its records then leave their deliveries
/// pending, to be sent again).
#[derive(Debug, Default)]
pub struct OutboxTurn {
    /// One per group of outcomes.
    pub written: Vec<Result<Recorded, String>>,
    /// One per take.
    pub taken: Vec<Result<Taken, String>>,
}

impl Store {
    /// Records each group of `records` (its outcomes in order), then takes each of
    /// `takes`, in one transaction; every group and take in a savepoint of its own.
    pub fn record_and_take(
        &self,
        claim: &Claim,
        records: &[&[DeliveryOutcome]],
        takes: &[TakeDue<'_>],
    ) -> OutboxTurn {
        let mut turn = OutboxTurn::default();
        let committed = self.check_claim(claim).and_then(|()| {
            self.transaction(|s| {
                for outcomes in records {
                    let result = s.isolated(|s| s.write_outcomes(outcomes));
                    turn.written.push(result.map_err(|e| e.to_string()));
                }
                for ask in takes {
                    let result = s.isolated(|s| s.take_due(ask));
                    turn.taken.push(result.map_err(|e| e.to_string()));
                }
                Ok::<_, StoreError>(())
            })
        });
        if let Err(e) = committed {
            let e = e.to_string();
            turn.written = records.iter().map(|_| Err(e.clone())).collect();
            turn.taken = takes.iter().map(|_| Err(e.clone())).collect();
        }
        turn
    }

    fn take_due(&self, ask: &TakeDue<'_>) -> Result<Taken> {
        let now = ask.clock.now();
        let batch = self.pending_deliveries(now, ask.limit, ask.skip)?;
        let next = if batch.len() < ask.limit {
            self.next_attempt_at_after(now)?
        } else {
            None
        };
        Ok((batch, next))
    }
}
