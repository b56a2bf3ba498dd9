//! [`Outbox`] on SQLite.

use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl SqliteStore {
    fn take_due(&self, due: &TakeDue<'_>) -> Result<Taken> {
        let now = due.clock.now();
        let batch = self.pending_deliveries(now, due.limit, due.skip)?;
        let next = if batch.len() < due.limit {
            self.next_attempt_at_after(now)?
        } else {
            None
        };
        Ok((batch, next))
    }
}

impl Outbox for SqliteStore {
    fn record_and_take(
        &self,
        claim: &Claim,
        records: &[&[DeliveryOutcome]],
        takes: &[TakeDue<'_>],
    ) -> Result<Turn> {
        self.check_claim(claim)?;
        self.transaction(|s| {
            let written = records
                .iter()
                .map(|outcomes| s.isolated(|s| s.write_outcomes(outcomes)))
                .collect();
            let taken = takes
                .iter()
                .map(|due| s.isolated(|s| s.take_due(due)))
                .collect();
            Ok::<_, StoreError>((written, taken))
        })
    }
}
