//! [`Summaries`] on SQLite.

use rusqlite::OptionalExtension;

use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::from_ms;
use crate::store::*;

impl SqliteStore {
    /// The number a `SELECT COUNT(*) ...` returns.
    fn count(&self, sql: &str) -> Result<u64> {
        let n: i64 = self.conn.prepare_cached(sql)?.query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }
}

impl Summaries for SqliteStore {
    fn workload(&self) -> Result<Workload> {
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

    fn summary(&self) -> Result<Summary> {
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
            // One daemon, behind its lock: nothing is taken over.
            customer_mail_maybe_twice: 0,
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
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
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
