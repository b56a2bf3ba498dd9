//! Delivery outcomes waiting for the next transaction, whoever runs it.
//!
//! A finished send keeps one of the sender's permits until its outcome is committed
//! (the crash bound in `docs/architecture.md`), so the time to that commit is time its
//! connection cannot send. During a burst the planning task holds the store for one
//! batch of emails after another; instead of waiting for a turn of its own, the
//! sender leaves its outcomes here, and the next transaction to commit (a planning
//! batch or the sender's own trip) writes them with its own work. Once that commit is
//! done the permits go back at once, from the store's thread, and the sender hears the
//! result on a channel.

use std::sync::Mutex;

use tokio::sync::OwnedSemaphorePermit;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::store::{DeliveryOutcome, Recorded, Store, StoreError};

/// What became of one deposit: what writing its records did (deliveries released after
/// an outage, emails that waited for one sent), or why it was not written. Unwritten
/// records leave their deliveries pending, to be sent again.
pub type Written = Result<Recorded, String>;

/// Outcomes left for the next transaction.
#[derive(Default)]
pub struct Records {
    waiting: Mutex<Vec<Deposit>>,
    results: Mutex<Option<UnboundedSender<(u64, Written)>>>,
}

/// One group of records, with the permits its sends hold.
pub struct Deposit {
    /// Chosen by the depositor, to match the result to the deposit.
    pub ticket: u64,
    /// The records.
    pub outcomes: Vec<DeliveryOutcome>,
    /// Given back once the records are committed (or failed to be).
    pub permits: Vec<OwnedSemaphorePermit>,
}

/// Deposits a transaction took, with what writing each of them gave.
#[derive(Default)]
pub struct Taken(Vec<(Deposit, Written)>);

impl Records {
    /// Leaves `deposit` for the next transaction.
    pub fn deposit(&self, deposit: Deposit) {
        self.lock().push(deposit);
    }

    /// True if records wait for a transaction.
    pub fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    /// The results from now on, `(ticket, written)`, as commits settle them; for the
    /// one depositor, the sender.
    pub fn subscribe(&self) -> UnboundedReceiver<(u64, Written)> {
        let (results, receiver) = unbounded_channel();
        *self.results.lock().unwrap_or_else(|p| p.into_inner()) = Some(results);
        receiver
    }

    /// Inside a transaction: writes every waiting deposit, each in a savepoint of its
    /// own so that one that cannot be written does not stop the others, into `taken`.
    pub fn write(&self, store: &Store, taken: &mut Taken) {
        let deposits = std::mem::take(&mut *self.lock());
        for deposit in deposits {
            let written = store
                .isolated(|s| s.write_outcomes(&deposit.outcomes))
                .map_err(|e| e.to_string());
            taken.0.push((deposit, written));
        }
    }

    /// After the transaction that wrote `taken`: gives the permits back and tells the
    /// depositor what became of each deposit. Nothing counts as written unless the
    /// transaction committed.
    pub fn settle<T>(&self, taken: Taken, committed: &Result<T, StoreError>) {
        for (deposit, written) in taken.0 {
            drop(deposit.permits);
            let written = match committed {
                Ok(_) => written,
                Err(e) => Err(e.to_string()),
            };
            // The sender may be gone on shutdown; the records stand either way.
            if let Some(results) = &*self.results.lock().unwrap_or_else(|p| p.into_inner()) {
                let _ = results.send((deposit.ticket, written));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Deposit>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    fn deposit(records: &Records, ticket: u64, gate: &Arc<Semaphore>) {
        records.deposit(Deposit {
            ticket,
            outcomes: vec![DeliveryOutcome::ReleaseAll {
                now: jiff::Timestamp::now(),
            }],
            permits: vec![gate.clone().try_acquire_owned().unwrap()],
        });
    }

    #[test]
    fn records_count_as_written_only_once_their_transaction_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        let records = Records::default();
        let mut results = records.subscribe();
        let gate = Arc::new(Semaphore::new(2));

        deposit(&records, 1, &gate);
        deposit(&records, 2, &gate);
        assert!(records.any());
        assert_eq!(gate.available_permits(), 0);
        let mut taken = Taken::default();
        let committed = store.transaction(|s| {
            records.write(s, &mut taken);
            Ok::<_, StoreError>(())
        });
        assert!(!records.any(), "a transaction takes every waiting deposit");
        assert_eq!(
            gate.available_permits(),
            0,
            "held until the commit is settled"
        );
        records.settle(taken, &committed);
        assert_eq!(gate.available_permits(), 2);
        assert_eq!(results.try_recv().unwrap(), (1, Ok(Recorded::default())));
        assert_eq!(results.try_recv().unwrap(), (2, Ok(Recorded::default())));

        // Written, then rolled back with the rest of the transaction: not written, and
        // the permits come back all the same.
        deposit(&records, 3, &gate);
        let mut taken = Taken::default();
        let rolled_back = store.transaction(|s| {
            records.write(s, &mut taken);
            Err::<(), _>(StoreError::NotFound(77))
        });
        records.settle(taken, &rolled_back);
        assert_eq!(gate.available_permits(), 2);
        let (ticket, written) = results.try_recv().unwrap();
        assert_eq!(ticket, 3);
        assert!(written.unwrap_err().contains("77"));
    }
}
