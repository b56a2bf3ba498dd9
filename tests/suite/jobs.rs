//! Owners see their whole day: calendar jobs (digest, report, prune), the report command,
//! import and export, and a customer's history. Real binary, real SQLite file, real SMTP
//! server on 127.0.0.1.

use crate::common;
use common::store::{Store, lit};

use std::time::Duration;

use common::{Env, Received, monday_morning, wait_until};

fn secs(s: i64) -> jiff::SignedDuration {
    jiff::SignedDuration::from_secs(s)
}

const QUIET_RULE: &str = "[[rule]]\nname = \"quiet\"\n";

fn add_as(env: &Env, owner: &str, title: &str, due: &str) -> i64 {
    add_as_with(env, owner, title, due, &[])
}

/// `add_as` for a promise already late when recorded.
fn add_late_as(env: &Env, owner: &str, title: &str, due: &str) -> i64 {
    add_as_with(env, owner, title, due, &["--overdue"])
}

fn add_as_with(env: &Env, owner: &str, title: &str, due: &str, extra: &[&str]) -> i64 {
    let mut args = vec![
        "add",
        "--title",
        title,
        "--owner",
        owner,
        "--customer",
        "Joe Mensah <joe@example.org>",
        "--due",
        due,
    ];
    args.extend_from_slice(extra);
    env.cli_ok(&args).trim().parse().unwrap()
}

fn digests_to(mails: &[Received], address: &str) -> Vec<Received> {
    mails
        .iter()
        .filter(|m| m.to == [address] && m.subject().starts_with("Your follow-ups"))
        .cloned()
        .collect()
}

fn a_per_second_digest_fires_at_its_occurrences_and_groups_each_owners_work(store: Store) {
    let env = Env::on(
        store,
        &format!(
            "{QUIET_RULE}\n[[schedule]]\nname = \"digest every two seconds\"\ncron = \"*/2 * * * * *\"\ntimezone = \"Europe/London\"\njob = \"digest\"\n"
        ),
    );
    let start = monday_morning() + secs(1);
    env.use_test_clock(start);
    add_late_as(
        &env,
        "Ana Ruiz <ana@example.com>",
        "Overdue quote",
        "2020-01-01 10:00",
    );
    add_as(&env, "Ana Ruiz <ana@example.com>", "Quote due soon", "+3d");
    add_as(&env, "bob@example.com", "Bob's callback", "+2h");
    let done = add_as(&env, "carol@example.com", "Carol's finished job", "+1d");
    env.cli_ok(&["done", &done.to_string()]);
    let mut daemon = env.start();
    // Nothing before the first occurrence, an even second.
    daemon.wait_first_pass(Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    assert!(env.smtp.messages().is_empty(), "a digest before its time");
    // Two rounds of digests, one per occurrence the clock reaches: Ana's and Bob's.
    env.set_clock(start + secs(1));
    env.smtp.wait_for(2, Duration::from_secs(15));
    env.set_clock(start + secs(3));
    let got = env.smtp.wait_for(4, Duration::from_secs(15));
    assert_eq!(got.len(), 4, "two rounds of digests");
    // Each run is recorded under its occurrence.
    let runs: Vec<i64> = env
        .sql()
        .column("SELECT planned_at FROM job_runs ORDER BY planned_at")
        .into_iter()
        .map(|t| t.unwrap().parse().unwrap())
        .collect();
    let occurrences = [start + secs(1), start + secs(3)].map(|t| t.as_millisecond());
    assert_eq!(runs, occurrences);
    let ana = digests_to(&got, "ana@example.com");
    assert!(!ana.is_empty());
    let text = ana[0].text();
    let overdue = text.find("OVERDUE").expect("an overdue section");
    let week = text.find("NEXT 7 DAYS").expect("a next-7-days section");
    assert!(text[overdue..week].contains("Overdue quote"), "{text}");
    assert!(text[week..].contains("Quote due soon"), "{text}");
    assert!(!text.contains("Bob's callback"), "only Ana's work: {text}");
    assert!(
        ana[0].subject().contains("1 overdue"),
        "{}",
        ana[0].subject()
    );
    let bob = digests_to(&got, "bob@example.com");
    assert!(!bob.is_empty() && bob[0].text().contains("Bob's callback"));
    assert!(
        digests_to(&env.smtp.messages(), "carol@example.com").is_empty(),
        "nothing for an owner with nothing open"
    );
    assert!(daemon.stop().success());
}

fn a_schedule_with_catch_up_makes_up_one_missed_run_and_one_without_does_not(store: Store) {
    let env = Env::on(
        store,
        &format!(
            "{QUIET_RULE}
[[schedule]]
name = \"made up\"
cron = \"*/4 * * * * *\"
job = \"prune\"
catch_up = true

[[schedule]]
name = \"not made up\"
cron = \"*/4 * * * * *\"
job = \"prune\"
"
        ),
    );
    let runs = |schedule: &str| -> i64 {
        env.sql().count(&format!(
            "SELECT COUNT(*) FROM job_runs WHERE schedule = {}",
            lit(schedule)
        ))
    };
    // Runs of `schedule` for occurrences from `from` (ms) on.
    let runs_since = |schedule: &str, from: i64| -> i64 {
        env.sql().count(&format!(
            "SELECT COUNT(*) FROM job_runs WHERE schedule = {} AND planned_at >= {from}",
            lit(schedule)
        ))
    };
    let start = monday_morning() + secs(1);
    env.use_test_clock(start);
    let daemon = env.start();
    env.set_clock(start + secs(3));
    wait_until("the schedules ran", Duration::from_secs(10), || {
        (runs("made up") >= 1 && runs("not made up") >= 1).then_some(())
    });
    assert!(daemon.stop().success());
    let before = (runs("made up"), runs("not made up"));
    // Down across two occurrences (09:00:08 and 09:00:12), back in between the next.
    env.set_clock(start + secs(4));
    let stopped = env.now().as_millisecond();
    env.set_clock(start + secs(11) + jiff::SignedDuration::from_millis(300));
    let restarted = env.now().as_millisecond();
    let mut daemon = env.start();
    // The first pass has decided about every schedule.
    daemon.wait_first_pass(Duration::from_secs(10));
    let missed = |schedule: &str| runs_since(schedule, stopped) - runs_since(schedule, restarted);
    assert_eq!(
        missed("made up"),
        1,
        "one run made up at start, not one per missed occurrence"
    );
    assert_eq!(runs("made up"), before.0 + 1);
    assert_eq!(
        missed("not made up"),
        0,
        "missed runs are not made up without catch_up"
    );
    assert!(daemon.stop().success());
}

fn the_report_job_emails_the_table_and_prune_keeps_commitments(store: Store) {
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

[[schedule]]
name = \"prune\"
cron = \"*/2 * * * * *\"
job = \"prune\"
"
        ),
    );
    env.edit_config("followup.toml", |t| {
        t.replace("[store]\n", "[store]\nkeep = \"1d\"\n")
    });
    let start = monday_morning() + secs(1);
    env.use_test_clock(start);
    let mut db = env.sql();
    let yesterday = start - jiff::SignedDuration::from_hours(24);
    let kept = db.count(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, status, done_at)
         VALUES ('Kept', 'ana@example.com', 'joe@example.org', '{yesterday}', 'done', '{yesterday}')
         RETURNING id"
    ));
    // An email sent long ago, to prune.
    let step = db.count(&format!(
        "INSERT INTO steps (commitment_id, key, kind, rule, label, planned_at, fire_at, state, updated_at)
         VALUES ({kept}, 'old', 'remind', 'quiet', 'old', 0, 0, 'sent', 0) RETURNING id"
    ));
    let message = db.blob(b"\0");
    db.execute(&format!(
        "INSERT INTO deliveries (step_id, commitment_id, audience, sender, recipient, subject, message_id, message,
                                 state, attempts, next_attempt_at, created_at, sent_at)
         VALUES ({step}, {kept}, 'owner', 'f@example.com', 'ana@example.com', 'old', '<old@example.com>',
                 {message}, 'sent', 1, 0, 0, 0)"
    ));
    let daemon = env.start();
    env.set_clock(start + secs(1));
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    let report = got
        .iter()
        .find(|m| m.to == ["manager@example.com"])
        .expect("the report arrived");
    assert!(
        report.subject().starts_with("Promises kept"),
        "{}",
        report.subject()
    );
    let text = report.text();
    assert!(
        text.contains("OWNER") && text.contains("ON TIME") && text.contains("ana@example.com"),
        "{text}"
    );
    wait_until("the old record pruned", Duration::from_secs(10), || {
        let old =
            db.count("SELECT COUNT(*) FROM deliveries WHERE message_id = '<old@example.com>'");
        (old == 0).then_some(())
    });
    let commitments = db.count("SELECT COUNT(*) FROM commitments");
    assert_eq!(commitments, 1, "commitments are never pruned");
    assert!(daemon.stop().success());
}

fn the_report_command_counts_the_stored_commitments(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let hours_ago =
        |h: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(h)).to_string();
    let mut db = env.sql();
    // Ana's first was due two days ago and done three days ago: on time.
    db.execute(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, status, done_at)
         VALUES ('On time', 'ana@example.com', 'joe@example.org', '{}', 'done', '{}')",
        hours_ago(48),
        hours_ago(72)
    ));
    add_late_as(&env, "ana@example.com", "Missed", "2020-01-01 10:00");
    let late = add_as(&env, "bob@example.com", "Late", "+1h");
    // Bob's was first due two days ago, moved, and done yesterday.
    let two_days_ago = hours_ago(48);
    db.execute(&format!(
        "INSERT INTO revisions (commitment_id, old_due, new_due, source, created_at)
         VALUES ({late}, '{two_days_ago}', '2030-01-01T00:00:00Z', 'test', 0)"
    ));
    let yesterday = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    db.execute(&format!(
        "UPDATE commitments SET status = 'done', done_at = '{yesterday}' WHERE id = {late}"
    ));
    let out = env.cli_ok(&["report", "--since", "100000d", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ana = &rows[0];
    assert_eq!(ana["group"], "ana@example.com");
    assert_eq!(
        (
            ana["due"].as_u64(),
            ana["kept_on_time"].as_u64(),
            ana["missed_silently"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    let bob = &rows[1];
    assert_eq!(
        (bob["due"].as_u64(), bob["kept_late_no_notice"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(bob["median_lateness_seconds"].as_i64(), Some(86400));
    assert_eq!(rows[2]["group"], "total");
    let table = env.cli_ok(&["report", "--since", "100000d", "--by", "customer"]);
    assert!(
        table.contains("CUSTOMER") && table.contains("joe@example.org"),
        "{table}"
    );
    let csv = env.cli_ok(&["report", "--since", "100000d", "--format", "csv"]);
    assert!(csv.starts_with("owner,due,kept_on_time"), "{csv}");
}

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.root.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn an_import_with_a_bad_line_names_it_and_imports_nothing_unless_told_to_skip(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let file = write(
        &env,
        "in.csv",
        "title,owner,customer,due,kind,note\n\
         Quote for ACME,ana@example.com,Joe <joe@example.org>,2030-01-02 17:00,quote,two options\n\
         Broken,not an address,joe@example.org,someday,,\n\
         Callback,bob@example.com,joe@example.org,2030-01-03 09:00,,\n",
    );
    let out = env.cli(&["import", &file]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{file}:3:")), "{stderr}");
    assert!(
        stderr.contains("owner") && stderr.contains("due"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(
        env.cli_ok(&["list", "--status", "all", "--format", "json"])
            .trim(),
        "[]"
    );

    let out = env.cli_ok(&["import", &file, "--skip-bad"]);
    assert!(
        out.contains("imported 2") && out.contains("skipped 1"),
        "{out}"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let unknown = write(
        &env,
        "bad-header.csv",
        "title,owner,customer,when\nx,a@example.com,b@example.com,+1h\n",
    );
    let out = env.cli(&["import", &unknown]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(":1: unknown column 'when'"));
}

fn export_then_import_preserves_every_field(store: Store) {
    // The export comes from SQLite; the import goes to the store under test.
    let source = Env::new("[[rule]]\nname = \"all\"\n");
    source.add(
        "Quote, \"deluxe\"",
        "2030-05-06 17:00",
        &[
            "--kind",
            "quote",
            "--note",
            "line one\nline two, with comma",
            "--ref",
            "CRM-7",
            "--tz",
            "America/New_York",
            "--reason",
            "supplier late",
        ],
    );
    let done = source.add("Done one", "2030-05-07 09:00", &[]);
    source.cli_ok(&["done", &done.to_string()]);
    let cancelled = source.add("Cancelled one", "2030-05-08 09:00", &[]);
    source.cli_ok(&["cancel", &cancelled.to_string()]);
    let exported = source.cli_ok(&["export"]);
    let file = write(&source, "export.csv", &exported);

    let target = Env::on(store, "[[rule]]\nname = \"all\"\n");
    let out = target.cli_ok(&["import", &file]);
    assert!(out.contains("imported 3"), "{out}");
    assert_eq!(
        target.cli_ok(&["export"]),
        exported,
        "a round trip keeps every field"
    );
    let json_source: serde_json::Value =
        serde_json::from_str(&source.cli_ok(&["export", "--format", "json"])).unwrap();
    let json_target: serde_json::Value =
        serde_json::from_str(&target.cli_ok(&["export", "--format", "json"])).unwrap();
    assert_eq!(json_source, json_target);
    // Importing the same file again would duplicate ids: refused, nothing written.
    let out = target.cli(&["import", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn a_hundred_thousand_rows_import_in_one_go() {
    let _heavy = common::heavy();
    let env = Env::new("[[rule]]\nname = \"all\"\n");
    let mut text = String::from("title,owner,customer,due\n");
    for i in 0..100_000 {
        text.push_str(&format!(
            "Row {i},owner{}@example.com,customer{i}@example.org,2030-01-01 10:00\n",
            i % 50
        ));
    }
    let file = write(&env, "big.csv", &text);
    // How long it takes: bench/run.sh windows.
    let out = env.cli_ok(&["import", &file]);
    assert!(out.contains("imported 100000"), "{out}");
    let stored: i64 = env
        .db()
        .query_row("SELECT COUNT(*) FROM commitments", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 100_000);
}

fn a_customers_history_lists_their_commitments_and_emails(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    env.use_test_clock(monday_morning());
    let daemon = env.start();
    let first = env.add("First job", "+1s", &[]);
    env.cli_ok(&[
        "add",
        "--title",
        "Other customer",
        "--owner",
        "ana@example.com",
        "--customer",
        "zoe@example.org",
        "--due",
        "+1d",
    ]);
    let second = env.add("Second job", "+1d", &[]);
    env.advance(Duration::from_secs(1));
    env.smtp.wait_for(3, Duration::from_secs(10));
    let history: serde_json::Value = serde_json::from_str(&env.cli_ok(&[
        "list",
        "--customer",
        "JOE@example.org",
        "--format",
        "json",
    ]))
    .unwrap();
    let ids: Vec<i64> = history["commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [first, second]);
    let emails = history["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1, "the update to Joe: {history:#}");
    assert_eq!(emails[0]["recipient"], "joe@example.org");
    let table = env.cli_ok(&["show", &second.to_string()]);
    assert!(
        table.contains("Commitments to joe@example.org") && table.contains("First job"),
        "{table}"
    );
    assert!(daemon.stop().success());
}

on_both_stores!(
    an_import_with_a_bad_line_names_it_and_imports_nothing_unless_told_to_skip,
    a_customers_history_lists_their_commitments_and_emails,
    a_per_second_digest_fires_at_its_occurrences_and_groups_each_owners_work,
    a_schedule_with_catch_up_makes_up_one_missed_run_and_one_without_does_not,
    the_report_job_emails_the_table_and_prune_keeps_commitments,
    the_report_command_counts_the_stored_commitments,
    export_then_import_preserves_every_field,
);
