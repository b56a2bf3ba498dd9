//! The PostgreSQL store against a real server (`tests/common/postgres.rs`): each test
//! has a database of its own on the binary's shared server, and checks what the SQLite
//! store's own tests check of the same group, plus what only a shared database has
//! (migrations raced by two daemons, notifications to listeners, row locks). Skipped,
//! as the harness says, where PostgreSQL is not installed.

use crate::common;

mod commitments;
mod schema;

use common::postgres::Postgres;
use followup::store::NewCommitment;
use followup::store::postgres::PostgresStore;
use postgres::{Client, NoTls};

/// A store on a fresh database, and a client of its own on the same database: the
/// other program that writes fixtures and looks at the tables.
pub struct Fixture {
    pub store: PostgresStore,
    pub db: Client,
    pub url: String,
}

/// A fresh database named `name` (unique to the test) with the store opened on it;
/// `None` when PostgreSQL is missing.
pub fn fixture(name: &str) -> Option<Fixture> {
    let url = Postgres::shared()?.create_database(name);
    let store = PostgresStore::open(&url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let db = connect(&url);
    Some(Fixture { store, db, url })
}

pub fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

/// A quote Ana owes Joe, due at `due_at` (RFC 3339).
pub fn sample(due_at: &str) -> NewCommitment {
    NewCommitment {
        title: "Quote".into(),
        owner: "ana@example.com".into(),
        customer: "joe@example.org".into(),
        timezone: None,
        due_at: due_at.into(),
        kind: None,
        note: None,
        external_ref: None,
        reason: None,
        late_from: None,
        promise: None,
    }
}
