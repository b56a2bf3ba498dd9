//! Opening: migrations once however often and however many open, the store's id, the
//! triggers other programs' writes go through, and errors without the password.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use followup::store::StoreError;
use followup::store::postgres::PostgresStore;
use followup::store::prelude::*;
use postgres::fallible_iterator::FallibleIterator as _;

use super::{connect, fixture, sample};
use crate::common::postgres::Postgres;

/// The versions recorded in `schema_migrations`, in order.
fn versions(db: &mut postgres::Client) -> Vec<i32> {
    db.query(
        "SELECT version FROM schema_migrations ORDER BY version",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn all_versions() -> Vec<i32> {
    (1..=PostgresStore::schema_version()).collect()
}

#[test]
fn opening_a_store_again_migrates_nothing_and_keeps_its_id_and_rows() {
    let Some(mut f) = fixture("pg_open_again") else {
        return;
    };
    assert_eq!(f.store.id().len(), 16, "{}", f.store.id());
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let again = PostgresStore::open(&f.url).unwrap();
    assert_eq!(again.id(), f.store.id());
    assert_eq!(
        again.commitment(id).unwrap().title.as_deref(),
        Some("Quote")
    );
    assert_eq!(versions(&mut f.db), all_versions());
}

#[test]
fn two_stores_opened_at_once_on_a_new_database_migrate_it_once() {
    let Some(server) = Postgres::shared() else {
        return;
    };
    // A few rounds: without the lock, one of them would see the other's tables half
    // made (or make them twice) and fail.
    for round in 0..3 {
        let url = server.create_database(&format!("pg_race_{round}"));
        let barrier = Arc::new(Barrier::new(4));
        let opened: Vec<_> = (0..4)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    PostgresStore::open(&url).map(|s| s.id().to_string())
                })
            })
            .collect();
        let ids: Vec<String> = opened
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: {e}"))
            })
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        let mut db = connect(&url);
        assert_eq!(versions(&mut db), all_versions());
        let identities: i64 = db
            .query_one("SELECT COUNT(*) FROM store_identity", &[])
            .unwrap()
            .get(0);
        assert_eq!(identities, 1);
    }
}

#[test]
fn two_databases_are_two_stores_with_two_ids() {
    let (Some(a), Some(b)) = (fixture("pg_id_a"), fixture("pg_id_b")) else {
        return;
    };
    assert_ne!(a.store.id(), b.store.id());
}

#[test]
fn a_database_migrated_by_a_newer_followup_is_refused_and_left_alone() {
    let Some(mut f) = fixture("pg_too_new") else {
        return;
    };
    f.db.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)",
        &[],
    )
    .unwrap();
    let err = PostgresStore::open(&f.url).err().expect("refused");
    assert!(matches!(err, StoreError::Migrate { .. }), "{err:?}");
    assert!(err.to_string().contains("upgrade followup"), "{err}");
    let mut expected = all_versions();
    expected.push(99);
    assert_eq!(versions(&mut f.db), expected);
}

#[test]
fn a_server_that_cannot_be_reached_is_named_without_the_password() {
    // Port 1 of 127.0.0.1 refuses at once: no server needed.
    let err = PostgresStore::open("postgres://followup:s3cret@127.0.0.1:1/followup")
        .err()
        .expect("no server there");
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("postgres://followup@127.0.0.1:1/followup"),
        "{shown}"
    );
}

#[test]
fn every_write_of_a_commitment_by_any_program_queues_it_and_wakes_listeners() {
    let Some(mut f) = fixture("pg_changes") else {
        return;
    };
    let mut listener = connect(&f.url);
    listener.batch_execute("LISTEN followup_changes").unwrap();
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let heard = listener
        .notifications()
        .timeout_iter(Duration::from_secs(10))
        .next()
        .unwrap();
    assert_eq!(
        heard.map(|n| n.channel().to_string()).as_deref(),
        Some("followup_changes")
    );
    // Another program's update, in a transaction of many rows: one notification.
    f.db.batch_execute(&format!(
        "BEGIN; UPDATE commitments SET title = 'Quote v2' WHERE id = {id};
         INSERT INTO commitments (title, owner, customer, due_at)
         VALUES ('Call', 'ana@example.com', 'joe@example.org', '2026-12-04T12:00:00Z'); COMMIT"
    ))
    .unwrap();
    let heard = listener
        .notifications()
        .timeout_iter(Duration::from_secs(10))
        .next()
        .unwrap();
    assert!(heard.is_some());
    let queued: Vec<i64> =
        f.db.query("SELECT commitment_id FROM changes ORDER BY seq", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(queued, [id, id, id + 1]);
}

#[test]
fn a_commitment_is_never_deleted_and_done_records_when() {
    let Some(mut f) = fixture("pg_never_deleted") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let err =
        f.db.execute("DELETE FROM commitments WHERE id = $1", &[&id])
            .unwrap_err();
    let said = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        said.as_deref()
            .is_some_and(|m| m.contains("kept for their history")),
        "{err:?}"
    );
    assert!(f.store.commitment(id).unwrap().done_at.is_none());
    let before = jiff::Timestamp::now();
    let previous = f
        .store
        .set_status(id, followup::commitment::Status::Done)
        .unwrap();
    assert_eq!(previous.as_deref(), Some("open"));
    let row = f.store.commitment(id).unwrap();
    let done_at: jiff::Timestamp = row.done_at.as_deref().unwrap().parse().unwrap();
    assert!(
        done_at
            >= before.round(jiff::Unit::Millisecond).unwrap()
                - jiff::SignedDuration::from_millis(1)
    );
    let created_at: jiff::Timestamp = row.created_at.as_deref().unwrap().parse().unwrap();
    assert!(created_at <= done_at);
    assert!(matches!(
        f.store.set_status(id + 1, followup::commitment::Status::Done),
        Err(StoreError::NotFound(missing)) if missing == id + 1
    ));
}

#[test]
fn a_store_can_be_handed_to_the_thread_that_owns_it() {
    fn owned_by_a_thread<T: Send + 'static>(_: &T) {}
    let Some(f) = fixture("pg_send") else {
        return;
    };
    owned_by_a_thread(&f.store);
    let store = f.store;
    let id = std::thread::spawn(move || store.insert_commitment(&sample("2026-12-03T12:00:00Z")))
        .join()
        .unwrap()
        .unwrap();
    assert!(id > 0);
}
