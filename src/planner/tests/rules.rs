//! What the newer rule keys plan: the follow-ups after done and their stop on close,
//! the email on open, the paused clock while waiting, and owner mail in business hours.

use super::*;
use crate::commitment::Outcome;
use crate::rule::{AfterDone, CheckInTo, OnOpen};

fn entry(after: &str, to: CheckInTo, template: &str) -> AfterDone {
    AfterDone {
        after: after.parse().unwrap(),
        to,
        template: template.into(),
    }
}

/// Done on Wed 25 Nov 2026 at 16:30 London (UTC in winter), under a rule with an owner
/// check-in after 1h and a customer wrap-up after 5 business days.
fn done_with_two_follow_ups() -> (Commitment, Rule) {
    let mut c = commitment("2026-11-25T17:00:00Z");
    c.status = Status::Done;
    c.done_at = Some(ts("2026-11-25T16:30:00Z"));
    let mut r = rule(&["-1h"], None);
    r.after_done = vec![
        entry("1h", CheckInTo::Owner, "check_in_owner"),
        entry("5 business days", CheckInTo::Customer, "wrap_up"),
    ];
    (c, r)
}

#[test]
fn every_after_done_entry_is_planned_from_the_done_time_and_the_first_keeps_the_old_key() {
    let (c, r) = done_with_two_follow_ups();
    let steps = plan(&c, &r, &calendar("Europe/London"));
    let keys: Vec<(&str, Timestamp)> = steps.iter().map(|s| (s.key.as_str(), s.fire_at)).collect();
    assert_eq!(
        keys,
        vec![
            ("check_in", ts("2026-11-25T17:30:00Z")),
            // Five business days from Wed 16:30 is the next Wed 16:30, inside hours.
            ("after_done#2", ts("2026-12-02T16:30:00Z")),
        ]
    );
    assert!(
        steps
            .iter()
            .all(|s| s.kind == StepKind::CheckIn && s.skip.is_none())
    );
    assert_eq!(
        r.after_done_entry("after_done#2").unwrap().template,
        "wrap_up"
    );
    assert_eq!(r.after_done_entry("after_done#3"), None);
}

#[test]
fn an_entry_to_the_customer_waits_for_their_business_hours() {
    let (mut c, mut r) = done_with_two_follow_ups();
    r.after_done = vec![entry("2h", CheckInTo::Customer, "check_in_customer")];
    c.done_at = Some(ts("2026-11-25T16:30:00Z"));
    let steps = plan(&c, &r, &calendar("Europe/London"));
    // 18:30 is after hours: the next morning at opening.
    assert_eq!(steps[0].planned_at, ts("2026-11-25T18:30:00Z"));
    assert_eq!(steps[0].fire_at, ts("2026-11-26T09:00:00Z"));
}

#[test]
fn closing_stops_the_follow_ups_not_yet_sent_and_keeps_the_sent_ones() {
    let (mut c, r) = done_with_two_follow_ups();
    let calendar = calendar("Europe/London");
    let before = plan(&c, &r, &calendar);
    // The owner's check-in went; then the commitment was closed won.
    let mut stored = stored(&before, StepState::Planned);
    stored[0].state = StepState::Sent;
    c.outcome = Some(Outcome::Won);
    c.closed_at = Some(ts("2026-11-26T10:00:00Z"));
    let after = plan(&c, &r, &calendar);
    assert!(
        after
            .iter()
            .all(|s| s.skip.as_ref().is_some_and(|(code, words)| {
                *code == SkipCode::Closed && words.starts_with("closed won on Thu 26 Nov")
            }))
    );
    let changes = reconcile(
        &stored,
        after,
        ts("2026-11-26T10:00:00Z"),
        Some(Status::Done),
    );
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(
        &changes[0],
        StepChange::Retire { id, code: SkipCode::Closed, reason } if *id == stored[1].id && reason.starts_with("closed won")
    ));
}

#[test]
fn a_closed_commitment_planned_afresh_records_its_follow_ups_skipped() {
    let (mut c, r) = done_with_two_follow_ups();
    c.outcome = Some(Outcome::Lost);
    c.closed_at = Some(ts("2026-11-25T16:30:00Z"));
    let fresh = plan(&c, &r, &calendar("Europe/London"));
    let changes = reconcile(&[], fresh, ts("2026-11-25T16:30:00Z"), Some(Status::Done));
    assert_eq!(changes.len(), 2);
    assert!(changes.iter().all(|change| matches!(
        change,
        StepChange::Add {
            skip: Some((SkipCode::Closed, _)),
            ..
        }
    )));
}

fn on_open_rule() -> Rule {
    let mut r = rule(&["-1h"], None);
    r.on_open = Some(OnOpen {
        to: vec![parse_mailbox("service-team@example.com").unwrap()],
        template: "service_failure".into(),
    });
    r
}

#[test]
fn the_on_open_email_fires_when_the_commitment_was_recorded() {
    let mut c = commitment("2026-11-25T17:00:00Z");
    c.created_at = ts("2026-11-25T08:12:00Z");
    let steps = plan(&c, &on_open_rule(), &calendar("Europe/London"));
    let on_open = of_kind(&steps, StepKind::OnOpen);
    assert_eq!(on_open.len(), 1);
    assert_eq!(on_open[0].key, "on_open");
    assert_eq!(on_open[0].fire_at, ts("2026-11-25T08:12:00Z"));
    // Written at once: sent. Imported a month later: past, skipped.
    let now = reconcile(&[], steps.clone(), ts("2026-11-25T08:12:01Z"), None);
    assert!(
        now.iter()
            .all(|c| matches!(c, StepChange::Add { skip: None, .. }))
    );
    let imported = reconcile(&[], steps, ts("2026-12-25T08:00:00Z"), None);
    assert!(imported.iter().any(|c| matches!(
        c,
        StepChange::Add { step, skip: Some((SkipCode::Past, _)) } if step.kind == StepKind::OnOpen
    )));
}

#[test]
fn the_on_open_email_stays_in_the_plan_once_done_and_goes_with_a_cancel() {
    let mut c = commitment("2026-11-25T17:00:00Z");
    c.status = Status::Done;
    c.done_at = Some(ts("2026-11-25T16:00:00Z"));
    let steps = plan(&c, &on_open_rule(), &calendar("UTC"));
    assert_eq!(of_kind(&steps, StepKind::OnOpen).len(), 1);
    c.status = Status::Cancelled;
    assert!(plan(&c, &on_open_rule(), &calendar("UTC")).is_empty());
}

#[test]
fn waiting_on_the_customer_skips_every_step_that_runs_the_clock() {
    let mut c = commitment("2026-11-25T17:00:00Z");
    c.waiting_since = Some(ts("2026-11-24T10:00:00Z"));
    let mut r = full_rule();
    r.remind = vec!["-1h".parse().unwrap()];
    r.overdue = Some(Overdue {
        every: "1d".parse().unwrap(),
        max: 2,
    });
    r.customer_update.as_mut().unwrap().ask_owner = Some(SignedDuration::from_hours(2));
    let history = History {
        notices: vec![(7, ts("2026-11-24T09:00:00Z"))],
        waiting_reason: Some("waiting for photos".into()),
        ..History::default()
    };
    let steps = crate::planner::plan(&c, &r, &calendar("Europe/London"), &history);
    for step in &steps {
        if step.kind.runs_the_clock() {
            let (code, words) = step.skip.as_ref().expect("skipped while waiting");
            assert_eq!(*code, SkipCode::Waiting);
            assert_eq!(
                words,
                "waiting on the customer since Tue 24 Nov 2026 10:00 GMT: waiting for photos"
            );
        } else {
            assert_eq!(step.skip, None, "{step:?}");
        }
    }
    for kind in [
        StepKind::Remind,
        StepKind::Overdue,
        StepKind::CustomerUpdate,
        StepKind::AskOwner,
        StepKind::Alert,
        StepKind::Escalate,
    ] {
        assert!(!of_kind(&steps, kind).is_empty(), "{kind:?} is in the plan");
    }
    // The delay the owner recorded by hand is still told.
    assert_eq!(of_kind(&steps, StepKind::DelayNotice)[0].skip, None);
}

#[test]
fn a_step_skipped_while_waiting_comes_back_after_resume() {
    let mut c = commitment("2026-11-25T17:00:00Z");
    let r = full_rule();
    c.waiting_since = Some(ts("2026-11-24T10:00:00Z"));
    let waiting = plan(&c, &r, &calendar("Europe/London"));
    let mut stored = stored(&waiting, StepState::Skipped);
    for s in &mut stored {
        s.skip_code = Some("waiting".into());
    }
    c.waiting_since = None;
    c.due_at = ts("2026-11-26T17:00:00Z");
    let resumed = plan(&c, &r, &calendar("Europe/London"));
    let changes = reconcile(&stored, resumed, ts("2026-11-24T12:00:00Z"), None);
    // The next customer update keeps its key across the move: it is revived.
    assert!(changes.iter().any(|change| matches!(
        change,
        StepChange::Revive { step, .. } if step.kind == StepKind::CustomerUpdate
    )));
}

#[test]
fn owner_hours_keep_owner_and_team_mail_in_business_hours_and_the_alert_may_opt_out() {
    // Due Wed 25 Nov 23:00 London: the reminder at 22:00, the alert and escalation at night.
    let c = commitment("2026-11-25T23:00:00Z");
    let mut r = full_rule();
    r.remind = vec!["-1h".parse().unwrap()];
    r.owner_hours = true;
    // What config makes of an alert that says nothing of owner_hours.
    r.alert.as_mut().unwrap().owner_hours = true;
    let calendar = calendar("Europe/London");
    let morning = ts("2026-11-26T09:00:00Z");
    let steps = plan(&c, &r, &calendar);
    for kind in [StepKind::Remind, StepKind::Alert, StepKind::Escalate] {
        let step = of_kind(&steps, kind)[0];
        assert_eq!(step.fire_at, morning, "{kind:?}");
        assert!(step.planned_at < morning);
    }
    r.alert.as_mut().unwrap().owner_hours = false;
    let steps = plan(&c, &r, &calendar);
    assert_eq!(
        of_kind(&steps, StepKind::Alert)[0].fire_at,
        ts("2026-11-25T23:00:00Z")
    );
    // Without owner_hours, owner mail goes at its time.
    r.owner_hours = false;
    let steps = plan(&c, &r, &calendar);
    assert_eq!(
        of_kind(&steps, StepKind::Remind)[0].fire_at,
        ts("2026-11-25T22:00:00Z")
    );
}

#[test]
fn owner_hours_hold_the_owner_check_in_but_not_the_customer_one() {
    let (mut c, mut r) = done_with_two_follow_ups();
    c.done_at = Some(ts("2026-11-25T17:30:00Z"));
    r.owner_hours = true;
    let steps = plan(&c, &r, &calendar("Europe/London"));
    assert_eq!(steps[0].planned_at, ts("2026-11-25T18:30:00Z"));
    assert_eq!(steps[0].fire_at, ts("2026-11-26T09:00:00Z"));
    assert_eq!(steps[1].key, "after_done#2");
}
