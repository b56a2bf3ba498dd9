//! The one owner of the daemon's store connection: a thread of its own that takes
//! requests over a channel, in the order they were sent.
//!
//! Each turn takes every request queued at that moment. The sender's typed requests
//! (record these outcomes, take these due deliveries) share one transaction, each in a
//! savepoint of its own so that one bad record does not spoil the others, and are
//! answered after the commit: outcomes that finish together are committed together
//! (group commit) without anyone waiting on purpose for the others. General calls
//! ([`StoreHandle::call`]) follow, one at a time, each calling store operations that
//! own their transactions: the planning task's batches, the status line and the rest,
//! whose shapes are not worth a request type of their own yet. The sender's requests
//! carry the daemon's claim, which the store checks.

use std::collections::HashSet;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::store::{Claim, DeliveryOutcome, Recorded, Store, StoreError, TakeDue, Writes};

/// What writing one group of outcomes did, or why it was not written: unwritten
/// records leave their deliveries pending, to be sent again.
pub type Written = Result<Recorded, NotRecorded>;

/// Why a group of outcomes was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cause}")]
pub struct NotRecorded {
    /// The store's error, in words.
    pub cause: String,
    /// The whole turn failed (the store could not be reached, its transaction did not
    /// commit), not this group's own records: the same records may be written later,
    /// and should be, since their emails went. False when the store refused these
    /// records, or the daemon's claim no longer holds and its work is another's.
    pub again: bool,
}

pub use crate::store::Taken;

type Job = Box<dyn FnOnce(&dyn Store) + Send>;

enum Request {
    /// Record these outcomes, in order.
    Record {
        outcomes: Vec<DeliveryOutcome>,
        reply: oneshot::Sender<Written>,
    },
    /// Take up to `limit` due deliveries not in `skip`, after the records of the turn.
    Take {
        limit: usize,
        skip: HashSet<i64>,
        clock: Clock,
        reply: oneshot::Sender<Result<Taken, String>>,
    },
    /// Anything else, on its own.
    Call(Job),
}

/// The store, shared between tasks: requests go to the thread that owns it, so no
/// SQLite work runs on the runtime's threads and no one waits for a lock.
#[derive(Clone)]
pub struct StoreHandle {
    requests: mpsc::Sender<Request>,
    writes: Writes,
}

impl StoreHandle {
    /// Hands `store` to a thread of its own, which serves requests until every handle
    /// is dropped; the sender's records and takes carry `claim`.
    pub fn new(store: Box<dyn Store>, claim: Claim) -> Self {
        let (requests, queue) = mpsc::channel();
        let writes = Writes::default();
        let counted = writes.clone();
        std::thread::Builder::new()
            .name("store".into())
            .spawn(move || serve(store, &claim, queue, &counted))
            .expect("a thread for the store starts");
        StoreHandle { requests, writes }
    }

    /// Counts every turn once it is over: after its commits, and after the looks that
    /// find another program's (the planning task's, which then plans in calls of its
    /// own).
    pub fn writes(&self) -> &Writes {
        &self.writes
    }

    /// Runs `f` with the store, after the requests sent before.
    pub async fn call<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&dyn Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Call(Box::new(move |store| {
            let _ = reply.send(f(store));
        })));
        answer.await.expect("store calls do not panic")
    }

    /// Records `outcomes` in the next turn's transaction; answers once it committed.
    pub async fn record(&self, outcomes: Vec<DeliveryOutcome>) -> Written {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Record { outcomes, reply });
        answer.await.unwrap_or_else(|_| {
            Err(NotRecorded {
                cause: "the store stopped".into(),
                again: false,
            })
        })
    }

    /// Up to `limit` deliveries due on `clock` that are not in `skip`, read in the next
    /// turn's transaction after its records.
    pub async fn take_due(
        &self,
        limit: usize,
        skip: HashSet<i64>,
        clock: Clock,
    ) -> Result<Taken, String> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Take {
            limit,
            skip,
            clock,
            reply,
        });
        answer
            .await
            .unwrap_or_else(|_| Err("the store stopped".into()))
    }

    fn send(&self, request: Request) {
        // The thread lives as long as a handle does; a panic there is caught below.
        let _ = self.requests.send(request);
    }
}

fn serve(store: Box<dyn Store>, claim: &Claim, queue: mpsc::Receiver<Request>, writes: &Writes) {
    while let Ok(first) = queue.recv() {
        let mut turn = vec![first];
        turn.extend(queue.try_iter());
        let mut records = Vec::new();
        let mut takes = Vec::new();
        let mut calls = Vec::new();
        for request in turn {
            match request {
                Request::Record { outcomes, reply } => records.push((outcomes, reply)),
                Request::Take {
                    limit,
                    skip,
                    clock,
                    reply,
                } => takes.push((limit, skip, clock, reply)),
                Request::Call(job) => calls.push(job),
            }
        }
        if !records.is_empty() || !takes.is_empty() {
            group(&*store, claim, records, takes);
            writes.committed();
        }
        for job in calls {
            // A panic loses that call's answer (its caller panics), not the thread.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&*store)));
            writes.committed();
        }
    }
}

type Records = Vec<(Vec<DeliveryOutcome>, oneshot::Sender<Written>)>;
type Takes = Vec<(
    usize,
    HashSet<i64>,
    Clock,
    oneshot::Sender<Result<Taken, String>>,
)>;

/// One store operation for the turn's records and takes, answered after its commit.
fn group(store: &dyn Store, claim: &Claim, records: Records, takes: Takes) {
    let outcomes: Vec<&[DeliveryOutcome]> = records.iter().map(|(o, _)| o.as_slice()).collect();
    let due: Vec<TakeDue<'_>> = takes
        .iter()
        .map(|(limit, skip, clock, _)| TakeDue {
            limit: *limit,
            skip,
            clock,
        })
        .collect();
    let answered = store.record_and_take(claim, &outcomes, &due);
    let (written, taken): (Vec<Written>, Vec<Result<Taken, String>>) = match answered {
        Ok((written, taken)) => (
            written
                .into_iter()
                .map(|r| {
                    r.map_err(|e| NotRecorded {
                        cause: e.to_string(),
                        again: false,
                    })
                })
                .collect(),
            taken
                .into_iter()
                .map(|r| r.map_err(|e| e.to_string()))
                .collect(),
        ),
        Err(e) => {
            let failed = NotRecorded {
                cause: e.to_string(),
                again: !matches!(e, StoreError::Claim(_)),
            };
            (
                vec![Err(failed.clone()); records.len()],
                vec![Err(failed.cause); takes.len()],
            )
        }
    };
    drop((outcomes, due));
    for ((_, reply), result) in records.into_iter().zip(written) {
        let _ = reply.send(result);
    }
    for ((_, _, _, reply), result) in takes.into_iter().zip(taken) {
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::{SignedDuration, Timestamp};

    fn handle(store: Box<dyn Store>) -> StoreHandle {
        let claim = store
            .claim_work(
                "test:1",
                SignedDuration::from_secs(15),
                Timestamp::UNIX_EPOCH,
            )
            .unwrap();
        StoreHandle::new(store, claim)
    }

    #[tokio::test]
    async fn records_sent_together_commit_in_one_turn_and_a_bad_one_spoils_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let store =
            handle(crate::store::open(&crate::store::Location::Sqlite(path.clone())).unwrap());
        // Another connection, without foreign keys: a bare outbox row, and a trigger
        // that refuses one record.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO deliveries (id, step_id, audience, sender, recipient, subject,
                                     message_id, message, next_attempt_at, created_at)
             VALUES (7, 1, 'owner', 'a@example.com', 'b@example.com', 's', 'm', x'00', 0, 0);
             CREATE TRIGGER refuse BEFORE UPDATE ON deliveries WHEN NEW.last_error = 'bad'
             BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        )
        .unwrap();
        let retry = |error: &str| {
            vec![DeliveryOutcome::Retry {
                id: 7,
                error: error.into(),
                retry_at: Timestamp::UNIX_EPOCH,
            }]
        };
        // The store is busy with a call while both records arrive: they share the
        // next turn.
        let (release, released) = mpsc::channel::<()>();
        let busy = store.call(move |_| released.recv().is_ok());
        let bad = store.record(retry("bad"));
        let good = store.record(retry("fine"));
        let free = async {
            tokio::task::yield_now().await;
            release.send(()).unwrap();
        };
        let (_, bad, good, ()) = tokio::join!(busy, bad, good, free);
        let bad = bad.unwrap_err();
        assert!(bad.cause.contains("refused") && !bad.again, "{bad:?}");
        assert_eq!(good, Ok(Recorded::default()));
        let (attempts, error): (u32, String) = raw
            .query_row(
                "SELECT attempts, last_error FROM deliveries WHERE id = 7",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((attempts, error.as_str()), (1, "fine"));
        let (taken, next) = store
            .take_due(10, HashSet::new(), Clock::system())
            .await
            .unwrap();
        assert_eq!(taken.iter().map(|d| d.id).collect::<Vec<_>>(), vec![7]);
        assert!(next.is_none());
    }

    #[tokio::test]
    async fn a_call_that_panics_leaves_the_store_serving() {
        let dir = tempfile::tempdir().unwrap();
        let store = handle(
            crate::store::open(&crate::store::Location::Sqlite(dir.path().join("f.db"))).unwrap(),
        );
        let handle = store.clone();
        let panicked = tokio::spawn(async move { handle.call(|_| panic!("boom")).await }).await;
        assert!(panicked.is_err());
        assert!(store.call(|s| s.write_mark().is_ok()).await);
    }
}
