//! The PostgreSQL store: one connection (the synchronous `postgres` client) to a
//! database that several daemons may share. Its write transactions are `READ
//! COMMITTED`; where SQLite relied on `BEGIN IMMEDIATE` serialising writers, a verb
//! locks the commitment's row (`FOR UPDATE`) before deciding. A read that must be one
//! view runs in a `REPEATABLE READ` read-only transaction.
//!
//! A connection URL is never printed with its password ([`redacted`]).

mod act;
mod actions;
mod claims;
mod commitments;
mod connect;
mod copy;
mod customers;
mod deliveries;
mod firing;
mod jobs;
mod marks;
mod outbox;
mod plan_view;
mod planning;
mod retry;
mod revisions;
mod schema;
mod secrets;
mod steps;
mod summary;
mod tls;
mod url;
mod view;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;

use ::postgres::types::ToSql;
use ::postgres::{Client, Row, Statement};
use jiff::Timestamp;

use super::{Result, StoreError};

pub use connect::check_url;
pub(crate) use connect::serve;
pub use copy::{Copied, CopyError};
pub use schema::MigrateError;
pub use tls::TargetError;
pub use url::redacted;

impl From<postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        StoreError::Database(Box::new(Said::from(e)))
    }
}

/// A PostgreSQL error that says the server's words in its own message
/// ([`said`]), so a log line that prints only the top of the chain still has them.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Said {
    message: String,
    source: ::postgres::Error,
}

impl From<::postgres::Error> for Said {
    fn from(source: ::postgres::Error) -> Said {
        Said {
            message: said(&source),
            source,
        }
    }
}

/// How many prepared statements a connection keeps; past it they are prepared again.
/// The store's statements are fixed texts, far fewer than this.
const MAX_PREPARED: usize = 512;

/// Parameters of a statement.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// An open PostgreSQL store: one connection to the database, made again when it was
/// lost (a server restarting, a network cut) at the next statement outside a
/// transaction; a transaction under way when it was lost fails as a whole.
pub struct PostgresStore {
    client: RefCell<Client>,
    /// How to connect again.
    target: tls::Target,
    /// A transaction is open on the connection.
    in_transaction: Cell<bool>,
    /// The statements prepared on the connection, by their SQL.
    statements: RefCell<HashMap<String, Statement>>,
    id: String,
}

impl PostgresStore {
    /// Connects to the database at `url` (a `postgres://` URL or `key=value` pairs,
    /// which may carry the password), brings its schema up to date and reads the
    /// store's id. Errors name the URL without its password.
    pub fn open(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect(url, None)
    }

    fn with(client: Client, target: tls::Target, id: String) -> PostgresStore {
        PostgresStore {
            client: RefCell::new(client),
            target,
            in_transaction: Cell::new(false),
            statements: RefCell::default(),
            id,
        }
    }

    /// The connection, made again first if it was lost and no transaction is open.
    fn client(&self) -> Result<RefMut<'_, Client>> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() && !self.in_transaction.get() {
            *client = self.target.connect()?;
            self.statements.borrow_mut().clear();
            tracing::info!("connected to the store again");
        }
        Ok(client)
    }

    /// The store's random id, made with it, which every Message-ID carries.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The newest schema version this program knows, which [`PostgresStore::open`]
    /// brings a database to.
    pub fn schema_version() -> i32 {
        schema::latest()
    }

    /// The connection, and `sql` prepared on it: once per connection, since preparing
    /// costs a round trip to the server and its planning each time.
    fn prepared(&self, sql: &str) -> Result<(RefMut<'_, Client>, Statement)> {
        let mut client = self.client()?;
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok((client, statement.clone()));
        }
        let statement = client.prepare(sql)?;
        let mut statements = self.statements.borrow_mut();
        if statements.len() >= MAX_PREPARED {
            statements.clear();
        }
        statements.insert(sql.to_string(), statement.clone());
        Ok((client, statement))
    }

    fn query(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let (mut client, statement) = self.prepared(sql)?;
        Ok(client.query(&statement, params)?)
    }

    fn query_opt(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let (mut client, statement) = self.prepared(sql)?;
        Ok(client.query_opt(&statement, params)?)
    }

    fn query_one(&self, sql: &str, params: Params<'_>) -> Result<Row> {
        let (mut client, statement) = self.prepared(sql)?;
        Ok(client.query_one(&statement, params)?)
    }

    /// Runs a statement and returns how many rows it wrote.
    fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        let (mut client, statement) = self.prepared(sql)?;
        Ok(client.execute(&statement, params)?)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client()?.batch_execute(sql)?)
    }

    /// Runs `f` in one `READ COMMITTED` transaction: committed if `f` succeeds, rolled
    /// back if it fails or panics. `f` must not begin a transaction.
    fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&PostgresStore) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.within("BEGIN ISOLATION LEVEL READ COMMITTED", f)
    }

    /// Runs the read-only `f` in one `REPEATABLE READ` read-only transaction: every
    /// statement of `f` sees the database as it stood at the first.
    fn snapshot<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&PostgresStore) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.within("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", f)
    }

    fn within<T, E: From<StoreError>>(
        &self,
        begin: &str,
        f: impl FnOnce(&PostgresStore) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.batch(begin)?;
        self.in_transaction.set(true);
        let mut open = Open {
            store: self,
            open: true,
        };
        let value = f(self);
        open.open = false;
        self.in_transaction.set(false);
        match value {
            Ok(value) => {
                self.batch("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl super::Store for PostgresStore {
    fn id(&self) -> &str {
        &self.id
    }

    /// Waits [`READ_NOW_WAIT`](super::READ_NOW_WAIT) at most for another's lock. A
    /// PostgreSQL read takes no row lock and waits for no writer, so only a lock on a
    /// whole table (a migration's) could hold it up; the bound keeps that short too.
    fn read_without_waiting_with(&self, f: &mut dyn FnMut(&dyn super::Store)) -> Result<()> {
        let wait = super::READ_NOW_WAIT.as_millis();
        self.batch(&format!("SET lock_timeout = {wait}"))?;
        f(self);
        self.batch("RESET lock_timeout")
    }
}

/// A transaction begun and not yet ended: rolled back if dropped so, which happens
/// only when the code inside panics, so that the connection's next statement does not
/// run inside it.
struct Open<'a> {
    store: &'a PostgresStore,
    open: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            self.store.in_transaction.set(false);
            if let Ok(mut client) = self.store.client.try_borrow_mut() {
                let _ = client.batch_execute("ROLLBACK");
            }
        }
    }
}

/// A PostgreSQL error in words, with the server's message where it sent one: the
/// error's own display says only "db error", and leaves the message to its source.
fn said(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {db}"),
        None => match std::error::Error::source(e) {
            Some(cause) => match tls::hint(cause) {
                Some(hint) => format!("{e}: {cause} ({hint})"),
                None => format!("{e}: {cause}"),
            },
            None => e.to_string(),
        },
    }
}

/// A store error in words, with the server's message where it sent one ([`said`]).
fn in_words(e: &StoreError) -> String {
    match e {
        StoreError::Database(cause) => match cause.downcast_ref::<::postgres::Error>() {
            Some(e) => format!("store: {}", said(e)),
            None => e.to_string(),
        },
        e => e.to_string(),
    }
}

/// Milliseconds since the epoch, as the store keeps times.
fn to_ms(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// A stored millisecond time back as a timestamp (clamped into range).
fn from_ms(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}
