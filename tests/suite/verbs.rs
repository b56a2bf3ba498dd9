//! The verbs people reach for: commitments named by their CRM reference, customers found
//! by part of a name, one stored email printed as it was sent, corrections with `edit`,
//! a dry run that says so, and the report. Real binary, real SQLite file, real SMTP
//! server on 127.0.0.1.

use crate::common;
use common::store::{Store, lit};

use std::time::Duration;

use common::Env;

const QUIET_RULE: &str = "[[rule]]\nname = \"quiet\"\n";

const REMIND_NOW: &str = "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n";

/// The stderr of a command that must have failed with exit code 1.
fn failed(env: &Env, args: &[&str]) -> String {
    let out = env.cli(args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "followup {args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `ready` holds for the commitment's `show --format json`; panics, naming
/// `what`, after 20 s.
fn wait_shown(env: &Env, id: i64, what: &str, ready: impl Fn(&serde_json::Value) -> bool) {
    let what = format!("a {what} in `show` of commitment {id}");
    common::wait_until(&what, Duration::from_secs(20), || {
        ready(&env.show(id)).then_some(())
    });
}

fn a_commitment_is_named_by_its_crm_reference_wherever_an_id_is_taken(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let job = env.add("Fit the boiler", "+2d", &["--ref", "JOB-2291"]);
    let shown = env.cli_ok(&["show", "--ref", "JOB-2291"]);
    assert!(
        shown.starts_with(&format!("Commitment {job}: Fit the boiler")),
        "{shown}"
    );
    env.cli_ok(&["note", "--ref", "JOB-2291", "bring the long ladder"]);
    env.cli_ok(&[
        "delay",
        "--ref",
        "JOB-2291",
        "--until",
        "+3d",
        "--reason",
        "the part is late",
        "--no-notify",
    ]);
    env.cli_ok(&["preview", "--ref", "JOB-2291"]);
    env.cli_ok(&["done", "--ref", "JOB-2291"]);
    let shown = env.show(job);
    assert_eq!(shown["commitment"]["status"], "done");
    assert!(
        shown["commitment"]["note"]
            .as_str()
            .unwrap()
            .contains("long ladder")
    );
    // The delay and the done, each a revision.
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[1]["action"], "done");

    let unknown = failed(&env, &["done", "--ref", "JOB-9999"]);
    assert!(
        unknown.contains("no commitment has --ref 'JOB-9999'"),
        "{unknown}"
    );
    let first = env.add("Quote for the roof", "+2d", &["--ref", "CRM-7"]);
    let second = env.add("Quote for the gutters", "+2d", &["--ref", "CRM-7"]);
    let shared = failed(&env, &["cancel", "--ref", "CRM-7"]);
    assert!(
        shared.contains(&format!("shared by commitments {first}, {second}")),
        "{shared}"
    );
    let both = env.cli(&["done", "1", "--ref", "CRM-7"]);
    assert_eq!(both.status.code(), Some(2), "an id and a --ref at once");
}

fn list_customer_finds_a_customer_by_part_of_the_name_in_any_case(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let job = env.add("Fit the boiler", "+2d", &[]);
    env.cli_ok(&[
        "add",
        "--title",
        "Other customer",
        "--owner",
        "ana@example.com",
        "--customer",
        "Zoe Hughes <zoe@example.net>",
        "--due",
        "+1d",
    ]);
    for text in ["mensah", "JOE", "joe@example", "Joe Mensah"] {
        let history: serde_json::Value =
            serde_json::from_str(&env.cli_ok(&["list", "--customer", text, "--format", "json"]))
                .unwrap();
        let ids: Vec<i64> = history["commitments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids, [job], "{text}: {history:#}");
        assert_eq!(history["customer"], "joe@example.org", "{text}");
    }
    let both = env.cli_ok(&["list", "--customer", "example"]);
    assert!(
        both.contains("Commitments to joe@example.org, zoe@example.net:")
            && both.contains("Zoe Hughes"),
        "{both}"
    );
    let none = failed(&env, &["list", "--customer", "nobody"]);
    assert!(none.contains("'nobody'"), "{none}");
}

fn show_email_prints_the_stored_message_as_the_relay_received_it(store: Store) {
    let env = Env::on(store, REMIND_NOW);
    let daemon = env.start();
    let id = env.add("Call back about the leak", "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    wait_shown(&env, id, "sent email", |s| {
        s["deliveries"][0]["state"] == "sent"
    });
    let email = env.show(id)["deliveries"][0]["id"].as_i64().unwrap();
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(table.contains("  EMAIL  WHEN"), "{table}");
    let out = env.cli(&["show", &id.to_string(), "--email", &email.to_string()]);
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    let received = String::from_utf8_lossy(&got[0].data);
    assert_eq!(printed.trim_end(), received.trim_end());
    assert!(printed.contains("Call back about the leak"), "{printed}");
    let other = failed(&env, &["show", &id.to_string(), "--email", "999"]);
    assert!(
        other.contains(&format!("commitment {id} has no email 999")),
        "{other}"
    );
    assert!(daemon.stop().success());
}

fn show_email_prints_what_a_dry_run_would_have_sent(store: Store) {
    let env = Env::on(store, REMIND_NOW);
    env.mail_options("dry_run = true");
    let daemon = env.start();
    let id = env.add("Quote for the dry run", "+1s", &[]);
    wait_shown(&env, id, "skipped email", |s| {
        s["deliveries"][0]["state"] == "skipped"
    });
    let email = env.show(id)["deliveries"][0]["id"].as_i64().unwrap();
    let printed = env.cli_ok(&["show", &id.to_string(), "--email", &email.to_string()]);
    assert!(
        printed.contains("Quote for the dry run") && printed.contains("Message-ID: "),
        "{printed}"
    );
    assert!(env.smtp.messages().is_empty(), "a dry run sends nothing");
    assert!(daemon.stop().success());
}

fn show_prints_due_time_changes_like_every_other_table(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let id = env.add("Fit the boiler", "2030-06-03 10:00", &[]);
    env.cli_ok(&[
        "delay",
        &id.to_string(),
        "--until",
        "2030-06-05 16:30",
        "--reason",
        "the part is late",
        "--no-notify",
    ]);
    let table = env.cli_ok(&["show", &id.to_string()]);
    let line = table
        .lines()
        .find(|l| l.contains("the part is late"))
        .expect("the change is listed");
    assert!(
        line.contains("Mon 3 Jun 2030 10:00 BST -> Wed 5 Jun 2030 16:30 BST"),
        "{table}"
    );
}

fn an_edited_title_reaches_the_reminder_and_show_lists_the_edit(store: Store) {
    let env = Env::on(store, REMIND_NOW);
    let daemon = env.start();
    let id = env.add("Quote for the boilr", "+6s", &[]);
    wait_shown(&env, id, "planned reminder", |s| {
        s["timeline"].as_array().is_some_and(|t| !t.is_empty())
    });
    let out = env.cli_ok(&[
        "edit",
        &id.to_string(),
        "--title",
        "Quote for the boiler service",
    ]);
    assert!(
        out.contains("title: 'Quote for the boilr' -> 'Quote for the boiler service'"),
        "{out}"
    );
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    let (subject, text) = (got[0].subject(), got[0].text());
    assert!(
        subject.contains("Quote for the boiler service") && !text.contains("boilr"),
        "{subject}\n{text}"
    );
    let shown = env.show(id);
    assert_eq!(shown["commitment"]["title"], "Quote for the boiler service");
    let change = &shown["revisions"][0]["changes"][0];
    assert_eq!(
        (&change["field"], &change["old"], &change["new"]),
        (
            &serde_json::json!("title"),
            &serde_json::json!("Quote for the boilr"),
            &serde_json::json!("Quote for the boiler service")
        )
    );
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(
        table.contains("Edits:")
            && table.contains(
                "followup edit  title: 'Quote for the boilr' -> 'Quote for the boiler service'"
            ),
        "{table}"
    );
    assert!(daemon.stop().success());
}

fn an_edit_that_changes_nothing_or_is_wrong_is_refused_clearly(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let id = env.add("Fit the boiler", "+2d", &[]);
    let id_text = id.to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["edit", &id_text], "nothing to edit"),
        (
            &["edit", &id_text, "--title", "Fit the boiler"],
            "nothing to change",
        ),
        (
            &["edit", "999", "--title", "T"],
            "no commitment with id 999",
        ),
        (
            &["edit", &id_text, "--customer", "joe@@example.org"],
            "--customer: 'joe@@example.org' is not an email address",
        ),
        (
            &["edit", &id_text, "--tz", "Mars/Olympus"],
            "--tz: unknown time zone 'Mars/Olympus'",
        ),
    ];
    for (args, expected) in cases {
        let stderr = failed(&env, args);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    assert!(env.show(id)["revisions"].as_array().unwrap().is_empty());

    // A new zone keeps the due instant; an empty value clears an optional field.
    let before = env.show(id)["commitment"]["due_at"].clone();
    env.cli_ok(&[
        "edit",
        &id_text,
        "--tz",
        "America/New_York",
        "--ref",
        "JOB-1",
    ]);
    env.cli_ok(&["edit", &id_text, "--ref", ""]);
    let shown = env.show(id);
    let instant = |v: &serde_json::Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert_eq!(instant(&shown["commitment"]["due_at"]), instant(&before));
    assert_eq!(shown["commitment"]["timezone"], "America/New_York");
    assert_eq!(shown["commitment"]["ref"], serde_json::Value::Null);
    assert_eq!(shown["revisions"].as_array().unwrap().len(), 2);
}

fn a_dry_run_says_so_at_start_in_status_and_in_check_config(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    env.mail_options("dry_run = true");
    let checked = env.cli_ok(&["check-config"]);
    assert!(checked.contains("DRY RUN"), "{checked}");
    let status = env.cli_ok(&["status"]);
    assert!(status.contains("DRY RUN:"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["status", "--format", "json"])).unwrap();
    assert_eq!(json["dry_run"], true);
    let daemon = env.start();
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("mail via SMTP") && l.contains("DRY RUN")),
        "{log}"
    );
    assert!(daemon.stop().success());

    // Without it, none of them says so.
    env.edit_config("followup.toml", |t| t.replace("dry_run = true", ""));
    assert!(!env.cli_ok(&["status"]).contains("DRY RUN"));
    assert!(!env.cli_ok(&["check-config"]).contains("DRY RUN"));
}

fn the_report_takes_weeks_and_shows_the_share_kept(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let mut db = env.sql();
    let days_ago =
        |d: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * d)).to_string();
    // Due ten days ago: one kept on time, one kept late with no word, one never done.
    for (title, status, done) in [
        ("Kept", "done", Some(days_ago(11))),
        ("Late", "done", Some(days_ago(9))),
        ("Missed", "open", None),
    ] {
        db.execute(&format!(
            "INSERT INTO commitments (title, owner, customer, due_at, status, done_at)
             VALUES ('{title}', 'ana@example.com', 'joe@example.org', '{}', '{status}', {})",
            days_ago(10),
            done.map_or("NULL".to_string(), |d| lit(&d))
        ));
    }
    let table = env.cli_ok(&["report", "--since", "2w"]);
    let header = table.lines().find(|l| l.starts_with("OWNER")).unwrap();
    for column in [
        "DUE IN PERIOD",
        "KEPT ON TIME",
        "OPEN, NOT YET DUE",
        "% KEPT",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("total") && l.contains("33%")),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["report", "--since", "2w", "--format", "json"]))
            .unwrap();
    assert_eq!(
        (json[0]["due"].as_u64(), json[0]["kept_percent"].as_u64()),
        (Some(3), Some(33))
    );
    let week: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["report", "--since", "1w", "--format", "json"]))
            .unwrap();
    assert_eq!(week[0]["due"], 0, "ten days ago is not in the last week");
    let bad = failed(&env, &["report", "--since", "2mo"]);
    assert!(bad.contains("--since '2mo'"), "{bad}");
}

fn the_emailed_report_fits_72_columns_and_explains_every_column(store: Store) {
    let env = Env::on(
        store,
        &format!(
            "{QUIET_RULE}
[report]
to = [\"manager@example.com\"]
since = \"7d\"

[[schedule]]
name = \"report\"
cron = \"*/2 * * * * *\"
job = \"report\"
"
        ),
    );
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    env.sql().execute(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, status, done_at)
         VALUES ('Kept', 'ana.maria.fernandez@plumbing-and-heating.example.com',
                 'joe@example.org', '{yesterday}', 'done', '{yesterday}')"
    ));
    let daemon = env.start();
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    let report = got.first().expect("the report arrived");
    let text = report.text();
    for line in text.lines() {
        assert!(
            line.chars().count() <= 72,
            "over 72 columns: {line:?}\n{text}"
        );
    }
    for column in [
        "DUE", "ON TIME", "NOTICE", "LATE", "MISSED", "TOLD", "OPEN", "%KEPT", "MEDIAN", "UPDATES",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{column}  "))),
            "no legend line for {column}:\n{text}"
        );
    }
    assert!(text.contains("100%"), "{text}");
    assert!(daemon.stop().success());
}

on_both_stores!(
    a_commitment_is_named_by_its_crm_reference_wherever_an_id_is_taken,
    list_customer_finds_a_customer_by_part_of_the_name_in_any_case,
    show_email_prints_the_stored_message_as_the_relay_received_it,
    show_email_prints_what_a_dry_run_would_have_sent,
    show_prints_due_time_changes_like_every_other_table,
    an_edited_title_reaches_the_reminder_and_show_lists_the_edit,
    an_edit_that_changes_nothing_or_is_wrong_is_refused_clearly,
    a_dry_run_says_so_at_start_in_status_and_in_check_config,
    the_report_takes_weeks_and_shows_the_share_kept,
    the_emailed_report_fits_72_columns_and_explains_every_column,
);
