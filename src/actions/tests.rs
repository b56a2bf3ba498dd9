//! Each action on a real store file in a temporary directory, without a daemon.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::planner::{PlannedStep, SkipCode, StepChange, StepKind};
use crate::store::NewCommitment;
use crate::store::SqliteStore;
use crate::store::prelude::*;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    config: Config,
    id: i64,
    now: Timestamp,
}

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

impl Fixture {
    /// A quote Ana owes Joe, due in two days, under a rule with customer updates.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(
            config_dir.join("rules.toml"),
            r#"
[[rule]]
name = "quotes"
remind = ["-1h"]
customer_update = { at = "-1h", max = 2, extend_by = "1d" }
"#,
        )
        .unwrap();
        let config = crate::config::load(&config_dir, false).unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let now = at("2026-12-01T15:02:00Z");
        let id = store
            .insert_commitment(&NewCommitment::sample("2026-12-03T17:00:00Z"))
            .unwrap();
        Fixture {
            _dir: dir,
            store,
            config,
            id,
            now,
        }
    }

    /// Plans the first customer update, an hour before the due time.
    fn with_update(self) -> Fixture {
        let fire = at("2026-12-03T16:00:00Z");
        let step = PlannedStep {
            key: "customer_update#1".into(),
            kind: StepKind::CustomerUpdate,
            rule: "quotes".into(),
            label: "update 1 of 2 (-1h)".into(),
            planned_at: fire,
            fire_at: fire,
            skip: None,
        };
        self.store
            .apply_step_changes(self.id, &[StepChange::Add { step, skip: None }], self.now)
            .unwrap();
        self
    }

    fn row(&self) -> StoredCommitment {
        self.store.commitment(self.id).unwrap()
    }

    fn last_revision(&self) -> RevisionRecord {
        self.store.revisions_of(self.id).unwrap().pop().unwrap()
    }

    /// The changes queued for planning.
    fn queued(&self) -> usize {
        self.store
            .pending_changes(100)
            .unwrap()
            .map_or(0, |b| b.commitments.len())
    }

    fn drain(&self) {
        if let Some(batch) = self.store.pending_changes(100).unwrap() {
            self.store.finish_changes(batch.last_seq).unwrap();
        }
    }
}

fn ana() -> Actor {
    Actor {
        who: "ana@example.com".into(),
        via: Via::Web,
    }
}

fn acted(outcome: Outcome) -> Acted {
    match outcome {
        Outcome::Acted(acted) => acted,
        Outcome::Already(earlier) => panic!("expected an action, got {earlier:?}"),
    }
}

fn already(outcome: Outcome) -> Earlier {
    match outcome {
        Outcome::Already(earlier) => earlier,
        Outcome::Acted(acted) => panic!("expected nothing done, got {acted:?}"),
    }
}

#[test]
fn done_records_who_and_how_and_queues_the_commitment_for_planning() {
    let f = Fixture::new();
    f.drain();
    let done = acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    assert_eq!(f.row().status.as_deref(), Some("done"));
    let revision = f.last_revision();
    assert_eq!(revision.id, done.revision);
    assert_eq!(
        (
            revision.action.as_deref(),
            revision.actor.as_deref(),
            revision.via.as_deref()
        ),
        (Some("done"), Some("ana@example.com"), Some("web"))
    );
    assert_eq!(revision.old_due, revision.new_due);
    assert!(!revision.automatic && !revision.notify);
    assert_eq!(f.queued(), 1);
}

#[test]
fn done_twice_says_when_and_by_whom_it_was_done_first() {
    let f = Fixture::new();
    acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let later = f.now + SignedDuration::from_hours(1);
    let bob = Actor {
        who: "bob".into(),
        via: Via::Cli,
    };
    let earlier = already(done(&f.store, &f.config, f.id, &bob, later).unwrap());
    assert_eq!(
        earlier.describe(&f.config.calendar),
        format!(
            "already marked done on {} by ana@example.com (by email link)",
            f.config.calendar.display(f.now)
        )
    );
    assert_eq!(f.store.revisions_of(f.id).unwrap().len(), 1);
}

#[test]
fn cancel_of_a_done_commitment_leaves_it_done_and_says_so() {
    let f = Fixture::new();
    acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let earlier = already(cancel(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    assert_eq!(earlier.action, "done");
    assert_eq!(f.row().status.as_deref(), Some("done"));
}

#[test]
fn a_commitment_closed_by_another_program_is_already_closed_with_no_one_named() {
    let f = Fixture::new();
    f.store.set_status(f.id, Status::Cancelled).unwrap();
    let earlier = already(cancel(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    assert_eq!(
        (earlier.action.as_str(), earlier.at, earlier.who),
        ("cancel", None, None)
    );
    f.store.set_status(f.id, Status::Done).unwrap();
    let earlier = already(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    assert!(earlier.at.is_some(), "done_at is the time: {earlier:?}");
    assert!(
        earlier
            .describe(&f.config.calendar)
            .starts_with("already marked done on ")
    );
}

#[test]
fn an_unknown_commitment_is_not_found() {
    let f = Fixture::new();
    assert!(matches!(
        done(&f.store, &f.config, 99, &ana(), f.now),
        Err(ActionError::NotFound(99))
    ));
    assert!(matches!(
        hold(
            &f.store,
            &f.config,
            99,
            "customer_update#1",
            "x",
            &ana(),
            f.now
        ),
        Err(ActionError::NotFound(99))
    ));
}

#[test]
fn delay_moves_the_due_time_and_records_who() {
    let f = Fixture::new();
    let until = at("2026-12-05T17:00:00Z");
    let delayed = acted(
        delay(
            &f.store,
            &f.config,
            f.id,
            until,
            " the part is late ",
            true,
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert!(delayed.said[0].contains("is now due"), "{:?}", delayed.said);
    let revision = f.last_revision();
    assert_eq!(revision.reason.as_deref(), Some("the part is late"));
    assert!(revision.notify);
    assert_eq!(
        (revision.action.as_deref(), revision.via.as_deref()),
        (Some("delay"), Some("web"))
    );
    let row = f.row();
    assert_eq!(
        row.check(f.config.calendar.zone()).unwrap().due_at,
        until,
        "{row:?}"
    );
}

#[test]
fn delay_refuses_a_past_time_an_empty_reason_and_a_closed_commitment() {
    let f = Fixture::new();
    let past = f.now - SignedDuration::from_hours(1);
    let err = delay(&f.store, &f.config, f.id, past, "late", true, &ana(), f.now).unwrap_err();
    assert!(
        matches!(&err, ActionError::Field { field: "until", .. }),
        "{err}"
    );
    assert!(err.to_string().ends_with("has already passed"), "{err}");
    let ahead = f.now + SignedDuration::from_hours(30);
    let err = delay(&f.store, &f.config, f.id, ahead, " ", true, &ana(), f.now).unwrap_err();
    assert!(err.to_string().starts_with("reason is empty"), "{err}");
    acted(cancel(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let err = delay(
        &f.store,
        &f.config,
        f.id,
        ahead,
        "late",
        true,
        &ana(),
        f.now,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "commitment {} is cancelled; only open commitments can be delayed",
            f.id
        )
    );
}

#[test]
fn snooze_sets_the_end_and_the_history_says_until_when_and_by_whom() {
    let f = Fixture::new();
    f.drain();
    let until = at("2026-12-02T09:00:00Z");
    acted(snooze(&f.store, &f.config, f.id, until, &ana(), f.now).unwrap());
    assert_eq!(f.store.snoozed_until(f.id).unwrap(), Some(until));
    assert_eq!(f.last_revision().until_at, Some(until));
    assert_eq!(f.queued(), 1);
    let history = f.store.history(f.id).unwrap();
    assert_eq!(
        history.snoozed,
        Some(crate::planner::Snooze {
            from: f.now,
            until,
            words: format!(
                "snoozed until {} by ana@example.com (by email link)",
                f.config.calendar.display(until)
            )
        })
    );
}

#[test]
fn snooze_refuses_a_past_end_and_a_done_commitment() {
    let f = Fixture::new();
    let err = snooze(&f.store, &f.config, f.id, f.now, &ana(), f.now).unwrap_err();
    assert!(err.to_string().starts_with("until "), "{err}");
    acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let until = f.now + SignedDuration::from_hours(2);
    let err = snooze(&f.store, &f.config, f.id, until, &ana(), f.now).unwrap_err();
    assert!(matches!(err, ActionError::NotOpen { .. }), "{err}");
}

#[test]
fn hold_records_the_reason_for_the_planner_and_queues_the_commitment() {
    let f = Fixture::new().with_update();
    f.drain();
    acted(
        hold(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            "I called him",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(f.queued(), 1, "a hold leaves the row alone yet is planned");
    let revision = f.last_revision();
    assert_eq!(revision.step_key.as_deref(), Some("customer_update#1"));
    assert_eq!(revision.reason.as_deref(), Some("I called him"));
    let history = f.store.history(f.id).unwrap();
    assert_eq!(
        history.held,
        vec![(
            "customer_update#1".to_string(),
            format!(
                "held by ana@example.com (by email link) on {}: I called him",
                f.config.calendar.display(f.now)
            )
        )]
    );
    let earlier = already(
        send_now(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(earlier.action, "hold");
    assert!(
        earlier
            .describe(&f.config.calendar)
            .ends_with("(by email link): I called him"),
        "{earlier:?}"
    );
}

#[test]
fn send_now_is_in_the_history_with_its_time_and_twice_is_harmless() {
    let f = Fixture::new().with_update();
    acted(
        send_now(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    let history = f.store.history(f.id).unwrap();
    assert_eq!(
        history.send_now,
        vec![("customer_update#1".to_string(), f.now)]
    );
    let earlier = already(
        send_now(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(earlier.action, "send_now");
}

#[test]
fn hold_of_an_update_already_sent_or_skipped_changes_nothing() {
    let f = Fixture::new().with_update();
    let step = f.store.steps_of(f.id).unwrap().remove(0);
    f.store.queue_step(step.id, false, f.now).unwrap();
    let earlier = already(
        hold(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            "why",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(earlier.action, "sent");
    f.store
        .skip_step(step.id, SkipCode::Closed, "the commitment is done", f.now)
        .unwrap();
    let earlier = already(
        send_now(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(
        (earlier.action.as_str(), earlier.detail.as_deref()),
        ("skipped", Some("the commitment is done"))
    );
    assert!(f.store.history(f.id).unwrap().held.is_empty());
}

#[test]
fn hold_of_an_update_that_is_not_planned_is_refused_naming_it() {
    let f = Fixture::new();
    let err = hold(
        &f.store,
        &f.config,
        f.id,
        "customer_update#2",
        "why",
        &ana(),
        f.now,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "update 2: commitment {} has no customer update 2 planned",
            f.id
        )),
        "{err}"
    );
    let err = send_now(&f.store, &f.config, f.id, "remind#1", &ana(), f.now).unwrap_err();
    assert!(matches!(
        err,
        ActionError::Field {
            field: "update",
            ..
        }
    ));
    let err = hold(
        &f.store,
        &f.config,
        f.id,
        "customer_update#1",
        " ",
        &ana(),
        f.now,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("reason is empty"), "{err}");
}

#[test]
fn hold_on_a_done_commitment_says_it_was_done() {
    let f = Fixture::new().with_update();
    acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let earlier = already(
        hold(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            "why",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(earlier.action, "done");
}

#[test]
fn state_shows_the_next_update_the_snooze_and_what_closed_it() {
    let f = Fixture::new().with_update();
    let until = at("2026-12-02T09:00:00Z");
    acted(snooze(&f.store, &f.config, f.id, until, &ana(), f.now).unwrap());
    let shown = state(&f.store, &f.config, f.id).unwrap();
    assert_eq!(shown.rule.as_deref(), Some("quotes"));
    assert_eq!(shown.snoozed_until, Some(until));
    assert_eq!(
        shown.next_update,
        Some(UpdateStep {
            key: "customer_update#1".into(),
            fire_at: at("2026-12-03T16:00:00Z"),
        })
    );
    assert!(shown.closed.is_none());
    acted(done(&f.store, &f.config, f.id, &ana(), f.now).unwrap());
    let shown = state(&f.store, &f.config, f.id).unwrap();
    assert_eq!(shown.closed.map(|e| e.action), Some("done".to_string()));
}

#[test]
fn edit_and_reason_record_who_and_how() {
    let f = Fixture::new();
    acted(
        set_reason(
            &f.store,
            &f.config,
            f.id,
            "the van broke down",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(f.row().reason.as_deref(), Some("the van broke down"));
    let revision = f.last_revision();
    assert_eq!(
        (
            revision.action.as_deref(),
            revision.actor.as_deref(),
            revision.via.as_deref()
        ),
        (Some("edit"), Some("ana@example.com"), Some("web"))
    );
    assert_eq!(revision.changes[0].field, crate::store::Field::Reason);
    let err = set_reason(
        &f.store,
        &f.config,
        f.id,
        "the van broke down",
        &ana(),
        f.now,
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("nothing to change"), "{err}");
}

#[test]
fn an_update_sent_at_the_owners_request_says_it_was_sent() {
    let f = Fixture::new().with_update();
    acted(
        send_now(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    let step = f.store.steps_of(f.id).unwrap().remove(0);
    f.store.queue_step(step.id, false, f.now).unwrap();
    let earlier = already(
        hold(
            &f.store,
            &f.config,
            f.id,
            "customer_update#1",
            "why",
            &ana(),
            f.now,
        )
        .unwrap(),
    );
    assert_eq!(
        (earlier.action.as_str(), earlier.via.as_deref()),
        ("sent", Some("daemon"))
    );
    assert!(
        earlier
            .describe(&f.config.calendar)
            .ends_with("(automatically)"),
        "{earlier:?}"
    );
}

#[test]
fn a_snooze_another_program_wrote_has_words_that_say_only_until_when() {
    let f = Fixture::new();
    let until = at("2026-12-02T09:00:00Z");
    acted(snooze(&f.store, &f.config, f.id, until, &ana(), f.now).unwrap());
    let other = at("2026-12-02T12:00:00Z");
    rusqlite::Connection::open(f.store.path())
        .unwrap()
        .execute(
            "UPDATE commitments SET snoozed_until = ?2 WHERE id = ?1",
            rusqlite::params![f.id, other.as_millisecond()],
        )
        .unwrap();
    let history = f.store.history(f.id).unwrap();
    assert_eq!(
        history.snoozed,
        Some(crate::planner::Snooze {
            from: Timestamp::UNIX_EPOCH,
            until: other,
            words: "snoozed until Wed 2 Dec 2026 12:00 UTC".to_string()
        })
    );
}
