//! [`Claims`] on PostgreSQL, where several daemons share one database.
//!
//! A claim is a row of `daemons`: the daemon's name, a random token and a lease. The
//! steps and deliveries a daemon takes carry its token (`claimed_by`) until it has
//! recorded what became of them. A daemon renews its lease while it runs
//! ([`Claims::renew_claim`]); one whose lease ran out is presumed dead and taken
//! over ([`PostgresStore::take_over_expired`]): its row is deleted and what it had
//! taken is free for the others, so its work resumes within a lease and a renewal.
//!
//! Every fenced operation first checks its claim ([`PostgresStore::check_claim`]),
//! which locks the daemon's row `FOR SHARE` for the rest of the transaction: a
//! takeover, which deletes that row, then waits for the transaction to end. So either
//! the daemon's writes commit before it is taken over, or it finds its row gone and
//! writes nothing; a daemon presumed dead cannot overwrite its successor's work.
//!
//! Leases are measured on the database's clock (`clock_timestamp()`), not the hosts':
//! the hosts' clocks may disagree, and a lease must mean the same to every daemon.

use jiff::{SignedDuration, Timestamp};

use super::{PostgresStore, from_ms};
use crate::store::{Claim, ClaimRefused, Claims, Renewed, Result, StoreError};

/// The database's clock in milliseconds since the epoch, as SQL.
pub(super) const DB_NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

impl Claims for PostgresStore {
    /// Grants a new claim, after taking over every daemon whose lease ran out. `now`
    /// is not used: the lease runs on the database's clock.
    fn claim_work(&self, owner: &str, lease: SignedDuration, _now: Timestamp) -> Result<Claim> {
        self.transaction(|s| {
            s.take_over_expired()?;
            let token = fastrand::i64(..);
            let row = s.query_one(
                &format!(
                    "INSERT INTO daemons (token, owner, granted_at, lease_until)
                     VALUES ($1, $2, {DB_NOW}, {DB_NOW} + $3) RETURNING lease_until"
                ),
                &[&token, &owner, &lease_ms(lease)],
            )?;
            Ok(Claim {
                owner: owner.to_string(),
                token: token as u64,
                expires: from_ms(row.get(0)),
            })
        })
    }

    /// `now` is not used: the lease runs on the database's clock.
    fn renew_claim(
        &self,
        claim: &Claim,
        lease: SignedDuration,
        _now: Timestamp,
    ) -> Result<Renewed> {
        self.transaction(|s| {
            let renewed = s.query_opt(
                &format!(
                    "UPDATE daemons SET lease_until = {DB_NOW} + $2
                     WHERE token = $1 RETURNING lease_until"
                ),
                &[&(claim.token as i64), &lease_ms(lease)],
            )?;
            let Some(row) = renewed else {
                return Err(refused(claim));
            };
            let freed = s.take_over_expired()?;
            Ok(Renewed {
                claim: Claim {
                    expires: from_ms(row.get(0)),
                    ..claim.clone()
                },
                freed,
            })
        })
    }

    fn release_claim(&self, claim: &Claim) -> Result<()> {
        self.transaction(|s| {
            let token = claim.token as i64;
            if s.execute("DELETE FROM daemons WHERE token = $1", &[&token])? > 0 {
                s.free_work_of(&[token])?;
            }
            Ok(())
        })
    }

    fn daemons_serving(&self) -> Result<Option<Vec<String>>> {
        let rows = self.query(
            &format!("SELECT owner FROM daemons WHERE lease_until >= {DB_NOW} ORDER BY owner"),
            &[],
        )?;
        Ok(Some(rows.iter().map(|r| r.get(0)).collect()))
    }
}

impl PostgresStore {
    /// Deletes the daemons whose lease ran out and frees the steps and deliveries they
    /// had taken; returns how many steps and deliveries were freed. Rows locked by a
    /// transaction that checked its claim are waited for (see the module's notes).
    pub fn take_over_expired(&self) -> Result<u64> {
        let expired: Vec<i64> = self
            .query(
                &format!("DELETE FROM daemons WHERE lease_until < {DB_NOW} RETURNING token"),
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        self.free_work_of(&expired)
    }

    /// Frees the steps and deliveries the daemons of `tokens` had taken, whose rows are
    /// gone; returns how many.
    fn free_work_of(&self, tokens: &[i64]) -> Result<u64> {
        let steps = self.execute(
            "UPDATE steps SET claimed_by = NULL WHERE claimed_by = ANY($1)",
            &[&tokens],
        )?;
        // A taken email still pending was being sent: it may have reached the server
        // before its daemon died or gave up on it.
        let deliveries = self.execute(
            "UPDATE deliveries SET claimed_by = NULL,
                 taken_over = taken_over + CASE WHEN state = 'pending' THEN 1 ELSE 0 END
             WHERE claimed_by = ANY($1)",
            &[&tokens],
        )?;
        Ok(steps + deliveries)
    }

    /// Refuses `claim` once it was taken over, and keeps it from being taken over until
    /// the caller's transaction ends. For a fenced operation's transaction, before it
    /// writes. A claim whose lease ran out but which no one took over still holds: its
    /// work is still its daemon's alone.
    pub(super) fn check_claim(&self, claim: &Claim) -> Result<()> {
        let held = self.query_opt(
            "SELECT 1 FROM daemons WHERE token = $1 FOR SHARE",
            &[&(claim.token as i64)],
        )?;
        match held {
            Some(_) => Ok(()),
            None => Err(refused(claim)),
        }
    }

    /// Runs `f` in one transaction under `claim`, checked first as every fenced
    /// operation checks it (see the module's notes).
    pub fn fenced<T>(
        &self,
        claim: &Claim,
        f: impl FnOnce(&PostgresStore) -> Result<T>,
    ) -> Result<T> {
        self.transaction(|s| {
            s.check_claim(claim)?;
            f(s)
        })
    }
}

/// A lease in milliseconds, at least one.
fn lease_ms(lease: SignedDuration) -> i64 {
    (lease.as_millis() as i64).max(1)
}

pub(super) fn refused(claim: &Claim) -> StoreError {
    ClaimRefused {
        owner: claim.owner.clone(),
    }
    .into()
}
