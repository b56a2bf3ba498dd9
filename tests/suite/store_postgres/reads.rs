//! `Views`, `Glances` and `Summaries` on PostgreSQL: what the pages and `status` read.

use followup::planner::{StepKind, StepState};
use followup::store::prelude::*;
use followup::store::{StoreError, Workload};

use super::{Email, at, fixture, insert_step, sample};

#[test]
fn a_glance_has_the_earliest_planned_step_of_the_kind_asked_for() {
    let Some(mut f) = fixture("pg_glance") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let glance = f.store.glance(id, StepKind::CustomerUpdate).unwrap();
    assert_eq!(glance.row.id, id);
    assert_eq!((glance.snoozed_until, glance.next_planned), (None, None));
    let db = &mut f.db;
    insert_step(
        db,
        id,
        "customer_update#3",
        "customer_update",
        at("2026-12-05T09:00:00Z"),
        "planned",
    );
    insert_step(
        db,
        id,
        "customer_update#2",
        "customer_update",
        at("2026-12-04T09:00:00Z"),
        "planned",
    );
    insert_step(
        db,
        id,
        "customer_update#1",
        "customer_update",
        at("2026-12-01T09:00:00Z"),
        "sent",
    );
    insert_step(
        db,
        id,
        "remind#1",
        "remind",
        at("2026-12-02T09:00:00Z"),
        "planned",
    );
    let glance = f.store.glance(id, StepKind::CustomerUpdate).unwrap();
    assert_eq!(
        glance.next_planned,
        Some(("customer_update#2".to_string(), at("2026-12-04T09:00:00Z")))
    );
    assert!(matches!(
        f.store.glance(id + 1, StepKind::Remind),
        Err(StoreError::NotFound(missing)) if missing == id + 1
    ));
    assert!(matches!(
        f.store.snoozed_until(id + 1),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(f.store.snoozed_until(id).unwrap(), None);
    f.db.execute(
        "UPDATE commitments SET snoozed_until = $2 WHERE id = $1",
        &[&id, &at("2026-12-02T12:00:00Z").as_millisecond()],
    )
    .unwrap();
    assert_eq!(
        f.store.snoozed_until(id).unwrap(),
        Some(at("2026-12-02T12:00:00Z"))
    );
    assert_eq!(
        f.store.glance(id, StepKind::Remind).unwrap().snoozed_until,
        Some(at("2026-12-02T12:00:00Z"))
    );
}

#[test]
fn the_view_of_a_commitment_has_its_steps_in_firing_order_and_its_emails() {
    let Some(mut f) = fixture("pg_view") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let other = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let db = &mut f.db;
    let late = insert_step(
        db,
        id,
        "overdue#1",
        "overdue",
        at("2026-12-04T09:00:00Z"),
        "planned",
    );
    let early = insert_step(
        db,
        id,
        "remind#1",
        "remind",
        at("2026-12-02T09:00:00Z"),
        "sent",
    );
    let elsewhere = insert_step(
        db,
        other,
        "remind#1",
        "remind",
        at("2026-12-01T09:00:00Z"),
        "sent",
    );
    let email = Email {
        step: early,
        commitment: id,
        audience: "owner",
        recipient: "ana@example.com",
        state: "sent",
        attempts: 1,
        sent_at: Some(at("2026-12-02T09:00:02Z").as_millisecond()),
        last_error: None,
    };
    let sent = email.insert(db);
    Email {
        step: elsewhere,
        commitment: other,
        ..email
    }
    .insert(db);
    let view = f.store.commitment_view(id, StepKind::Overdue).unwrap();
    assert_eq!(
        view.glance.next_planned,
        Some(("overdue#1".into(), at("2026-12-04T09:00:00Z")))
    );
    let steps: Vec<(i64, StepState)> = view.steps.iter().map(|s| (s.id, s.state)).collect();
    assert_eq!(
        steps,
        [(early, StepState::Sent), (late, StepState::Planned)]
    );
    assert_eq!(view.steps[0].kind, StepKind::Remind);
    assert!(!view.steps[0].late);
    let emails: Vec<i64> = view.deliveries.iter().map(|d| d.id).collect();
    assert_eq!(emails, [sent]);
    assert!(view.revisions.is_empty());
    assert!(matches!(
        f.store.commitment_view(other + 1, StepKind::Remind),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_step_of_an_unknown_kind_makes_the_view_say_which_step() {
    let Some(mut f) = fixture("pg_view_unreadable") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let step = insert_step(
        &mut f.db,
        id,
        "gift#1",
        "gift",
        at("2026-12-02T09:00:00Z"),
        "planned",
    );
    let err = f.store.commitment_view(id, StepKind::Remind).unwrap_err();
    assert!(
        matches!(&err, StoreError::Step(s) if s.id == step && s.reason.contains("gift")),
        "{err:?}"
    );
}

#[test]
fn an_empty_store_has_no_work_and_no_history() {
    let Some(f) = fixture("pg_summary_empty") else {
        return;
    };
    assert_eq!(f.store.workload().unwrap(), Workload::default());
    f.store
        .insert_commitment(&sample("2026-11-24T17:00:00Z"))
        .unwrap();
    let summary = f.store.summary().unwrap();
    assert_eq!(summary.open_commitments, 1);
    assert_eq!(
        summary.changes_waiting, 1,
        "the daemon has not planned it yet"
    );
    assert_eq!(summary.sent_deliveries, 0);
    assert!(summary.last_sent_at.is_none() && summary.last_error.is_none());
}

#[test]
fn the_summary_counts_the_work_ahead_and_the_history() {
    let Some(mut f) = fixture("pg_summary") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let db = &mut f.db;
    insert_step(
        db,
        id,
        "remind#2",
        "remind",
        at("2026-12-03T09:00:00Z"),
        "planned",
    );
    insert_step(
        db,
        id,
        "overdue#1",
        "overdue",
        at("2026-12-04T09:00:00Z"),
        "planned",
    );
    let done = insert_step(
        db,
        id,
        "remind#1",
        "remind",
        at("2026-12-02T09:00:00Z"),
        "queued",
    );
    let email = |recipient, state, attempts, sent_at, last_error| Email {
        step: done,
        commitment: id,
        audience: "owner",
        recipient,
        state,
        attempts,
        sent_at,
        last_error,
    };
    let sent_at = at("2026-12-02T09:00:03Z").as_millisecond();
    email("a@example.com", "sent", 1, Some(sent_at), None).insert(db);
    email("b@example.com", "failed", 3, None, Some("550 no such user")).insert(db);
    let retrying = email("c@example.com", "pending", 1, None, Some("421 try later")).insert(db);
    email("d@example.com", "pending", 0, None, None).insert(db);
    f.db.execute(
        "INSERT INTO problems (commitment_id, reason, seen_at) VALUES ($1, 'no rule', 0)",
        &[&id],
    )
    .unwrap();
    let summary = f.store.summary().unwrap();
    let workload = &summary.workload;
    assert_eq!(workload.planned_steps, 2);
    let first = workload.next_step.as_ref().unwrap();
    assert_eq!(
        (first.fire_at, first.commitment_id),
        (at("2026-12-03T09:00:00Z"), id)
    );
    assert_eq!(
        (first.kind.as_str(), first.label.as_str()),
        ("remind", "remind#2")
    );
    assert_eq!(workload.pending_deliveries, 2);
    assert_eq!(summary.retrying_deliveries, 1);
    assert_eq!(summary.failed_deliveries, 1);
    assert_eq!(summary.sent_deliveries, 1);
    assert_eq!(summary.quarantined_commitments, 1);
    assert_eq!(summary.last_sent_at, Some(at("2026-12-02T09:00:03Z")));
    let error = summary.last_error.unwrap();
    assert_eq!(
        (error.delivery_id, error.state.as_str()),
        (retrying, "pending")
    );
    assert_eq!(error.error, "421 try later");
}
