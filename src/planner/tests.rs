//! The planner's story, told without a clock: every test passes its own times.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::commitment::parse_mailbox;
use crate::rule::{CatchUp, Overdue};

/// The plan of a commitment with no history.
fn plan(commitment: &Commitment, rule: &Rule, calendar: &Calendar) -> Vec<PlannedStep> {
    super::plan(commitment, rule, calendar, &History::default())
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn calendar(zone: &str) -> Calendar {
    Calendar::new(TimeZone::get(zone).unwrap())
}

fn commitment(due: &str) -> Commitment {
    Commitment {
        id: 1,
        title: "Send quote".into(),
        owner: parse_mailbox("ana@example.com").unwrap(),
        customer: parse_mailbox("joe@example.org").unwrap(),
        timezone: None,
        due_at: ts(due),
        kind: Some("quote".into()),
        status: Status::Open,
        note: String::new(),
        external_ref: None,
        reason: None,
        created_at: ts("2026-11-01T00:00:00Z"),
        done_at: None,
        promise: None,
        outcome: None,
        closed_at: None,
        waiting_since: None,
    }
}

fn rule(remind: &[&str], overdue: Option<(&str, u32)>) -> Rule {
    Rule {
        name: "default".into(),
        kinds: None,
        remind: remind.iter().map(|o| o.parse().unwrap()).collect(),
        overdue: overdue.map(|(every, max)| Overdue {
            every: every.parse().unwrap(),
            max,
        }),
        catch_up: CatchUp::Send,
        customer_update: None,
        alert: None,
        escalate: None,
        after_done: Vec::new(),
        digest_only: false,
        due_in: None,
        on_open: None,
        owner_hours: false,
    }
}

fn times(steps: &[PlannedStep]) -> Vec<(StepKind, Timestamp)> {
    steps.iter().map(|s| (s.kind, s.fire_at)).collect()
}

#[test]
fn reminders_sit_at_their_offsets_from_the_due_time() {
    let steps = plan(
        &commitment("2026-11-25T17:00:00Z"),
        &rule(&["-1d", "-2h", "0s"], None),
        &calendar("Europe/London"),
    );
    assert_eq!(
        times(&steps),
        vec![
            (StepKind::Remind, ts("2026-11-24T17:00:00Z")),
            (StepKind::Remind, ts("2026-11-25T15:00:00Z")),
            (StepKind::Remind, ts("2026-11-25T17:00:00Z")),
        ]
    );
    assert_eq!(steps[1].label, "-2h");
    assert_eq!(steps[1].rule, "default");
}

#[test]
fn the_same_inputs_give_the_same_keys() {
    let c = commitment("2026-11-25T17:00:00Z");
    let r = rule(&["-1d", "-2h", "0s"], Some(("1d", 3)));
    let cal = calendar("Europe/London");
    assert_eq!(plan(&c, &r, &cal), plan(&c, &r, &cal));
}

#[test]
fn duplicate_offsets_plan_one_step() {
    let steps = plan(
        &commitment("2026-11-25T17:00:00Z"),
        &rule(&["0s", "-0m", "-2h"], None),
        &calendar("UTC"),
    );
    assert_eq!(steps.len(), 2);
}

#[test]
fn overdue_reminders_repeat_up_to_the_cap() {
    let steps = plan(
        &commitment("2026-11-25T17:00:00Z"),
        &rule(&["0s"], Some(("1d", 3))),
        &calendar("Europe/London"),
    );
    assert_eq!(
        times(&steps),
        vec![
            (StepKind::Remind, ts("2026-11-25T17:00:00Z")),
            (StepKind::Overdue, ts("2026-11-26T17:00:00Z")),
            (StepKind::Overdue, ts("2026-11-27T17:00:00Z")),
            (StepKind::Overdue, ts("2026-11-28T17:00:00Z")),
        ]
    );
    assert_eq!(steps[3].label, "overdue 3 of 3");
}

#[test]
fn a_zero_cap_plans_no_overdue_reminders() {
    let steps = plan(
        &commitment("2026-11-25T17:00:00Z"),
        &rule(&[], Some(("1d", 0))),
        &calendar("UTC"),
    );
    assert!(steps.is_empty());
}

#[test]
fn done_and_cancelled_commitments_have_nothing_ahead() {
    for status in [Status::Done, Status::Cancelled] {
        let mut c = commitment("2026-11-25T17:00:00Z");
        c.status = status;
        assert!(plan(&c, &rule(&["-1d", "0s"], Some(("1d", 3))), &calendar("UTC")).is_empty());
    }
}

#[test]
fn the_day_before_a_due_time_after_the_new_york_spring_gap() {
    // Due 02:30 EDT... which does not exist on 2027-03-14; take a due time on the 15th at
    // 02:30 EDT: the day before at 02:30 falls in the gap and moves to 03:30 EDT.
    let due = "2027-03-15T06:30:00Z"; // 02:30 EDT on the 15th
    let steps = plan(
        &commitment(due),
        &rule(&["-1d"], None),
        &calendar("America/New_York"),
    );
    assert_eq!(steps[0].fire_at, ts("2027-03-14T07:30:00Z")); // 03:30 EDT on the 14th
}

#[test]
fn the_day_before_a_due_time_after_the_new_york_autumn_fold() {
    // Due 01:30 EST on 2027-11-08; the day before at 01:30 happens twice (EDT, then
    // EST). The reminder takes the first, EDT.
    let due = "2027-11-08T06:30:00Z"; // 01:30 EST on the 8th
    let steps = plan(
        &commitment(due),
        &rule(&["-1d"], None),
        &calendar("America/New_York"),
    );
    assert_eq!(steps[0].fire_at, ts("2027-11-07T05:30:00Z")); // 01:30 EDT on the 7th
}

#[test]
fn hour_offsets_across_the_new_york_gap_are_exact() {
    // Due 04:00 EDT on 2027-03-14; two hours earlier is 01:00 EST: elapsed time, not
    // wall-clock arithmetic that would give the missing 02:00.
    let due = "2027-03-14T08:00:00Z";
    let steps = plan(
        &commitment(due),
        &rule(&["-2h"], None),
        &calendar("America/New_York"),
    );
    assert_eq!(steps[0].fire_at, ts("2027-03-14T06:00:00Z"));
}

#[test]
fn overdue_days_across_the_new_york_fold_keep_the_wall_clock() {
    // Due Saturday 2027-11-06 09:00 EDT; daily overdue reminders stay at 09:00 local,
    // so the Sunday one is 25 hours later, at 09:00 EST.
    let due = "2027-11-06T13:00:00Z";
    let steps = plan(
        &commitment(due),
        &rule(&[], Some(("1d", 2))),
        &calendar("America/New_York"),
    );
    assert_eq!(
        times(&steps),
        vec![
            (StepKind::Overdue, ts("2027-11-07T14:00:00Z")),
            (StepKind::Overdue, ts("2027-11-08T14:00:00Z")),
        ]
    );
}

fn stored(steps: &[PlannedStep], state: StepState) -> Vec<Step> {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| Step {
            id: i as i64 + 1,
            key: s.key.clone(),
            kind: s.kind,
            rule: s.rule.clone(),
            label: s.label.clone(),
            planned_at: s.planned_at,
            fire_at: s.fire_at,
            state,
            skip_code: None,
            reason: None,
            late: false,
            updated_at: s.planned_at,
        })
        .collect()
}

#[test]
fn steps_already_past_when_written_are_skipped_with_a_reason() {
    // Added at 16:59:50 for 17:00: the -1d and -2h reminders cannot be on time.
    let c = commitment("2026-11-25T17:00:00Z");
    let fresh = plan(&c, &rule(&["-1d", "-2h", "0s"], None), &calendar("UTC"));
    let changes = reconcile(&[], fresh, ts("2026-11-25T16:59:50Z"), None);
    let skipped: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            StepChange::Add {
                step,
                skip: Some((SkipCode::Past, reason)),
            } => Some((step.label.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0].1.contains("had already passed"),
        "{}",
        skipped[0].1
    );
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, StepChange::Add { step, skip: None } if step.label == "0s"))
    );
}

/// What reconciling a fresh store with the plan of `c` written at `written` does: the
/// steps planned and the labels skipped as past.
fn planned_and_skipped(
    c: &Commitment,
    rule: &Rule,
    history: &History,
    written: Timestamp,
) -> (Vec<(StepKind, Timestamp)>, Vec<String>) {
    let fresh = super::plan(c, rule, &calendar("UTC"), history);
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    for change in reconcile(&[], fresh, written, None) {
        match change {
            StepChange::Add { step, skip: None } => planned.push((step.kind, step.fire_at)),
            StepChange::Add {
                step,
                skip: Some(_),
            } => skipped.push(step.label),
            other => panic!("a fresh store only adds: {other:?}"),
        }
    }
    (planned, skipped)
}

#[test]
fn a_promise_recorded_already_late_has_its_late_steps_planned_from_then() {
    // Due Monday 09:00, recorded on Wednesday 12:00 as already late.
    let c = commitment("2026-11-23T09:00:00Z");
    let mut r = full_rule();
    r.remind = vec!["-1d".parse().unwrap(), "0s".parse().unwrap()];
    r.overdue = Some(Overdue {
        every: "1d".parse().unwrap(),
        max: 2,
    });
    let written = ts("2026-11-25T12:00:00Z");
    let late = History {
        late_from: Some(written),
        ..History::default()
    };
    let (planned, skipped) = planned_and_skipped(&c, &r, &late, written);
    assert_eq!(
        planned,
        vec![
            (StepKind::Alert, ts("2026-11-25T12:00:00Z")),
            (StepKind::Escalate, ts("2026-11-25T16:00:00Z")),
            (StepKind::Overdue, ts("2026-11-26T12:00:00Z")),
            (StepKind::Overdue, ts("2026-11-27T12:00:00Z")),
        ]
    );
    // What belongs before the due time stays past: the reminders and the update.
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped.iter().all(|label| !label.contains("overdue")));

    // The same row without the fact, as an import of history writes it: all past.
    let (planned, _) = planned_and_skipped(&c, &r, &History::default(), written);
    assert!(planned.is_empty(), "{planned:?}");
}

#[test]
fn a_late_start_before_the_due_time_changes_nothing() {
    // Delayed to a due time after the late recording: everything follows the due time.
    let c = commitment("2026-11-27T09:00:00Z");
    let mut r = full_rule();
    r.overdue = Some(Overdue {
        every: "1d".parse().unwrap(),
        max: 1,
    });
    let late = History {
        late_from: Some(ts("2026-11-25T12:00:00Z")),
        ..History::default()
    };
    let cal = calendar("UTC");
    assert_eq!(
        super::plan(&c, &r, &cal, &late),
        super::plan(&c, &r, &cal, &History::default())
    );
}

#[test]
fn a_step_a_few_seconds_before_the_write_is_still_sent() {
    // A program inserts a row due "now"; the daemon reads it a moment later.
    let c = commitment("2026-11-25T17:00:00Z");
    let fresh = plan(&c, &rule(&["0s"], None), &calendar("UTC"));
    let changes = reconcile(&[], fresh, ts("2026-11-25T17:00:05Z"), None);
    assert!(matches!(&changes[0], StepChange::Add { skip: None, .. }));
}

#[test]
fn replanning_the_same_plan_changes_nothing() {
    let c = commitment("2026-11-25T17:00:00Z");
    let r = rule(&["-1d", "0s"], Some(("1d", 2)));
    let fresh = plan(&c, &r, &calendar("UTC"));
    let existing = stored(&fresh, StepState::Planned);
    assert!(reconcile(&existing, fresh, ts("2026-11-20T00:00:00Z"), None).is_empty());
}

#[test]
fn a_moved_due_time_retires_old_steps_and_adds_new_ones_but_keeps_sent_ones() {
    let r = rule(&["-2h", "0s"], None);
    let cal = calendar("UTC");
    let before = plan(&commitment("2026-11-25T17:00:00Z"), &r, &cal);
    let mut existing = stored(&before, StepState::Planned);
    existing[0].state = StepState::Sent; // the -2h reminder went out
    let after = plan(&commitment("2026-11-26T17:00:00Z"), &r, &cal);
    let changes = reconcile(&existing, after, ts("2026-11-25T16:00:00Z"), None);
    let added = changes
        .iter()
        .filter(|c| matches!(c, StepChange::Add { skip: None, .. }))
        .count();
    let retired: Vec<i64> = changes
        .iter()
        .filter_map(|c| match c {
            StepChange::Retire {
                id,
                code: SkipCode::Replanned,
                ..
            } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(added, 2);
    assert_eq!(retired, vec![2], "only the unsent 0s reminder is retired");
}

#[test]
fn closing_a_commitment_retires_every_planned_step() {
    let mut c = commitment("2026-11-25T17:00:00Z");
    let r = rule(&["-1d", "0s"], Some(("1d", 3)));
    let existing = stored(&plan(&c, &r, &calendar("UTC")), StepState::Planned);
    c.status = Status::Done;
    let changes = reconcile(
        &existing,
        plan(&c, &r, &calendar("UTC")),
        ts("2026-11-25T12:00:00Z"),
        Some(Status::Done),
    );
    assert_eq!(changes.len(), 5);
    assert!(changes.iter().all(|c| matches!(c, StepChange::Retire { code: SkipCode::Closed, reason, .. } if reason.contains("done"))));
}

#[test]
fn a_retired_step_comes_back_when_the_plan_has_it_again_but_a_sent_one_never_repeats() {
    let c = commitment("2026-11-25T17:00:00Z");
    let r = rule(&["-1d", "0s"], None);
    let fresh = plan(&c, &r, &calendar("UTC"));
    let mut existing = stored(&fresh, StepState::Skipped);
    existing[0].skip_code = Some("replanned".into());
    existing[1].state = StepState::Sent;
    let changes = reconcile(&existing, fresh, ts("2026-11-20T00:00:00Z"), None);
    assert_eq!(changes.len(), 1);
    assert!(matches!(&changes[0], StepChange::Revive { id: 1, .. }));
}

fn full_rule() -> Rule {
    let mut r = rule(&["-1d", "-2h"], None);
    r.customer_update = Some(crate::rule::CustomerUpdate {
        at: "-1h".parse().unwrap(),
        extend_by: "2 business days".parse().unwrap(),
        max: 2,
        template: "no_news_yet".into(),
        ask_owner: None,
    });
    r.alert = Some(crate::rule::Alert {
        at: "0s".parse().unwrap(),
        to: vec![parse_mailbox("team@example.com").unwrap()],
        owner_hours: false,
    });
    r.escalate = Some(crate::rule::Escalate {
        after: "+4h".parse().unwrap(),
        to: vec![parse_mailbox("lead@example.com").unwrap()],
    });
    r.after_done = vec![crate::rule::AfterDone {
        after: "3 business days".parse().unwrap(),
        to: crate::rule::CheckInTo::Customer,
        template: "check_in_customer".into(),
    }];
    r
}

fn of_kind(steps: &[PlannedStep], kind: StepKind) -> Vec<&PlannedStep> {
    steps.iter().filter(|s| s.kind == kind).collect()
}

#[test]
fn digest_only_leaves_owner_reminders_to_the_digest() {
    let mut r = full_rule();
    r.overdue = Some(Overdue {
        every: "1d".parse().unwrap(),
        max: 2,
    });
    r.digest_only = true;
    let steps = plan(
        &commitment("2026-11-25T15:00:00Z"),
        &r,
        &calendar("Europe/London"),
    );
    assert!(of_kind(&steps, StepKind::Remind).is_empty());
    assert!(of_kind(&steps, StepKind::Overdue).is_empty());
    assert_eq!(
        of_kind(&steps, StepKind::CustomerUpdate).len(),
        1,
        "the customer still hears"
    );
}

#[test]
fn an_open_commitment_plans_its_update_alert_and_escalation() {
    // Due Wednesday 25 Nov 2026 15:00 London (default hours 09:00-17:00).
    let steps = plan(
        &commitment("2026-11-25T15:00:00Z"),
        &full_rule(),
        &calendar("Europe/London"),
    );
    let update = of_kind(&steps, StepKind::CustomerUpdate);
    assert_eq!(update.len(), 1);
    assert_eq!(update[0].key, "customer_update#1");
    assert_eq!(update[0].fire_at, ts("2026-11-25T14:00:00Z"));
    assert_eq!(
        of_kind(&steps, StepKind::Alert)[0].fire_at,
        ts("2026-11-25T15:00:00Z")
    );
    assert_eq!(
        of_kind(&steps, StepKind::Escalate)[0].fire_at,
        ts("2026-11-25T19:00:00Z")
    );
    assert!(
        of_kind(&steps, StepKind::CheckIn).is_empty(),
        "no check-in before done"
    );
}

#[test]
fn a_customer_update_outside_business_hours_waits_for_them() {
    // Due 08:30 on Wednesday: the update at 07:30 waits until 09:00.
    let steps = plan(
        &commitment("2026-11-25T08:30:00Z"),
        &full_rule(),
        &calendar("Europe/London"),
    );
    let update = of_kind(&steps, StepKind::CustomerUpdate)[0];
    assert_eq!(update.planned_at, ts("2026-11-25T07:30:00Z"));
    assert_eq!(update.fire_at, ts("2026-11-25T09:00:00Z"));
    // Owner reminders are not held: the -2h one fires at 06:30.
    let reminders = of_kind(&steps, StepKind::Remind);
    assert_eq!(reminders[1].fire_at, ts("2026-11-25T06:30:00Z"));
}

#[test]
fn customer_mail_waits_for_business_hours_in_the_customers_zone() {
    // A New York customer: 15:00 London is 10:00 in New York, inside their hours; but
    // 13:00 London (the update for a 14:00 due) is 08:00 there and waits for 09:00 EST.
    let mut c = commitment("2026-11-25T14:00:00Z");
    c.timezone = Some(TimeZone::get("America/New_York").unwrap());
    let steps = plan(&c, &full_rule(), &calendar("Europe/London"));
    assert_eq!(
        of_kind(&steps, StepKind::CustomerUpdate)[0].fire_at,
        ts("2026-11-25T14:00:00Z")
    );
}

#[test]
fn automatic_updates_stop_at_the_cap() {
    let c = commitment("2026-11-25T15:00:00Z");
    let once = History {
        auto_updates: 1,
        notices: vec![],
        failed: vec![],
        late_from: None,
        ..History::default()
    };
    let steps = super::plan(&c, &full_rule(), &calendar("Europe/London"), &once);
    assert_eq!(
        of_kind(&steps, StepKind::CustomerUpdate)[0].key,
        "customer_update#2"
    );
    let twice = History {
        auto_updates: 2,
        notices: vec![],
        failed: vec![],
        late_from: None,
        ..History::default()
    };
    let steps = super::plan(&c, &full_rule(), &calendar("Europe/London"), &twice);
    assert!(of_kind(&steps, StepKind::CustomerUpdate).is_empty());
}

#[test]
fn each_delay_recorded_by_hand_gets_one_notice_in_business_hours() {
    let c = commitment("2026-11-27T15:00:00Z");
    let history = History {
        auto_updates: 0,
        notices: vec![
            (7, ts("2026-11-24T20:00:00Z")),
            (9, ts("2026-11-25T10:00:00Z")),
        ],
        failed: vec![],
        late_from: None,
        ..History::default()
    };
    let steps = super::plan(&c, &full_rule(), &calendar("Europe/London"), &history);
    let notices = of_kind(&steps, StepKind::DelayNotice);
    assert_eq!(notices.len(), 2);
    assert_eq!(notices[0].key, "delay_notice#7");
    assert_eq!(
        notices[0].fire_at,
        ts("2026-11-25T09:00:00Z"),
        "an evening delay is told next morning"
    );
    assert_eq!(notices[1].fire_at, ts("2026-11-25T10:00:00Z"));
}

#[test]
fn a_done_commitment_plans_only_its_check_in_inside_business_hours() {
    let mut c = commitment("2026-11-25T15:00:00Z");
    c.status = Status::Done;
    c.done_at = Some(ts("2026-11-27T15:30:00Z")); // Friday 15:30
    let steps = plan(&c, &full_rule(), &calendar("Europe/London"));
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].kind, StepKind::CheckIn);
    // 3 business days after Friday 15:30 is Wednesday 15:30.
    assert_eq!(steps[0].fire_at, ts("2026-12-02T15:30:00Z"));
    c.status = Status::Cancelled;
    assert!(plan(&c, &full_rule(), &calendar("Europe/London")).is_empty());
}

#[test]
fn a_next_update_moves_with_the_due_time_under_the_same_key() {
    let r = full_rule();
    let cal = calendar("Europe/London");
    let before = plan(&commitment("2026-11-25T15:00:00Z"), &r, &cal);
    let existing = stored(&before, StepState::Planned);
    let after = plan(&commitment("2026-11-26T15:00:00Z"), &r, &cal);
    let changes = reconcile(&existing, after, ts("2026-11-24T12:00:00Z"), None);
    let moved: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            StepChange::Move { step, .. } => Some(step.key.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(moved, vec!["customer_update#1"]);
}

#[test]
fn a_planned_step_moved_into_the_past_is_skipped_not_sent_late() {
    let r = full_rule();
    let cal = calendar("Europe/London");
    let before = plan(&commitment("2026-11-25T15:00:00Z"), &r, &cal);
    let existing = stored(&before, StepState::Planned);
    // At 13:50 the owner moves the due time to 14:30: the update would be at 13:30.
    let after = plan(&commitment("2026-11-25T14:30:00Z"), &r, &cal);
    let changes = reconcile(&existing, after, ts("2026-11-25T13:50:00Z"), None);
    let id = existing
        .iter()
        .find(|s| s.key == "customer_update#1")
        .unwrap()
        .id;
    assert!(
        changes.iter().any(
            |c| matches!(c, StepChange::Retire { id: i, code: SkipCode::Past, .. } if *i == id)
        )
    );
}

#[test]
fn the_owner_hears_of_each_failed_email_whatever_the_status() {
    for status in [Status::Open, Status::Done, Status::Cancelled] {
        let mut c = commitment("2026-11-25T15:00:00Z");
        c.status = status;
        let history = History {
            failed: vec![
                FailedEmail {
                    delivery: 41,
                    at: ts("2026-11-25T15:00:05Z"),
                    audience: "customer".into(),
                    kind: Some(StepKind::CustomerUpdate),
                },
                // The owner's own mail, and a notice of a failure, are not reported.
                FailedEmail {
                    delivery: 42,
                    at: ts("2026-11-25T15:00:06Z"),
                    audience: "owner".into(),
                    kind: Some(StepKind::Remind),
                },
            ],
            ..History::default()
        };
        let steps = super::plan(&c, &rule(&[], None), &calendar("UTC"), &history);
        let notices = of_kind(&steps, StepKind::DeliveryFailed);
        assert_eq!(notices.len(), 1, "{status:?}");
        assert_eq!(notices[0].key, "delivery_failed#41");
        assert_eq!(notices[0].fire_at, ts("2026-11-25T15:00:05Z"));
    }
}

mod owner;
mod rules;
