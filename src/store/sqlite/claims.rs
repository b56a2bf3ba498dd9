//! [`Claims`] on SQLite.
//!
//! One daemon serves a SQLite store: it holds [`DaemonLock`](super::DaemonLock)
//! for as long as it runs, so a claim is always granted and no one can take the work
//! over while it lives. The store keeps the token it granted last on its connection
//! and checks it; the lease's expiry is kept for the caller but not enforced, since
//! the lock, not the lease, keeps a second daemon out. That is why the schema has no
//! claim columns: nothing but this connection ever reads them.
//!

use std::cell::Cell;

use jiff::{SignedDuration, Timestamp};

use crate::store::sqlite::SqliteStore;
use crate::store::*;

/// The token a store granted last, on its connection.
#[derive(Debug, Default)]
pub(super) struct Granted(Cell<Option<u64>>);

impl SqliteStore {
    /// Refuses a claim this store did not grant last.
    pub(super) fn check_claim(&self, claim: &Claim) -> Result<()> {
        if self.granted.0.get() == Some(claim.token) {
            Ok(())
        } else {
            Err(ClaimRefused {
                owner: claim.owner.clone(),
            }
            .into())
        }
    }
}

impl Claims for SqliteStore {
    fn claim_work(&self, owner: &str, lease: SignedDuration, now: Timestamp) -> Result<Claim> {
        let token = loop {
            let token = fastrand::u64(..);
            if Some(token) != self.granted.0.get() {
                break token;
            }
        };
        self.granted.0.set(Some(token));
        Ok(Claim {
            owner: owner.to_string(),
            token,
            expires: now.saturating_add(lease).unwrap_or(Timestamp::MAX),
        })
    }

    /// Nothing to take over: no other daemon serves the file.
    fn renew_claim(&self, claim: &Claim, lease: SignedDuration, now: Timestamp) -> Result<Renewed> {
        self.check_claim(claim)?;
        Ok(Renewed {
            claim: Claim {
                expires: now.saturating_add(lease).unwrap_or(Timestamp::MAX),
                ..claim.clone()
            },
            freed: 0,
        })
    }

    /// Nothing to give up: the file's lock ends with the process.
    fn release_claim(&self, _claim: &Claim) -> Result<()> {
        Ok(())
    }

    /// The lock says it ([`running_daemon`](super::running_daemon)).
    fn daemons_serving(&self) -> Result<Option<Vec<String>>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn open(dir: &tempfile::TempDir, name: &str) -> SqliteStore {
        SqliteStore::open(&dir.path().join(name)).unwrap()
    }

    #[test]
    fn a_granted_claim_is_held_until_another_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, "f.db");
        let now = Timestamp::UNIX_EPOCH;
        let first = store
            .claim_work("host:1", SignedDuration::from_secs(15), now)
            .unwrap();
        assert_eq!(first.owner(), "host:1");
        assert_eq!(first.expires(), now + SignedDuration::from_secs(15));
        store.check_claim(&first).unwrap();
        let second = store
            .claim_work("host:2", SignedDuration::from_secs(15), now)
            .unwrap();
        store.check_claim(&second).unwrap();
        let stale = store.check_claim(&first).unwrap_err();
        assert!(
            matches!(stale, StoreError::Claim(ClaimRefused { ref owner }) if owner == "host:1")
        );
        assert!(stale.to_string().contains("host:1"), "{stale}");
    }

    #[test]
    fn another_stores_claim_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (open(&dir, "one.db"), open(&dir, "two.db"));
        let now = Timestamp::UNIX_EPOCH;
        let foreign = one
            .claim_work("host:1", SignedDuration::from_secs(15), now)
            .unwrap();
        assert!(matches!(
            two.check_claim(&foreign),
            Err(StoreError::Claim(_))
        ));
        two.claim_work("host:2", SignedDuration::from_secs(15), now)
            .unwrap();
        assert!(matches!(
            two.check_claim(&foreign),
            Err(StoreError::Claim(_))
        ));
    }

    #[test]
    fn work_taken_or_recorded_with_a_stale_claim_is_refused_and_not_done() {
        use std::collections::HashSet;

        use crate::clock::Clock;
        use crate::store::{DeliveryOutcome, DueAsk, TakeDue, Wanted};

        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir, "f.db");
        let now = Timestamp::UNIX_EPOCH;
        let stale = store
            .claim_work("host:1", SignedDuration::from_secs(15), now)
            .unwrap();
        let held = store
            .claim_work("host:1", SignedDuration::from_secs(15), now)
            .unwrap();
        let busy = HashSet::new();
        let wants = |_: &crate::store::DueStep| Wanted::default();
        let ask = DueAsk {
            now,
            ahead: now,
            after: None,
            busy: &busy,
            limit: 8,
            wants: &wants,
        };
        assert!(matches!(
            store.take_due_steps(&stale, &ask),
            Err(StoreError::Claim(_))
        ));
        assert!(store.take_due_steps(&held, &ask).unwrap().is_none());

        let outcomes = [DeliveryOutcome::ReleaseAll { now }];
        let clock = Clock::system();
        let take = TakeDue {
            limit: 8,
            skip: &busy,
            clock: &clock,
        };
        let refused = store.record_and_take(&stale, &[&outcomes], &[take]);
        assert!(matches!(refused, Err(StoreError::Claim(_))));
        let take = TakeDue {
            limit: 8,
            skip: &busy,
            clock: &clock,
        };
        let (written, taken) = store.record_and_take(&held, &[&outcomes], &[take]).unwrap();
        assert!(written[0].is_ok() && taken[0].is_ok());
    }
}
