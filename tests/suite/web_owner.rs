//! The owner's answers from the email that change the plan: a snooze of the
//! reminders, and the owner's say before a customer update (hold it, send it now, or
//! let it go at its time), across a restart.

use crate::common;

use std::time::Duration;

use common::pages::*;
use common::{Env, http};

#[test]
fn a_snooze_skips_the_reminders_in_its_window_and_the_next_one_goes() {
    let env = Env::new(
        r#"
[[rule]]
name = "nagging"
match = {}
remind = ["0s"]
overdue_every = "3s"
overdue_max = 6
"#,
    );
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let _base = http::web_url(&daemon, Duration::from_secs(10));
    let id = env.add("Send quote for the boiler service", "+1s", &[]);
    env.advance(Duration::from_secs(1));
    let first = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);
    let link = link_for(&first, "snooze");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    let answer = submit_page(&link, &page, &[("choice", "at"), ("at", "+8s")])
        .pop()
        .unwrap();
    assert_eq!(
        actions_of(&env, id).last().map(|a| a.0.clone()),
        Some("snooze".to_string()),
        "{}",
        answer.text()
    );
    let until: i64 = env
        .db()
        .query_row(
            "SELECT snoozed_until FROM commitments WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    // The reminder at the snooze's end, and the first repeat after it, go.
    env.wait_planned(Duration::from_secs(10));
    common::wait_until(
        "the reminder after the snooze sent",
        Duration::from_secs(30),
        || {
            let steps = steps_of(&env, id);
            let after_end = steps
                .iter()
                .find(|s| s.fire_at > until && s.key.starts_with("overdue"))?;
            if after_end.state == "sent" {
                return Some(());
            }
            // The clock moves to the next step once the daemon is done with this one.
            if let Some(next) = env.next_step_at().filter(|next| *next > env.now()) {
                env.set_clock(next);
            }
            None
        },
    );
    let steps = steps_of(&env, id);
    let snoozed: Vec<_> = steps
        .iter()
        .filter(|s| s.skip_code.as_deref() == Some("snoozed"))
        .collect();
    assert!(
        !snoozed.is_empty(),
        "reminders in the window skipped: {steps:?}"
    );
    for step in &snoozed {
        assert_eq!(step.state, "skipped", "{step:?}");
        assert!(step.fire_at < until, "only those before the end: {step:?}");
        let reason = step.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("snoozed"), "{reason}");
    }
    for step in steps
        .iter()
        .filter(|s| s.fire_at < until && s.key.starts_with("overdue"))
    {
        assert_ne!(
            step.state, "sent",
            "a reminder in the window went: {steps:?}"
        );
    }
    let at_end = steps
        .iter()
        .find(|s| s.key.starts_with("snooze@"))
        .unwrap_or_else(|| panic!("a reminder at the snooze's end: {steps:?}"));
    assert_eq!(at_end.state, "sent", "{steps:?}");
}

/// The owner's say before a customer update: asked 10 s before the update goes.
const ASK_OWNER: &str = r#"
[[rule]]
name = "ask"
match = {}
remind = ["0s"]
customer_update = { at = "-1s", extend_by = "1d", max = 1, ask_owner = "10s" }
"#;

#[test]
fn the_owner_asked_before_an_update_can_hold_it_send_it_now_or_let_it_go() {
    let env = Env::new(ASK_OWNER);
    let start = common::monday_morning();
    env.use_test_clock(start);
    let daemon = env.start();
    let _base = http::web_url(&daemon, Duration::from_secs(10));
    let held = env.add_for("Joe Mensah <joe@example.org>", "Held repair", "+14s");
    let sent_now = env.add_for("Kofi Boateng <kofi@example.org>", "Urgent repair", "+14s");
    let left = env.add_for("Ama Owusu <ama@example.org>", "Plain repair", "+14s");
    let planned_update = |id: i64| {
        steps_of(&env, id)
            .into_iter()
            .find(|s| s.key == "customer_update#1")
            .map(|s| common::from_epoch_ms(s.fire_at))
    };
    env.wait_planned(Duration::from_secs(10));
    let left_goes_at = planned_update(left).expect("an update planned");
    // The owner is asked 10 s before the update at -1s.
    env.set_clock(start + jiff::SignedDuration::from_secs(3));

    // Three notices to the owner, each naming the customer and what they will be told.
    let notices = env
        .smtp
        .wait_until("the owner's three notices", Duration::from_secs(20), |m| {
            m.iter()
                .filter(|m| m.to.iter().any(|t| t == "ana@example.com"))
                .count()
                >= 3
        });
    let notice = |title: &str| {
        notices
            .iter()
            .find(|m| m.text().contains(title))
            .cloned()
            .unwrap_or_else(|| panic!("no notice about {title}"))
    };
    let held_notice = notice("Held repair");
    let text = held_notice.text();
    assert!(text.contains("Joe Mensah will be told"), "{text}");
    for action in ["send_now", "hold", "delay", "done"] {
        link_for(&held_notice, action);
    }
    assert!(
        env.smtp
            .messages()
            .iter()
            .all(|m| m.to.iter().all(|t| t == "ana@example.com")),
        "no customer was told before the owner's say"
    );

    // Hold it, with the owner's words.
    let link = link_for(&held_notice, "hold");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    submit_page(&link, &page, &[("reason", "I called him")]);
    assert_eq!(
        actions_of(&env, held).last(),
        Some(&(
            "hold".to_string(),
            Some("ana@example.com".to_string()),
            Some("web".to_string())
        ))
    );
    // Send the other now: it goes at once, long before its time.
    let urgent = notice("Urgent repair");
    let link = link_for(&urgent, "send_now");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    submit_page(&link, &page, &[]);
    // Recorded from the page; the daemon may already have added its own record of
    // the update it then sent.
    let acts = actions_of(&env, sent_now);
    assert!(
        acts.iter()
            .any(|a| (a.0.as_str(), a.2.as_deref()) == ("send_now", Some("web"))),
        "{acts:?}"
    );
    let planned_then = planned_update(left).unwrap();
    env.smtp
        .wait_until("the update sent at once", Duration::from_secs(10), |m| {
            m.iter()
                .any(|m| m.to.iter().any(|t| t == "kofi@example.org"))
        });
    // The clock has not moved since the notices: it went long before its time.
    assert!(
        std::time::SystemTime::from(env.now()) < planned_then,
        "sent before its planned time"
    );

    // A restart in between changes none of it.
    assert!(daemon.stop().success());
    let daemon = env.start();
    let _ = http::web_url(&daemon, Duration::from_secs(10));

    // Unanswered, the third goes at its time (not a second before); the held one's
    // owner is reminded at the due time as usual, and its customer hears nothing.
    let left_goes = jiff::Timestamp::try_from(left_goes_at).unwrap();
    env.set_clock(left_goes - jiff::SignedDuration::from_secs(1));
    env.wait_idle(Duration::from_secs(10));
    let to_ama = |m: &common::Received| m.to.iter().any(|t| t == "ama@example.org");
    assert!(
        !env.smtp.messages().iter().any(to_ama),
        "not before its time"
    );
    env.set_clock(start + jiff::SignedDuration::from_secs(14));
    env.smtp
        .wait_until("the unanswered update", Duration::from_secs(30), |m| {
            m.iter()
                .any(|m| m.to.iter().any(|t| t == "ama@example.org"))
        });
    env.wait_timeline_done(held, Duration::from_secs(30));
    let all = env.smtp.messages();
    let ama: Vec<_> = all
        .iter()
        .filter(|m| m.to.iter().any(|t| t == "ama@example.org"))
        .collect();
    assert_eq!(ama.len(), 1, "the unanswered update went once");
    assert_eq!(
        all.iter()
            .filter(|m| m.to.iter().any(|t| t == "kofi@example.org"))
            .count(),
        1,
        "the update sent at once went once"
    );
    assert!(
        !all.iter()
            .any(|m| m.to.iter().any(|t| t == "joe@example.org")),
        "the held update was never sent"
    );
    let held_step = steps_of(&env, held)
        .into_iter()
        .find(|s| s.key == "customer_update#1")
        .unwrap();
    assert_eq!(held_step.state, "skipped", "{held_step:?}");
    assert_eq!(
        held_step.skip_code.as_deref(),
        Some("held"),
        "{held_step:?}"
    );
    assert!(
        held_step
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("I called him"),
        "{held_step:?}"
    );
    assert!(
        all.iter()
            .any(|m| m.to.iter().any(|t| t == "ana@example.com")
                && m.text().contains("Held repair")
                && !m.text().contains("will be told")),
        "the held one's owner reminded at the due time"
    );
}
