//! `Acts` and `Revisions` on PostgreSQL: a verb reads, decides and writes in one
//! transaction, on a row no other verb changes meanwhile; its revisions make the
//! commitment's history.

use crate::common::postgres::until_a_session_waits_on_a_lock;
use std::sync::mpsc;

use followup::commitment::{Outcome, Status};
use followup::store::postgres::PostgresStore;
use followup::store::prelude::*;
use followup::store::{
    Act, Applied, Deed, Effect, Field, FieldChange, NewAction, NewEdit, NewRevision, StoreError,
    Write,
};
use jiff::Timestamp;

use super::{Email, at, fixture, insert_step, sample};

fn deed(action: &'static str) -> Deed {
    Deed {
        action,
        actor: Some("ana".into()),
        via: Some("cli"),
    }
}

fn action(id: i64, name: &'static str, step_key: Option<&str>, effect: Effect) -> Write {
    Write::Action(NewAction {
        commitment_id: id,
        deed: deed(name),
        words: format!("{name} by ana"),
        reason: Some(format!("why {name}")),
        step_key: step_key.map(String::from),
        effect,
    })
}

fn done(id: i64) -> Write {
    action(id, "done", None, Effect::Status(Status::Done))
}

fn delay(id: i64, old: &str, new: &str, automatic: bool) -> NewRevision {
    NewRevision {
        commitment_id: id,
        old_due: old.into(),
        new_due: new.into(),
        reason: (!automatic).then(|| "the supplier is late".to_string()),
        source: if automatic {
            "automatic update 1 of 2"
        } else {
            "followup delay"
        }
        .into(),
        automatic,
        notify: !automatic,
    }
}

#[test]
fn a_refusal_writes_nothing() {
    let Some(f) = fixture("pg_act_refused") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let refused = f
        .store
        .act_or_refuse(id, Timestamp::now(), &mut |_| None)
        .unwrap();
    assert_eq!(refused, None);
    assert!(f.store.revisions_of(id).unwrap().is_empty());
    assert_eq!(
        f.store.commitment(id).unwrap().status.as_deref(),
        Some("open")
    );
    let applied = f
        .store
        .act_or_refuse(id, Timestamp::now(), &mut |_| {
            Some(Act::Write(vec![done(id)]))
        })
        .unwrap();
    assert!(matches!(applied, Some(Applied::Wrote(ref ids)) if ids.len() == 1));
}

#[test]
fn the_writes_go_in_order_and_each_says_its_revision() {
    let Some(f) = fixture("pg_act_order") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let applied = f
        .store
        .act_or_refuse(id, Timestamp::now(), &mut |facts| {
            assert_eq!(facts.commitment().id, id);
            assert!(facts.revisions().unwrap().is_empty());
            assert!(facts.steps().unwrap().is_empty());
            Some(Act::Write(vec![done(id), done(id)]))
        })
        .unwrap();
    let ids: Vec<i64> = f
        .store
        .revisions_of(id)
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(applied, Some(Applied::Wrote(ids.clone())));
    assert_eq!(ids.len(), 2);
    assert_eq!(
        f.store.commitment(id).unwrap().status.as_deref(),
        Some("done")
    );
}

#[test]
fn a_missing_commitment_is_not_found_before_deciding() {
    let Some(f) = fixture("pg_act_missing") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let err = f
        .store
        .act_or_refuse(id + 1, Timestamp::now(), &mut |_| {
            panic!("nothing to decide about")
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(missing) if missing == id + 1),
        "{err:?}"
    );
}

#[test]
fn a_write_that_fails_takes_back_the_writes_before_it() {
    let Some(f) = fixture("pg_act_rollback") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let elsewhere = delay(
        id + 1,
        "2026-12-03T12:00:00Z",
        "2026-12-05T12:00:00Z",
        false,
    );
    let err = f
        .store
        .act_or_refuse(id, Timestamp::now(), &mut |_| {
            Some(Act::Write(vec![
                done(id),
                Write::ReviseDue(elsewhere.clone(), deed("delay")),
            ]))
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(missing) if missing == id + 1),
        "{err:?}"
    );
    assert!(f.store.revisions_of(id).unwrap().is_empty());
    assert_eq!(
        f.store.commitment(id).unwrap().status.as_deref(),
        Some("open")
    );
    // The connection is usable again, outside any transaction.
    f.store
        .act_or_refuse(id, Timestamp::now(), &mut |_| {
            Some(Act::Write(vec![done(id)]))
        })
        .unwrap();
    assert_eq!(f.store.revisions_of(id).unwrap().len(), 1);
}

#[test]
fn delays_edits_and_actions_make_the_commitments_history() {
    let Some(mut f) = fixture("pg_history") else {
        return;
    };
    let mut c = sample("2026-12-03T12:00:00Z");
    c.late_from = Some(at("2026-12-01T08:00:00Z"));
    let id = f.store.insert_commitment(&c).unwrap();
    let (first, second, third) = (
        "2026-12-03T12:00:00Z",
        "2026-12-05T12:00:00Z",
        "2026-12-06T12:00:00Z",
    );
    let edit = NewEdit {
        commitment_id: id,
        changes: vec![
            FieldChange {
                field: Field::Title,
                old: Some("Quote".into()),
                new: Some("Roof quote".into()),
            },
            FieldChange {
                field: Field::Note,
                old: None,
                new: Some("ring twice".into()),
            },
        ],
        due_at: third.into(),
        source: "followup edit".into(),
        deed: deed("edit"),
    };
    let until = at("2026-12-04T09:00:00Z");
    let writes = vec![
        Write::ReviseDue(delay(id, first, second, false), deed("delay")),
        Write::ReviseDue(delay(id, second, third, true), Deed::daemon_update()),
        Write::Edit(edit),
        action(id, "snooze", None, Effect::Snooze(until)),
        action(id, "hold", Some("customer_update#2"), Effect::Plan),
        action(id, "send_now", Some("customer_update#3"), Effect::Plan),
        action(
            id,
            "wait",
            None,
            Effect::Wait(at("2026-12-02T10:00:00.123456Z")),
        ),
        action(
            id,
            "close",
            None,
            Effect::Close(Outcome::Won, at("2026-12-02T11:00:00Z")),
        ),
    ];
    let now = at("2026-12-02T10:00:00Z");
    let Some(Applied::Wrote(revisions)) = f
        .store
        .act_or_refuse(id, now, &mut |_| Some(Act::Write(writes.clone())))
        .unwrap()
    else {
        panic!("written")
    };
    assert_eq!(revisions.len(), 8);
    let row = f.store.commitment(id).unwrap();
    assert_eq!(row.due_at.as_deref(), Some(third));
    assert_eq!(row.reason.as_deref(), Some("the supplier is late"));
    assert_eq!(
        (row.title.as_deref(), row.note.as_deref()),
        (Some("Roof quote"), Some("ring twice"))
    );
    assert_eq!(
        row.waiting_since.as_deref(),
        Some("2026-12-02T10:00:00.123Z")
    );
    assert_eq!(
        (row.outcome.as_deref(), row.closed_at.as_deref()),
        (Some("won"), Some("2026-12-02T11:00:00Z"))
    );
    let recorded = f.store.revisions_of(id).unwrap();
    let ids: Vec<i64> = recorded.iter().map(|r| r.id).collect();
    assert_eq!(ids, revisions);
    assert_eq!(recorded[2].changes.len(), 2);
    assert_eq!(recorded[2].changes[0].new.as_deref(), Some("Roof quote"));
    assert_eq!(
        (recorded[3].until_at, recorded[3].created_at),
        (Some(until), now)
    );
    assert_eq!(recorded[4].via.as_deref(), Some("cli"));

    // A customer's update that bounced is for the owner to hear of.
    let step = insert_step(
        &mut f.db,
        id,
        "customer_update#1",
        "customer_update",
        now,
        "failed",
    );
    let bounced = Email {
        step,
        commitment: id,
        audience: "customer",
        recipient: "joe@example.org",
        state: "failed",
        attempts: 1,
        sent_at: None,
        last_error: Some("550 no such user"),
    }
    .insert(&mut f.db);
    let history = f.store.history(id).unwrap();
    assert_eq!(history.auto_updates, 1);
    assert_eq!(history.notices, [(revisions[0], now)]);
    assert_eq!(
        history.held,
        [("customer_update#2".to_string(), "hold by ana".to_string())]
    );
    assert_eq!(history.send_now, [("customer_update#3".to_string(), now)]);
    assert_eq!(history.waiting_reason.as_deref(), Some("why wait"));
    let snoozed = history.snoozed.unwrap();
    assert_eq!(
        (snoozed.from, snoozed.until, snoozed.words.as_str()),
        (now, until, "snooze by ana")
    );
    assert_eq!(history.late_from, Some(at("2026-12-01T08:00:00Z")));
    assert_eq!(
        history
            .failed
            .iter()
            .map(|f| f.delivery)
            .collect::<Vec<_>>(),
        [bounced]
    );
    // Seven changes queued by the row's writes (the insert, two delays, the edit, the
    // snooze, the wait and the close) and two by the hold and the send-now, which
    // change nothing in the row.
    let changes: i64 =
        f.db.query_one(
            "SELECT COUNT(*) FROM changes WHERE commitment_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(changes, 9);
}

#[test]
fn a_snooze_another_program_set_counts_from_the_epoch() {
    let Some(mut f) = fixture("pg_history_snooze") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let until = at("2026-12-04T09:00:00Z");
    f.db.execute(
        "UPDATE commitments SET snoozed_until = $2 WHERE id = $1",
        &[&id, &until.as_millisecond()],
    )
    .unwrap();
    let snoozed = f.store.history(id).unwrap().snoozed.unwrap();
    assert_eq!(
        (snoozed.from, snoozed.until),
        (Timestamp::UNIX_EPOCH, until)
    );
    assert!(
        snoozed.words.starts_with("snoozed until"),
        "{}",
        snoozed.words
    );
}

#[test]
fn a_second_verb_on_a_commitment_waits_for_the_first_and_decides_on_what_it_wrote() {
    let Some(mut f) = fixture("pg_act_lock") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let (deciding, first_decides) = mpsc::channel();
    let (go_on, may_write) = mpsc::channel::<()>();
    let url = f.url.clone();
    let first = std::thread::spawn(move || {
        let store = PostgresStore::open(&url).unwrap();
        store
            .act_or_refuse(id, Timestamp::now(), &mut |_| {
                deciding.send(()).unwrap();
                may_write.recv().unwrap();
                Some(Act::Write(vec![done(id)]))
            })
            .unwrap()
    });
    first_decides.recv().unwrap();
    let url = f.url.clone();
    let second = std::thread::spawn(move || {
        let store = PostgresStore::open(&url).unwrap();
        let mut seen = None;
        store
            .act_or_refuse(id, Timestamp::now(), &mut |facts| {
                seen = facts.commitment().status.clone();
                None
            })
            .unwrap();
        seen
    });
    until_a_session_waits_on_a_lock(&mut f.db, || second.is_finished(), "the second verb");
    go_on.send(()).unwrap();
    assert!(matches!(first.join().unwrap(), Some(Applied::Wrote(_))));
    assert_eq!(second.join().unwrap().as_deref(), Some("done"));
}

#[test]
fn the_facts_of_a_row_read_outside_a_verb_are_its_revisions_and_steps() {
    let Some(mut f) = fixture("pg_facts") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    f.store
        .act_or_refuse(id, Timestamp::now(), &mut |_| {
            Some(Act::Write(vec![done(id)]))
        })
        .unwrap();
    let step = insert_step(
        &mut f.db,
        id,
        "check_in#1",
        "check_in",
        at("2026-12-09T09:00:00Z"),
        "planned",
    );
    let facts = f.store.facts(f.store.commitment(id).unwrap());
    assert_eq!(facts.commitment().status.as_deref(), Some("done"));
    assert_eq!(facts.revisions().unwrap().len(), 1);
    assert_eq!(
        facts
            .steps()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [step]
    );
}
