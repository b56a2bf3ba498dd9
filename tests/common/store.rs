//! Which store an installation of the tests keeps its commitments in, and a connection
//! to it as another program would open one, in SQL both backends take.
//!
//! The integration stories run once per backend: [`on_both_stores!`] turns each story
//! (a function taking a [`Store`]) into a test on SQLite and one on PostgreSQL, the
//! second skipped with a printed reason where PostgreSQL is not installed (failing
//! instead under `FOLLOWUP_REQUIRE_POSTGRES=1`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::postgres::Postgres;

/// The backend of a test installation.
#[derive(Clone, Debug)]
pub enum Store {
    /// The SQLite file of the installation, the default.
    Sqlite,
    /// A database of its own on the test binary's shared PostgreSQL server.
    Postgres {
        /// Its URL (no password: the test server trusts its user).
        url: String,
    },
}

impl Store {
    /// A fresh database on the shared server; `None` (the reason printed) when
    /// PostgreSQL is not installed.
    pub fn postgres() -> Option<Store> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let server = Postgres::shared()?;
        let name = format!("story_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        Some(Store::Postgres {
            url: server.create_database(&name),
        })
    }

    /// The `[store]` table of `followup.toml` for this backend; `db` is where the
    /// SQLite file goes.
    pub fn table(&self, db: &Path) -> String {
        match self {
            Store::Sqlite => format!("[store]\npath = \"{}\"\n", db.display()),
            Store::Postgres { url } => {
                format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n")
            }
        }
    }

    /// Where the daemon finds this store.
    pub fn location(&self, db: &Path) -> followup::store::Location {
        match self {
            Store::Sqlite => followup::store::Location::Sqlite(db.to_path_buf()),
            Store::Postgres { url } => followup::store::Location::Postgres {
                url: url.clone(),
                password: None,
            },
        }
    }

    /// Opens a connection of its own, creating the store's schema first if no command
    /// has yet.
    pub fn connect(&self, db: &Path) -> Sql {
        followup::store::open(&self.location(db)).unwrap();
        match self {
            Store::Sqlite => {
                let conn = rusqlite::Connection::open(db).unwrap();
                conn.busy_timeout(Duration::from_secs(10)).unwrap();
                Sql::Sqlite(conn)
            }
            Store::Postgres { url } => Sql::Postgres(Box::new(
                postgres::Client::connect(url, postgres::NoTls)
                    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}")),
            )),
        }
    }
}

/// A connection to an installation's store. Statements take no parameters: a test
/// writes its values into the SQL ([`lit`] for text), which keeps one statement good
/// for both backends; every value read comes back as text, `None` for NULL.
pub enum Sql {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

impl Sql {
    /// Runs `sql` (one or more statements separated by `;`).
    pub fn execute(&mut self, sql: &str) {
        match self {
            Sql::Sqlite(conn) => conn
                .execute_batch(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            Sql::Postgres(client) => client
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        }
    }

    /// Runs `sql` and gives the error it fails with, if it does.
    pub fn try_execute(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Sql::Sqlite(conn) => conn.execute_batch(sql).map_err(|e| e.to_string()),
            Sql::Postgres(client) => client.batch_execute(sql).map_err(|e| e.to_string()),
        }
    }

    /// Every row `sql` gives, each value as text.
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        match self {
            Sql::Sqlite(conn) => {
                let mut statement = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let columns = statement.column_count();
                statement
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| row.get_ref(i).map(as_text))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
            Sql::Postgres(client) => client
                .simple_query(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .filter_map(|message| match message {
                    postgres::SimpleQueryMessage::Row(row) => Some(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The first column of every row, as text.
    pub fn column(&mut self, sql: &str) -> Vec<Option<String>> {
        self.rows(sql)
            .into_iter()
            .map(|row| row.into_iter().next().flatten())
            .collect()
    }

    /// The one value `sql` gives (`None` for NULL); panics unless it gives one row.
    pub fn text(&mut self, sql: &str) -> Option<String> {
        let rows = self.rows(sql);
        assert_eq!(rows.len(), 1, "{sql}: {} rows, not one", rows.len());
        rows.into_iter()
            .next()
            .unwrap()
            .into_iter()
            .next()
            .flatten()
    }

    /// The one integer `sql` gives (`None` for NULL).
    pub fn int(&mut self, sql: &str) -> Option<i64> {
        self.text(sql).map(|t| {
            t.parse()
                .unwrap_or_else(|_| panic!("{sql}: {t:?} is no integer"))
        })
    }

    /// `bytes` as an SQL literal of this backend's binary type.
    pub fn blob(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        match self {
            Sql::Sqlite(_) => format!("x'{hex}'"),
            Sql::Postgres(_) => format!("'\\x{hex}'::bytea"),
        }
    }

    /// A count: the one integer `sql` gives, never NULL.
    pub fn count(&mut self, sql: &str) -> i64 {
        self.int(sql).unwrap_or_else(|| panic!("{sql}: NULL"))
    }
}

/// A SQLite value as text, as PostgreSQL's simple query gives every value.
fn as_text(value: rusqlite::types::ValueRef<'_>) -> Option<String> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(n.to_string()),
        ValueRef::Real(x) => Some(x.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(format!("blob({} bytes)", b.len())),
    }
}

/// `text` as an SQL string literal.
pub fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as an SQL string literal, `NULL` for none.
pub fn opt_lit(text: Option<&str>) -> String {
    text.map_or("NULL".to_string(), lit)
}

/// Turns each story named, a function in the calling module that takes a [`Store`],
/// into a test on SQLite (module `sqlite`) and one on PostgreSQL (module `postgres`).
macro_rules! on_both_stores {
    ($($story:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $story() {
                    super::$story(crate::common::store::Store::Sqlite)
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $story() {
                    if let Some(store) = crate::common::store::Store::postgres() {
                        super::$story(store)
                    }
                }
            )+
        }
    };
}
