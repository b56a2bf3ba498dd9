//! [`Customers`] on PostgreSQL.

use ::postgres::types::ToSql;
use jiff::Timestamp;

use super::commitments::{CUSTOMER_IS, columns_of, stored_from_row};
use crate::customer::Note;
use crate::store::postgres::{PostgresStore, from_ms, to_ms};
use crate::store::*;

impl PostgresStore {
    /// The notes about the customer with address `address` (any case), oldest first.
    fn customer_notes(&self, address: &str) -> Result<Vec<Note>> {
        self.query(
            "SELECT body, actor, via, created_at FROM customer_notes
             WHERE address = lower($1) ORDER BY created_at, id",
            &[&address.trim()],
        )?
        .iter()
        .map(|r| {
            Ok(Note {
                body: r.try_get(0)?,
                actor: r.try_get(1)?,
                via: r.try_get(2)?,
                created_at: from_ms(r.try_get(3)?),
            })
        })
        .collect()
    }

    /// The report's rows of the commitments (`c`) for which `filter` holds: each with
    /// its first due time and the times its customer was sent updates or delay notices.
    pub(super) fn report_rows_where(
        &self,
        filter: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<ReportRow>> {
        let rows = self.query(
            &format!(
                "SELECT (SELECT r.old_due FROM revisions r WHERE r.commitment_id = c.id ORDER BY r.id LIMIT 1),
                        ARRAY(SELECT d.sent_at FROM deliveries d JOIN steps s ON s.id = d.step_id
                               WHERE d.commitment_id = c.id AND d.state = 'sent' AND d.audience = 'customer'
                                 AND s.kind IN ('customer_update', 'delay_notice')
                               ORDER BY d.sent_at, d.id),
                        {}
                 FROM commitments c WHERE {filter} ORDER BY c.id",
                columns_of("c")
            ),
            params,
        )?;
        rows.iter()
            .map(|r| {
                let sent: Vec<Option<i64>> = r.try_get(1)?;
                Ok(ReportRow {
                    first_old_due: r.try_get(0)?,
                    updates_sent: sent.into_iter().flatten().map(from_ms).collect(),
                    row: stored_from_row(r, 2)?,
                })
            })
            .collect()
    }
}

impl Customers for PostgresStore {
    fn customer_records(&self, address: &str, with_emails: bool) -> Result<CustomerRecords> {
        self.snapshot(|s| {
            Ok(CustomerRecords {
                rows: s.customer_rows(address)?,
                notes: s.customer_notes(address)?,
                emails: if with_emails {
                    s.deliveries_to(address)?
                } else {
                    Vec::new()
                },
            })
        })
    }

    fn knows_customer(&self, address: &str) -> Result<bool> {
        self.snapshot(|s| {
            Ok(!s.customer_rows(address)?.is_empty() || !s.customer_notes(address)?.is_empty())
        })
    }

    fn keep_customer_note(
        &self,
        address: &str,
        note: &str,
        actor: &str,
        via: &str,
        now: Timestamp,
    ) -> Result<NoteKept> {
        self.transaction(|s| {
            let id = s
                .query_one(
                    "INSERT INTO customer_notes (address, body, actor, via, created_at)
                     VALUES (lower($1), $2, $3, $4, $5) RETURNING id",
                    &[&address.trim(), &note, &actor, &via, &to_ms(now)],
                )?
                .try_get(0)?;
            let has_commitments = !s.customer_rows(address)?.is_empty();
            Ok(NoteKept {
                id,
                has_commitments,
            })
        })
    }

    fn customer_rows(&self, address: &str) -> Result<Vec<ReportRow>> {
        // CUSTOMER_IS names the columns bare: in this statement they are `c`'s only.
        self.report_rows_where(CUSTOMER_IS, &[&address.trim()])
    }
}
