//! The store at a glance, for the daemon's `STATUS=` line and `followup status`.
//!
//! [`Store::workload`] reads only the partial indexes of planned steps and pending
//! deliveries, so the daemon can call it after every planning pass. [`Store::summary`]
//! adds the history (sent and failed emails, problems), which counts whole tables and
//! is for the command line only.

use jiff::Timestamp;
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::{Result, Store, from_ms};

/// The work ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Steps planned and not yet fired.
    pub planned_steps: u64,
    /// The earliest of them.
    pub next_step: Option<NextStep>,
    /// Emails in the outbox, waiting for their first attempt or a retry.
    pub pending_deliveries: u64,
}

/// The planned step that fires first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextStep {
    /// When it fires.
    pub fire_at: Timestamp,
    /// The commitment it belongs to.
    pub commitment_id: i64,
    /// Its kind, e.g. `remind`.
    pub kind: String,
    /// Its label, e.g. `-2h`.
    pub label: String,
}

/// The work ahead and what happened so far.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Planned steps and pending emails.
    #[serde(flatten)]
    pub workload: Workload,
    /// Commitments still to be kept.
    pub open_commitments: u64,
    /// Writes to commitments the daemon has not planned yet: many while it is stopped.
    pub changes_waiting: u64,
    /// Commitments whose row cannot be planned (bad address, unreadable due time, no
    /// rule): their steps are held until the row is fixed.
    pub quarantined_commitments: u64,
    /// Pending emails whose last attempt failed and that wait for a retry.
    pub retrying_deliveries: u64,
    /// Emails that failed for good.
    pub failed_deliveries: u64,
    /// Emails the server accepted.
    pub sent_deliveries: u64,
    /// When the last one was accepted.
    pub last_sent_at: Option<Timestamp>,
    /// The most recent error recorded on an email: one still being retried first, else
    /// the newest failure.
    pub last_error: Option<DeliveryError>,
}

/// An error recorded on one email.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryError {
    /// The delivery.
    pub delivery_id: i64,
    /// The commitment it is about.
    pub commitment_id: i64,
    /// `pending` (will be retried) or `failed`.
    pub state: String,
    /// What went wrong.
    pub error: String,
}

impl Store {
    /// The number a `SELECT COUNT(*) ...` returns.
    fn count(&self, sql: &str) -> Result<u64> {
        let n: i64 = self.conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    /// Planned steps, the next one, and pending emails, from indexes only.
    pub fn workload(&self) -> Result<Workload> {
        let next_step = self
            .conn
            .prepare_cached(
                "SELECT fire_at, commitment_id, kind, label FROM steps
                 WHERE state = 'planned' ORDER BY fire_at LIMIT 1",
            )?
            .query_row([], |r| {
                Ok(NextStep {
                    fire_at: from_ms(r.get(0)?),
                    commitment_id: r.get(1)?,
                    kind: r.get(2)?,
                    label: r.get(3)?,
                })
            })
            .optional()?;
        Ok(Workload {
            planned_steps: self.count("SELECT COUNT(*) FROM steps WHERE state = 'planned'")?,
            next_step,
            pending_deliveries: self
                .count("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")?,
        })
    }

    /// The workload and the history, for `followup status`.
    pub fn summary(&self) -> Result<Summary> {
        let last_sent_at: Option<i64> =
            self.conn
                .query_row("SELECT MAX(sent_at) FROM deliveries", [], |r| r.get(0))?;
        let last_error = self
            .conn
            .query_row(
                "SELECT id, commitment_id, state, last_error FROM deliveries
                 WHERE last_error IS NOT NULL AND state IN ('pending', 'failed')
                 ORDER BY state = 'pending' DESC, id DESC LIMIT 1",
                [],
                |r| {
                    Ok(DeliveryError {
                        delivery_id: r.get(0)?,
                        commitment_id: r.get(1)?,
                        state: r.get(2)?,
                        error: r.get(3)?,
                    })
                },
            )
            .optional()?;
        Ok(Summary {
            workload: self.workload()?,
            open_commitments: self.count(
                "SELECT COUNT(*) FROM commitments WHERE status = 'open' OR status IS NULL",
            )?,
            changes_waiting: self.count("SELECT COUNT(DISTINCT commitment_id) FROM changes")?,
            quarantined_commitments: self.count("SELECT COUNT(*) FROM problems")?,
            retrying_deliveries: self.count(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND attempts > 0",
            )?,
            failed_deliveries: self
                .count("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'")?,
            sent_deliveries: self.count("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'")?,
            last_sent_at: last_sent_at.map(from_ms),
            last_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewCommitment;

    #[test]
    fn an_empty_store_has_no_work_and_no_history() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
        assert_eq!(store.workload().unwrap(), Workload::default());
        store
            .insert_commitment(&NewCommitment::sample("2026-11-24T17:00:00Z"))
            .unwrap();
        let summary = store.summary().unwrap();
        assert_eq!(summary.open_commitments, 1);
        assert_eq!(
            summary.changes_waiting, 1,
            "the daemon has not planned it yet"
        );
        assert_eq!(summary.sent_deliveries, 0);
        assert!(summary.last_sent_at.is_none() && summary.last_error.is_none());
    }
}
