//! Claims: which daemon may take and finish work. Every operation that takes due
//! work or records what became of it (taking due steps and queueing their decisions,
//! taking due deliveries and recording their outcomes, running a calendar job's
//! occurrence) carries the [`Claim`] the store granted, and the store refuses one it
//! did not grant or has since replaced ([`ClaimRefused`]).
//!
//! A store served by one daemon at a time (SQLite, behind its lock) always grants the
//! claim. A store shared by several daemons leases rows behind the same calls:
//! a daemon takes due steps and deliveries with `SELECT ... FOR UPDATE SKIP
//! LOCKED`, writing its owner name, the lease's expiry and the claim's token into
//! them; renews while it works; and records outcomes only where its token still holds
//! (a fencing token), so a daemon presumed dead cannot overwrite its successor's work.
//! Expired leases are taken over. A calendar job's occurrence is a unique row per
//! (schedule, occurrence), claimed by one daemon.

use jiff::{SignedDuration, Timestamp};

use super::Result;

/// The right to take and finish work, granted by the store to one daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub(super) owner: String,
    pub(super) token: u64,
    pub(super) expires: Timestamp,
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
    "the claim of {owner} no longer holds (a later claim replaced it, or its lease ran out \
     and another daemon took its work over); its work was not taken or recorded"
)]
pub struct ClaimRefused {
    /// Who held the refused claim.
    pub owner: String,
}

/// A claim renewed ([`Claims::renew_claim`]).
#[derive(Debug, Clone)]
pub struct Renewed {
    /// The claim with its new expiry; its token is the same.
    pub claim: Claim,
    /// How many steps and emails of daemons taken over meanwhile were freed: work the
    /// renewing daemon should look for now.
    pub freed: u64,
}

/// Claiming work.
pub trait Claims {
    /// Claims the store's due work for `owner` for `lease` from `now`, replacing any
    /// claim granted before on this store.
    fn claim_work(&self, owner: &str, lease: SignedDuration, now: Timestamp) -> Result<Claim>;

    /// Extends `claim` to `lease` from now, and takes over the daemons whose lease ran
    /// out. A claim whose own lease ran out is renewed as long as no other daemon took
    /// its work over (a daemon cut off from the store for a while keeps its work);
    /// once one did, refused ([`ClaimRefused`]): what it held is another's now.
    fn renew_claim(&self, claim: &Claim, lease: SignedDuration, now: Timestamp) -> Result<Renewed>;

    /// Gives `claim` up when its daemon stops cleanly: what it had taken is free for
    /// the other daemons at once, and a daemon started next neither waits for its lease
    /// nor counts it as running.
    fn release_claim(&self, claim: &Claim) -> Result<()>;

    /// The daemons whose claims hold now, by name, for a store several daemons share;
    /// `None` for a store whose one daemon is known by its lock instead.
    fn daemons_serving(&self) -> Result<Option<Vec<String>>>;
}
