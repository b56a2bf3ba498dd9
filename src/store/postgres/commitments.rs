//! [`Commitments`] on PostgreSQL.

use ::postgres::Row;

use crate::commitment::{Status, StoredCommitment};
use crate::store::postgres::{PostgresStore, to_ms};
use crate::store::*;

/// The columns of `commitments` in the order [`stored_from_row`] reads them.
pub(super) const COLUMNS: &str = "id, title, owner, customer, timezone, due_at, kind, status, note, external_ref, created_at, done_at, reason, promise, outcome, closed_at, waiting_since";

/// How many columns [`COLUMNS`] has.
pub(super) const WIDTH: usize = 17;

/// Holds for a row whose customer has the address `$1`, in any case: the address alone
/// or `Name <address>`. `_` and `%` in `$1` match any character (as on SQLite, where
/// LIKE has no escape character: `ESCAPE ''` makes a backslash plain here too), so
/// callers that need the address exactly check the rows they get.
pub(super) const CUSTOMER_IS: &str = "(lower(trim(customer)) = lower($1) OR lower(customer) LIKE '%<' || lower($1) || '>' ESCAPE '')";

/// [`COLUMNS`] qualified with a table alias, for joins: `c.id, c.title, ...`.
pub(super) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A text column; in a time column, digits alone are Unix seconds, as another
/// program may write an integer there (PostgreSQL casts it to its digits).
fn text(row: &Row, index: usize, is_time: bool) -> Result<Option<String>> {
    let value: Option<String> = row.try_get(index)?;
    Ok(value.map(|text| {
        let digits = text.trim();
        match digits.parse::<i64>() {
            Ok(n) if is_time && digits.bytes().all(|b| b.is_ascii_digit()) => unix_seconds(n),
            _ => text,
        }
    }))
}

/// Unix seconds as the RFC 3339 text the other time columns hold; out of range, the
/// number itself, which checking the row then names.
fn unix_seconds(n: i64) -> String {
    jiff::Timestamp::from_second(n)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| n.to_string())
}

/// Reads a row selected with [`COLUMNS`], starting at column `at`.
pub(super) fn stored_from_row(row: &Row, at: usize) -> Result<StoredCommitment> {
    Ok(StoredCommitment {
        id: row.try_get(at)?,
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

/// Every row of a statement selecting [`COLUMNS`] first.
fn stored_rows(rows: Vec<Row>) -> Result<Vec<StoredCommitment>> {
    rows.iter().map(|row| stored_from_row(row, 0)).collect()
}

impl PostgresStore {
    /// Sets the status of commitment `id` and returns the status it had (as stored).
    pub fn set_status(&self, id: i64, status: Status) -> Result<Option<String>> {
        self.transaction(|store| {
            let previous: Option<String> = store
                .query_opt(
                    "SELECT status FROM commitments WHERE id = $1 FOR UPDATE",
                    &[&id],
                )?
                .ok_or(StoreError::NotFound(id))?
                .try_get(0)?;
            store.execute(
                "UPDATE commitments SET status = $2 WHERE id = $1",
                &[&id, &status.as_str()],
            )?;
            Ok::<_, StoreError>(previous)
        })
    }

    /// The row with `id`, locked until the caller's transaction ends: a verb decides on
    /// it, and no other may change it meanwhile.
    pub(super) fn commitment_for_update(&self, id: i64) -> Result<StoredCommitment> {
        let row = self
            .query_opt(
                &format!("SELECT {COLUMNS} FROM commitments WHERE id = $1 FOR UPDATE"),
                &[&id],
            )?
            .ok_or(StoreError::NotFound(id))?;
        stored_from_row(&row, 0)
    }

    /// Ends the wait on the customer of commitment `id` (the update trigger has the
    /// daemon plan it again).
    pub(super) fn end_wait(&self, id: i64) -> Result<()> {
        let changed = self.execute(
            "UPDATE commitments SET waiting_since = NULL WHERE id = $1",
            &[&id],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }
}

impl Commitments for PostgresStore {
    fn insert_commitment(&self, c: &NewCommitment) -> Result<i64> {
        let late_from = c.late_from.map(to_ms);
        let row = self.query_one(
            "INSERT INTO commitments (title, owner, customer, timezone, due_at, kind, status, note, external_ref, reason,
                                      late_from, promise)
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11)
             RETURNING id",
            &[&c.title, &c.owner, &c.customer, &c.timezone, &c.due_at, &c.kind, &c.note, &c.external_ref, &c.reason,
              &late_from, &c.promise],
        )?;
        Ok(row.try_get(0)?)
    }

    fn commitment(&self, id: i64) -> Result<StoredCommitment> {
        let row = self
            .query_opt(
                &format!("SELECT {COLUMNS} FROM commitments WHERE id = $1"),
                &[&id],
            )?
            .ok_or(StoreError::NotFound(id))?;
        stored_from_row(&row, 0)
    }

    fn commitments(&self, filter: StatusFilter) -> Result<Vec<StoredCommitment>> {
        let rows = match filter {
            StatusFilter::All => self.query(
                &format!("SELECT {COLUMNS} FROM commitments ORDER BY id"),
                &[],
            )?,
            StatusFilter::Only(status) => self.query(
                &format!("SELECT {COLUMNS} FROM commitments WHERE status = $1 ORDER BY id"),
                &[&status.as_str()],
            )?,
        };
        stored_rows(rows)
    }

    fn import_commitments(&self, rows: &[Imported]) -> Result<Vec<i64>> {
        self.transaction(|s| {
            let mut ids = Vec::with_capacity(rows.len());
            for row in rows {
                let c = &row.commitment;
                let inserted = s.query_one(
                    "INSERT INTO commitments (id, title, owner, customer, timezone, due_at, kind, status, note,
                                              external_ref, reason, created_at, done_at, promise)
                     VALUES (COALESCE($1, nextval(pg_get_serial_sequence('commitments', 'id'))),
                             $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
                             COALESCE($12, to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                                   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')),
                             $13, $14)
                     RETURNING id",
                    &[
                        &row.id,
                        &c.title,
                        &c.owner,
                        &c.customer,
                        &c.timezone,
                        &c.due_at,
                        &c.kind,
                        &row.status.as_str(),
                        &c.note,
                        &c.external_ref,
                        &c.reason,
                        &row.created_at,
                        &row.done_at,
                        &c.promise,
                    ],
                )?;
                if row.id.is_some() {
                    // An id given by the file does not advance the identity: without
                    // this, a later insert would be given an id already taken. SQLite
                    // gives the next rowid after the largest, and so does this.
                    s.query_one(
                        "SELECT setval(pg_get_serial_sequence('commitments', 'id'),
                                       GREATEST((SELECT MAX(id) FROM commitments), 1))",
                        &[],
                    )?;
                }
                ids.push(inserted.try_get(0)?);
            }
            Ok::<_, StoreError>(ids)
        })
    }

    fn has_commitment(&self, id: i64) -> Result<bool> {
        Ok(self
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM commitments WHERE id = $1)",
                &[&id],
            )?
            .try_get(0)?)
    }

    fn ids_with_ref(&self, reference: &str) -> Result<Vec<i64>> {
        self.query(
            "SELECT id FROM commitments WHERE trim(external_ref) = $1 ORDER BY id",
            &[&reference.trim()],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    fn commitments_of_customer(&self, address: &str) -> Result<Vec<StoredCommitment>> {
        stored_rows(self.query(
            &format!("SELECT {COLUMNS} FROM commitments WHERE {CUSTOMER_IS} ORDER BY id"),
            &[&address.trim()],
        )?)
    }

    fn commitments_of_customers_like(&self, text: &str) -> Result<Vec<StoredCommitment>> {
        stored_rows(self.query(
            &format!(
                "SELECT {COLUMNS} FROM commitments WHERE strpos(lower(customer), lower($1)) > 0 ORDER BY id"
            ),
            &[&text.trim()],
        )?)
    }

    fn append_note(&self, id: i64, line: &str) -> Result<()> {
        let changed = self.execute(
            "UPDATE commitments SET note = CASE WHEN note IS NULL OR note = '' THEN $2 ELSE note || chr(10) || $2 END
             WHERE id = $1",
            &[&id, &line],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    fn set_reason(&self, id: i64, reason: &str) -> Result<()> {
        let changed = self.execute(
            "UPDATE commitments SET reason = $2 WHERE id = $1",
            &[&id, &reason],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(id));
        }
        Ok(())
    }

    fn commitments_with_problems(&self) -> Result<Vec<(StoredCommitment, String)>> {
        self.query(
            &format!(
                "SELECT {}, p.reason FROM problems p JOIN commitments c ON c.id = p.commitment_id
                 ORDER BY p.commitment_id",
                columns_of("c")
            ),
            &[],
        )?
        .iter()
        .map(|r| Ok((stored_from_row(r, 0)?, r.try_get(WIDTH)?)))
        .collect()
    }

    fn problem(&self, id: i64) -> Result<Option<String>> {
        match self.query_opt(
            "SELECT reason FROM problems WHERE commitment_id = $1",
            &[&id],
        )? {
            Some(row) => Ok(Some(row.try_get(0)?)),
            None => Ok(None),
        }
    }
}
