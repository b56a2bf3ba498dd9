//! [`Commitments`] on SQLite.

use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, Row, params};

use crate::commitment::{Status, StoredCommitment};
use crate::store::sqlite::SqliteStore;
use crate::store::*;

/// The columns of `commitments` in the order [`stored_from_row`] reads them.
pub(super) const COLUMNS: &str = "id, title, owner, customer, timezone, due_at, kind, status, note, external_ref, created_at, done_at, reason, promise, outcome, closed_at, waiting_since";

/// Holds for a row whose customer has the address `?1`, in any case: the address alone
/// or `Name <address>`. `_` and `%` in `?1` match any character, so callers that need the
/// address exactly check the rows they get.
pub(super) const CUSTOMER_IS: &str =
    "(lower(trim(customer)) = lower(?1) OR lower(customer) LIKE '%<' || lower(?1) || '>')";

/// [`COLUMNS`] qualified with a table alias, for joins: `c.id, c.title, ...`.
pub(super) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A column read as text whatever type another program stored in it. Integers in time
/// columns are Unix seconds. The time columns are declared `TEXT`, so SQLite's type
/// affinity stores an integer written there as its digits: digits alone in a time
/// column are Unix seconds too.
fn text(row: &Row<'_>, index: usize, is_time: bool) -> rusqlite::Result<Option<String>> {
    Ok(match row.get_ref(index)? {
        ValueRef::Null => None,
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => {
            let text = String::from_utf8_lossy(bytes);
            let digits = text.trim();
            match digits.parse::<i64>() {
                Ok(n) if is_time && digits.bytes().all(|b| b.is_ascii_digit()) => {
                    Some(unix_seconds(n))
                }
                _ => Some(text.into_owned()),
            }
        }
        ValueRef::Integer(n) if is_time => Some(unix_seconds(n)),
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(f) => Some(f.to_string()),
    })
}

/// Unix seconds as the RFC 3339 text the other time columns hold; out of range, the
/// number itself, which checking the row then names.
fn unix_seconds(n: i64) -> String {
    jiff::Timestamp::from_second(n)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| n.to_string())
}

/// Reads a row selected with [`COLUMNS`], starting at column `at`.
pub(super) fn stored_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<StoredCommitment> {
    Ok(StoredCommitment {
        id: row.get(at)?,
        title: text(row, at + 1, false)?,
        owner: text(row, at + 2, false)?,
        customer: text(row, at + 3, false)?,
        timezone: text(row, at + 4, false)?,
        due_at: text(row, at + 5, true)?,
        kind: text(row, at + 6, false)?,
        status: text(row, at + 7, false)?,
        note: text(row, at + 8, false)?,
        external_ref: text(row, at + 9, false)?,
        created_at: text(row, at + 10, true)?,
        done_at: text(row, at + 11, true)?,
        reason: text(row, at + 12, false)?,
        promise: text(row, at + 13, false)?,
        outcome: text(row, at + 14, false)?,
        closed_at: text(row, at + 15, true)?,
        waiting_since: text(row, at + 16, true)?,
    })
}

impl SqliteStore {
    /// Sets the status of commitment `id` and returns the status it had (as stored).
    pub fn set_status(&self, id: i64, status: Status) -> Result<Option<String>> {
        self.transaction(|store| {
            let previous: Option<String> = store
                .conn
                .query_row("SELECT status FROM commitments WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .optional()?
                .ok_or(StoreError::NotFound(id))?;
            store.conn.execute(
                "UPDATE commitments SET status = ?2 WHERE id = ?1",
                params![id, status.as_str()],
            )?;
            Ok::<_, StoreError>(previous)
        })
    }

    /// Ends the wait on the customer of commitment `id` (the update trigger has the
    /// daemon plan it again).
    pub(super) fn end_wait(&self, id: i64) -> Result<()> {
        let changed = self
            .conn
            .prepare_cached("UPDATE commitments SET waiting_since = NULL WHERE id = ?1")?
            .execute([id])?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }
}

impl Commitments for SqliteStore {
    fn insert_commitment(&self, c: &NewCommitment) -> Result<i64> {
        let late_from = c.late_from.map(super::to_ms);
        self.conn.execute(
            "INSERT INTO commitments (title, owner, customer, timezone, due_at, kind, status, note, external_ref, reason,
                                      late_from, promise)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, ?9, ?10, ?11)",
            params![c.title, c.owner, c.customer, c.timezone, c.due_at, c.kind, c.note, c.external_ref, c.reason, late_from,
                    c.promise],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn commitment(&self, id: i64) -> Result<StoredCommitment> {
        self.conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM commitments WHERE id = ?1"))?
            .query_row([id], |row| stored_from_row(row, 0))
            .optional()?
            .ok_or(StoreError::NotFound(id))
    }

    fn commitments(&self, filter: StatusFilter) -> Result<Vec<StoredCommitment>> {
        let (sql, status) = match filter {
            StatusFilter::All => (
                format!("SELECT {COLUMNS} FROM commitments ORDER BY id"),
                None,
            ),
            StatusFilter::Only(s) => (
                format!("SELECT {COLUMNS} FROM commitments WHERE status = ?1 ORDER BY id"),
                Some(s.as_str()),
            ),
        };
        let mut stmt = self.conn.prepare(&sql)?;
        let rows: rusqlite::Result<Vec<StoredCommitment>> = match status {
            Some(s) => stmt
                .query_map([s], |row| stored_from_row(row, 0))?
                .collect(),
            None => stmt.query_map([], |row| stored_from_row(row, 0))?.collect(),
        };
        Ok(rows?)
    }

    fn import_commitments(&self, rows: &[Imported]) -> Result<Vec<i64>> {
        self.transaction(|s| {
            let mut stmt = s.conn.prepare_cached(
                "INSERT INTO commitments (id, title, owner, customer, timezone, due_at, kind, status, note, external_ref,
                                          reason, created_at, done_at, promise)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
                         COALESCE(?12, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), ?13, ?14)",
            )?;
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                let c = &row.commitment;
                stmt.execute(params![
                    row.id,
                    c.title,
                    c.owner,
                    c.customer,
                    c.timezone,
                    c.due_at,
                    c.kind,
                    row.status.as_str(),
                    c.note,
                    c.external_ref,
                    c.reason,
                    row.created_at,
                    row.done_at,
                    c.promise
                ])?;
                ids.push(s.conn.last_insert_rowid());
            }
            Ok::<_, StoreError>(ids)
        })
    }

    fn has_commitment(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM commitments WHERE id = ?1)")?
            .query_row([id], |r| r.get(0))?)
    }

    fn ids_with_ref(&self, reference: &str) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM commitments WHERE trim(external_ref) = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([reference.trim()], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn commitments_of_customer(&self, address: &str) -> Result<Vec<StoredCommitment>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM commitments
             WHERE {CUSTOMER_IS} ORDER BY id"
        ))?;
        let rows = stmt.query_map([address.trim()], |row| stored_from_row(row, 0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn commitments_of_customers_like(&self, text: &str) -> Result<Vec<StoredCommitment>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM commitments WHERE instr(lower(customer), lower(?1)) > 0 ORDER BY id"
        ))?;
        let rows = stmt.query_map([text.trim()], |row| stored_from_row(row, 0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn append_note(&self, id: i64, line: &str) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE commitments SET note = CASE WHEN note IS NULL OR note = '' THEN ?2 ELSE note || char(10) || ?2 END
             WHERE id = ?1",
            params![id, line],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    fn set_reason(&self, id: i64, reason: &str) -> Result<()> {
        let changed = self.conn.execute(
            "UPDATE commitments SET reason = ?2 WHERE id = ?1",
            params![id, reason],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    fn commitments_with_problems(&self) -> Result<Vec<(StoredCommitment, String)>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {}, p.reason FROM problems p JOIN commitments c ON c.id = p.commitment_id
             ORDER BY p.commitment_id",
            columns_of("c")
        ))?;
        let width = COLUMNS.split(", ").count();
        let rows = stmt.query_map([], |r| Ok((stored_from_row(r, 0)?, r.get(width)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn problem(&self, id: i64) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT reason FROM problems WHERE commitment_id = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewCommitment;

    #[test]
    fn the_commitments_with_problems_come_with_their_reasons_and_no_stray_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        let sample = NewCommitment::sample("2026-12-03T12:00:00Z");
        let fine = store.insert_commitment(&sample).unwrap();
        let bad = store.insert_commitment(&sample).unwrap();
        let insert = "INSERT INTO problems (commitment_id, reason, seen_at) VALUES (?1, ?2, 0)";
        store
            .conn
            .execute(insert, rusqlite::params![bad, "due_at: not a time"])
            .unwrap();
        store
            .conn
            .execute(insert, rusqlite::params![bad + fine + 10, "gone"])
            .unwrap();
        let found: Vec<(i64, String)> = store
            .commitments_with_problems()
            .unwrap()
            .into_iter()
            .map(|(c, reason)| (c.id, reason))
            .collect();
        assert_eq!(found, [(bad, "due_at: not a time".to_string())]);
    }

    #[test]
    fn a_due_time_in_unix_seconds_reads_the_same_as_an_integer_or_as_digits() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        let insert = "INSERT INTO commitments (title, owner, customer, due_at) VALUES ('Quote', 'ana@example.com', 'joe@example.org', ?1)";
        store.conn.execute(insert, [1_796_153_293_i64]).unwrap();
        store.conn.execute(insert, [" 1796153293 "]).unwrap();
        store.conn.execute(insert, ["1796153293x"]).unwrap();
        let zone = jiff::tz::TimeZone::UTC;
        let expected: jiff::Timestamp = "2026-12-01T19:28:13Z".parse().unwrap();
        for id in [1, 2] {
            let row = store.commitment(id).unwrap();
            assert_eq!(row.check(&zone).unwrap().due_at, expected, "{row:?}");
        }
        let garbage = store.commitment(3).unwrap().check(&zone).unwrap_err();
        assert!(
            garbage
                .iter()
                .any(|p| p.contains("cannot read '1796153293x'")),
            "{garbage:?}"
        );
    }
}
