//! Copying a SQLite store into an empty PostgreSQL one (`followup migrate`): every
//! table, the revision history included, with the ids kept, in one PostgreSQL
//! transaction that commits only once every table's count matches.
//!
//! The tables come from the SQLite file's own schema, so a table added later is
//! copied without a list to keep up to date; one PostgreSQL lacks is named in the
//! refusal. Rows go through `COPY ... FROM STDIN` in text form, so PostgreSQL reads
//! each value by its column's type (SQLite's 0 and 1 become booleans, blobs `bytea`).
//! The trigger that queues a change per commitment written is off for the copy: the
//! SQLite store's own queue of changes is copied instead, so what was waiting to be
//! planned is planned, once.

use std::io::Write as _;
use std::path::Path;

use rusqlite::types::ValueRef;

use super::{PostgresStore, Said};
use crate::store::{Result, StoreError};

/// The tables only the daemon's PostgreSQL bookkeeping has, which SQLite lacks.
const POSTGRES_ONLY: [&str; 2] = ["daemons", "schema_migrations"];

/// One table copied: its name and how many rows each side holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The table.
    pub table: String,
    /// Rows in the SQLite file.
    pub from: u64,
    /// Rows in PostgreSQL after the copy.
    pub to: u64,
}

/// Why a copy did not happen; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds a store's data.
    #[error(
        "the database already holds {rows} rows in {table}: a store is copied only into an empty one"
    )]
    NotEmpty {
        /// The first table with rows.
        table: String,
        /// How many.
        rows: i64,
    },
    /// The SQLite file has a table PostgreSQL's schema lacks.
    #[error(
        "the SQLite store has a table {0} that the PostgreSQL schema lacks: is this followup older than the one that wrote the file?"
    )]
    MissingTable(String),
    /// A table's counts differ after the copy.
    #[error("{table}: {from} rows in SQLite but {to} in PostgreSQL after the copy")]
    Count {
        /// The table.
        table: String,
        /// Rows in SQLite.
        from: u64,
        /// Rows in PostgreSQL.
        to: u64,
    },
    /// Reading the SQLite file failed.
    #[error("reading the SQLite store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Writing PostgreSQL failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl From<::postgres::Error> for CopyError {
    fn from(e: ::postgres::Error) -> CopyError {
        CopyError::Store(StoreError::Database(Box::new(Said::from(e))))
    }
}

impl PostgresStore {
    /// Copies the SQLite store at `sqlite` (already at the current schema, and served
    /// by no daemon) into this database, which must hold no store's data yet. Returns
    /// each table's counts.
    pub fn copy_from_sqlite(&self, sqlite: &Path) -> std::result::Result<Vec<Copied>, CopyError> {
        let mut source = rusqlite::Connection::open_with_flags(
            sqlite,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        // One read transaction: the copy is of one moment of the file.
        let source = source.transaction()?;
        let tables: Vec<String> = source
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY rowid",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        self.transaction(|s| {
            let target = s.tables()?;
            if let Some(missing) = tables.iter().find(|t| !target.contains(t)) {
                return Err(CopyError::MissingTable(missing.clone()));
            }
            for table in target
                .iter()
                .filter(|t| !POSTGRES_ONLY.contains(&t.as_str()) && *t != "store_identity")
            {
                let rows: i64 = s
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
                    .try_get(0)?;
                if rows > 0 {
                    return Err(CopyError::NotEmpty {
                        table: table.clone(),
                        rows,
                    });
                }
            }
            // The store's id goes with it: the emails sent after the move thread with
            // those sent before.
            s.execute("DELETE FROM store_identity", &[])?;
            s.batch("ALTER TABLE commitments DISABLE TRIGGER commitments_changed")?;
            let mut copied = Vec::new();
            for table in &tables {
                let from = s.copy_table(&source, table)?;
                let to: i64 = s
                    .query_one(&format!("SELECT count(*) FROM {table}"), &[])?
                    .try_get(0)?;
                let to = to as u64;
                if from != to {
                    return Err(CopyError::Count {
                        table: table.clone(),
                        from,
                        to,
                    });
                }
                copied.push(Copied {
                    table: table.clone(),
                    from,
                    to,
                });
            }
            s.batch("ALTER TABLE commitments ENABLE TRIGGER commitments_changed")?;
            s.move_sequences()?;
            Ok(copied)
        })
    }

    /// The tables of the current schema.
    fn tables(&self) -> Result<Vec<String>> {
        self.query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// The columns of `table` in PostgreSQL.
    fn columns_of(&self, table: &str) -> Result<Vec<String>> {
        self.query(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    /// Copies every row of `table` with the columns both sides have; returns how many.
    /// The queue of changes gets new sequence numbers, in its order: its numbers are
    /// the database's to give.
    fn copy_table(
        &self,
        source: &rusqlite::Transaction<'_>,
        table: &str,
    ) -> std::result::Result<u64, CopyError> {
        let target = self.columns_of(table)?;
        let columns: Vec<String> = source
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
            ))?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|c| target.contains(c) && !(table == "changes" && c == "seq"))
            .collect();
        let list = columns
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let order = if table == "changes" { "seq" } else { "rowid" };
        let mut select =
            source.prepare(&format!("SELECT {list} FROM \"{table}\" ORDER BY {order}"))?;
        let mut rows = select.query([])?;
        let mut client = self.client()?;
        let mut writer = client.copy_in(&format!("COPY {table} ({list}) FROM STDIN"))?;
        let mut line = Vec::new();
        let mut count = 0u64;
        while let Some(row) = rows.next()? {
            line.clear();
            for i in 0..columns.len() {
                if i > 0 {
                    line.push(b'\t');
                }
                copy_value(&mut line, row.get_ref(i)?);
            }
            line.push(b'\n');
            writer
                .write_all(&line)
                .map_err(|e| CopyError::Store(StoreError::Database(Box::new(e))))?;
            count += 1;
        }
        writer.finish()?;
        Ok(count)
    }

    /// Moves every identity's sequence past the largest id copied, so that rows
    /// written from now on do not take a copied one's.
    fn move_sequences(&self) -> Result<()> {
        let identities = self.query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND is_identity = 'YES'",
            &[],
        )?;
        for row in identities {
            let (table, column): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            self.query_one(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                                   GREATEST((SELECT max(\"{column}\") FROM {table}), 1),
                                   (SELECT max(\"{column}\") FROM {table}) IS NOT NULL)"
                ),
                &[],
            )?;
        }
        Ok(())
    }
}

/// `value` in `COPY`'s text form: `\N` for NULL, text with its backslashes, tabs and
/// line ends escaped, a blob as `\\x` and hex digits.
fn copy_value(out: &mut Vec<u8>, value: ValueRef<'_>) {
    match value {
        ValueRef::Null => out.extend_from_slice(b"\\N"),
        ValueRef::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        ValueRef::Real(x) => out.extend_from_slice(x.to_string().as_bytes()),
        ValueRef::Text(text) => escape(out, text),
        ValueRef::Blob(blob) => {
            out.extend_from_slice(b"\\\\x");
            for byte in blob {
                out.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
        }
    }
}

fn escape(out: &mut Vec<u8>, text: &[u8]) {
    for &byte in text {
        match byte {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_copy_reads_them() {
        let mut out = Vec::new();
        for value in [
            ValueRef::Null,
            ValueRef::Integer(-17),
            ValueRef::Text(b"a\\b\tc\nd\re"),
            ValueRef::Blob(&[0x00, 0xff, 0x1a]),
        ] {
            copy_value(&mut out, value);
            out.push(b'|');
        }
        assert_eq!(out, b"\\N|-17|a\\\\b\\tc\\nd\\re|\\\\x00ff1a|".to_vec());
    }
}
