//! The customer's profile: `followup customer ADDR|NAME` gathers it from the
//! commitments to one address, whoever wrote them; `customer note` keeps notes about
//! the customer. Real binary, real SQLite file, real SMTP server on 127.0.0.1.

use crate::common;
use common::store::{Store, lit, opt_lit};

use std::time::Duration;

use common::Env;

const QUIET_RULE: &str = "[[rule]]\nname = \"quiet\"\n";

/// The first email received whose subject contains `subject`, waiting for it.
fn received(env: &Env, subject: &str) -> common::Received {
    let all = env
        .smtp
        .wait_until(subject, Duration::from_secs(20), |got| {
            got.iter().any(|m| m.subject().contains(subject))
        });
    all.into_iter()
        .find(|m| m.subject().contains(subject))
        .unwrap()
}

fn profile(env: &Env, customer: &str) -> serde_json::Value {
    serde_json::from_str(&env.cli_ok(&["customer", customer, "--json"])).unwrap()
}

/// Joe's history as a CRM wrote it, straight into `commitments`: kept on time, kept
/// late, open past due, open ahead, cancelled. Amy's commitment is someone else's.
fn joe_by_sql(env: &Env) {
    let mut db = env.sql();
    type Row<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>, &'a str);
    let rows: [Row; 6] = [
        (
            "Boiler service",
            "joe@example.org",
            "2026-03-02T10:00:00Z",
            "done",
            Some("2026-03-01T16:00:00Z"),
            "2026-02-20T09:00:00Z",
        ),
        (
            "Radiator quote",
            "JOE@Example.org",
            "2026-04-02T10:00:00Z",
            "done",
            Some("2026-04-05T16:00:00Z"),
            "2026-03-25T09:00:00Z",
        ),
        (
            "Leak callback",
            "Joe Mensah <joe@example.org>",
            "2026-05-02T10:00:00Z",
            "open",
            None,
            "2026-05-01T09:00:00Z",
        ),
        (
            "Pump order",
            "Joe Mensah <joe@example.org>",
            "2099-01-02T10:00:00Z",
            "open",
            None,
            "2026-06-01T09:00:00Z",
        ),
        (
            "Gutter quote",
            "joe@example.org",
            "2026-06-02T10:00:00Z",
            "cancelled",
            None,
            "2026-06-01T09:00:00Z",
        ),
        (
            "Fence repair",
            "Amy Joel <amy@example.net>",
            "2099-01-02T10:00:00Z",
            "open",
            None,
            "2026-06-01T09:00:00Z",
        ),
    ];
    for (title, customer, due, status, done, created) in rows {
        db.execute(&format!(
            "INSERT INTO commitments (title, owner, customer, due_at, status, done_at, created_at)
             VALUES ({}, 'Ana Ruiz <ana@example.com>', {}, '{due}', '{status}', {}, '{created}')",
            lit(title),
            lit(customer),
            opt_lit(done)
        ));
    }
}

fn a_profile_counts_the_rows_another_program_wrote_with_no_customer_record_to_create(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    joe_by_sql(&env);
    let p = profile(&env, "Joe@EXAMPLE.org");
    assert_eq!(p["address"], "joe@example.org");
    assert_eq!(p["name"], "Joe Mensah");
    assert_eq!(p["since"], "2026-02-20T09:00:00Z");
    assert_eq!(p["open"], 2);
    let kept = &p["kept"];
    assert_eq!(kept["on_time"], 1);
    assert_eq!(kept["after_notice"], 0);
    // Done late with no notice, and open past due.
    assert_eq!(kept["missed"], 2);
    assert_eq!(kept["on_time_percent"], 33);
    assert_eq!(kept["missed_percent"], 67);
    assert_eq!(kept["kept_percent"], 33);
    let how: Vec<(&str, &str)> = p["commitments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["title"].as_str().unwrap(), c["kept"].as_str().unwrap()))
        .collect();
    assert_eq!(
        how,
        [
            ("Boiler service", "on-time"),
            ("Radiator quote", "missed"),
            ("Leak callback", "missed"),
            ("Pump order", "open"),
            ("Gutter quote", "cancelled"),
        ]
    );
    assert_eq!(p["last_contact"], serde_json::Value::Null);

    let table = env.cli_ok(&["customer", "joe@example.org"]);
    for needle in [
        "Customer Joe Mensah <joe@example.org>",
        "Promises kept:  33% (33% on time, 0% after notice, 67% missed, of 3 settled)",
        "Open now:       2",
        "Last contact:   never",
        "Radiator quote",
    ] {
        assert!(table.contains(needle), "{needle} missing from\n{table}");
    }
    assert!(!table.contains("Fence repair"), "{table}");
}

fn a_name_matches_as_a_part_in_any_case_and_several_matches_are_listed(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    joe_by_sql(&env);
    assert_eq!(profile(&env, "mensah")["address"], "joe@example.org");
    assert_eq!(profile(&env, "AMY")["address"], "amy@example.net");
    let several = env.cli_fails(&["customer", "jo"]);
    assert!(several.contains("'jo' matches 2 customers"), "{several}");
    assert!(
        several.contains("Joe Mensah <joe@example.org>"),
        "{several}"
    );
    assert!(several.contains("Amy Joel <amy@example.net>"), "{several}");
    let none = env.cli_fails(&["customer", "nobody@example.org"]);
    assert!(none.contains("'nobody@example.org'"), "{none}");
}

fn notes_about_a_customer_are_kept_and_shown_with_who_wrote_them(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    env.add("Boiler service", "+2d", &[]);
    let out = env.cli_with(
        &[
            "customer",
            "note",
            "JOE@example.org",
            "Prefers a call before 9",
        ],
        &[("USER", "ana"), ("SUDO_USER", "")],
    );
    let said = common::succeeded("customer note", out);
    assert!(said.contains("note kept for joe@example.org"), "{said}");
    let p = profile(&env, "joe@example.org");
    assert_eq!(p["notes"][0]["body"], "Prefers a call before 9");
    assert_eq!(p["notes"][0]["actor"], "ana");
    let table = env.cli_ok(&["customer", "Joe Mensah"]);
    assert!(table.contains("ana: Prefers a call before 9"), "{table}");

    let bad = env.cli_fails(&["customer", "note", "joe at example", "x"]);
    assert!(bad.contains("'joe at example'"), "{bad}");
    let empty = env.cli_fails(&["customer", "note", "joe@example.org", "  "]);
    assert!(empty.contains("the note is empty"), "{empty}");
    // A note may come before the first commitment: it says so, and keeps it.
    let out = env.cli(&["customer", "note", "new@example.org", "Met at the fair"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no commitment is for new@example.org"));
    assert_eq!(
        profile(&env, "new@example.org")["notes"][0]["body"],
        "Met at the fair"
    );
}

fn a_promise_done_late_after_a_delay_notice_is_kept_after_notice_and_the_notice_is_the_last_contact(
    store: Store,
) {
    let env = Env::on(store, QUIET_RULE);
    let daemon = env.start();
    let id = env.add("Pump order", "+3d", &[]);
    env.cli_ok(&[
        "delay",
        &id.to_string(),
        "--until",
        "+5d",
        "--reason",
        "the parts are late",
    ]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert!(
        got[0].subject().contains("Pump order"),
        "{}",
        got[0].subject()
    );
    env.wait_idle(Duration::from_secs(20));
    // Done after the time first promised (a CRM writing the time it was done).
    let done_at = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(4 * 24);
    env.sql().execute(&format!(
        "UPDATE commitments SET status = 'done', done_at = '{done_at}' WHERE id = {id}"
    ));
    let p = profile(&env, "joe@example.org");
    assert_eq!(p["commitments"][0]["kept"], "after-notice", "{p}");
    assert_eq!(p["kept"]["after_notice_percent"], 100);
    let emails = p["emails"].as_array().unwrap();
    assert_eq!(emails.len(), 1, "{p}");
    assert_eq!(emails[0]["state"], "sent");
    assert_eq!(p["last_contact"], emails[0]["sent_at"]);
    assert!(daemon.stop().success());
}

fn every_email_knows_since_when_the_customer_is_one_how_often_promises_were_kept_and_what_else_is_open(
    store: Store,
) {
    // Each reminder goes two seconds after its commitment is added, well before it is
    // due: a commitment whose time came would count among the customer's promises due.
    let env = Env::on(store, "[[rule]]\nname = \"soon\"\nremind = [\"-298s\"]\n");
    env.write_config(
        "templates/owner_reminder.txt",
        "Subject: {{ commitment.title }}\n\n\
         {{ customer.name }} is a customer since {{ customer.since }}.\n\
         Kept: {% if customer.kept_percent is none %}none settled{% else %}{{ customer.kept_percent }}%{% endif %}.\n\
         Other open promises: {{ customer.open }}.\n",
    );
    env.cli_ok(&["check-config"]);
    joe_by_sql(&env);
    let daemon = env.start();
    env.add("Call back about the leak", "+300s", &[]);
    let text = received(&env, "Call back about the leak").text();
    // Rows written by another program count: since February, one of three kept, and
    // the leak callback and the pump order open besides this one.
    assert!(
        text.contains("Joe Mensah is a customer since 20 February 2026."),
        "{text}"
    );
    assert!(text.contains("Kept: 33%."), "{text}");
    assert!(text.contains("Other open promises: 2."), "{text}");

    // A new customer: no share yet, since today.
    env.add_for("Amy New <amy.new@example.net>", "First visit", "+300s");
    let got = received(&env, "First visit");
    assert!(got.text().contains("Kept: none settled."), "{}", got.text());
    assert!(
        got.text().contains("Other open promises: 0."),
        "{}",
        got.text()
    );
    assert!(daemon.stop().success());
}

/// `days` days from now (negative: ago), as RFC 3339.
fn days_from_now(days: i64) -> String {
    (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * days)).to_string()
}

fn the_team_told_of_a_new_complaint_sees_what_was_missed_lately_and_what_is_open(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"complaint\"\non_open = { to = [\"service-team@example.com\"] }\n",
    );
    // Joe's history, as a CRM wrote it: missed 10 days ago (done two days late), missed
    // long ago, kept on time last week, and a visit still open.
    let mut db = env.sql();
    let rows = [
        ("Fix the dripping tap", -12, "done", Some(-10), -20),
        ("Quote for the roof", -200, "done", Some(-190), -400),
        ("Bleed the radiators", -7, "done", Some(-8), -9),
        ("Annual boiler visit", 5, "open", None, -3),
    ];
    for (title, due, status, done, created) in rows {
        let done = done.map(days_from_now);
        db.execute(&format!(
            "INSERT INTO commitments (title, owner, customer, due_at, status, done_at, created_at)
             VALUES ('{title}', 'ana@example.com', 'Joe Mensah <joe@example.org>', '{}',
                     '{status}', {}, '{}')",
            days_from_now(due),
            opt_lit(done.as_deref()),
            days_from_now(created)
        ));
    }
    let daemon = env.start();
    env.add("Make good the damaged wall", "+1d", &[]);
    let text = received(&env, "Make good the damaged wall").text();
    for needle in [
        "TAKE CARE: Joe Mensah has been let down or kept waiting lately.",
        "Missed in the last 90 days:",
        "  #1  Fix the dripping tap: due ",
        "Open besides this one:",
        "  #4  Annual boiler visit: due ",
        // One of three settled kept (the roof was done late too).
        "; 33% of the promises to them kept.",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    assert!(!text.contains("Quote for the roof"), "{text}");
    assert!(!text.contains("Bleed the radiators"), "{text}");

    // A customer with nothing behind them: the email says so.
    env.add_for("Amy New <amy.new@example.net>", "Cracked tile", "+1d");
    let text = received(&env, "Cracked tile").text();
    assert!(
        text.contains("Nothing else is open for Amy New, and no promise to them was missed"),
        "{text}"
    );
    assert!(!text.contains("promises to them kept"), "{text}");
    assert!(daemon.stop().success());
}

fn a_customers_own_mail_cannot_list_their_other_promises(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    env.write_config(
        "templates/no_news_yet.txt",
        "Subject: News\n\n{% for p in customer.open_promises %}{{ p.title }}{% endfor %}\n",
    );
    let out = env.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("unknown template variable 'customer.open_promises'"),
        "{said}"
    );
}

on_both_stores!(
    a_profile_counts_the_rows_another_program_wrote_with_no_customer_record_to_create,
    a_name_matches_as_a_part_in_any_case_and_several_matches_are_listed,
    notes_about_a_customer_are_kept_and_shown_with_who_wrote_them,
    every_email_knows_since_when_the_customer_is_one_how_often_promises_were_kept_and_what_else_is_open,
    a_customers_own_mail_cannot_list_their_other_promises,
    a_promise_done_late_after_a_delay_notice_is_kept_after_notice_and_the_notice_is_the_last_contact,
    the_team_told_of_a_new_complaint_sees_what_was_missed_lately_and_what_is_open,
);
