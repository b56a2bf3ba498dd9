//! `Steps` on PostgreSQL: queueing every open commitment again, the next time to look,
//! and a commitment's steps.

use followup::planner::{PlannedStep, SkipCode, StepChange, StepKind, StepState};
use followup::store::StoreError;
use followup::store::prelude::*;
use jiff::SignedDuration;

use super::{at, fixture, insert_step, sample};

#[test]
fn replanning_queues_every_open_commitment_and_no_closed_one() {
    let Some(mut f) = fixture("pg_replan_open") else {
        return;
    };
    let open = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let unset = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let done = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    f.db.execute(
        "UPDATE commitments SET status = NULL WHERE id = $1",
        &[&unset],
    )
    .unwrap();
    f.db.execute(
        "UPDATE commitments SET status = 'done' WHERE id = $1",
        &[&done],
    )
    .unwrap();
    f.db.execute("DELETE FROM changes", &[]).unwrap();

    let now = at("2026-12-02T10:00:00Z");
    assert_eq!(f.store.replan_open(now).unwrap(), 2);
    let queued: Vec<(i64, i64)> =
        f.db.query(
            "SELECT commitment_id, changed_at FROM changes ORDER BY commitment_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ms = now.as_millisecond();
    assert_eq!(queued, vec![(open, ms), (unset, ms)]);
}

#[test]
fn the_next_look_is_the_earliest_step_or_lead_before_one_composed_ahead() {
    let Some(mut f) = fixture("pg_next_fire_at") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let now = at("2026-12-02T10:00:00Z");
    let lead = SignedDuration::from_secs(5);
    assert_eq!(f.store.next_fire_at(now, lead).unwrap(), None);

    // Past steps and steps not planned do not count.
    insert_step(
        &mut f.db,
        id,
        "remind#0",
        "remind",
        at("2026-12-02T09:00:00Z"),
        "sent",
    );
    insert_step(
        &mut f.db,
        id,
        "customer_update#1",
        "customer_update",
        at("2026-12-02T11:00:00Z"),
        "planned",
    );
    let update = at("2026-12-02T11:00:00Z");
    assert_eq!(f.store.next_fire_at(now, lead).unwrap(), Some(update));

    // An owner's reminder 3 s later is composed `lead` before its time, which comes
    // first; a customer's step is not composed ahead, so it would not.
    insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        update + SignedDuration::from_secs(3),
        "planned",
    );
    assert_eq!(
        f.store.next_fire_at(now, lead).unwrap(),
        Some(update + SignedDuration::from_secs(3) - lead)
    );
    assert_eq!(
        f.store.next_fire_at(now, SignedDuration::ZERO).unwrap(),
        Some(update)
    );

    // One already within `lead` of now is the earliest's business, not a time of its own.
    let soon = insert_step(
        &mut f.db,
        id,
        "remind#2",
        "remind",
        now + SignedDuration::from_secs(2),
        "planned",
    );
    assert_eq!(
        f.store.next_fire_at(now, lead).unwrap(),
        Some(now + SignedDuration::from_secs(2))
    );
    f.db.execute("UPDATE steps SET state = 'queued' WHERE id = $1", &[&soon])
        .unwrap();
    // Nor does an ahead step further than `lead` beyond the earliest.
    f.db.execute("DELETE FROM steps WHERE key = 'remind#1'", &[])
        .unwrap();
    insert_step(
        &mut f.db,
        id,
        "remind#3",
        "remind",
        update + SignedDuration::from_secs(6),
        "planned",
    );
    assert_eq!(f.store.next_fire_at(now, lead).unwrap(), Some(update));
}

#[test]
fn steps_come_in_firing_order_and_an_unreadable_one_is_named() {
    let Some(mut f) = fixture("pg_steps_of") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let later = insert_step(
        &mut f.db,
        id,
        "remind#2",
        "remind",
        at("2026-12-02T12:00:00Z"),
        "planned",
    );
    let earlier = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-02T11:00:00Z"),
        "sent",
    );
    let steps = f.store.steps_of(id).unwrap();
    let order: Vec<(i64, StepState)> = steps.iter().map(|s| (s.id, s.state)).collect();
    assert_eq!(
        order,
        vec![(earlier, StepState::Sent), (later, StepState::Planned)]
    );
    assert_eq!(steps[0].kind, StepKind::Remind);

    let odd = insert_step(
        &mut f.db,
        id,
        "x#1",
        "telegram",
        at("2026-12-02T13:00:00Z"),
        "planned",
    );
    match f.store.steps_of(id) {
        Err(StoreError::Step(unreadable)) => {
            assert_eq!((unreadable.id, unreadable.commitment_id), (odd, id));
            assert_eq!(unreadable.fire_at, at("2026-12-02T13:00:00Z"));
        }
        other => panic!("expected an unreadable step, got {other:?}"),
    }
}

#[test]
fn step_changes_add_move_revive_and_retire_steps() {
    let Some(f) = fixture("pg_apply_step_changes") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let now = at("2026-12-02T10:00:00Z");
    let planned = |key: &str, fire_at: &str| PlannedStep {
        key: key.into(),
        kind: StepKind::Remind,
        rule: "default".into(),
        label: format!("label {key}"),
        planned_at: at(fire_at),
        fire_at: at(fire_at),
        skip: None,
    };
    f.store
        .apply_step_changes(
            id,
            &[
                StepChange::Add {
                    step: planned("remind#1", "2026-12-02T11:00:00Z"),
                    skip: None,
                },
                StepChange::Add {
                    step: planned("remind#2", "2026-12-02T12:00:00Z"),
                    skip: Some((SkipCode::Past, "already past".into())),
                },
            ],
            now,
        )
        .unwrap();
    let steps = f.store.steps_of(id).unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        (steps[0].state, steps[0].updated_at),
        (StepState::Planned, now)
    );
    assert_eq!(steps[1].state, StepState::Skipped);
    assert_eq!(steps[1].reason.as_deref(), Some("already past"));
    let (first, second) = (steps[0].id, steps[1].id);

    let later = at("2026-12-02T10:30:00Z");
    f.store
        .apply_step_changes(
            id,
            &[
                StepChange::Move {
                    id: first,
                    step: planned("remind#1", "2026-12-02T13:00:00Z"),
                },
                StepChange::Revive {
                    id: second,
                    step: planned("remind#2", "2026-12-02T12:30:00Z"),
                },
            ],
            later,
        )
        .unwrap();
    let steps = f.store.steps_of(id).unwrap();
    let seen: Vec<(i64, StepState, jiff::Timestamp)> =
        steps.iter().map(|s| (s.id, s.state, s.fire_at)).collect();
    assert_eq!(
        seen,
        vec![
            (second, StepState::Planned, at("2026-12-02T12:30:00Z")),
            (first, StepState::Planned, at("2026-12-02T13:00:00Z")),
        ]
    );
    assert_eq!(steps[0].reason, None);

    f.store
        .apply_step_changes(
            id,
            &[StepChange::Retire {
                id: first,
                code: SkipCode::Replanned,
                reason: "no longer planned".into(),
            }],
            later,
        )
        .unwrap();
    let retired = f
        .store
        .steps_of(id)
        .unwrap()
        .into_iter()
        .find(|s| s.id == first)
        .unwrap();
    assert_eq!(retired.state, StepState::Skipped);
    assert_eq!(
        retired.skip_code.as_deref(),
        Some(SkipCode::Replanned.as_str())
    );
}
