//! The verbs of the follow-ups a service business runs: the promise in the customer's
//! words, closing a commitment with its outcome, waiting on the customer and resuming,
//! from the command line and from the links in the owner's mail. Real binary, real
//! SQLite file, real SMTP server and real HTTP on 127.0.0.1.

use crate::common;
use common::store::Store;

use std::time::Duration;

use common::pages::*;
use common::{Env, http};
use followup::web::link::Action;

/// Updates the customer: its commitments' customer mail says the promise, else the title.
const MAILS_CUSTOMER: &str = r#"[[rule]]
name = "orders"
match = { kind = "order-info" }
customer_update = { at = "-1h", extend_by = "1d", max = 1 }

[[rule]]
name = "internal"
remind = ["-1h"]
"#;

/// The stderr of a command that succeeded.
fn stderr_ok(env: &Env, args: &[&str]) -> (String, String) {
    let out = env.cli(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "followup {args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

fn add_args<'a>(title: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "add",
        "--title",
        title,
        "--owner",
        "Ana Ruiz <ana@example.com>",
        "--customer",
        "Joe Mensah <joe@example.org>",
        "--due",
        "+2d",
    ];
    args.extend_from_slice(extra);
    args
}

fn a_promise_is_recorded_shown_edited_and_carried_through_csv(store: Store) {
    let env = Env::on(store, MAILS_CUSTOMER);
    let (out, warned) = stderr_ok(
        &env,
        &add_args(
            "Tell Joe when his pump arrives",
            &[
                "--kind",
                "order-info",
                "--promise",
                "information on your order 1234",
            ],
        ),
    );
    let kept: i64 = out.trim().parse().unwrap();
    assert!(!warned.contains("promise"), "{warned}");
    let shown = env.cli_ok(&["show", &kept.to_string()]);
    assert!(
        shown.contains("promise:  information on your order 1234"),
        "{shown}"
    );
    assert_eq!(
        env.show(kept)["commitment"]["promise"],
        "information on your order 1234"
    );

    // Without one, under a rule that mails the customer: a warning naming the rule and
    // the commitment, and `show` marks it.
    let (out, warned) = stderr_ok(
        &env,
        &add_args("Pump for Mr Mensah", &["--kind", "order-info"]),
    );
    let bare: i64 = out.trim().parse().unwrap();
    assert!(
        warned.contains(&format!(
            "commitment {bare} ('Pump for Mr Mensah') has no promise"
        )) && warned.contains("the rule 'orders' mails the customer"),
        "{warned}"
    );
    let shown = env.cli_ok(&["show", &bare.to_string()]);
    assert!(
        shown.contains("promise:  none (customer mail uses the title)"),
        "{shown}"
    );
    // A rule that writes only to the owner needs no promise.
    let (_, warned) = stderr_ok(&env, &add_args("Order the valve", &[]));
    assert!(!warned.contains("promise"), "{warned}");

    // Edited: a revision, and the mark is gone.
    let edited = env.cli_ok(&["edit", &bare.to_string(), "--promise", "news of your pump"]);
    assert!(
        edited.contains("promise: (none) -> 'news of your pump'"),
        "{edited}"
    );
    let shown = env.show(bare);
    assert_eq!(shown["commitment"]["promise"], "news of your pump");
    assert_eq!(shown["promise_missing"], false);
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.last().unwrap()["changes"][0]["field"], "promise");

    // Export has the column; import reads it back, and warns for a line without one.
    let exported = env.cli_ok(&["export"]);
    let header = exported.lines().next().unwrap();
    assert!(header.split(',').any(|c| c == "promise"), "{header}");
    assert!(
        exported.contains("information on your order 1234"),
        "{exported}"
    );
    let csv = env.root.path().join("in.csv");
    std::fs::write(
        &csv,
        "title,owner,customer,due,kind,promise\n\
         Boiler parts,ana@example.com,joe@example.org,+3d,order-info,news of your boiler parts\n\
         Valve for Joe,ana@example.com,joe@example.org,+3d,order-info,\n",
    )
    .unwrap();
    let (out, warned) = stderr_ok(&env, &["import", csv.to_str().unwrap()]);
    assert!(out.contains("imported 2 commitments"), "{out}");
    assert!(
        warned.contains("in.csv:3: warning: line 3 ('Valve for Joe') has no promise")
            && warned.contains("'orders'"),
        "{warned}"
    );
    assert!(!warned.contains("in.csv:2:"), "{warned}");
    let promises = env.sql().column(
        "SELECT promise FROM commitments WHERE title IN ('Boiler parts', 'Valve for Joe') ORDER BY id",
    );
    assert_eq!(
        promises,
        vec![Some("news of your boiler parts".to_string()), None]
    );
}

fn close_marks_done_records_the_outcome_and_twice_says_how_it_ended(store: Store) {
    let env = Env::on(store, MAILS_CUSTOMER);
    let quote = env.add("Quote for the roof", "+2d", &[]);
    let id = quote.to_string();
    let env_user = [("USER", "ana"), ("SUDO_USER", "")];
    let closed = common::succeeded(
        "close",
        env.cli_with(&["close", &id, "--outcome", "won"], &env_user),
    );
    assert!(
        closed.contains(&format!("commitment {quote} is done")),
        "{closed}"
    );
    assert!(
        closed.contains(&format!("commitment {quote} is closed won")),
        "{closed}"
    );
    let shown = env.show(quote);
    assert_eq!(shown["commitment"]["status"], "done");
    assert_eq!(shown["commitment"]["outcome"], "won");
    assert!(shown["commitment"]["closed_at"].is_string(), "{shown}");
    assert!(shown["commitment"]["done_at"].is_string(), "{shown}");
    let actions: Vec<(String, String, String)> = shown["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (text("action"), text("actor"), text("via"))
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            ("done".into(), "ana".into(), "cli".into()),
            ("close".into(), "ana".into(), "cli".into())
        ]
    );
    let text = env.cli_ok(&["show", &id]);
    assert!(text.contains("closed:   won on "), "{text}");
    assert!(
        !text.contains("closed:   won on 20"),
        "shown as a local time: {text}"
    );

    // Twice, even with another outcome: nothing changes, and it says how it ended.
    let again = common::succeeded(
        "close again",
        env.cli_with(&["close", &id, "--outcome", "lost"], &env_user),
    );
    assert!(
        again.contains(&format!("commitment {quote}: already closed won on "))
            && again.contains("by ana (by command)"),
        "{again}"
    );
    assert_eq!(env.show(quote)["commitment"]["outcome"], "won");
    assert_eq!(env.show(quote)["revisions"].as_array().unwrap().len(), 2);

    // A done commitment is closed without a second done.
    let fixed = env.add("Fix the gutter", "+2d", &[]);
    env.cli_ok(&["done", &fixed.to_string()]);
    env.cli_ok(&["close", &fixed.to_string(), "--outcome", "resolved"]);
    let shown = env.show(fixed);
    assert_eq!(shown["commitment"]["outcome"], "resolved");
    assert_eq!(shown["revisions"].as_array().unwrap().len(), 2);

    // A cancelled one cannot be closed; a bad outcome is a usage error naming it.
    let dropped = env.add("Quote for the shed", "+2d", &[]);
    env.cli_ok(&["cancel", &dropped.to_string()]);
    let refused = env.cli_fails(&["close", &dropped.to_string(), "--outcome", "lost"]);
    assert!(
        refused.contains(&format!("commitment {dropped} is cancelled")),
        "{refused}"
    );
    let bad = env.cli(&["close", &id, "--outcome", "maybe"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("outcome 'maybe' is not one of won, lost, resolved, no-answer"),
        "{said}"
    );
}

fn wait_pauses_and_resume_moves_the_due_time_by_the_time_waited(store: Store) {
    let env = Env::on(store, MAILS_CUSTOMER);
    let job = env.add("Repair the boiler", "+2d", &["--kind", "order-info"]);
    let id = job.to_string();
    let due_before: jiff::Timestamp = env.show(job)["commitment"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let paused = env.cli_ok(&["wait", &id, "--reason", "waiting for photos"]);
    assert!(
        paused.contains(&format!(
            "commitment {job} waits on the customer (waiting for photos)"
        )),
        "{paused}"
    );
    let shown = env.show(job);
    assert!(shown["commitment"]["waiting_since"].is_string(), "{shown}");
    assert!(
        env.cli_ok(&["show", &id])
            .contains("waiting:  on the customer since")
    );
    let again = env.cli_ok(&["wait", &id, "--reason", "photos"]);
    assert!(
        again.contains(&format!(
            "commitment {job}: already waiting on the customer since "
        )) && again.contains(": waiting for photos"),
        "{again}"
    );

    // Two hours of waiting, as if the wait began then.
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2);
    env.sql().execute(&format!(
        "UPDATE commitments SET waiting_since = '{since}' WHERE id = {job}"
    ));
    let resumed = env.cli_ok(&["resume", &id]);
    assert!(
        resumed.contains("resumed after waiting 2 hours"),
        "{resumed}"
    );
    assert!(
        resumed.contains(&format!("commitment {job} is now due "))
            && resumed.contains("the customer is not told"),
        "{resumed}"
    );
    let shown = env.show(job);
    assert!(shown["commitment"]["waiting_since"].is_null(), "{shown}");
    let due_after: jiff::Timestamp = shown["commitment"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let moved = due_before.duration_until(due_after);
    assert!(
        moved >= jiff::SignedDuration::from_hours(2) && moved < jiff::SignedDuration::from_hours(3),
        "moved by {moved:?}"
    );
    let last = shown["revisions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "resume");
    assert_eq!(last["notify"], false);

    // Twice: says when it resumed; never waited: says how to wait.
    let again = env.cli_ok(&["resume", &id]);
    assert!(
        again.contains(&format!("commitment {job}: already resumed on ")),
        "{again}"
    );
    let other = env.add("Quote for the porch", "+2d", &[]);
    let refused = env.cli_fails(&["resume", &other.to_string()]);
    assert!(
        refused.contains(&format!(
            "commitment {other} is not waiting on the customer"
        )),
        "{refused}"
    );
    // Only an open commitment waits.
    env.cli_ok(&["done", &other.to_string()]);
    let refused = env.cli_fails(&["wait", &other.to_string(), "--reason", "photos"]);
    assert!(
        refused.contains("only open commitments can be paused"),
        "{refused}"
    );
}

fn the_links_in_a_reminder_wait_resume_and_close_and_a_get_changes_nothing(store: Store) {
    let env = Env::on(store, REMIND);
    let daemon = env.start();
    let base = http::web_url(&daemon, Duration::from_secs(10));
    let id = env.add("Quote for the roof", "+1s", &[]);
    let reminder = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);
    env.wait_idle(Duration::from_secs(20));

    // Wait, from the reminder: the page shows a form and changes nothing; its POST waits.
    let wait = link_for(&reminder, "wait");
    let before = store_snapshot(&env);
    let page = http::get(&wait);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.text().contains("What you are waiting for"),
        "{}",
        page.text()
    );
    assert_eq!(store_snapshot(&env), before, "a GET changed the store");
    let answer = submit_page(&wait, &page, &[("reason", "waiting for photos")])
        .pop()
        .unwrap();
    assert!(
        answer.text().contains("waits on the customer"),
        "{}",
        answer.text()
    );
    let web = (Some("ana@example.com".to_string()), Some("web".to_string()));
    assert_eq!(
        actions_of(&env, id).last(),
        Some(&("wait".to_string(), web.0.clone(), web.1.clone()))
    );
    let again = http::get(&wait).text();
    assert!(
        again.contains("Already waiting on the customer since"),
        "{again}"
    );

    // Resume: shows since when and why, then moves the due time.
    let resume = signed_link(
        &env,
        &base,
        id,
        Action::Resume,
        jiff::SignedDuration::from_hours(1),
    );
    let page = http::get(&resume);
    assert!(
        page.text().contains("Waiting on the customer since")
            && page.text().contains("waiting for photos"),
        "{}",
        page.text()
    );
    let answer = submit_page(&resume, &page, &[]).pop().unwrap();
    assert!(answer.text().contains("is now due"), "{}", answer.text());
    assert_eq!(
        actions_of(&env, id).last(),
        Some(&("resume".to_string(), web.0.clone(), web.1.clone()))
    );
    assert!(env.show(id)["commitment"]["waiting_since"].is_null());

    // Close, from the reminder: pick the outcome; twice says how it ended.
    let close = link_for(&reminder, "close");
    let page = http::get(&close);
    assert!(page.text().contains("How did it end?"), "{}", page.text());
    let answer = submit_page(&close, &page, &[("outcome", "won")])
        .pop()
        .unwrap();
    assert!(answer.text().contains("closed won"), "{}", answer.text());
    let shown = env.show(id);
    assert_eq!(shown["commitment"]["status"], "done");
    assert_eq!(shown["commitment"]["outcome"], "won");
    let again = http::get(&close).text();
    assert!(again.contains("Already closed won on"), "{again}");
    let posted = http::forms_in(&page.text())
        .into_iter()
        .find(|f| f.method == "post")
        .unwrap();
    let mut lost = posted.clone();
    lost.set("outcome", "lost");
    let answer = lost.submit(&close, None);
    assert!(
        answer.text().contains("Already closed won on"),
        "{}",
        answer.text()
    );
    assert_eq!(env.show(id)["commitment"]["outcome"], "won");
}

fn while_waiting_the_reminder_is_skipped_and_after_resume_it_goes(store: Store) {
    let env = Env::on(store, REMIND);
    let id = env.add("Quote for the roof", "+3s", &[]);
    env.cli_ok(&["wait", &id.to_string(), "--reason", "waiting for photos"]);
    let _daemon = env.start();
    let skipped = common::wait_until(
        "the reminder skipped while waiting",
        Duration::from_secs(20),
        || {
            steps_of(&env, id)
                .into_iter()
                .find(|s| s.skip_code.as_deref() == Some("waiting") && s.state == "skipped")
        },
    );
    let reason = skipped.reason.unwrap_or_default();
    assert!(
        reason.contains("waiting on the customer since") && reason.contains("waiting for photos"),
        "{reason}"
    );
    assert!(env.smtp.messages().is_empty(), "nothing goes while waiting");
    env.cli_ok(&["resume", &id.to_string()]);
    let reminder = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);
    assert!(
        reminder.subject().contains("Quote for the roof"),
        "{}",
        reminder.subject()
    );
}

on_both_stores!(
    close_marks_done_records_the_outcome_and_twice_says_how_it_ended,
    the_links_in_a_reminder_wait_resume_and_close_and_a_get_changes_nothing,
    while_waiting_the_reminder_is_skipped_and_after_resume_it_goes,
    a_promise_is_recorded_shown_edited_and_carried_through_csv,
    wait_pauses_and_resume_moves_the_due_time_by_the_time_waited,
);
