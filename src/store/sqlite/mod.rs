//! The SQLite store: one file in WAL mode with a busy timeout, so other programs can
//! write commitments while the daemon runs; every write transaction starts `IMMEDIATE`
//! so concurrent writers queue instead of failing. With `synchronous = NORMAL` a power
//! cut may roll back the last transactions: that can repeat an email (a delivery not
//! yet recorded as sent), never lose one (a step not yet queued is still planned).
//!
//! One daemon serves a file at a time ([`DaemonLock`]); it hears other programs'
//! commits through an inotify watch on the directory ([`watch`]), which also
//! checkpoints the WAL.

mod act;
mod actions;
mod claims;
mod commitments;
mod customers;
mod deliveries;
mod firing;
mod jobs;
mod lock;
mod marks;
mod outbox;
mod plan_view;
mod planning;
mod retry;
mod revisions;
mod schema;
mod steps;
mod summary;
mod view;
pub mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;
use tokio::sync::Notify;

pub use lock::{DaemonLock, Holder, LockError, lock_path, running_daemon};

use super::{Result, Store, StoreError};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

/// WAL size in pages (of 4 KiB) at which a connection that leaves checkpoints to the
/// watch checkpoints all the same; SQLite's default is 1,000.
pub const FALLBACK_CHECKPOINT: i64 = 16_000;

/// An open SQLite store: one connection to the file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    id: String,
    granted: claims::Granted,
}

/// How long a connection waits for another's lock before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a read that must not wait ([`Store::read_without_waiting_with`]) waits
/// for another's lock.
pub const READ_NOW_WAIT: Duration = Duration::from_millis(20);

impl SqliteStore {
    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(open_err)?;
        schema::migrations()
            .to_latest(&mut conn)
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        let id = conn
            .query_row("SELECT id FROM store_identity", [], |row| row.get(0))
            .map_err(open_err)?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            id,
            granted: claims::Granted::default(),
        })
    }

    /// Opens the store at `path` for the daemon, whose store watch ([`watch`]) keeps the
    /// file tidy on a connection of its own: this connection checkpoints only once the
    /// WAL holds [`FALLBACK_CHECKPOINT`] pages, which happens only if the watch falls
    /// far behind.
    pub fn open_for_daemon(path: &Path) -> Result<SqliteStore> {
        let store = SqliteStore::open(path)?;
        store
            .conn
            .pragma_update(None, "wal_autocheckpoint", FALLBACK_CHECKPOINT)?;
        Ok(store)
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed if `f` succeeds,
    /// rolled back if it fails. The store's own: callers outside it take a named
    /// operation that owns its transaction.
    fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&SqliteStore) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| E::from(StoreError::from(e)))?;
        match f(self) {
            Ok(value) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| E::from(StoreError::from(e)))?;
                Ok(value)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs the read-only `f` in one read transaction: one consistent view, and one
    /// taking of SQLite's shared locks for all of `f`'s statements instead of one for
    /// each. `f` must not write or begin a transaction.
    fn snapshot<T>(&self, f: impl FnOnce(&SqliteStore) -> T) -> Result<T> {
        // Prepared once per connection: a page view runs this on every request.
        self.conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        let out = f(self);
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(out)
    }

    /// Runs `f` inside a savepoint of the current transaction: if `f` fails, its writes
    /// are undone and the error returned, and the transaction goes on. One bad item then
    /// cannot spoil a batch.
    fn isolated<T>(&self, f: impl FnOnce(&SqliteStore) -> Result<T>) -> Result<T> {
        self.conn.execute_batch("SAVEPOINT item")?;
        match f(self) {
            Ok(value) => {
                self.conn.execute_batch("RELEASE item")?;
                Ok(value)
            }
            Err(e) => {
                self.conn.execute_batch("ROLLBACK TO item; RELEASE item")?;
                Err(e)
            }
        }
    }
}

/// The daemon's store at `path` ([`crate::store::serve`]): takes the file's lock
/// first, since a second daemon would send every due step again, then opens it
/// ([`SqliteStore::open_for_daemon`]) and starts the watch.
pub(super) fn serve(
    path: &Path,
    changed: Arc<Notify>,
) -> Result<(SqliteStore, Box<dyn std::any::Any + Send>)> {
    let lock = DaemonLock::acquire(path).map_err(|e| StoreError::Serve(Box::new(e)))?;
    let store = SqliteStore::open_for_daemon(path)?;
    let watch = watch::spawn(path, changed).map_err(|e| StoreError::Serve(Box::new(e)))?;
    Ok((store, Box::new((lock, watch))))
}

impl Store for SqliteStore {
    fn id(&self) -> &str {
        &self.id
    }

    /// Waits [`READ_NOW_WAIT`] at most for another's lock. A WAL reader never waits
    /// for a writer, so the read is short; the bound holds even a rare wait (another
    /// program's checkpoint that truncates the WAL) to that, and `f` sees the error.
    fn read_without_waiting_with(&self, f: &mut dyn FnMut(&dyn Store)) -> Result<()> {
        self.conn.busy_timeout(READ_NOW_WAIT)?;
        f(self);
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(())
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
