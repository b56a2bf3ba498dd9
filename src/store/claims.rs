//! Claims: which daemon may take and finish work. Every operation that takes due
//! work or records what became of it (taking due steps and queueing their decisions,
//! taking due deliveries and recording their outcomes, running a calendar job's
//! occurrence) carries the [`Claim`] the store granted, and the store refuses one it
//! did not grant or has since replaced ([`ClaimRefused`]).
//!
//! With SQLite one daemon serves a store: it holds [`DaemonLock`](super::DaemonLock)
//! for as long as it runs, so a claim is always granted and no one can take the work
//! over while it lives. The store keeps the token it granted last on its connection
//! and checks it; the lease's expiry is kept for the caller but not enforced, since
//! the lock, not the lease, keeps a second daemon out. That is why the schema has no
//! claim columns: nothing but this connection ever reads them.
//!
//! PostgreSQL, with several daemons on one database, will lease rows behind the same
//! calls: a daemon takes due steps and deliveries with `SELECT ... FOR UPDATE SKIP
//! LOCKED`, writing its owner name, the lease's expiry and the claim's token into
//! them; renews while it works; and records outcomes only where its token still holds
//! (a fencing token), so a daemon presumed dead cannot overwrite its successor's work.
//! Expired leases are taken over. A calendar job's occurrence is a unique row per
//! (schedule, occurrence), claimed by one daemon.

use std::cell::Cell;

use jiff::{SignedDuration, Timestamp};

use super::{Result, Store};

/// The right to take and finish work, granted by the store to one daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    owner: String,
    token: u64,
    expires: Timestamp,
}

impl Claim {
    /// Who holds it: the daemon's name, e.g. `host:pid`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Until when the work it takes is the holder's, unless renewed.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }
}

/// A fenced operation came with a claim the store does not hold for it: another
/// store's, or one replaced by a later claim. Its work is not done, so nothing is
/// written twice.
#[derive(Debug, thiserror::Error)]
#[error(
    "the claim of {owner} is not the one this store granted last; its work was not taken \
     or recorded (is another daemon serving this store?)"
)]
pub struct ClaimRefused {
    /// Who held the refused claim.
    pub owner: String,
}

/// The token a store granted last, on its connection.
#[derive(Debug, Default)]
pub(super) struct Granted(Cell<Option<u64>>);

impl Store {
    /// Claims the store's due work for `owner` for `lease` from `now`. With SQLite it
    /// is always granted (the daemon holds the store's lock), and it replaces any
    /// claim granted before on this connection.
    pub fn claim_work(&self, owner: &str, lease: SignedDuration, now: Timestamp) -> Result<Claim> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    fn open(dir: &tempfile::TempDir, name: &str) -> Store {
        Store::open(&dir.path().join(name)).unwrap()
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
