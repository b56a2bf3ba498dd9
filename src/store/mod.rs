//! The store: one SQLite file holding commitments, their steps and deliveries.
//!
//! SQLite in WAL mode with a busy timeout, so other programs can write commitments while
//! the daemon runs; every write transaction starts `IMMEDIATE` so concurrent writers
//! queue instead of failing. With `synchronous = NORMAL` a power cut may roll back the
//! last transactions: that can repeat an email (a delivery not yet recorded as sent),
//! never lose one (a step not yet queued is still planned).
//!
//! The interface is narrow (commitments, steps, deliveries, problems) so another
//! backend can take its place. Nothing here decides anything: the planner and the
//! scheduler do.

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
mod writes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::Connection;

pub use act::{Act, Applied, Facts, Write};
pub use actions::{Effect, Glance, NewAction};
pub use claims::{Claim, ClaimRefused};
pub use commitments::{Imported, NewCommitment, StatusFilter};
pub use customers::{CustomerRecords, NoteKept};
pub use deliveries::{
    DeliveryOutcome, DeliveryRecord, NewDelivery, Origin, PendingDelivery, Recorded, Threads,
};
pub use firing::{
    Decision, Decisions, DueAsk, DueBatch, DueWork, Queued, StepDecision, StepFacts, Undo, Wanted,
};
pub use jobs::{JobOutput, JobReads, JobRun, Occurrence, OwnerMailFailed, ReportRow};
pub use lock::{DaemonLock, Holder, LockError, lock_path, running_daemon};
pub use outbox::{TakeDue, Taken};
pub use plan_view::PlanView;
pub use planning::Planned;
pub use revisions::{Deed, Field, FieldChange, NewEdit, NewRevision, RevisionRecord};
pub use steps::{ChangeBatch, DueStep, PlannedCommitment, UnreadableStep};
pub use summary::{DeliveryError, NextStep, Summary, Workload};
pub use view::CommitmentView;
pub use writes::Writes;

/// Why the store failed. Opening and migrating are fatal for the daemon; the rest are
/// reported and retried by the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory for the file could not be made.
    #[error("cannot create the directory {path} for the store: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be opened or set up.
    #[error("cannot open the store {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why, as the database said it.
        source: Cause,
    },
    /// The schema could not be brought up to date.
    #[error("cannot bring the store {path} up to the current schema: {source}")]
    Migrate {
        /// The file.
        path: PathBuf,
        /// Why, as the migration said it.
        source: Cause,
    },
    /// No commitment has this id.
    #[error("no commitment with id {0}")]
    NotFound(i64),
    /// Any other failure of the database: a read or write that did not go through.
    #[error("store: {0}")]
    Database(#[source] Cause),
    /// A step's row does not read.
    #[error("store: {0}")]
    Step(#[from] UnreadableStep),
    /// A fenced operation came with a claim the store does not hold for it.
    #[error("store: {0}")]
    Claim(#[from] ClaimRefused),
}

/// The database's own error behind a [`StoreError`], kept for its message and its
/// chain of causes; no caller needs its type.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Database(Box::new(e))
    }
}

/// WAL size in pages (of 4 KiB) at which a connection that leaves checkpoints to the
/// watch checkpoints all the same; SQLite's default is 1,000.
pub const FALLBACK_CHECKPOINT: i64 = 16_000;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    id: String,
    granted: claims::Granted,
}

/// How long a connection waits for another's lock before SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a read that must not wait ([`Store::read_without_waiting`]) waits for
/// another's lock.
pub const READ_NOW_WAIT: Duration = Duration::from_millis(20);

impl Store {
    /// Runs the read-only `f` waiting [`READ_NOW_WAIT`] at most for another's lock, for
    /// a read on a thread that others wait for. A WAL reader never waits for a writer,
    /// so the read is short; the bound holds even a rare wait (another program's
    /// checkpoint that truncates the WAL) to that, and `f` sees the error. An error
    /// here means the connection could not be set so or set back: drop it.
    pub fn read_without_waiting<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T> {
        self.conn.busy_timeout(READ_NOW_WAIT)?;
        let out = f(self);
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(out)
    }

    /// Opens (creating if needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
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
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            id,
            granted: claims::Granted::default(),
        })
    }

    /// The store's random id, made with it: every Message-ID carries it, so no two
    /// stores send emails with one id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Opens the store at `path` for the daemon, whose store watch ([`watch`]) keeps the
    /// file tidy on a connection of its own: this connection checkpoints only once the
    /// WAL holds [`FALLBACK_CHECKPOINT`] pages, which happens only if the watch falls
    /// far behind.
    pub fn open_for_daemon(path: &Path) -> Result<Store> {
        let store = Store::open(path)?;
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
        f: impl FnOnce(&Store) -> std::result::Result<T, E>,
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
    fn snapshot<T>(&self, f: impl FnOnce(&Store) -> T) -> Result<T> {
        // Prepared once per connection: a page view runs this on every request.
        self.conn.prepare_cached("BEGIN DEFERRED")?.execute([])?;
        let out = f(self);
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(out)
    }

    /// Runs `f` inside a savepoint of the current transaction: if `f` fails, its writes
    /// are undone and the error returned, and the transaction goes on. One bad item then
    /// cannot spoil a batch.
    fn isolated<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
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

    /// Where others' writes stand: the mark moves when another connection (another
    /// program, the web pages) commits, and not for this one's own commits, so the daemon
    /// can tell others' writes from its own. (SQLite's `data_version`.)
    pub fn write_mark(&self) -> Result<WriteMark> {
        Ok(WriteMark(self.conn.pragma_query_value(
            None,
            "data_version",
            |row| row.get(0),
        )?))
    }
}

/// Where other connections' writes stood at one moment ([`Store::write_mark`]): two
/// marks of one connection differ if another committed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMark(i64);

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
