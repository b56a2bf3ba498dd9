//! [`Summaries`] on PostgreSQL.

use crate::store::postgres::{PostgresStore, from_ms};
use crate::store::*;

impl PostgresStore {
    /// The number a `SELECT COUNT(*) ...` returns.
    fn count(&self, sql: &str) -> Result<u64> {
        let n: i64 = self.query_one(sql, &[])?.try_get(0)?;
        Ok(n.max(0) as u64)
    }
}

impl Summaries for PostgresStore {
    fn workload(&self) -> Result<Workload> {
        let next_step = self
            .query_opt(
                "SELECT fire_at, commitment_id, kind, label FROM steps
                 WHERE state = 'planned' ORDER BY fire_at LIMIT 1",
                &[],
            )?
            .map(|r| -> Result<NextStep> {
                Ok(NextStep {
                    fire_at: from_ms(r.try_get(0)?),
                    commitment_id: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    label: r.try_get(3)?,
                })
            })
            .transpose()?;
        Ok(Workload {
            planned_steps: self.count("SELECT COUNT(*) FROM steps WHERE state = 'planned'")?,
            next_step,
            pending_deliveries: self
                .count("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")?,
        })
    }

    /// One read: the counts agree with each other.
    fn summary(&self) -> Result<Summary> {
        self.snapshot(|s| {
            let last_sent_at: Option<i64> = s
                .query_one("SELECT MAX(sent_at) FROM deliveries", &[])?
                .try_get(0)?;
            let last_error = s
                .query_opt(
                    "SELECT id, commitment_id, state, last_error FROM deliveries
                     WHERE last_error IS NOT NULL AND state IN ('pending', 'failed')
                     ORDER BY state = 'pending' DESC, id DESC LIMIT 1",
                    &[],
                )?
                .map(|r| -> Result<DeliveryError> {
                    Ok(DeliveryError {
                        delivery_id: r.try_get(0)?,
                        commitment_id: r.try_get(1)?,
                        state: r.try_get(2)?,
                        error: r.try_get(3)?,
                    })
                })
                .transpose()?;
            Ok(Summary {
                workload: s.workload()?,
                open_commitments: s.count(
                    "SELECT COUNT(*) FROM commitments WHERE status = 'open' OR status IS NULL",
                )?,
                changes_waiting: s.count("SELECT COUNT(DISTINCT commitment_id) FROM changes")?,
                quarantined_commitments: s.count("SELECT COUNT(*) FROM problems")?,
                retrying_deliveries: s.count(
                    "SELECT COUNT(*) FROM deliveries WHERE state = 'pending' AND attempts > 0",
                )?,
                failed_deliveries: s
                    .count("SELECT COUNT(*) FROM deliveries WHERE state = 'failed'")?,
                sent_deliveries: s.count("SELECT COUNT(*) FROM deliveries WHERE state = 'sent'")?,
            customer_mail_maybe_twice: s.count(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'sent' AND audience = 'customer' AND taken_over > 0",
            )?,
                last_sent_at: last_sent_at.map(from_ms),
                last_error,
            })
        })
    }
}
