//! `Planning` on PostgreSQL: a batch of the change queue planned in one transaction,
//! each commitment in a savepoint of its own, and one queue drained by several daemons
//! at once, each change planned by one of them.

use crate::common::postgres::until_a_session_waits_on_a_lock;
use std::collections::HashMap;
use std::sync::{Barrier, Mutex, mpsc};
use std::time::Duration;

use followup::clock::Clock;
use followup::planner::{PlannedStep, StepChange, StepKind, StepState};
use followup::store::postgres::PostgresStore;
use followup::store::prelude::*;
use followup::store::{Planned, PlannedCommitment};

use super::{Email, at, fixture, insert_step, sample};

/// A plan of one owner's reminder, `remind#1`, at `fire_at`.
fn remind(fire_at: &str) -> Planned {
    Planned {
        problem: None,
        changes: vec![StepChange::Add {
            step: PlannedStep {
                key: "remind#1".into(),
                kind: StepKind::Remind,
                rule: "default".into(),
                label: "-1h".into(),
                planned_at: at(fire_at),
                fire_at: at(fire_at),
                skip: None,
            },
            skip: None,
        }],
    }
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn a_change_is_planned_once_and_a_problem_is_kept_until_the_row_plans_again() {
    let Some(mut f) = fixture("pg_plan_changes") else {
        return;
    };
    let clock = Clock::system();
    let now = at("2026-12-02T10:00:00Z");
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let seen = Mutex::new(Vec::new());
    let planned = f
        .store
        .plan_changes(100, now, &clock, &|c| {
            seen.lock()
                .unwrap()
                .push((c.id, c.row.as_ref().map(|r| r.id), c.steps.len()));
            remind("2026-12-03T11:00:00Z")
        })
        .unwrap();
    assert_eq!(planned, 1);
    assert_eq!(*seen.lock().unwrap(), vec![(id, Some(id), 0)]);
    let steps = f.store.steps_of(id).unwrap();
    assert_eq!(steps.len(), 1);
    assert_eq!(
        (steps[0].state, steps[0].fire_at),
        (StepState::Planned, at("2026-12-03T11:00:00Z"))
    );
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM changes"), 0);
    let never = |_: &PlannedCommitment| -> Planned { panic!("nothing is queued") };
    assert_eq!(f.store.plan_changes(100, now, &clock, &never).unwrap(), 0);

    f.db.execute(
        "UPDATE commitments SET due_at = 'soon' WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let problem = |_: &PlannedCommitment| Planned {
        problem: Some("due_at does not read".into()),
        changes: Vec::new(),
    };
    assert_eq!(f.store.plan_changes(100, now, &clock, &problem).unwrap(), 1);
    assert_eq!(
        f.store.problem(id).unwrap().as_deref(),
        Some("due_at does not read")
    );

    f.db.execute(
        "UPDATE commitments SET due_at = '2026-12-04T12:00:00Z' WHERE id = $1",
        &[&id],
    )
    .unwrap();
    let fixed = |_: &PlannedCommitment| Planned::default();
    assert_eq!(f.store.plan_changes(100, now, &clock, &fixed).unwrap(), 1);
    assert_eq!(f.store.problem(id).unwrap(), None);
}

#[test]
fn a_commitment_that_cannot_be_written_spoils_none_of_the_others() {
    let Some(mut f) = fixture("pg_plan_isolated") else {
        return;
    };
    let clock = Clock::system();
    let now = at("2026-12-02T10:00:00Z");
    let broken = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let fine = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    // Its plan adds a step it already has: the insert fails on the unique key.
    insert_step(
        &mut f.db,
        broken,
        "remind#1",
        "remind",
        at("2026-12-03T11:00:00Z"),
        "sent",
    );
    // A change of a commitment that is not stored is dropped unplanned.
    f.db.execute("INSERT INTO changes (commitment_id) VALUES (9999)", &[])
        .unwrap();

    let planned = f
        .store
        .plan_changes(100, now, &clock, &|c| {
            assert_ne!(c.id, 9999, "a missing commitment is not planned");
            remind("2026-12-03T11:00:00Z")
        })
        .unwrap();
    assert_eq!(planned, 3);
    let problem = f
        .store
        .problem(broken)
        .unwrap()
        .expect("a problem recorded");
    assert!(problem.starts_with("cannot be planned: "), "{problem}");
    assert!(
        problem.contains("duplicate key"),
        "the server's words: {problem}"
    );
    assert_eq!(f.store.steps_of(fine).unwrap().len(), 1);
    assert_eq!(f.store.problem(fine).unwrap(), None);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM changes"), 0);
}

#[test]
fn a_change_takes_back_the_emails_composed_ahead_and_not_those_tried() {
    let Some(mut f) = fixture("pg_plan_withdraws") else {
        return;
    };
    let clock = Clock::system();
    let id = f
        .store
        .insert_commitment(&sample("2030-01-07T12:00:00Z"))
        .unwrap();
    let fire_at = at("2030-01-07T10:00:00Z");
    let (fire_ms, composed_ms) = (fire_at.as_millisecond(), fire_at.as_millisecond() - 3_000);
    let ahead = insert_step(&mut f.db, id, "remind#1", "remind", fire_at, "queued");
    let tried = insert_step(&mut f.db, id, "overdue#1", "overdue", fire_at, "queued");
    let email = |step, attempts| Email {
        step,
        commitment: id,
        audience: "owner",
        recipient: "ana@example.com",
        state: "pending",
        attempts,
        sent_at: None,
        last_error: None,
    };
    email(ahead, 0).insert_at(&mut f.db, composed_ms, fire_ms);
    let kept = email(tried, 1).insert_at(&mut f.db, composed_ms, fire_ms);
    f.db.execute(
        "UPDATE commitments SET title = 'Roof quote' WHERE id = $1",
        &[&id],
    )
    .unwrap();

    let seen = Mutex::new(Vec::new());
    let planned = f
        .store
        .plan_changes(100, clock.now(), &clock, &|c| {
            *seen.lock().unwrap() = c.steps.iter().map(|s| (s.id, s.state)).collect();
            Planned::default()
        })
        .unwrap();
    assert_eq!(planned, 1);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(ahead, StepState::Planned), (tried, StepState::Queued)],
        "the plan sees the step taken back as planned"
    );
    let left: Vec<i64> =
        f.db.query("SELECT id FROM deliveries ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(left, vec![kept]);
    let states: Vec<(i64, StepState)> = f
        .store
        .steps_of(id)
        .unwrap()
        .iter()
        .map(|s| (s.id, s.state))
        .collect();
    assert_eq!(
        states,
        vec![(ahead, StepState::Planned), (tried, StepState::Queued)]
    );
}

/// Two daemons, each with its own connection, drain one queue of 2,000 changes at once.
/// The first holds its first batch until the second has planned a commitment: with
/// the batch's rows locked, the second must take others, not wait for them.
#[test]
fn two_daemons_draining_one_queue_plan_each_commitment_once() {
    let Some(mut f) = fixture("pg_plan_two_daemons") else {
        return;
    };
    f.db.batch_execute(
        "INSERT INTO commitments (title, owner, customer, due_at)
         SELECT 'Quote ' || n, 'ana@example.com', 'joe@example.org', '2026-12-03T12:00:00Z'
         FROM generate_series(1, 2000) n",
    )
    .unwrap();
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM changes"), 2000);

    let now = at("2026-12-02T10:00:00Z");
    let plans: Mutex<HashMap<i64, usize>> = Mutex::new(HashMap::new());
    let barrier = Barrier::new(2);
    let (second_planned, first_waits) = mpsc::channel::<()>();
    let mut first_waits = Some(first_waits);
    let (plans, barrier, url) = (&plans, &barrier, f.url.as_str());
    let outcomes: Vec<(usize, bool, Result<(), String>)> = std::thread::scope(|scope| {
        let daemons: Vec<_> = (0..2)
            .map(|daemon| {
                let waits = if daemon == 0 {
                    first_waits.take()
                } else {
                    None
                };
                let signal = second_planned.clone();
                scope.spawn(move || {
                    let store = PostgresStore::open(url).unwrap();
                    let clock = Clock::system();
                    let mine = Mutex::new(0usize);
                    let overlapped = Mutex::new(waits.is_none());
                    let plan = |c: &PlannedCommitment| {
                        *plans.lock().unwrap().entry(c.id).or_default() += 1;
                        let first = {
                            let mut mine = mine.lock().unwrap();
                            *mine += 1;
                            *mine == 1
                        };
                        match &waits {
                            Some(rx) if first => {
                                // Only a plan made from now on, while this batch is held.
                                while rx.try_recv().is_ok() {}
                                let other = rx.recv_timeout(Duration::from_secs(30)).is_ok();
                                *overlapped.lock().unwrap() = other;
                            }
                            Some(_) => {}
                            None => {
                                let _ = signal.send(());
                            }
                        }
                        remind("2026-12-03T11:00:00Z")
                    };
                    barrier.wait();
                    let drained = loop {
                        match store.plan_changes(50, now, &clock, &plan) {
                            Ok(0) => break Ok(()),
                            Ok(_) => {}
                            Err(e) => break Err(e.to_string()),
                        }
                    };
                    let planned = *mine.lock().unwrap();
                    let overlapped = *overlapped.lock().unwrap();
                    (planned, overlapped, drained)
                })
            })
            .collect();
        daemons.into_iter().map(|d| d.join().unwrap()).collect()
    });

    for (daemon, (planned, overlapped, drained)) in outcomes.iter().enumerate() {
        assert_eq!(drained, &Ok(()), "daemon {daemon} failed");
        assert!(*planned > 0, "daemon {daemon} planned nothing");
        assert!(
            *overlapped,
            "daemon {daemon} waited in vain for the other to plan while it held a batch"
        );
    }
    let plans = plans.lock().unwrap();
    assert_eq!(plans.len(), 2000);
    let twice: Vec<_> = plans.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "planned more than once: {twice:?}");
    assert_eq!(outcomes[0].0 + outcomes[1].0, 2000);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM changes"), 0);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM steps"), 2000);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM problems"), 0);
}

/// What one daemon's plan saw of each commitment: its id and how many steps it had.
type Seen = Mutex<Vec<(i64, usize)>>;

/// A plan that adds `remind#1` to a commitment without steps and changes nothing of
/// one that has it, noting what it saw.
fn plan_once(seen: &Seen, c: &PlannedCommitment) -> Planned {
    seen.lock().unwrap().push((c.id, c.steps.len()));
    if c.steps.is_empty() {
        remind("2026-12-03T11:00:00Z")
    } else {
        Planned::default()
    }
}

/// Two daemons whose batches hold changes of the same commitments: the second waits
/// for the first's locks, then plans from the steps the first wrote.
#[test]
fn a_commitment_in_two_batches_is_planned_by_the_second_from_what_the_first_wrote() {
    let Some(mut f) = fixture("pg_plan_shared_commitments") else {
        return;
    };
    let x = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let y = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    // Changed again, the other way round: the second batch has them too.
    for id in [y, x] {
        f.db.execute(
            "UPDATE commitments SET title = 'Roof' WHERE id = $1",
            &[&id],
        )
        .unwrap();
    }
    let now = at("2026-12-02T10:00:00Z");
    let url = f.url.as_str();
    let (first_seen, second_seen): (Seen, Seen) = Default::default();
    let (holds, first_holds) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let (first, second) = std::thread::scope(|scope| {
        let (first_seen, holds) = (&first_seen, holds);
        let first = scope.spawn(move || {
            let store = PostgresStore::open(url).unwrap();
            store.plan_changes(2, now, &Clock::system(), &|c| {
                if first_seen.lock().unwrap().is_empty() {
                    holds.send(()).unwrap();
                    released.recv_timeout(Duration::from_secs(30)).unwrap();
                }
                plan_once(first_seen, c)
            })
        });
        first_holds
            .recv_timeout(Duration::from_secs(30))
            .expect("the first daemon plans");
        let second = scope.spawn(|| {
            let store = PostgresStore::open(url).unwrap();
            store.plan_changes(2, now, &Clock::system(), &|c| plan_once(&second_seen, c))
        });
        let mut watcher = super::connect(url);
        until_a_session_waits_on_a_lock(&mut watcher, || second.is_finished(), "the second daemon");
        release.send(()).unwrap();
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_eq!((first.unwrap(), second.unwrap()), (2, 2));
    assert_eq!(*first_seen.lock().unwrap(), vec![(x, 0), (y, 0)]);
    let mut second_seen = second_seen.into_inner().unwrap();
    second_seen.sort_unstable();
    assert_eq!(
        second_seen,
        vec![(x, 1), (y, 1)],
        "the second saw the first's steps"
    );
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM changes"), 0);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM steps"), 2);
    assert_eq!(count(&mut f.db, "SELECT COUNT(*) FROM problems"), 0);
}

/// A change of a commitment whose emails composed ahead are with the senders: the one
/// a sender holds stays, and so does the one a sender is taking at that moment (its
/// row locked); the free one is taken back, and the one being taken once it is free.
#[test]
fn an_email_a_sender_holds_or_is_taking_is_not_taken_back() {
    let Some(mut f) = fixture("pg_plan_withdraw_claimed") else {
        return;
    };
    let clock = Clock::system();
    let id = f
        .store
        .insert_commitment(&sample("2030-01-07T12:00:00Z"))
        .unwrap();
    let fire_at = at("2030-01-07T10:00:00Z");
    let mut queued = |key: &str| {
        let step = insert_step(&mut f.db, id, key, "remind", fire_at, "queued");
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
        .insert_at(
            &mut f.db,
            fire_at.as_millisecond() - 3_000,
            fire_at.as_millisecond(),
        );
        (step, email)
    };
    let (held, held_email) = queued("remind#1");
    let (taking, taking_email) = queued("remind#2");
    let (free, _) = queued("remind#3");
    f.db.execute(
        "UPDATE deliveries SET claimed_by = 7 WHERE id = $1",
        &[&held_email],
    )
    .unwrap();
    // A store that gives up on a lock rather than wait for this test's own sender.
    let store = PostgresStore::open(&format!("{}?options=-c%20lock_timeout%3D5s", f.url)).unwrap();
    let mut sender = super::connect(&f.url);
    let mut take = sender.transaction().unwrap();
    take.execute(
        "UPDATE deliveries SET claimed_by = 8 WHERE id = $1",
        &[&taking_email],
    )
    .unwrap();

    let states = |f: &mut super::Fixture| -> Vec<(i64, StepState)> {
        f.db.execute(
            "UPDATE commitments SET title = title || '!' WHERE id = $1",
            &[&id],
        )
        .unwrap();
        let seen = Mutex::new(Vec::new());
        let planned = store.plan_changes(100, clock.now(), &clock, &|c| {
            *seen.lock().unwrap() = c.steps.iter().map(|s| (s.id, s.state)).collect();
            Planned::default()
        });
        assert_eq!(planned.unwrap(), 1);
        seen.into_inner().unwrap()
    };
    assert_eq!(
        states(&mut f),
        vec![
            (held, StepState::Queued),
            (taking, StepState::Queued),
            (free, StepState::Planned)
        ]
    );
    take.rollback().unwrap();
    assert_eq!(
        states(&mut f),
        vec![
            (held, StepState::Queued),
            (taking, StepState::Planned),
            (free, StepState::Planned)
        ]
    );
    let left: Vec<i64> =
        f.db.query("SELECT id FROM deliveries ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(left, vec![held_email]);
}
