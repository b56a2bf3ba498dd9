//! Composing ahead, on a real store with fixed times: which steps are composed before
//! their time, when their emails fall due, when the planning task looks next, and what
//! a change or a restart takes back.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::planner::Step;
use crate::store::prelude::*;
use crate::store::{NewCommitment, SqliteStore};

const RULES: &str = r#"
[calendar]
timezone = "UTC"
business_hours = { mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }

[[rule]]
name = "ahead"
remind = ["-10s", "0s"]
customer_update = { at = "-3s", extend_by = "1h", max = 1 }
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    claim: Claim,
    config: Config,
    /// The commitment's due time: an hour from the real clock, so that what the store
    /// compares with the real clock (taking emails back) sees them all in the future.
    due: Timestamp,
    id: i64,
    /// The links its emails carry, as the daemon with pages sets them.
    links: Option<crate::web::link::Links>,
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

impl Fixture {
    fn new(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(config_dir.join("rules.toml"), format!("{RULES}{extra}")).unwrap();
        let config = crate::config::load(&config_dir, false).unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let due = Timestamp::from_second(Timestamp::now().as_second() + 3600).unwrap();
        let id = store
            .insert_commitment(&NewCommitment::sample(&due.to_string()))
            .unwrap();
        let claim = store
            .claim_work("test:1", secs(15), Timestamp::now())
            .unwrap();
        let fixture = Fixture {
            _dir: dir,
            store,
            claim,
            config,
            due,
            id,
            links: None,
        };
        fixture.plan(due - secs(60));
        fixture
    }

    fn composing(&self) -> fire::Composing<'_> {
        fire::Composing {
            config: &self.config,
            links: self.links.as_ref(),
        }
    }

    fn plan(&self, now: Timestamp) {
        while plan_batch(
            &self.store,
            &self.config,
            now,
            &crate::clock::Clock::system(),
        )
        .unwrap()
            > 0
        {}
    }

    /// Queues what is due at `now`, a batch at a time as the planning task does, but
    /// composing each batch before reading the next; how many steps put mail in the
    /// outbox.
    fn queue(&self, now: Timestamp) -> usize {
        let mut queued = 0;
        let mut decided = None;
        loop {
            let trip = self.trip(now, decided.as_ref());
            assert!(!trip.stale, "nobody else writes");
            queued += trip.sent;
            match trip.next {
                Some(batch) => decided = Some(fire::decide_all(&self.composing(), batch, now)),
                None => return queued,
            }
        }
    }

    /// One trip to the store that writes `decided` and reads the next batch from the
    /// first due step.
    fn trip(&self, now: Timestamp, decided: Option<&Decisions>) -> Queued {
        queue_batch(
            &self.store,
            &self.claim,
            &self.composing(),
            now,
            decided,
            None,
            &HashSet::new(),
        )
        .unwrap()
    }

    /// Due steps read as the planning task reads them.
    fn read(
        &self,
        now: Timestamp,
        after: Option<(Timestamp, i64)>,
        busy: &HashSet<i64>,
    ) -> Option<DueBatch> {
        let wants = |step: &DueStep| fire::wants(&self.config.templates, step);
        let ask = DueAsk {
            now,
            ahead: now + lead(&self.config),
            after,
            busy,
            limit: QUEUE_BATCH,
            wants: &wants,
        };
        self.store.take_due_steps(&self.claim, &ask).unwrap()
    }

    fn path(&self) -> std::path::PathBuf {
        self._dir.path().join("followup.db")
    }

    fn step(&self, key: &str) -> Step {
        self.store
            .steps_of(self.id)
            .unwrap()
            .into_iter()
            .find(|s| s.key == key)
            .unwrap_or_else(|| panic!("no step {key}"))
    }

    fn next(&self, now: Timestamp) -> Option<Timestamp> {
        self.store.next_fire_at(now, lead(&self.config)).unwrap()
    }
}

/// The text of an email in the outbox.
fn text(email: &crate::store::DeliveryRecord, f: &Fixture) -> String {
    let pending = f
        .store
        .pending_deliveries(Timestamp::MAX, 100, &HashSet::new())
        .unwrap();
    let raw = &pending.iter().find(|p| p.id == email.id).unwrap().message;
    let parsed = mail_parser::MessageParser::default().parse(raw).unwrap();
    parsed.body_text(0).unwrap().into_owned()
}

fn keys(f: &Fixture) -> (String, String, String) {
    let steps = f.store.steps_of(f.id).unwrap();
    let key = |kind: &str, fire_at: Timestamp| {
        steps
            .iter()
            .find(|s| s.kind == kind && s.fire_at == fire_at)
            .unwrap_or_else(|| panic!("no {kind} step at {fire_at}: {steps:?}"))
            .key
            .clone()
    };
    (
        key("remind", f.due - secs(10)),
        key("customer_update", f.due - secs(3)),
        key("remind", f.due),
    )
}

#[test]
fn owner_steps_are_composed_ahead_and_fall_due_at_their_time() {
    let f = Fixture::new("");
    let (early, update, on_time) = keys(&f);
    // Nothing within the lead yet: the planning task looks again 5 s before the first.
    assert_eq!(f.queue(f.due - secs(20)), 0);
    assert_eq!(f.next(f.due - secs(20)), Some(f.due - secs(15)));

    let composed_at = f.due - secs(14);
    assert_eq!(f.queue(composed_at), 1);
    assert_eq!(f.step(&early).state, "queued");
    let outbox = f.store.deliveries_of(f.id).unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].created_at, composed_at);
    assert_eq!(
        outbox[0].next_attempt_at,
        f.due - secs(10),
        "due at its time"
    );
    assert!(
        f.store
            .pending_deliveries(f.due - secs(11), 10, &HashSet::new())
            .unwrap()
            .is_empty(),
        "the sender does not see it before its time"
    );
    assert_eq!(
        f.store
            .pending_deliveries(f.due - secs(10), 10, &HashSet::new())
            .unwrap()
            .len(),
        1
    );
    // The customer update (3 s before) is never composed ahead; the reminder at the
    // due time is, 5 s before it, which comes first.
    assert_eq!(f.next(composed_at), Some(f.due - secs(5)));
    assert_eq!(f.queue(f.due - secs(5)), 1);
    assert_eq!(f.step(&on_time).state, "queued");
    assert_eq!(f.step(&update).state, "planned");
    assert_eq!(f.next(f.due - secs(5)), Some(f.due - secs(3)));
    assert_eq!(f.queue(f.due - secs(3)), 1, "the update, at its time");
    assert_eq!(f.step(&update).state, "queued");
}

#[test]
fn an_email_composed_ahead_is_dated_and_decided_as_of_its_time() {
    let f = Fixture::new("");
    f.queue(f.due - secs(14));
    let message = f
        .store
        .pending_deliveries(f.due, 10, &HashSet::new())
        .unwrap()
        .remove(0)
        .message;
    let parsed = mail_parser::MessageParser::default()
        .parse(&message)
        .unwrap();
    let date = parsed.date().unwrap();
    assert_eq!(
        date.to_timestamp(),
        (f.due - secs(10)).as_second(),
        "{date}"
    );
    let (early, _, _) = keys(&f);
    assert!(!f.step(&early).late);
}

#[test]
fn a_change_before_their_time_takes_the_emails_composed_ahead_back() {
    let f = Fixture::new("");
    let (early, _, on_time) = keys(&f);
    f.queue(f.due - secs(14));
    assert_eq!(f.store.deliveries_of(f.id).unwrap().len(), 1);
    f.store.set_status(f.id, Status::Done).unwrap();
    f.plan(f.due - secs(12));
    assert!(
        f.store.deliveries_of(f.id).unwrap().is_empty(),
        "the email never left, so it is gone"
    );
    for key in [&early, &on_time] {
        let step = f.step(key);
        assert_eq!(step.state, "skipped");
        assert!(
            step.reason.as_deref().unwrap().contains("marked done"),
            "{step:?}"
        );
    }
    assert_eq!(f.queue(f.due), 0, "nothing is left to send");
}

#[test]
fn a_change_that_keeps_the_step_composes_it_again() {
    let f = Fixture::new("");
    let (early, _, _) = keys(&f);
    f.queue(f.due - secs(14));
    let first = f.store.deliveries_of(f.id).unwrap().remove(0);
    // Any write to the row queues it for planning; the plan keeps the step as it was.
    f.store.set_status(f.id, Status::Open).unwrap();
    f.plan(f.due - secs(13));
    assert_eq!(f.step(&early).state, "planned");
    assert_eq!(f.queue(f.due - secs(13)), 1);
    let again = f.store.deliveries_of(f.id).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].message_id, first.message_id,
        "the same email, composed again"
    );
    assert_eq!(again[0].next_attempt_at, f.due - secs(10));
}

#[test]
fn what_was_due_tried_or_composed_at_its_time_is_never_taken_back() {
    let f = Fixture::new("");
    let (early, update, on_time) = keys(&f);
    f.queue(f.due - secs(14));
    // By the transaction's clock the email is due: the sender may have it.
    let taken = f.store.withdraw_ahead(f.id, f.due - secs(10)).unwrap();
    assert!(taken.is_empty());
    // Tried once already.
    let id = f.store.deliveries_of(f.id).unwrap()[0].id;
    f.store
        .delivery_retry(id, "451 try later", f.due - secs(8))
        .unwrap();
    assert!(
        f.store
            .withdraw_ahead(f.id, f.due - secs(12))
            .unwrap()
            .is_empty()
    );
    assert!(f.store.withdraw_all_ahead(f.due - secs(12)).unwrap() == 0);
    assert_eq!(f.step(&early).state, "queued");
    // Composed at its time (and held back by an outage): not composed ahead. The
    // reminder at the due time, composed ahead meanwhile, is the one taken back.
    f.queue(f.due - secs(3));
    assert_eq!(f.step(&update).state, "queued");
    assert_eq!(f.step(&on_time).state, "queued");
    let held = f
        .store
        .deliveries_of(f.id)
        .unwrap()
        .into_iter()
        .find(|d| d.step_id == Some(f.step(&update).id))
        .unwrap();
    f.store
        .postpone_pending(f.due + secs(60), "relay down")
        .unwrap();
    let taken = f.store.withdraw_ahead(f.id, f.due - secs(2)).unwrap();
    assert_eq!(taken, vec![f.step(&on_time).id]);
    assert_eq!(f.step(&update).state, "queued");
    assert_eq!(f.step(&early).state, "queued");
    let left = f.store.deliveries_of(f.id).unwrap();
    assert!(left.iter().all(|d| d.step_id != Some(f.step(&on_time).id)));
    assert!(left.iter().any(|d| d.step_id == Some(f.step(&early).id)));
    assert!(held.created_at >= f.step(&update).fire_at);
}

#[test]
fn a_restart_composes_again_what_the_last_run_composed_ahead() {
    let f = Fixture::new("");
    let (early, _, on_time) = keys(&f);
    f.queue(f.due - secs(14));
    f.queue(f.due - secs(5));
    assert_eq!(f.store.deliveries_of(f.id).unwrap().len(), 2);
    // Taken back whatever the time: the step whose time passed meanwhile then goes
    // through its rule's catch-up.
    let taken = f.store.withdraw_all_ahead(f.due + secs(30)).unwrap();
    assert_eq!(taken, 2);
    assert!(f.store.deliveries_of(f.id).unwrap().is_empty());
    assert_eq!(f.step(&early).state, "planned");
    assert_eq!(f.step(&on_time).state, "planned");
}

#[test]
fn a_dry_run_composes_nothing_ahead() {
    let f = Fixture::new("\n[mail]\nfrom = \"followup@example.com\"\ndry_run = true\n");
    assert_eq!(f.queue(f.due - secs(14)), 0);
    assert_eq!(f.next(f.due - secs(14)), Some(f.due - secs(10)));
    assert_eq!(f.queue(f.due - secs(10)), 1);
}

#[test]
fn a_batch_has_one_step_of_a_commitment_and_the_next_goes_on_after_it() {
    let f = Fixture::new("");
    let (early, update, _) = keys(&f);
    let nobody = HashSet::new();
    let last_id = |batch: &DueBatch| batch.last().map(|(_, id)| id);

    // All three steps are due; a batch stops before the commitment's second step, so
    // that the second is decided with what the first wrote.
    let first = f.read(f.due, None, &nobody).unwrap();
    assert_eq!(last_id(&first), Some(f.step(&early).id));
    assert_eq!(first.commitments(), HashSet::from([f.id]));
    // While the first batch is composed, the next read goes on after it, and stops
    // before a step of a commitment that batch has.
    let after = first.last();
    assert!(f.read(f.due, after, &first.commitments()).is_none());
    let second = f.read(f.due, after, &nobody).unwrap();
    assert_eq!(last_id(&second), Some(f.step(&update).id));

    // Written in order, each batch as decided: all three are queued.
    assert_eq!(f.queue(f.due), 3);
}

#[test]
fn steps_composed_while_another_program_wrote_are_decided_again() {
    let f = Fixture::new("");
    let (early, _, _) = keys(&f);
    let now = f.due - secs(14);

    // Nobody wrote meanwhile: the decision is written as it was made.
    let batch = f.read(now, None, &HashSet::new()).unwrap();
    let decided = fire::decide_all(&f.composing(), batch, now);
    let trip = f.trip(now, Some(&decided));
    assert!(!trip.stale);
    assert_eq!(trip.sent, 1);
    assert_eq!(f.store.deliveries_of(f.id).unwrap().len(), 1);
    assert_eq!(f.step(&early).state, "queued");

    // Another program marks the commitment done while the reminder due at the
    // deadline is composed: the batch is decided again, and nothing goes.
    let f = Fixture::new("");
    let now = f.due - secs(5);
    f.queue(f.due - secs(14));
    let batch = f.read(now, None, &HashSet::new()).unwrap();
    let decided = fire::decide_all(&f.composing(), batch, now);
    let other = SqliteStore::open(&f.path()).unwrap();
    other.set_status(f.id, Status::Done).unwrap();
    let trip = f.trip(now, Some(&decided));
    assert!(trip.stale, "the other program's commit is seen");
    assert_eq!(trip.sent, 0);
    let (_, _, on_time) = keys(&f);
    let step = f.step(&on_time);
    assert_eq!(step.state, "skipped", "{step:?}");
    assert!(step.reason.unwrap().contains("marked done"));
    assert_eq!(
        f.store.deliveries_of(f.id).unwrap().len(),
        1,
        "only the early reminder, queued before"
    );
}

mod ask_owner;
mod bounce;
mod paused;
