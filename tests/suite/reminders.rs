//! The backbone, end to end: the real binary, a real SQLite file and a real SMTP server
//! on 127.0.0.1. Deadlines are seconds away.

use crate::common;
use common::store::Store;

use std::time::{Duration, SystemTime};

use common::{Env, seconds_between, system_time, wait_until};

/// How early a message may arrive by the test's clock and still count as sent at or
/// after its time: the host steps the wall clock by a few milliseconds now and then.
/// How late it arrives is measured by bench/run.sh (precision, windows), not here.
const CLOCK_STEPS: f64 = 0.05;

const FAST_RULE: &str = r#"
[[rule]]
name = "fast"
remind = ["-3s", "0s"]
overdue_every = "2s"
overdue_max = 2
"#;

fn steps_with_state<'a>(shown: &'a serde_json::Value, state: &str) -> Vec<&'a serde_json::Value> {
    shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == state)
        .collect()
}

fn a_commitment_due_in_seconds_gets_each_reminder_in_order_once_its_time_comes(store: Store) {
    let env = Env::on(store, FAST_RULE);
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let id = env.add(
        "Send quote for the boiler service",
        "+5s",
        &["--kind", "quote", "--note", "asked for two options"],
    );

    // -3s, 0s, then two overdue repeats: four mails; the cap stops a fifth. The clock
    // goes to a second before each step, where nothing more has arrived, then to it.
    env.wait_planned(Duration::from_secs(10));
    let mut sent_so_far = 0;
    while let Some(next) = env.next_step_at() {
        env.set_clock(next - jiff::SignedDuration::from_secs(1));
        env.wait_idle(Duration::from_secs(10));
        assert_eq!(
            env.smtp.messages().len(),
            sent_so_far,
            "a reminder before its time"
        );
        env.set_clock(next);
        sent_so_far += 1;
        env.smtp
            .wait_until("the reminder at its time", Duration::from_secs(10), |got| {
                got.len() >= sent_so_far
            });
        env.wait_idle(Duration::from_secs(10));
    }
    env.advance(Duration::from_secs(3600));
    env.wait_idle(Duration::from_secs(10));
    let got = env.smtp.messages();
    assert_eq!(got.len(), 4, "overdue_max caps the repeats");

    let shown = env.show(id);
    let sent = steps_with_state(&shown, "sent");
    assert_eq!(sent.len(), 4, "{shown:#}");
    assert!(
        steps_with_state(&shown, "planned").is_empty(),
        "no fifth is planned: {shown:#}"
    );
    let first = &got[0];
    assert_eq!(first.to, vec!["ana@example.com"]);
    assert_eq!(first.from, "followup@example.com");
    assert!(
        first
            .subject()
            .starts_with("Due in less than a minute: Send quote for the boiler service"),
        "{}",
        first.subject()
    );
    assert!(
        got[1].subject().starts_with("Due now: "),
        "{}",
        got[1].subject()
    );
    assert!(
        got[2].subject().starts_with("Overdue by "),
        "{}",
        got[2].subject()
    );
    let body = first.text();
    for needle in [
        "Send quote for the boiler service",
        "Joe Mensah <joe@example.org>",
        "asked for two options",
        &format!("commitment #{id}"),
        "Done:    http://127.0.0.1:",
        "GMT",
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    let parsed = first.parsed();
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    // One thread: the first message starts it, the others refer to it.
    let root = parsed.message_id().unwrap().to_string();
    for later in &got[1..] {
        let p = later.parsed();
        assert_ne!(p.message_id().unwrap(), root);
        assert_eq!(p.in_reply_to().as_text(), Some(root.as_str()));
    }
    assert!(daemon.stop().success());
}

fn done_stops_every_later_reminder(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "nag"
remind = ["0s"]
overdue_every = "2s"
overdue_max = 10
"#,
    );
    let daemon = env.start();
    let id = env.add("Call back about the invoice", "+2s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    let out = env.cli_ok(&["done", &id.to_string()]);
    assert!(out.contains("done"), "{out}");
    env.wait_idle(Duration::from_secs(10));
    let after = env.smtp.messages().len();
    assert!(
        after <= 2,
        "at most the reminder in flight while marking done; got {after}"
    );

    let shown = env.show(id);
    assert_eq!(shown["commitment"]["status"], "done");
    assert!(shown["commitment"]["done_at"].is_string());
    let skipped = steps_with_state(&shown, "skipped");
    assert!(skipped.len() >= 8, "{shown:#}");
    assert!(
        skipped
            .iter()
            .all(|s| s["reason"].as_str().unwrap().contains("marked done"))
    );
    assert!(steps_with_state(&shown, "planned").is_empty());
    assert!(daemon.stop().success());
}

fn a_reminder_composed_ahead_leaves_at_its_time_or_not_at_all_once_done(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let kept = env.add("Quote for ACME", "+4s", &[]);
    let done = env.add("Call Mr. Joe back", "+4s", &[]);
    // Due within the lead: both are composed at once and wait in the outbox.
    let waiting = |id: i64| {
        let shown = env.show(id);
        shown["timeline"][0]["state"] == "queued"
            && shown["deliveries"].as_array().unwrap().len() == 1
    };
    // Seen before their time (+4s), or the check below means nothing.
    wait_until("both composed ahead", Duration::from_secs(3), || {
        (waiting(kept) && waiting(done)).then_some(())
    });
    assert!(
        env.smtp.messages().is_empty(),
        "nothing leaves before its time"
    );
    env.cli_ok(&["done", &done.to_string()]);

    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    let got_all = env.smtp.messages();
    assert_eq!(got_all.len(), 1, "only the open commitment's reminder");
    assert!(got[0].subject().contains("Quote for ACME"));
    let step = &env.show(kept)["timeline"][0];
    let lateness = seconds_between(system_time(&step["fire_at"]), got[0].at);
    assert!(
        lateness >= -CLOCK_STEPS,
        "arrived {:.3}s before its planned time",
        -lateness
    );
    let shown = env.show(done);
    assert_eq!(shown["timeline"][0]["state"], "skipped", "{shown:#}");
    assert!(
        shown["timeline"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("marked done")
    );
    assert!(
        shown["deliveries"].as_array().unwrap().is_empty(),
        "the email composed ahead was taken back"
    );
    assert!(daemon.stop().success());
}

fn a_row_inserted_by_another_program_is_picked_up_while_the_daemon_runs(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let mut db = env.sql();
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    db.execute(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, kind)
         VALUES ('Tell Mr. Joe about his order', 'ana@example.com',
                 'Joe Mensah <joe@example.org>', '{due}', 'callback')"
    ));
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "the CRM's row got its reminder");
    let lateness = seconds_between(SystemTime::from(due), got[0].at);
    assert!(
        lateness >= -CLOCK_STEPS,
        "arrived {:.3}s before due",
        -lateness
    );

    // A row due now is emailed (how soon after the commit: bench/run.sh windows).
    let written = SystemTime::now();
    db.execute(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at)
         VALUES ('Ring back', 'ana@example.com', 'joe@example.org', '{}')",
        jiff::Timestamp::now()
    ));
    let got = env.smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(got.len(), 2);
    assert!(
        got[1].subject().contains("Ring back"),
        "{}",
        got[1].subject()
    );
    assert!(got[1].at >= written);
    assert!(daemon.stop().success());
}

fn a_bad_row_from_another_program_is_reported_and_the_others_still_served(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    env.sql().execute(
        "INSERT INTO commitments (title, owner, customer, due_at)
         VALUES ('Broken', 'not-an-address', NULL, 'next tuesday')",
    );
    let id = env.add("Fine one", "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert!(got[0].subject().contains("Fine one"));
    let listed = env.cli_ok(&["list"]);
    assert!(listed.contains("PROBLEM"), "{listed}");
    let shown = env.show(id - 1);
    let problem = shown["commitment"]["problem"].as_str().unwrap();
    for needle in ["owner", "customer", "due_at"] {
        assert!(problem.contains(needle), "{problem}");
    }
    assert!(daemon.stop().success());
}

fn a_reminder_already_past_when_added_is_skipped_with_its_reason_not_sent_late(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"std\"\nremind = [\"-1d\", \"-2h\", \"0s\"]\n",
    );
    let daemon = env.start();
    let id = env.add("Quote for ACME", "+2s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    assert_eq!(env.smtp.messages().len(), 1, "only the 0s reminder");
    assert!(got[0].subject().starts_with("Due now"));
    let shown = env.show(id);
    let skipped = steps_with_state(&shown, "skipped");
    assert_eq!(skipped.len(), 2);
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .contains("had already passed")
    );
    assert!(daemon.stop().success());
}

#[test]
fn the_file_transport_writes_parseable_eml_files() {
    let env = Env::new("[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let outbox = env.root.path().join("outbox");
    env.write_config(
        "followup.toml",
        &format!(
            "[store]\npath = \"{}\"\n[mail]\nfrom = \"Followup <followup@example.com>\"\ntransport = \"file\"\n[mail.file]\ndir = \"{}\"\n",
            env.db_path().display(),
            outbox.display()
        ),
    );
    let daemon = env.start();
    let id = env.add("Zoë's quote", "+1s", &["--ref", "CRM-42"]);
    let file = wait_until("an .eml file written", Duration::from_secs(10), || {
        std::fs::read_dir(&outbox).ok().and_then(|mut d| {
            d.find_map(|e| {
                e.ok()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            })
        })
    });
    let bytes = std::fs::read(&file).unwrap();
    let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(message.subject(), Some("Due now: Zoë's quote"));
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("followup@example.com")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("ana@example.com")
    );
    assert!(message.message_id().is_some());
    assert!(message.body_text(0).unwrap().contains("CRM-42"));
    let shown = env.show(id);
    assert_eq!(shown["deliveries"][0]["state"], "sent");
    assert!(daemon.stop().success());
}

fn check_config_points_at_the_broken_place_and_run_refuses_it(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"x\"\nremind = [\"-1d\", \"at noon\"]\n",
    );
    let out = env.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected = format!("{}:3:", env.config_dir().join("rules.toml").display());
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(stdout.contains("'at noon' is not an offset"), "{stdout}");

    let out = env.cli(&["run"]);
    assert_eq!(out.status.code(), Some(78), "run refuses a broken config");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));

    env.write_config("rules.toml", "[[rule]]\nname = \"x\"\nremind = [\"-1d\"]\n");
    assert!(env.cli(&["check-config"]).status.success());
}

fn bad_command_line_input_gets_a_clear_error(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"quotes\"\nmatch = { kind = \"quote\" }\nremind = [\"0s\"]\n",
    );
    let cases: &[(&[&str], &str)] = &[
        (&["--owner", "ana at example", "--due", "+1h"], "--owner"),
        (&["--owner", "ana@example.com", "--due", "friday"], "--due"),
        (
            &[
                "--owner",
                "ana@example.com",
                "--due",
                "+1h",
                "--tz",
                "Mars/Base",
            ],
            "--tz",
        ),
        (
            &[
                "--owner",
                "ana@example.com",
                "--due",
                "+1h",
                "--kind",
                "callback",
            ],
            "no rule matches kind 'callback'",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["add", "--title", "T", "--customer", "joe@example.org"];
        args.extend_from_slice(extra);
        if !extra.contains(&"--kind") {
            args.extend_from_slice(&["--kind", "quote"]);
        }
        let out = env.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = env.cli(&["done", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no commitment with id 999"));
}

on_both_stores!(
    a_row_inserted_by_another_program_is_picked_up_while_the_daemon_runs,
    a_bad_row_from_another_program_is_reported_and_the_others_still_served,
    a_commitment_due_in_seconds_gets_each_reminder_in_order_once_its_time_comes,
    done_stops_every_later_reminder,
    a_reminder_composed_ahead_leaves_at_its_time_or_not_at_all_once_done,
    a_reminder_already_past_when_added_is_skipped_with_its_reason_not_sent_late,
    check_config_points_at_the_broken_place_and_run_refuses_it,
    bad_command_line_input_gets_a_clear_error,
);
