//! The store: commitments, their steps, deliveries and revisions, behind one interface.
//!
//! [`Store`] is every operation the daemon, the verbs, the pages, the commands and the
//! jobs use, grouped by what they work on (one trait each: [`Commitments`],
//! [`Planning`], [`DueSteps`], [`Outbox`], ...). Each operation is named after what it
//! does and owns its transaction; it takes and returns the domain's types, so nothing
//! above this module sees SQL or a database's notions. Nothing here decides anything:
//! the planner, the actions and the scheduler do, and hand the store values.
//!
//! Work that is taken and finished (due steps, deliveries, a calendar job's
//! occurrence) goes under a [`Claim`] with an owner and an expiry, so that a store
//! shared by several daemons can lease it; the SQLite store ([`sqlite`]), served by
//! one daemon at a time, always grants it.

mod act;
mod actions;
mod claims;
mod commitments;
mod customers;
mod deliveries;
mod firing;
mod jobs;
mod marks;
mod outbox;
mod plan_view;
mod planning;
pub mod postgres;
mod retry;
mod revisions;
pub mod sqlite;
mod steps;
mod summary;
mod view;
mod writes;

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::Notify;

pub use act::{Act, Acts, Applied, Facts, Write};
pub use actions::{Effect, Glance, Glances, NewAction};
pub use claims::{Claim, ClaimRefused, Claims, Renewed};
pub use commitments::{Commitments, Imported, NewCommitment, StatusFilter};
pub use customers::{CustomerRecords, Customers, NoteKept};
pub use deliveries::{
    Deliveries, DeliveryOutcome, DeliveryRecord, DeliveryRecords, NewDelivery, Origin,
    PendingDelivery, Recorded, Threads,
};
pub use firing::{
    Decision, Decisions, DueAsk, DueBatch, DueSteps, DueWork, Queued, StepDecision, StepFacts,
    Undo, Wanted,
};
pub use jobs::{JobOutput, JobReads, JobRun, Jobs, Occurrence, OwnerMailFailed, ReportRow};
pub use marks::{Marks, WriteMark};
pub use outbox::{Outbox, TakeDue, Taken, Turn};
pub use plan_view::{PlanView, PlanViews};
pub use planning::{Planned, Planning};
pub use retry::Retries;
pub use revisions::{Deed, Field, FieldChange, NewEdit, NewRevision, RevisionRecord, Revisions};
pub use sqlite::{Holder, READ_NOW_WAIT, SqliteStore, running_daemon};
pub use steps::{ChangeBatch, DueStep, PlannedCommitment, Steps, UnreadableStep};
pub use summary::{DeliveryError, NextStep, Summaries, Summary, Workload};
pub use view::{CommitmentView, Views};
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
    /// The daemon cannot serve the store: another daemon serves it, or hearing of
    /// other programs' writes could not be set up.
    #[error("{0}")]
    Serve(#[source] Cause),
}

/// The database's own error behind a [`StoreError`], kept for its message and its
/// chain of causes; no caller needs its type.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Every operation of a store. Callers hold a `Box<dyn Store>` or a `&dyn Store` and
/// never learn which database is behind it.
pub trait Store:
    Acts
    + Claims
    + Commitments
    + Customers
    + Deliveries
    + DeliveryRecords
    + DueSteps
    + Glances
    + Jobs
    + Marks
    + Outbox
    + PlanViews
    + Planning
    + Retries
    + Revisions
    + Steps
    + Summaries
    + Views
    + Send
{
    /// The store's random id, made with it: every Message-ID carries it, so no two
    /// stores send emails with one id.
    fn id(&self) -> &str;

    /// Runs the read-only `f` as a read that must not wait long for another's lock, for
    /// a read on a thread that others wait for (see [`READ_NOW_WAIT`]). An error here
    /// means the store could not be set so or set back: drop it. Callers use
    /// [`read_without_waiting`](trait.Store.html#method.read_without_waiting), which
    /// returns `f`'s value.
    fn read_without_waiting_with(&self, f: &mut dyn FnMut(&dyn Store)) -> Result<()>;
}

impl dyn Store + '_ {
    /// Takes one verb on commitment `id` in one transaction: reads the commitment
    /// ([`StoreError::NotFound`] if there is none), calls `decide` with what it may look
    /// at, and writes what it returns at `now`. An error from `decide` reaches the caller
    /// unchanged, and nothing is written. Made of [`Acts::act_or_refuse`], which takes
    /// no type of the caller's.
    pub fn act<E: From<StoreError>>(
        &self,
        id: i64,
        now: Timestamp,
        decide: &mut dyn FnMut(&dyn Facts) -> std::result::Result<Act, E>,
    ) -> std::result::Result<Applied, E> {
        let mut refusal = None;
        let applied = self.act_or_refuse(id, now, &mut |facts| match decide(facts) {
            Ok(act) => Some(act),
            Err(e) => {
                refusal = Some(e);
                None
            }
        })?;
        match (applied, refusal) {
            (_, Some(e)) => Err(e),
            (Some(applied), None) => Ok(applied),
            (None, None) => unreachable!("a refused act keeps its refusal"),
        }
    }

    /// Runs the read-only `f` as a read that must not wait
    /// ([`Store::read_without_waiting_with`]) and returns what it returned.
    pub fn read_without_waiting<T>(&self, f: impl FnOnce(&dyn Store) -> T) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.read_without_waiting_with(&mut |store| {
            if let Some(f) = f.take() {
                out = Some(f(store));
            }
        })?;
        Ok(out.expect("the store runs the read once"))
    }
}

/// Where a store is: what `[store]` names, with its password read.
#[derive(Clone)]
pub enum Location {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// Its connection URL or `key=value` pairs.
        url: String,
        /// Its password, if the URL needs one.
        password: Option<String>,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

/// The place in words, without a password.
impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres { url, .. } => f.write_str(&postgres::redacted(url)),
        }
    }
}

/// Opens (creating if needed) the store at `location` and brings its schema up to date.
pub fn open(location: &Location) -> Result<Box<dyn Store>> {
    Ok(match location {
        Location::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        Location::Postgres { url, password } => {
            Box::new(postgres::PostgresStore::connect(url, password.as_deref())?)
        }
    })
}

/// The key links are signed with, for a store that daemons on several hosts share:
/// kept in the store, made from `fresh` the first time. `None` for a SQLite store,
/// whose one daemon keeps its key in a file beside it.
pub fn link_key(location: &Location, fresh: &[u8]) -> Result<Option<Vec<u8>>> {
    match location {
        Location::Sqlite(_) => Ok(None),
        Location::Postgres { url, password } => {
            let store = postgres::PostgresStore::connect(url, password.as_deref())?;
            Ok(Some(store.link_key(fresh)?))
        }
    }
}

/// A store as a daemon serves it ([`serve`]): its operations, and what keeps it
/// served while the daemon runs.
pub struct Served {
    /// The store's operations, on the daemon's own connection.
    store: Box<dyn Store>,
    /// Held until the daemon stops (SQLite: the file's lock and its watch; PostgreSQL:
    /// the connection that listens for changes).
    held: Box<dyn std::any::Any + Send>,
    /// Whether other daemons may serve the store at the same time.
    shared: bool,
}

impl Served {
    /// The operations, for the daemon's work before its tasks start.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Whether other daemons may serve the same store. Their claims then expire
    /// unless renewed ([`Claims::renew_claim`]), work may be planned by any of them,
    /// and a daemon looks at the store now and then for work another daemon planned
    /// or left behind.
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// The operations, to be handed to the store's owner, and what must be kept for as
    /// long as the daemon serves the store.
    pub fn into_parts(self) -> (Box<dyn Store>, Box<dyn std::any::Any + Send>) {
        (self.store, self.held)
    }
}

/// Opens the store at `location` for a daemon, and notifies `changed` whenever the
/// store is written from now on (by another program, another daemon, the web pages
/// or the daemon itself); the daemon then asks [`Marks::others_wrote_since`] whose
/// write it was. A SQLite file is served once no other daemon serves it; a
/// PostgreSQL database by any number of daemons.
pub fn serve(location: &Location, changed: Arc<Notify>) -> Result<Served> {
    Ok(match location {
        Location::Sqlite(path) => {
            let (store, held) = sqlite::serve(path, changed)?;
            Served {
                store: Box::new(store),
                held,
                shared: false,
            }
        }
        Location::Postgres { url, password } => {
            let (store, held) = postgres::serve(url, password.as_deref(), changed)?;
            Served {
                store: Box::new(store),
                held,
                shared: true,
            }
        }
    })
}

/// The operations' traits, for code that calls them on a concrete store rather than
/// through `dyn Store` (the SQLite implementation, tests that build a fixture).
pub mod prelude {
    pub use super::{
        Acts, Claims, Commitments, Customers, Deliveries, DeliveryRecords, DueSteps, Glances, Jobs,
        Marks, Outbox, PlanViews, Planning, Retries, Revisions, Steps, Store, Summaries, Views,
    };
}
