//! What a customer's profile reads: their commitments with the facts the report also
//! uses, the notes about them, the emails to their address. A customer has no row of
//! their own; their address (lower case) is the key.

use jiff::Timestamp;
use rusqlite::params;

use super::commitments::CUSTOMER_IS;
use super::{ReportRow, Result, Store, from_ms, to_ms};
use crate::customer::Note;

impl Store {
    /// Every commitment to the customer with address `address` (any case), oldest
    /// first, with its first due time and the updates its customer was sent.
    pub fn customer_rows(&self, address: &str) -> Result<Vec<ReportRow>> {
        self.report_rows_where(CUSTOMER_IS, [address.trim()])
    }

    /// The notes about the customer with address `address` (any case), oldest first.
    pub fn customer_notes(&self, address: &str) -> Result<Vec<Note>> {
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

    /// Keeps a note about the customer with address `address`, written by `actor` via
    /// `via` (`cli`, `web`) at `now`; returns its id.
    pub fn add_customer_note(
        &self,
        address: &str,
        note: &str,
        actor: &str,
        via: &str,
        now: Timestamp,
    ) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO customer_notes (address, body, actor, via, created_at)
                 VALUES (lower(?1), ?2, ?3, ?4, ?5)",
            )?
            .execute(params![address.trim(), note, actor, via, to_ms(now)])?;
        Ok(self.conn.last_insert_rowid())
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
        store
            .add_customer_note(
                "Joe@Example.org",
                "prefers calls",
                "ana",
                "cli",
                at("2026-11-01T10:00:00Z"),
            )
            .unwrap();
        store
            .add_customer_note(
                "joe@example.org",
                "gate code 1234",
                "bob",
                "cli",
                at("2026-11-02T10:00:00Z"),
            )
            .unwrap();
        store
            .add_customer_note(
                "amy@example.org",
                "other",
                "bob",
                "cli",
                at("2026-11-02T10:00:00Z"),
            )
            .unwrap();
        let notes = store.customer_notes("JOE@EXAMPLE.ORG").unwrap();
        let bodies: Vec<&str> = notes.iter().map(|n| n.body.as_str()).collect();
        assert_eq!(bodies, ["prefers calls", "gate code 1234"]);
        assert_eq!(notes[0].actor.as_deref(), Some("ana"));
    }
}
