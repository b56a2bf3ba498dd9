//! Firing due steps and running calendar jobs with several daemons on one database:
//! each due step is decided and queued by one daemon, a decision on a step that
//! planning rewrote meanwhile is dropped, a dead daemon's steps go to another, an
//! occurrence runs once, and emails composed ahead are taken back at a start only
//! when no other daemon runs.

use std::collections::HashSet;
use std::sync::mpsc;

use followup::planner::{PlannedStep, StepChange, StepKind};
use followup::store::postgres::PostgresStore;
use followup::store::{
    Claim, Claims, Commitments, Decision, Decisions, Deliveries, DueAsk, DueBatch, DueSteps,
    JobOutput, JobReads, JobRun, Jobs, Location, NewDelivery, Occurrence, Origin, StatusFilter,
    StepDecision, StoreError, Wanted,
};
use jiff::{SignedDuration, Timestamp};
use postgres::Client;

use super::{Email, at, fixture, insert_step, sample};
use crate::common::postgres::{until_a_session_waits_on_a_lock, until_lease_ran_out};

/// `count` commitments with one remind step each, due at `due`; their step ids.
fn due_steps(store: &PostgresStore, db: &mut Client, count: usize, due: Timestamp) -> Vec<i64> {
    (0..count)
        .map(|i| {
            let id = store
                .insert_commitment(&sample("2026-12-03T17:00:00Z"))
                .unwrap();
            insert_step(db, id, &format!("remind#{i}"), "remind", due, "planned")
        })
        .collect()
}

fn claim(store: &PostgresStore, owner: &str, lease: SignedDuration) -> Claim {
    store.claim_work(owner, lease, Timestamp::now()).unwrap()
}

/// Every step of `batch` sent: one email each to its owner.
fn send_all(batch: DueBatch, now: Timestamp) -> Decisions {
    Decisions {
        mark: batch.mark(),
        decided: batch
            .steps
            .iter()
            .map(|due| {
                let step_id = due.step.step.id;
                StepDecision {
                    step_id,
                    commitment_id: due.step.row.id,
                    decision: Decision::Send {
                        deliveries: vec![NewDelivery {
                            origin: Origin::Step {
                                step_id,
                                commitment_id: due.step.row.id,
                            },
                            audience: "owner".into(),
                            sender: "followup@example.com".into(),
                            recipient: "ana@example.com".into(),
                            subject: "Quote".into(),
                            message_id: format!("<step-{step_id}@test>"),
                            message: b"Subject: Quote\r\n\r\nHello\r\n".to_vec(),
                        }],
                        waiting: Vec::new(),
                        revision: None,
                        undo: None,
                        late: false,
                        at: now,
                    },
                }
            })
            .collect(),
    }
}

fn no_wants(_: &followup::store::DueStep) -> Wanted {
    Wanted::default()
}

/// Asks for the steps due at `now`, 16 at a time, from the first.
fn every_due(now: Timestamp, busy: &HashSet<i64>) -> DueAsk<'_> {
    DueAsk {
        now,
        ahead: now,
        after: None,
        busy,
        limit: 16,
        wants: &no_wants,
    }
}

/// Fires every due step as the planning task does, a batch at a time; returns how
/// many steps it queued.
fn fire_all(store: &PostgresStore, claim: &Claim, now: Timestamp) -> Result<usize, StoreError> {
    let busy = HashSet::new();
    let ask = |after| DueAsk {
        after,
        ..every_due(now, &busy)
    };
    let mut queued = 0;
    let mut batch = store.take_due_steps(claim, &ask(None))?;
    while let Some(taken) = batch {
        let after = taken.last();
        let decisions = send_all(taken, now);
        let done = store.queue_decided(claim, &decisions, &ask(after), &|b| send_all(b, now))?;
        queued += done.sent;
        batch = done.next;
    }
    Ok(queued)
}

fn count(db: &mut Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn two_daemons_firing_at_once_queue_each_due_step_once() {
    let Some(mut f) = fixture("firing_two_daemons") else {
        return;
    };
    let now = at("2026-12-03T15:00:00Z");
    due_steps(&f.store, &mut f.db, 300, now);
    let url = f.url.clone();
    let other = std::thread::spawn(move || {
        let store = PostgresStore::open(&url).unwrap();
        let claim = claim(&store, "host-b:2", SignedDuration::from_secs(15));
        fire_all(&store, &claim, now).unwrap()
    });
    let mine = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    let queued = fire_all(&f.store, &mine, now).unwrap() + other.join().unwrap();
    assert_eq!(queued, 300, "each step queued by one daemon");
    assert_eq!(count(&mut f.db, "SELECT count(*) FROM deliveries"), 300);
    assert_eq!(
        count(
            &mut f.db,
            "SELECT count(*) FROM steps WHERE state = 'queued' AND claimed_by IS NULL"
        ),
        300,
        "every step queued and free"
    );
}

#[test]
fn a_decision_on_a_step_that_planning_moved_meanwhile_is_dropped() {
    let Some(mut f) = fixture("firing_replanned") else {
        return;
    };
    let now = at("2026-12-03T15:00:00Z");
    let steps = due_steps(&f.store, &mut f.db, 2, now);
    let claim = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    let busy = HashSet::new();
    let ask = every_due(now, &busy);
    let batch = f.store.take_due_steps(&claim, &ask).unwrap().unwrap();
    assert_eq!(batch.steps.len(), 2);
    let decisions = send_all(batch, now);
    // Another daemon plans the first commitment again meanwhile: its step moves to a
    // later time, and stays planned.
    let planner = PostgresStore::open(&f.url).unwrap();
    let commitment: i64 =
        f.db.query_one(
            "SELECT commitment_id FROM steps WHERE id = $1",
            &[&steps[0]],
        )
        .unwrap()
        .get(0);
    let later = now + SignedDuration::from_hours(1);
    planner
        .apply_step_changes(
            commitment,
            &[StepChange::Move {
                id: steps[0],
                step: PlannedStep {
                    key: "remind#0".into(),
                    kind: StepKind::Remind,
                    rule: "default".into(),
                    label: "-1h".into(),
                    planned_at: later,
                    fire_at: later,
                    skip: None,
                },
            }],
            now,
        )
        .unwrap();
    let done = f
        .store
        .queue_decided(&claim, &decisions, &ask, &|b| send_all(b, now))
        .unwrap();
    assert_eq!(done.sent, 1, "only the step still planned is queued");
    let states: Vec<String> =
        f.db.query("SELECT state FROM steps ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(
        states,
        ["planned", "queued"],
        "the moved step waits for its new time"
    );
    assert_eq!(count(&mut f.db, "SELECT count(*) FROM deliveries"), 1);
}

#[test]
fn a_dead_daemons_steps_go_to_another_and_its_late_decisions_are_refused() {
    let Some(mut f) = fixture("firing_taken_over") else {
        return;
    };
    let now = at("2026-12-03T15:00:00Z");
    due_steps(&f.store, &mut f.db, 3, now);
    let dead = claim(&f.store, "host-a:1", SignedDuration::from_millis(50));
    let busy = HashSet::new();
    let ask = every_due(now, &busy);
    let batch = f.store.take_due_steps(&dead, &ask).unwrap().unwrap();
    let decisions = send_all(batch, now);
    assert_eq!(
        count(
            &mut f.db,
            "SELECT count(*) FROM steps WHERE claimed_by IS NOT NULL"
        ),
        3
    );
    until_lease_ran_out(&mut f.db, "host-a:1");

    let heir = PostgresStore::open(&f.url).unwrap();
    let alive = claim(&heir, "host-b:2", SignedDuration::from_secs(15));
    assert_eq!(fire_all(&heir, &alive, now).unwrap(), 3);
    let late = f
        .store
        .queue_decided(&dead, &decisions, &ask, &|b| send_all(b, now));
    assert!(matches!(late, Err(StoreError::Claim(_))), "{late:?}");
    assert_eq!(count(&mut f.db, "SELECT count(*) FROM deliveries"), 3);
}

#[test]
fn an_occurrence_run_by_two_daemons_at_once_runs_once() {
    let Some(mut f) = fixture("jobs_once") else {
        return;
    };
    let now = at("2026-12-03T08:00:00Z");
    let occurrence = Occurrence {
        schedule: "morning",
        job: "digest",
        at: now,
        prune_before: None,
    };
    let url = f.url.clone();
    let (inside, entered) = mpsc::channel();
    let (go_on, resume) = mpsc::channel::<()>();
    let first = std::thread::spawn(move || {
        let store = PostgresStore::open(&url).unwrap();
        let claim = claim(&store, "host-a:1", SignedDuration::from_secs(15));
        let occurrence = Occurrence {
            schedule: "morning",
            job: "digest",
            at: now,
            prune_before: None,
        };
        store
            .run_occurrence(
                &claim,
                &occurrence,
                now,
                &|_: JobReads<'_>, run: &JobRun| {
                    inside.send(()).unwrap();
                    resume.recv().unwrap();
                    Ok(JobOutput {
                        summary: format!("run {}", run.id),
                        ..JobOutput::default()
                    })
                },
            )
            .unwrap();
    });
    entered.recv().unwrap();
    let url = f.url.clone();
    let second = std::thread::spawn(move || {
        let store = PostgresStore::open(&url).unwrap();
        let claim = claim(&store, "host-b:2", SignedDuration::from_secs(15));
        let composed = std::cell::Cell::new(false);
        store
            .run_occurrence(&claim, &occurrence, now, &|_: JobReads<'_>, _: &JobRun| {
                composed.set(true);
                Ok(JobOutput::default())
            })
            .unwrap();
        composed.get()
    });
    // The second waits on the first's record of the occurrence.
    until_a_session_waits_on_a_lock(&mut f.db, || second.is_finished(), "the second run");
    go_on.send(()).unwrap();
    first.join().unwrap();
    assert!(!second.join().unwrap(), "the second daemon did not run it");
    assert_eq!(count(&mut f.db, "SELECT count(*) FROM job_runs"), 1);
}

#[test]
fn emails_composed_ahead_are_taken_back_at_a_start_only_when_no_other_daemon_runs() {
    let Some(mut f) = fixture("withdraw_at_start") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let fire_at = at("2026-12-03T15:00:00Z");
    let step = insert_step(&mut f.db, id, "remind#1", "remind", fire_at, "queued");
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
    .insert_at(
        &mut f.db,
        fire_at.as_millisecond() - 5000,
        fire_at.as_millisecond(),
    );
    let now = fire_at - SignedDuration::from_secs(5);
    let running = PostgresStore::open(&f.url).unwrap();
    claim(&running, "host-a:1", SignedDuration::from_secs(15));
    claim(&f.store, "host-b:2", SignedDuration::from_secs(15));
    assert_eq!(
        f.store.withdraw_all_ahead(now).unwrap(),
        0,
        "another daemon runs"
    );
    f.db.execute("DELETE FROM daemons WHERE owner = 'host-a:1'", &[])
        .unwrap();
    assert_eq!(f.store.withdraw_all_ahead(now).unwrap(), 1);
    assert_eq!(count(&mut f.db, "SELECT count(*) FROM deliveries"), 0);
}

#[test]
fn the_postgres_store_serves_through_the_store_interface() {
    let Some(f) = fixture("as_dyn_store") else {
        return;
    };
    f.store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let store = followup::store::open(&Location::Postgres {
        url: f.url.clone(),
        password: None,
    })
    .unwrap();
    assert_eq!(store.id(), f.store.id());
    let rows = store
        .read_without_waiting(|s| s.commitments(StatusFilter::All).unwrap())
        .unwrap();
    assert_eq!(rows.len(), 1);
}

/// Fires one batch of due steps `steps` of which the second's owner copy waits for
/// its email; returns the steps put in the outbox, and the emails' (step, state) in
/// the order of their ids, leaving out `except`.
fn fire_with_a_copy(
    f: &mut super::Fixture,
    steps: &[i64],
    now: Timestamp,
    except: i64,
) -> (usize, Vec<(i64, String)>) {
    let daemon = claim(&f.store, "host-a:1", SignedDuration::from_secs(15));
    let decide = |batch: DueBatch| {
        let mut decisions = send_all(batch, now);
        if let Decision::Send {
            deliveries,
            waiting,
            ..
        } = &mut decisions.decided[1].decision
        {
            let mut copy = deliveries[0].clone();
            copy.message_id = format!("{}-copy", copy.message_id);
            copy.recipient = "copy@example.com".into();
            waiting.push(copy);
        }
        decisions
    };
    let busy = HashSet::new();
    let ask = every_due(now, &busy);
    let batch = f.store.take_due_steps(&daemon, &ask).unwrap().unwrap();
    assert_eq!(batch.steps.len(), steps.len());
    let after = batch.last();
    let queued = f
        .store
        .queue_decided(&daemon, &decide(batch), &DueAsk { after, ..ask }, &|b| {
            decide(b)
        })
        .unwrap();
    let emails =
        f.db.query(
            "SELECT step_id, state FROM deliveries WHERE id <> $1 ORDER BY id",
            &[&except],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    (queued.sent, emails)
}

fn step_state(db: &mut Client, step: i64) -> (String, Option<String>) {
    let row = db
        .query_one("SELECT state, reason FROM steps WHERE id = $1", &[&step])
        .unwrap();
    (row.get(0), row.get(1))
}

fn pending(step: i64) -> (i64, String) {
    (step, "pending".to_string())
}

#[test]
fn a_batch_is_written_together_its_emails_in_firing_order() {
    let Some(mut f) = fixture("firing_written_together") else {
        return;
    };
    let now = at("2026-12-03T15:00:00Z");
    let steps = due_steps(&f.store, &mut f.db, 3, now);
    let (sent, emails) = fire_with_a_copy(&mut f, &steps, now, 0);
    assert_eq!(sent, 3);
    for step in &steps {
        assert_eq!(step_state(&mut f.db, *step).0, "queued");
    }
    assert_eq!(
        emails,
        [
            pending(steps[0]),
            pending(steps[1]),
            (steps[1], "waiting".to_string()),
            pending(steps[2]),
        ]
    );
}

#[test]
fn a_step_of_a_batch_that_cannot_be_written_fails_alone() {
    let Some(mut f) = fixture("firing_one_fails") else {
        return;
    };
    let now = at("2026-12-03T15:00:00Z");
    let steps = due_steps(&f.store, &mut f.db, 5, now);
    // Another program already used the Message-ID the third step's email will have.
    let first = f
        .store
        .insert_commitment(&sample("2026-12-03T17:00:00Z"))
        .unwrap();
    let old_step = insert_step(&mut f.db, first, "old", "remind", now, "sent");
    let old = Email {
        step: old_step,
        commitment: first,
        audience: "owner",
        recipient: "ana@example.com",
        state: "sent",
        attempts: 1,
        sent_at: Some(0),
        last_error: None,
    }
    .insert(&mut f.db);
    f.db.execute(
        "UPDATE deliveries SET message_id = $1 WHERE id = $2",
        &[&format!("<step-{}@test>", steps[2]), &old],
    )
    .unwrap();
    let (sent, emails) = fire_with_a_copy(&mut f, &steps, now, old);
    assert_eq!(sent, 4);
    let (failed, reason) = step_state(&mut f.db, steps[2]);
    assert_eq!(failed, "failed");
    assert!(reason.unwrap().contains("cannot be queued"));
    for step in [steps[0], steps[1], steps[3], steps[4]] {
        assert_eq!(step_state(&mut f.db, step).0, "queued");
    }
    assert_eq!(
        emails,
        [
            pending(steps[0]),
            pending(steps[1]),
            (steps[1], "waiting".to_string()),
            pending(steps[3]),
            pending(steps[4]),
        ]
    );
}
