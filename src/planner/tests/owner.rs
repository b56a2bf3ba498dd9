//! What the owner's answers do to a plan: a snooze of the reminders, the owner's say
//! before a customer update (ask_owner), a held update, an update sent at once.

use super::*;

fn snooze(from: &str, until: &str) -> History {
    History {
        snoozed: Some(Snooze {
            from: ts(from),
            until: ts(until),
            words: "snoozed until Thu 26 Nov 09:00 by ana@example.com (by email link)".into(),
        }),
        ..History::default()
    }
}

fn skip_of(step: &PlannedStep) -> Option<SkipCode> {
    step.skip.as_ref().map(|(code, _)| *code)
}

#[test]
fn a_snooze_skips_the_reminders_inside_it_and_reminds_once_at_its_end() {
    // Due Thu 17:00; reminders Wed 17:00, Thu 15:00, Thu 17:00 and one overdue repeat.
    let c = commitment("2026-11-26T17:00:00Z");
    let r = rule(&["-1d", "-2h", "0s"], Some(("1d", 1)));
    let history = snooze("2026-11-25T16:00:00Z", "2026-11-26T16:00:00Z");
    let steps = super::super::plan(&c, &r, &calendar("UTC"), &history);
    let reminders: Vec<_> = steps
        .iter()
        .filter(|s| s.kind.is_reminder())
        .map(|s| (s.key.as_str(), s.fire_at, skip_of(s)))
        .collect();
    let snoozed = Some(SkipCode::Snoozed);
    assert_eq!(
        reminders,
        vec![
            ("remind@1795626000000", ts("2026-11-25T17:00:00Z"), snoozed),
            ("remind@1795705200000", ts("2026-11-26T15:00:00Z"), snoozed),
            ("snooze@1795708800000", ts("2026-11-26T16:00:00Z"), None),
            ("remind@1795712400000", ts("2026-11-26T17:00:00Z"), None),
            ("overdue#1@1795798800000", ts("2026-11-27T17:00:00Z"), None),
        ]
    );
    let (_, words) = steps[0].skip.as_ref().unwrap();
    assert_eq!(
        words,
        "reminders snoozed until Thu 26 Nov 09:00 by ana@example.com (by email link)"
    );
}

#[test]
fn a_snooze_that_swallows_nothing_adds_no_reminder_and_leaves_the_rest() {
    let c = commitment("2026-11-26T17:00:00Z");
    let r = full_rule();
    // Snoozed for an hour on Wednesday morning, between no two reminders.
    let history = snooze("2026-11-25T09:00:00Z", "2026-11-25T10:00:00Z");
    let steps = super::super::plan(&c, &r, &calendar("UTC"), &history);
    assert!(steps.iter().all(|s| s.skip.is_none()), "{steps:#?}");
    assert!(!steps.iter().any(|s| s.key.starts_with("snooze@")));
}

#[test]
fn a_snooze_touches_neither_the_customer_nor_the_team_nor_the_due_time() {
    let c = commitment("2026-11-26T12:00:00Z");
    let r = full_rule();
    let history = snooze("2026-11-25T09:00:00Z", "2026-11-27T09:00:00Z");
    let plain = super::super::plan(&c, &r, &calendar("UTC"), &History::default());
    let snoozed = super::super::plan(&c, &r, &calendar("UTC"), &history);
    for kind in [
        StepKind::CustomerUpdate,
        StepKind::Alert,
        StepKind::Escalate,
    ] {
        let before = of_kind(&plain, kind);
        let after = of_kind(&snoozed, kind);
        assert_eq!(before, after, "{kind}");
        assert!(after.iter().all(|s| s.skip.is_none()));
    }
}

#[test]
fn reconciling_a_snooze_retires_planned_reminders_and_a_shorter_one_revives_them() {
    let c = commitment("2026-11-26T17:00:00Z");
    let r = rule(&["-1d", "-2h", "0s"], None);
    let cal = calendar("UTC");
    let existing = stored(&plan(&c, &r, &cal), StepState::Planned);
    let history = snooze("2026-11-25T16:00:00Z", "2026-11-26T16:00:00Z");
    let snoozed = super::super::plan(&c, &r, &cal, &history);
    let changes = reconcile(&existing, snoozed, ts("2026-11-25T16:00:00Z"), None);
    let retired: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            StepChange::Retire { id, code, .. } => Some((*id, *code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        retired,
        vec![(1, SkipCode::Snoozed), (2, SkipCode::Snoozed)]
    );
    assert!(changes.iter().any(|c| matches!(
        c,
        StepChange::Add { step, skip: None } if step.key == "snooze@1795708800000"
    )));

    // Later the owner snoozes only until Wednesday 18:00: Thursday's 15:00 comes back.
    let mut after = existing.clone();
    for s in after.iter_mut().take(2) {
        s.state = StepState::Skipped;
        s.skip_code = Some("snoozed".into());
    }
    let shorter = snooze("2026-11-25T16:30:00Z", "2026-11-25T18:00:00Z");
    let fresh = super::super::plan(&c, &r, &cal, &shorter);
    let changes = reconcile(&after, fresh, ts("2026-11-25T16:30:00Z"), None);
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, StepChange::Revive { id: 2, .. })),
        "{changes:#?}"
    );
    assert!(
        !changes
            .iter()
            .any(|c| matches!(c, StepChange::Revive { id: 1, .. }))
    );
}

fn asking_rule(window_hours: i64) -> Rule {
    let mut r = full_rule();
    if let Some(update) = r.customer_update.as_mut() {
        update.ask_owner = Some(jiff::SignedDuration::from_hours(window_hours));
    }
    r
}

#[test]
fn the_owner_is_asked_the_window_before_the_update_goes() {
    // Due Thu 15:00; the update at 14:00; the owner asked 2 hours before, at 12:00.
    let c = commitment("2026-11-26T15:00:00Z");
    let steps = super::super::plan(
        &c,
        &asking_rule(2),
        &calendar("Europe/London"),
        &History::default(),
    );
    let update = of_kind(&steps, StepKind::CustomerUpdate)[0];
    let ask = of_kind(&steps, StepKind::AskOwner)[0];
    assert_eq!(update.fire_at, ts("2026-11-26T14:00:00Z"));
    assert_eq!(ask.key, "ask_owner#1");
    assert_eq!(ask.fire_at, ts("2026-11-26T12:00:00Z"));
    assert!(ask.skip.is_none() && update.skip.is_none());
}

#[test]
fn the_window_counts_back_from_when_the_update_really_goes() {
    // Due Wed 08:30: the update waits for 09:00, so the owner is asked at 07:00.
    let c = commitment("2026-11-25T08:30:00Z");
    let steps = super::super::plan(
        &c,
        &asking_rule(2),
        &calendar("Europe/London"),
        &History::default(),
    );
    assert_eq!(
        of_kind(&steps, StepKind::AskOwner)[0].fire_at,
        ts("2026-11-25T07:00:00Z")
    );
}

#[test]
fn a_held_update_is_skipped_with_its_words_and_so_is_the_question() {
    let c = commitment("2026-11-26T15:00:00Z");
    let history = History {
        held: vec![(
            "customer_update#1".into(),
            "held by ana@example.com (by email link): I called him".into(),
        )],
        ..History::default()
    };
    let steps = super::super::plan(&c, &asking_rule(2), &calendar("Europe/London"), &history);
    let update = of_kind(&steps, StepKind::CustomerUpdate)[0];
    let (code, words) = update.skip.clone().unwrap();
    assert_eq!(code, SkipCode::Held);
    assert_eq!(
        words,
        "held by ana@example.com (by email link): I called him"
    );
    assert_eq!(
        skip_of(of_kind(&steps, StepKind::AskOwner)[0]),
        Some(SkipCode::Held)
    );
    // The owner is still reminded at the due time as usual.
    assert!(
        of_kind(&steps, StepKind::Remind)
            .iter()
            .all(|s| s.skip.is_none())
    );
}

#[test]
fn an_update_sent_at_once_fires_when_asked_within_business_hours() {
    let c = commitment("2026-11-26T15:00:00Z");
    let now = History {
        send_now: vec![("customer_update#1".into(), ts("2026-11-26T12:05:00Z"))],
        ..History::default()
    };
    let steps = super::super::plan(&c, &asking_rule(2), &calendar("Europe/London"), &now);
    let update = of_kind(&steps, StepKind::CustomerUpdate)[0];
    assert_eq!(update.fire_at, ts("2026-11-26T12:05:00Z"));
    assert_eq!(update.planned_at, ts("2026-11-26T14:00:00Z"));
    assert_eq!(
        skip_of(of_kind(&steps, StepKind::AskOwner)[0]),
        Some(SkipCode::Replanned)
    );

    // Asked at 20:00, after hours: it goes when they open the next morning.
    let late = History {
        send_now: vec![("customer_update#1".into(), ts("2026-11-25T20:00:00Z"))],
        ..History::default()
    };
    let steps = super::super::plan(&c, &asking_rule(2), &calendar("Europe/London"), &late);
    assert_eq!(
        of_kind(&steps, StepKind::CustomerUpdate)[0].fire_at,
        ts("2026-11-26T09:00:00Z")
    );
}

#[test]
fn a_hold_or_send_now_of_another_update_changes_nothing() {
    let c = commitment("2026-11-26T15:00:00Z");
    let history = History {
        auto_updates: 1,
        held: vec![("customer_update#1".into(), "by ana".into())],
        send_now: vec![("customer_update#1".into(), ts("2026-11-20T10:00:00Z"))],
        ..History::default()
    };
    let steps = super::super::plan(&c, &asking_rule(2), &calendar("Europe/London"), &history);
    let update = of_kind(&steps, StepKind::CustomerUpdate)[0];
    assert_eq!(update.key, "customer_update#2");
    assert!(update.skip.is_none());
    assert_eq!(update.fire_at, ts("2026-11-26T14:00:00Z"));
}
