//! What a customer's profile reads: their commitments with the facts the report also
//! uses, the notes about them, the emails to their address. A customer has no row of
//! their own; their address (lower case) is the key.

use jiff::Timestamp;
use rusqlite::params;

use super::commitments::CUSTOMER_IS;
use super::{DeliveryRecord, ReportRow, Result, Store, StoreError, from_ms, to_ms};
use crate::customer::Note;

/// What the store holds about one customer, read as it stood at one moment: a profile
/// made of it never counts a commitment whose emails it misses.
#[derive(Debug, Clone, Default)]
pub struct CustomerRecords {
    /// Their commitments, as [`Store::customer_rows`] gives them.
    pub rows: Vec<ReportRow>,
    /// The notes about them, oldest first.
    pub notes: Vec<Note>,
    /// Every email to their address, oldest first; empty unless asked for.
    pub emails: Vec<DeliveryRecord>,
}

/// A note kept by [`Store::keep_customer_note`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteKept {
    /// The note's id.
    pub id: i64,
    /// Whether any commitment was for the customer when the note was kept; a note
    /// about no one yet is kept all the same, and the person is told.
    pub has_commitments: bool,
}

impl Store {
    /// What the store holds about the customer with address `address` (any case), in
    /// one read: their rows and notes, and their emails only `with_emails` (an email's
    /// template needs none of them).
    pub fn customer_records(&self, address: &str, with_emails: bool) -> Result<CustomerRecords> {
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

    /// True if the store knows the customer with address `address` (any case): a
    /// commitment is for them or a note is about them.
    pub fn knows_customer(&self, address: &str) -> Result<bool> {
        self.snapshot(|s| {
            Ok::<_, StoreError>(
                !s.customer_rows(address)?.is_empty() || !s.customer_notes(address)?.is_empty(),
            )
        })?
    }

    /// Keeps a note about the customer with address `address`, written by `actor` via
    /// `via` (`cli`, `web`) at `now`, and says whether they have commitments, in one
    /// transaction.
    pub fn keep_customer_note(
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

    /// Every commitment to the customer with address `address` (any case), oldest
    /// first, with its first due time and the updates its customer was sent.
    pub fn customer_rows(&self, address: &str) -> Result<Vec<ReportRow>> {
        self.report_rows_where(CUSTOMER_IS, [address.trim()])
    }

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

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn a_customer_is_found_by_address_in_any_case_with_or_without_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("f.db")).unwrap();
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
        let store = Store::open(&dir.path().join("f.db")).unwrap();
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
