//! [`Customers`] on SQLite.

use jiff::Timestamp;
use rusqlite::params;

use super::commitments::CUSTOMER_IS;
use crate::customer::Note;
use crate::store::sqlite::SqliteStore;
use crate::store::sqlite::{from_ms, to_ms};
use crate::store::*;

impl SqliteStore {
    /// The notes about the customer with address `address` (any case), oldest first.
    fn customer_notes(&self, address: &str) -> Result<Vec<Note>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body, actor, via, created_at FROM customer_notes
             WHERE address = lower(?1) ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([address.trim()], |r| {
            Ok(Note {
                body: r.get(0)?,
                actor: r.get(1)?,
                via: r.get(2)?,
                created_at: from_ms(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Customers for SqliteStore {
    fn customer_records(&self, address: &str, with_emails: bool) -> Result<CustomerRecords> {
        self.snapshot(|s| {
            Ok::<_, StoreError>(CustomerRecords {
                rows: s.customer_rows(address)?,
                notes: s.customer_notes(address)?,
                emails: if with_emails {
                    s.deliveries_to(&address.trim().to_lowercase())?
                } else {
                    Vec::new()
                },
            })
        })?
    }

    fn knows_customer(&self, address: &str) -> Result<bool> {
        self.snapshot(|s| {
            Ok::<_, StoreError>(
                !s.customer_rows(address)?.is_empty() || !s.customer_notes(address)?.is_empty(),
            )
        })?
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
            s.conn
                .prepare_cached(
                    "INSERT INTO customer_notes (address, body, actor, via, created_at)
                     VALUES (lower(?1), ?2, ?3, ?4, ?5)",
                )?
                .execute(params![address.trim(), note, actor, via, to_ms(now)])?;
            let id = s.conn.last_insert_rowid();
            let has_commitments = !s.customer_rows(address)?.is_empty();
            Ok(NoteKept {
                id,
                has_commitments,
            })
        })
    }

    fn customer_rows(&self, address: &str) -> Result<Vec<ReportRow>> {
        self.report_rows_where(CUSTOMER_IS, [address.trim()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_is_found_by_address_in_any_case_with_or_without_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        let insert = "INSERT INTO commitments (title, owner, customer, due_at) VALUES ('Quote', 'ana@example.com', ?1, '2026-12-01T10:00:00Z')";
        for customer in [
            "Joe Mensah <Joe@Example.org>",
            "joe@example.org",
            "bigjoe@example.org",
            "Joe <joe@example.org.uk>",
        ] {
            store.conn.execute(insert, [customer]).unwrap();
        }
        let ids: Vec<i64> = store
            .customer_rows("JOE@example.org")
            .unwrap()
            .iter()
            .map(|r| r.row.id)
            .collect();
        assert_eq!(ids, [1, 2]);
    }

    #[test]
    fn notes_are_kept_by_lower_case_address_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        let first = store
            .keep_customer_note(
                "Joe@Example.org",
                "prefers calls",
                "ana",
                "cli",
                at("2026-11-01T10:00:00Z"),
            )
            .unwrap();
        assert!(!first.has_commitments);
        assert!(store.knows_customer("joe@example.org").unwrap());
        store
            .conn
            .execute(
                "INSERT INTO commitments (title, owner, customer, due_at) VALUES ('Quote', 'ana@example.com', 'Joe <joe@example.org>', '2026-12-01T10:00:00Z')",
                [],
            )
            .unwrap();
        let second = store
            .keep_customer_note(
                "joe@example.org",
                "gate code 1234",
                "bob",
                "cli",
                at("2026-11-02T10:00:00Z"),
            )
            .unwrap();
        assert!(second.has_commitments);
        assert_ne!(first.id, second.id);
        store
            .keep_customer_note(
                "amy@example.org",
                "other",
                "bob",
                "cli",
                at("2026-11-02T10:00:00Z"),
            )
            .unwrap();
        let records = store.customer_records("JOE@EXAMPLE.ORG", false).unwrap();
        let bodies: Vec<&str> = records.notes.iter().map(|n| n.body.as_str()).collect();
        assert_eq!(bodies, ["prefers calls", "gate code 1234"]);
        assert_eq!(records.notes[0].actor.as_deref(), Some("ana"));
        assert_eq!(records.rows.len(), 1);
        assert!(!store.knows_customer("zoe@example.org").unwrap());
    }
}
