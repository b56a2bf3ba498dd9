//! The outbox shared by several daemons: each due email is taken by one, its outcome is
//! recorded only by the daemon that holds it, and a dead daemon's emails go from
//! another.

use std::collections::HashSet;

use followup::clock::Clock;
use followup::store::postgres::PostgresStore;
use followup::store::{Claim, Claims, Commitments, DeliveryOutcome, Outbox, StoreError, TakeDue};
use jiff::{SignedDuration, Timestamp};
use postgres::Client;

use super::{Email, at, fixture, insert_step, sample};
use crate::common::postgres::until_lease_ran_out;

/// `count` emails to Joe, each of its own queued step of one commitment, due at once.
fn due_emails(store: &PostgresStore, db: &mut Client, count: usize) -> Vec<i64> {
    let id = store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    (0..count)
        .map(|i| {
            let step = insert_step(
                db,
                id,
                &format!("remind#{i}"),
                "remind",
                at("2026-12-03T15:00:00Z"),
                "queued",
            );
            Email {
                step,
                commitment: id,
                audience: "owner",
                recipient: "ana@example.com",
                state: "pending",
                attempts: 0,
                sent_at: None,
                last_error: None,
            }
            .insert(db)
        })
        .collect()
}

/// One turn of the sender: records `outcomes`, then takes up to `limit` due emails.
fn turn(
    store: &PostgresStore,
    claim: &Claim,
    outcomes: &[DeliveryOutcome],
    limit: usize,
    skip: &HashSet<i64>,
) -> Result<Vec<i64>, StoreError> {
    let clock = Clock::system();
    let (written, taken) = store.record_and_take(
        claim,
        &[outcomes],
        &[TakeDue {
            limit,
            skip,
            clock: &clock,
        }],
    )?;
    for w in written {
        w.unwrap();
    }
    let (batch, _) = taken.into_iter().next().unwrap().unwrap();
    Ok(batch.into_iter().map(|d| d.id).collect())
}

fn claim(store: &PostgresStore, owner: &str, lease: SignedDuration) -> Claim {
    store.claim_work(owner, lease, Timestamp::now()).unwrap()
}

fn state_of(db: &mut Client, email: i64) -> (String, Option<i64>) {
    let row = db
        .query_one(
            "SELECT state, claimed_by FROM deliveries WHERE id = $1",
            &[&email],
        )
        .unwrap();
    (row.get(0), row.get(1))
}

#[test]
fn two_daemons_sending_at_once_take_each_due_email_once() {
    let Some(mut f) = fixture("outbox_each_once") else {
        return;
    };
    let all: HashSet<i64> = due_emails(&f.store, &mut f.db, 300).into_iter().collect();
    let url = f.url.clone();
    let daemons: Vec<_> = ["host-a:1", "host-b:2"]
        .into_iter()
        .map(|owner| {
            let url = url.clone();
            std::thread::spawn(move || {
                let store = PostgresStore::open(&url).unwrap();
                let claim = claim(&store, owner, SignedDuration::from_secs(15));
                let mut mine = Vec::new();
                let mut sent = Vec::new();
                loop {
                    let now = Timestamp::now();
                    let outcomes: Vec<_> = sent
                        .drain(..)
                        .map(|id| DeliveryOutcome::Sent { id, at: now })
                        .collect();
                    let taken = turn(&store, &claim, &outcomes, 7, &HashSet::new()).unwrap();
                    if taken.is_empty() && outcomes.is_empty() {
                        return mine;
                    }
                    mine.extend(&taken);
                    sent = taken;
                }
            })
        })
        .collect();
    let taken: Vec<Vec<i64>> = daemons.into_iter().map(|d| d.join().unwrap()).collect();
    let first: HashSet<i64> = taken[0].iter().copied().collect();
    let second: HashSet<i64> = taken[1].iter().copied().collect();
    assert!(
        first.is_disjoint(&second),
        "an email was taken by both daemons"
    );
    assert_eq!(
        taken[0].len() + taken[1].len(),
        all.len(),
        "an email was taken twice by one"
    );
    assert_eq!(&first | &second, all);
    let unsent: i64 =
        f.db.query_one(
            "SELECT count(*) FROM deliveries WHERE state <> 'sent' OR claimed_by IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(unsent, 0);
    let steps_sent: i64 =
        f.db.query_one("SELECT count(*) FROM steps WHERE state = 'sent'", &[])
            .unwrap()
            .get(0);
    assert_eq!(
        steps_sent, 300,
        "each step is settled once its email is sent"
    );
}

#[test]
fn only_the_daemon_holding_an_email_records_what_became_of_it() {
    let Some(mut f) = fixture("outbox_holder_records") else {
        return;
    };
    let email = due_emails(&f.store, &mut f.db, 1)[0];
    let other = PostgresStore::open(&f.url).unwrap();
    let holder = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    let stranger = claim(&other, "host-b:2", SignedDuration::from_secs(15));
    assert_eq!(
        turn(&f.store, &holder, &[], 10, &HashSet::new()).unwrap(),
        [email]
    );
    // Another daemon neither takes it nor records it as sent.
    let sent = DeliveryOutcome::Sent {
        id: email,
        at: Timestamp::now(),
    };
    assert!(
        turn(
            &other,
            &stranger,
            std::slice::from_ref(&sent),
            10,
            &HashSet::new()
        )
        .unwrap()
        .is_empty()
    );
    assert_eq!(state_of(&mut f.db, email).0, "pending");
    // A retry frees it for any daemon, once it is due again.
    let retry = DeliveryOutcome::Retry {
        id: email,
        error: "451 try later".into(),
        retry_at: Timestamp::now(),
    };
    assert_eq!(
        turn(&other, &stranger, &[], 10, &HashSet::new()).unwrap(),
        Vec::<i64>::new()
    );
    let again = turn(&f.store, &holder, &[retry], 0, &HashSet::new()).unwrap();
    assert!(again.is_empty());
    assert_eq!(state_of(&mut f.db, email), ("pending".to_string(), None));
    assert_eq!(
        turn(&other, &stranger, &[], 10, &HashSet::new()).unwrap(),
        [email]
    );
    let sent = DeliveryOutcome::Sent {
        id: email,
        at: Timestamp::now(),
    };
    turn(&other, &stranger, &[sent], 0, &HashSet::new()).unwrap();
    assert_eq!(state_of(&mut f.db, email), ("sent".to_string(), None));
}

#[test]
fn a_dead_daemons_emails_go_from_another_and_its_late_record_is_refused() {
    let Some(mut f) = fixture("outbox_takeover") else {
        return;
    };
    let email = due_emails(&f.store, &mut f.db, 1)[0];
    let dead = claim(&f.store, "host-a:1", SignedDuration::from_secs(1));
    assert_eq!(
        turn(&f.store, &dead, &[], 10, &HashSet::new()).unwrap(),
        [email]
    );
    let heir_store = PostgresStore::open(&f.url).unwrap();
    // Until the dead daemon's lease has run out on the database's clock, its email
    // stays its own; then it is taken over and the email is free.
    assert_eq!(heir_store.take_over_expired().unwrap(), 0);
    assert!(state_of(&mut f.db, email).1.is_some());
    until_lease_ran_out(&mut f.db, "host-a:1");
    assert_eq!(heir_store.take_over_expired().unwrap(), 1);
    assert_eq!(state_of(&mut f.db, email), ("pending".to_string(), None));
    let heir = claim(&heir_store, "host-b:2", SignedDuration::from_secs(15));
    assert_eq!(
        turn(&heir_store, &heir, &[], 10, &HashSet::new()).unwrap(),
        [email]
    );
    let late = DeliveryOutcome::Sent {
        id: email,
        at: Timestamp::now(),
    };
    assert!(matches!(
        turn(&f.store, &dead, &[late], 10, &HashSet::new()),
        Err(StoreError::Claim(_))
    ));
    assert_eq!(state_of(&mut f.db, email).0, "pending");
}

/// The emails of one customer update's step: two to customers, pending, and the
/// owner's copy, waiting for them. Returns (step, customers' emails, copy).
fn customer_update(store: &PostgresStore, db: &mut Client) -> (i64, [i64; 2], i64) {
    let id = store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let step = insert_step(
        db,
        id,
        "update",
        "customer_update",
        at("2026-12-03T15:00:00Z"),
        "queued",
    );
    let email = |audience, recipient, state| Email {
        step,
        commitment: id,
        audience,
        recipient,
        state,
        attempts: 0,
        sent_at: None,
        last_error: None,
    };
    let joe = email("customer", "joe@example.org", "pending").insert(db);
    let eve = email("customer", "eve@example.org", "pending").insert(db);
    let copy = email("owner", "ana@example.com", "waiting").insert(db);
    (step, [joe, eve], copy)
}

fn step_state(db: &mut Client, step: i64) -> String {
    db.query_one("SELECT state FROM steps WHERE id = $1", &[&step])
        .unwrap()
        .get(0)
}

#[test]
fn emails_sent_together_release_the_copy_that_waited_and_settle_the_step_after_it() {
    let Some(mut f) = fixture("outbox_sent_together") else {
        return;
    };
    let (step, [joe, eve], copy) = customer_update(&f.store, &mut f.db);
    let daemon = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    let mut taken = turn(&f.store, &daemon, &[], 10, &HashSet::new()).unwrap();
    taken.sort_unstable();
    assert_eq!(taken, [joe, eve]);
    // One email sent of two: the copy still waits, the step is not settled.
    let now = Timestamp::now();
    let (written, _) = f
        .store
        .record_and_take(
            &daemon,
            &[&[DeliveryOutcome::Sent { id: joe, at: now }]],
            &[],
        )
        .unwrap();
    assert_eq!(written[0].as_ref().unwrap().followers, 0);
    assert_eq!(state_of(&mut f.db, copy).0, "waiting");
    assert_eq!(step_state(&mut f.db, step), "queued");
    // The other, in a turn of two groups (one of an email no longer held): the copy
    // falls due for the group that sent it, and the step waits for the copy.
    let stray = due_emails(&f.store, &mut f.db, 1)[0];
    let (written, _) = f
        .store
        .record_and_take(
            &daemon,
            &[
                &[DeliveryOutcome::Sent { id: stray, at: now }],
                &[DeliveryOutcome::Sent { id: eve, at: now }],
            ],
            &[],
        )
        .unwrap();
    let followers: Vec<usize> = written
        .iter()
        .map(|w| w.as_ref().unwrap().followers)
        .collect();
    assert_eq!(followers, [0, 1]);
    assert_eq!(state_of(&mut f.db, stray), ("pending".to_string(), None));
    assert_eq!(state_of(&mut f.db, copy), ("pending".to_string(), None));
    assert_eq!(step_state(&mut f.db, step), "queued");
    let mut skip = HashSet::new();
    skip.insert(stray);
    assert_eq!(turn(&f.store, &daemon, &[], 10, &skip).unwrap(), [copy]);
    let sent = DeliveryOutcome::Sent { id: copy, at: now };
    turn(&f.store, &daemon, &[sent], 0, &HashSet::new()).unwrap();
    assert_eq!(step_state(&mut f.db, step), "sent");
}

#[test]
fn a_record_the_database_refuses_spoils_none_of_the_others_in_its_turn() {
    let Some(mut f) = fixture("outbox_refused_record") else {
        return;
    };
    let emails = due_emails(&f.store, &mut f.db, 2);
    let daemon = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    assert_eq!(
        turn(&f.store, &daemon, &[], 10, &HashSet::new()).unwrap(),
        emails
    );
    // Another program's trigger refuses to let one of them be marked sent.
    f.db.batch_execute(&format!(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'refused by policy'; END $$;
         CREATE TRIGGER refuse BEFORE UPDATE ON deliveries FOR EACH ROW
             WHEN (NEW.id = {} AND NEW.state = 'sent') EXECUTE FUNCTION refuse();",
        emails[0]
    ))
    .unwrap();
    let now = Timestamp::now();
    let (written, _) = f
        .store
        .record_and_take(
            &daemon,
            &[
                &[DeliveryOutcome::Sent {
                    id: emails[0],
                    at: now,
                }],
                &[DeliveryOutcome::Sent {
                    id: emails[1],
                    at: now,
                }],
            ],
            &[],
        )
        .unwrap();
    let refused = written[0].as_ref().unwrap_err().to_string();
    assert!(refused.contains("refused by policy"), "{refused}");
    assert!(written[1].is_ok());
    assert_eq!(state_of(&mut f.db, emails[0]).0, "pending");
    assert_eq!(state_of(&mut f.db, emails[1]), ("sent".to_string(), None));
}
