//! The PostgreSQL store against a real server (`tests/common/postgres.rs`): each test
//! has a database of its own on the binary's shared server, and checks what the SQLite
//! store's own tests check of the same group, plus what only a shared database has
//! (migrations raced by two daemons, notifications to listeners, row locks). Skipped,
//! as the harness says, where PostgreSQL is not installed.

use crate::common;

mod acts;
mod claims;
mod commitments;
mod customers;
mod deliveries;
mod firing;
mod marks;
mod outbox;
mod planning;
mod reads;
mod schema;
mod steps;

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

pub fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

/// Inserts a step of commitment `commitment` as the planner would have, and returns
/// its id.
pub fn insert_step(
    db: &mut Client,
    commitment: i64,
    key: &str,
    kind: &str,
    fire_at: jiff::Timestamp,
    state: &str,
) -> i64 {
    let fire_at = fire_at.as_millisecond();
    db.query_one(
        "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at, state, updated_at)
         VALUES ($1, $2, $3, 'default', $2, $4, $4, $5, $4) RETURNING id",
        &[&commitment, &key, &kind, &fire_at, &state],
    )
    .unwrap()
    .get(0)
}

/// An email of step `step` as the outbox keeps it.
pub struct Email<'a> {
    pub step: i64,
    pub commitment: i64,
    pub audience: &'a str,
    pub recipient: &'a str,
    pub state: &'a str,
    pub attempts: i32,
    pub sent_at: Option<i64>,
    pub last_error: Option<&'a str>,
}

impl Email<'_> {
    /// Inserts it and returns its id.
    pub fn insert(&self, db: &mut Client) -> i64 {
        self.insert_at(db, 0, 0)
    }

    /// Inserts it as composed at `created_at` and due at `due` (milliseconds), and
    /// returns its id.
    pub fn insert_at(&self, db: &mut Client, created_at: i64, due: i64) -> i64 {
        let id: i64 = db
            .query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries", &[])
            .unwrap()
            .get(0);
        db.query_one(
            "INSERT INTO deliveries (step_id, commitment_id, audience, sender, recipient, subject, message_id, message,
                                     state, attempts, next_attempt_at, last_error, created_at, sent_at)
             VALUES ($1, $2, $3, 'ana@example.com', $4, 'About your quote', $5, $6, $7, $8, $11, $9, $12, $10)
             RETURNING id",
            &[
                &self.step,
                &self.commitment,
                &self.audience,
                &self.recipient,
                &format!("<{id}@test>"),
                &b"Subject: About your quote\r\n\r\nHello\r\n".to_vec(),
                &self.state,
                &self.attempts,
                &self.last_error,
                &self.sent_at,
                &due,
                &created_at,
            ],
        )
        .unwrap()
        .get(0)
    }
}
