//! Claims with leases across daemons: granted, renewed, taken over once the lease ran
//! out (freeing what the dead daemon had taken), and fencing a daemon presumed dead.

use std::sync::mpsc;

use followup::commitment::Status;
use followup::store::postgres::PostgresStore;
use followup::store::{Claims, Commitments, StoreError};
use jiff::{SignedDuration, Timestamp};
use postgres::Client;

use super::{Email, at, fixture, insert_step, sample};
use crate::common::postgres::{until_a_session_waits_on_a_lock, until_lease_ran_out};

fn token_of(db: &mut Client, owner: &str) -> i64 {
    db.query_one("SELECT token FROM daemons WHERE owner = $1", &[&owner])
        .unwrap()
        .get(0)
}

fn is_refused<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::Claim(_)))
}

#[test]
fn each_daemon_gets_a_claim_of_its_own_that_it_renews() {
    let Some(mut f) = fixture("claims_granted") else {
        return;
    };
    let other = PostgresStore::open(&f.url).unwrap();
    let lease = SignedDuration::from_secs(15);
    let one = f
        .store
        .claim_work("host-a:1", lease, Timestamp::now())
        .unwrap();
    let two = other
        .claim_work("host-b:2", lease, Timestamp::now())
        .unwrap();
    assert_eq!((one.owner(), two.owner()), ("host-a:1", "host-b:2"));
    assert_ne!(
        token_of(&mut f.db, "host-a:1"),
        token_of(&mut f.db, "host-b:2")
    );
    let renewed = f
        .store
        .renew_claim(&one, lease, Timestamp::now())
        .unwrap()
        .claim;
    assert!(renewed.expires() >= one.expires());
    // Each holds: a fenced write of either goes through.
    f.store.fenced(&one, |_| Ok(())).unwrap();
    other.fenced(&two, |_| Ok(())).unwrap();
    // A lease still running is not taken over.
    assert_eq!(other.take_over_expired().unwrap(), 0);
    let daemons: i64 =
        f.db.query_one("SELECT count(*) FROM daemons", &[])
            .unwrap()
            .get(0);
    assert_eq!(daemons, 2);
}

#[test]
fn a_daemon_whose_lease_ran_out_is_taken_over_and_its_work_freed() {
    let Some(mut f) = fixture("claims_taken_over") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let step = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-03T15:00:00Z"),
        "planned",
    );
    let email = Email {
        step,
        commitment: id,
        audience: "owner",
        recipient: "ana@example.com",
        state: "pending",
        attempts: 0,
        sent_at: None,
        last_error: None,
    }
    .insert(&mut f.db);
    let dead = f
        .store
        .claim_work(
            "host-a:1",
            SignedDuration::from_millis(50),
            Timestamp::now(),
        )
        .unwrap();
    let token = token_of(&mut f.db, "host-a:1");
    f.db.execute(
        "UPDATE steps SET claimed_by = $1 WHERE id = $2",
        &[&token, &step],
    )
    .unwrap();
    f.db.execute(
        "UPDATE deliveries SET claimed_by = $1 WHERE id = $2",
        &[&token, &email],
    )
    .unwrap();
    until_lease_ran_out(&mut f.db, "host-a:1");

    // The next daemon to claim takes the dead one over and frees what it had taken.
    let heir = PostgresStore::open(&f.url).unwrap();
    heir.claim_work("host-b:2", SignedDuration::from_secs(15), Timestamp::now())
        .unwrap();
    let owners: Vec<String> =
        f.db.query("SELECT owner FROM daemons", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(owners, ["host-b:2"]);
    let claimed: i64 =
        f.db.query_one(
            "SELECT (SELECT count(*) FROM steps WHERE claimed_by IS NOT NULL)
                  + (SELECT count(*) FROM deliveries WHERE claimed_by IS NOT NULL)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        claimed, 0,
        "the dead daemon's step and email are free again"
    );

    // The daemon presumed dead can neither renew nor write under its old claim.
    assert!(is_refused(f.store.renew_claim(
        &dead,
        SignedDuration::from_secs(15),
        Timestamp::now()
    )));
    assert!(is_refused(
        f.store.fenced(&dead, |s| s.set_status(id, Status::Done))
    ));
    let status: String =
        f.db.query_one("SELECT status FROM commitments WHERE id = $1", &[&id])
            .unwrap()
            .get(0);
    assert_eq!(status, "open");
}

#[test]
fn a_daemon_stopping_cleanly_gives_its_claim_up_and_frees_its_work_at_once() {
    let Some(mut f) = fixture("claims_released") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let step = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-03T15:00:00Z"),
        "planned",
    );
    let email = |state: &'static str, recipient: &'static str| Email {
        step,
        commitment: id,
        audience: "owner",
        recipient,
        state,
        attempts: 1,
        sent_at: None,
        last_error: None,
    };
    // One email it gave up on mid-send, one it had recorded as sent.
    let given_up = email("pending", "ana@example.com").insert(&mut f.db);
    let sent = email("sent", "team@example.com").insert(&mut f.db);
    let lease = SignedDuration::from_secs(15);
    let leaving = f
        .store
        .claim_work("host-a:1", lease, Timestamp::now())
        .unwrap();
    let staying = PostgresStore::open(&f.url).unwrap();
    staying
        .claim_work("host-b:2", lease, Timestamp::now())
        .unwrap();
    let token = token_of(&mut f.db, "host-a:1");
    f.db.execute(
        "UPDATE steps SET claimed_by = $1 WHERE id = $2",
        &[&token, &step],
    )
    .unwrap();
    f.db.execute(
        "UPDATE deliveries SET claimed_by = $1 WHERE id = ANY($2)",
        &[&token, &vec![given_up, sent]],
    )
    .unwrap();

    // Long before its lease ends, its work is free and only the other one serves.
    f.store.release_claim(&leaving).unwrap();
    assert_eq!(
        staying.daemons_serving().unwrap(),
        Some(vec!["host-b:2".to_string()])
    );
    let row =
        f.db.query_one(
            "SELECT (SELECT count(*) FROM steps WHERE claimed_by IS NOT NULL)
                  + (SELECT count(*) FROM deliveries WHERE claimed_by IS NOT NULL),
                    (SELECT taken_over FROM deliveries WHERE id = $1),
                    (SELECT taken_over FROM deliveries WHERE id = $2)",
            &[&given_up, &sent],
        )
        .unwrap();
    let (claimed, given_up_count, sent_count): (i64, i32, i32) =
        (row.get(0), row.get(1), row.get(2));
    assert_eq!(claimed, 0, "the step and the emails are free again");
    assert_eq!(
        (given_up_count, sent_count),
        (1, 0),
        "the email given up on mid-send may go twice; the one sent will not"
    );
    // Its claim is gone: a write under it is refused, and giving it up again is harmless.
    assert!(is_refused(f.store.fenced(&leaving, |_| Ok(()))));
    f.store.release_claim(&leaving).unwrap();
}

#[test]
fn a_takeover_waits_for_the_fenced_transaction_that_holds_the_claim() {
    let Some(mut f) = fixture("claims_fenced") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let claim = f
        .store
        .claim_work(
            "host-a:1",
            SignedDuration::from_millis(300),
            Timestamp::now(),
        )
        .unwrap();
    let (inside, entered) = mpsc::channel();
    let (go_on, resume) = mpsc::channel::<()>();
    let store = f.store;
    let holder = std::thread::spawn(move || {
        let wrote = store.fenced(&claim, |s| {
            inside.send(()).unwrap();
            resume.recv().unwrap();
            s.set_status(id, Status::Done)
        });
        (store, claim, wrote.map(|_| ()))
    });
    entered.recv().unwrap();
    until_lease_ran_out(&mut f.db, "host-a:1");
    let url = f.url.clone();
    let heir = std::thread::spawn(move || {
        PostgresStore::open(&url)
            .unwrap()
            .take_over_expired()
            .unwrap()
    });
    // The takeover waits on the daemon's row, which the fenced transaction holds.
    until_a_session_waits_on_a_lock(&mut f.db, || heir.is_finished(), "the takeover");
    go_on.send(()).unwrap();
    let (store, claim, wrote) = holder.join().unwrap();
    assert!(wrote.is_ok(), "{wrote:?}");
    heir.join().unwrap();
    // The write under the claim went through before the takeover, and after it the
    // claim holds no more.
    let status: String =
        f.db.query_one("SELECT status FROM commitments WHERE id = $1", &[&id])
            .unwrap()
            .get(0);
    assert_eq!(status, "done");
    assert!(is_refused(store.fenced(&claim, |_| Ok(()))));
}
