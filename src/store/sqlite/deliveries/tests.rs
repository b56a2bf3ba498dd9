//! The outbox's bookkeeping on a real store: which emails a retry makes due.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::planner::StepKind;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct Outbox {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl Outbox {
    fn new() -> Outbox {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
        Outbox { _dir: dir, store }
    }

    /// A commitment with one queued step of `kind` at `fire_at`; its id and the step's.
    fn commitment(&self, kind: &str, fire_at: &str) -> (i64, i64) {
        let id = self
            .store
            .insert_commitment(&NewCommitment::sample("2026-12-01T17:00:00Z"))
            .unwrap();
        self.store
            .conn
            .execute(
                "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at, state, updated_at)
                 VALUES (?1, ?2, ?2, 'r', 'x', ?3, ?3, 'queued', 0)",
                params![id, kind, to_ms(ts(fire_at))],
            )
            .unwrap();
        (id, self.store.conn.last_insert_rowid())
    }

    /// Puts an email for `audience` of `step` in the outbox at `now`, due at `due`.
    fn email(
        &self,
        (commitment_id, step_id): (i64, i64),
        audience: &str,
        now: &str,
        due: &str,
    ) -> i64 {
        let delivery = NewDelivery {
            origin: Origin::Step {
                step_id,
                commitment_id,
            },
            audience: audience.into(),
            sender: "followup@example.com".into(),
            recipient: format!("{audience}@example.org"),
            subject: "s".into(),
            message_id: format!("<{step_id}.{audience}@example.com>"),
            message: b"m".to_vec(),
        };
        self.store
            .add_delivery(&delivery, ts(now), ts(due))
            .unwrap()
    }

    fn next_attempt(&self, id: i64) -> Timestamp {
        self.store.delivery(id).unwrap().unwrap().next_attempt_at
    }
}

#[test]
fn a_retry_makes_held_mail_due_but_not_mail_composed_ahead_of_its_time() {
    let o = Outbox::new();
    let now = ts("2026-12-01T10:00:00Z");
    let first = o.commitment("remind", "2026-12-01T09:00:00Z");
    let retried = o.email(
        first,
        "owner",
        "2026-12-01T09:00:00Z",
        "2026-12-01T09:00:00Z",
    );
    o.store
        .delivery_retry(
            retried,
            "421 try later",
            now + SignedDuration::from_mins(10),
        )
        .unwrap();
    let second = o.commitment("remind", "2026-12-01T10:00:02Z");
    let ahead = o.email(
        second,
        "owner",
        "2026-12-01T09:59:57Z",
        "2026-12-01T10:00:02Z",
    );
    let third = o.commitment("alert", "2026-12-01T09:59:00Z");
    let postponed = o.email(
        third,
        "team",
        "2026-12-01T09:59:00Z",
        "2026-12-01T09:59:00Z",
    );
    o.store
        .postpone_pending(
            now + SignedDuration::from_mins(30),
            "waiting: no connection",
        )
        .unwrap();
    assert!(!o.store.mail_due(now).unwrap(), "everything waits");

    // One commitment's mail only.
    assert_eq!(o.store.retry_held(now, Some(third.0)).unwrap(), 1);
    assert_eq!(o.next_attempt(postponed), now);
    assert!(o.next_attempt(retried) > now);
    assert!(o.store.mail_due(now).unwrap());

    // All of it: the retried one, with its attempt still counted, and the email
    // composed ahead, held by the outage, back to its step's time.
    assert_eq!(o.store.retry_held(now, None).unwrap(), 2);
    let record = o.store.delivery(retried).unwrap().unwrap();
    assert_eq!((record.next_attempt_at, record.attempts), (now, 1));
    assert_eq!(o.next_attempt(ahead), ts("2026-12-01T10:00:02Z"));
    assert_eq!(
        o.store.retry_held(now, None).unwrap(),
        0,
        "nothing left held"
    );
}

#[test]
fn a_thread_goes_on_from_its_first_email_even_one_sent_before_the_store_had_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("f.db")).unwrap();
    let id = store
        .insert_commitment(&NewCommitment::sample("2026-11-24T17:00:00Z"))
        .unwrap();
    store
        .conn
        .execute(
            "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at, updated_at)
             VALUES (?1, 'remind#0s', 'remind', 'any', '0s', 0, 0, 0)",
            [id],
        )
        .unwrap();
    for (n, (audience, message_id)) in [
        ("owner", "<followup.1.owner@example.com>"),
        ("owner", "<followup.1.owner.1.0@example.com>"),
        ("customer", "<followup.ab.1.customer@example.com>"),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .conn
            .execute(
                "INSERT INTO deliveries (step_id, commitment_id, audience, sender, recipient, subject,
                                         message_id, message, next_attempt_at, created_at)
                 VALUES (1, ?1, ?2, 'f@example.com', ?4 || '@example.org', 's', ?3, x'', 0, 0)",
                rusqlite::params![id, audience, message_id, n as i64],
            )
            .unwrap();
    }
    let threads = store.threads_of(id).unwrap();
    assert_eq!(threads.store_id, store.id());
    assert_eq!(store.id().len(), 16, "{}", store.id());
    let mut roots = threads.roots;
    roots.sort();
    assert_eq!(
        roots,
        [
            (
                "customer".into(),
                "<followup.ab.1.customer@example.com>".into()
            ),
            ("owner".into(), "<followup.1.owner@example.com>".into()),
        ]
    );
    drop(store);
    let again = SqliteStore::open(&dir.path().join("f.db")).unwrap();
    assert_eq!(again.id(), threads.store_id, "the id is kept across opens");
}

#[test]
fn a_failure_plans_its_commitment_again_only_when_asked_to() {
    let outbox = Outbox::new();
    let step = outbox.commitment("remind", "2026-12-01T10:00:00Z");
    let email = outbox.email(
        step,
        "owner",
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:00:00Z",
    );
    let at = ts("2026-12-01T10:00:01Z");
    let queued = |store: &SqliteStore| -> i64 {
        store
            .conn
            .query_row("SELECT count(*) FROM changes", [], |r| r.get(0))
            .unwrap()
    };
    // The insert queued the commitment once; planning it is not the store's business.
    outbox
        .store
        .conn
        .execute("DELETE FROM changes", [])
        .unwrap();
    let failed = DeliveryOutcome::Failed {
        id: email,
        error: "550 no such mailbox".into(),
        at,
    };
    outbox.store.write_outcomes(&[failed]).unwrap();
    assert_eq!(
        outbox.store.delivery(email).unwrap().unwrap().state,
        "failed"
    );
    assert_eq!(queued(&outbox.store), 0, "a record decides nothing");
    let again = DeliveryOutcome::PlanAgain {
        delivery: email,
        at,
    };
    outbox.store.write_outcomes(&[again]).unwrap();
    assert_eq!(queued(&outbox.store), 1);
}

#[test]
fn every_failed_email_is_a_fact_and_the_planner_picks_those_the_owner_hears_of() {
    let o = Outbox::new();
    let at = "2026-12-01T10:00:00Z";
    let update = o.commitment("customer_update", at);
    let id = update.0;
    let notice = {
        o.store
            .conn
            .execute(
                "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at, state, updated_at)
                 VALUES (?1, 'delivery_failed#1', 'delivery_failed', 'r', 'x', 0, 0, 'queued', 0)",
                [id],
            )
            .unwrap();
        (id, o.store.conn.last_insert_rowid())
    };
    let customer = o.email(update, "customer", at, at);
    let owner = o.email(update, "owner", at, at);
    let team_notice = o.email(notice, "team", at, at);
    let failed_at = ts("2026-12-01T10:00:05Z");
    let outcomes: Vec<_> = [customer, owner, team_notice]
        .into_iter()
        .map(|id| DeliveryOutcome::Failed {
            id,
            error: "550".into(),
            at: failed_at,
        })
        .collect();
    o.store.write_outcomes(&outcomes).unwrap();
    let facts = o.store.failed_emails(id).unwrap();
    let seen: Vec<_> = facts
        .iter()
        .map(|f| (f.delivery, f.audience.as_str(), f.kind))
        .collect();
    assert_eq!(
        seen,
        vec![
            (customer, "customer", Some(StepKind::CustomerUpdate)),
            (owner, "owner", Some(StepKind::CustomerUpdate)),
            (team_notice, "team", Some(StepKind::DeliveryFailed)),
        ]
    );
    assert_eq!(
        crate::planner::failures_to_report(&facts),
        vec![(customer, failed_at)]
    );
}
