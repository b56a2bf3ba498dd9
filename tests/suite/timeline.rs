//! The whole follow-up timeline, end to end: "no news yet" updates, delays by hand,
//! business hours, alerts, escalations and check-ins, and mail that stays well-formed
//! whatever the data. Real binary, real SQLite file, real SMTP server on 127.0.0.1.

use crate::common;
use common::store::Store;

use std::time::{Duration, SystemTime};

use common::{Env, Received, from_epoch_ms, strict_rfc5322, system_time};

fn to(mails: &[Received], address: &str) -> Vec<Received> {
    mails
        .iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .cloned()
        .collect()
}

const UPDATE_RULE: &str = r#"
[[rule]]
name = "order-info"
match = { kind = "order-info" }
remind = ["0s"]
customer_update = { at = "-2s", extend_by = "2 business days", max = 1 }
"#;

fn an_open_commitment_past_its_update_time_tells_the_customer_exactly_once(store: Store) {
    let env = Env::on(store, UPDATE_RULE);
    let daemon = env.start();
    let id = env.add(
        "Tell Mr. Joe about his order",
        "+4s",
        &[
            "--kind",
            "order-info",
            "--reason",
            "our supplier shipped late",
        ],
    );
    let shown = env.show(id);
    let original_due = shown["commitment"]["due_local"]
        .as_str()
        .unwrap()
        .to_string();

    let got = env.smtp.wait_for(2, Duration::from_secs(15));
    assert_eq!(got.len(), 2, "the customer's update and the owner's copy");
    let customer = to(&got, "joe@example.org");
    assert_eq!(customer.len(), 1);
    let text = customer[0].text();
    assert!(text.contains("Tell Mr. Joe about his order"), "{text}");
    // Customer mail says times in words: the clock time of the original deadline.
    let clock = original_due.rsplit(' ').nth(1).unwrap();
    assert!(
        text.contains(&format!("by today, {clock}")),
        "the original deadline {original_due}: {text}"
    );
    assert!(
        text.contains("Our supplier shipped late."),
        "the reason: {text}"
    );
    let owner = to(&got, "ana@example.com");
    assert_eq!(owner.len(), 1);
    assert!(
        owner[0].subject().starts_with("Customer told:"),
        "{}",
        owner[0].subject()
    );

    // The due time moved by two business days: the 0s reminder follows it, so nothing
    // more arrives at the old due time.
    let shown = env.show(id);
    let new_due = shown["commitment"]["due_local"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_due, original_due);
    // In words: "Fri 4 Dec, 03:38" for "Fri 4 Dec 2026 03:38 GMT".
    let words: Vec<&str> = new_due.split(' ').collect();
    let in_words = format!("{} {} {}, {}", words[0], words[1], words[2], words[4]);
    assert!(
        text.contains(&in_words),
        "the new expected time {new_due}: {text}"
    );
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["automatic"], true);
    assert!(
        revisions[0]["source"]
            .as_str()
            .unwrap()
            .contains("automatic update 1 of 1")
    );
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(
        table.contains("Due time changes:") && table.contains("automatic update 1 of 1"),
        "{table}"
    );
    // An email left for the old due time would be waiting in the outbox, and a step
    // left there would come due: the daemon is idle only once they are gone or sent.
    env.wait_idle(Duration::from_secs(15));
    assert_eq!(
        env.smtp.messages().len(),
        2,
        "no reminder at the old due time"
    );
    // The reminder for the old due time was taken back; the one planned instead
    // follows the new due time.
    let shown = env.show(id);
    let old_due = system_time(&shown["revisions"][0]["old_due"]);
    let reminds: Vec<_> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "remind")
        .collect();
    assert!(
        reminds.iter().all(|s| s["state"] == "skipped"
            || (s["state"] == "planned" && system_time(&s["fire_at"]) > old_due)),
        "{shown:#}"
    );
    assert_eq!(
        reminds.iter().filter(|s| s["state"] == "planned").count(),
        1,
        "{shown:#}"
    );
    assert!(daemon.stop().success());

    // A restart sends nothing again.
    let mut daemon = env.start();
    daemon.wait_first_pass(Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    assert_eq!(
        env.smtp.messages().len(),
        2,
        "nothing is sent twice after a restart"
    );
    let shown = env.show(id);
    let updates: Vec<_> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "customer_update")
        .collect();
    assert_eq!(updates.len(), 1, "max = 1: no second update is planned");
    assert!(daemon.stop().success());
}

fn a_delay_by_hand_tells_the_customer_once_with_the_reason(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"all\"\nremind = [\"-1h\"]\n");
    let daemon = env.start();
    let id = env.add("Send quote to ACME", "+3h", &[]);
    let out = env.cli_ok(&[
        "delay",
        &id.to_string(),
        "--until",
        "+2d",
        "--reason",
        "supplier problems",
    ]);
    assert!(out.contains("the customer is told now"), "{out}");
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["joe@example.org"]);
    let text = got[0].text();
    assert!(text.contains("Supplier problems."), "{text}");
    let shown = env.show(id);
    let due = shown["commitment"]["due_local"].as_str().unwrap();
    let clock = due.rsplit(' ').nth(1).unwrap();
    assert!(text.contains(&format!(", {clock}.")), "{due}: {text}");
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1);
    assert_eq!(revisions[0]["reason"], "supplier problems");
    assert_eq!(revisions[0]["source"], "followup delay");

    // --no-notify records the move and tells nobody.
    env.cli_ok(&[
        "delay",
        &id.to_string(),
        "--until",
        "+3d",
        "--reason",
        "still waiting",
        "--no-notify",
    ]);
    env.wait_idle(Duration::from_secs(10));
    assert!(daemon.stop().success());
    let mut daemon = env.start();
    daemon.wait_first_pass(Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    assert_eq!(
        env.smtp.messages().len(),
        1,
        "one notice, also across a restart"
    );
    assert_eq!(env.show(id)["revisions"].as_array().unwrap().len(), 2);
    assert!(daemon.stop().success());

    let out = env.cli(&["delay", &id.to_string(), "--until", "+1h", "--reason", " "]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reason"));
}

/// A `[calendar]` that opens `wait` after `now` (in UTC, on that moment's weekday) and
/// stays open until midnight; every other day is closed.
fn calendar_opening_in(now: jiff::Timestamp, wait: Duration) -> (String, SystemTime) {
    let opens = now + jiff::SignedDuration::try_from(wait).unwrap();
    let opens = opens.round(jiff::Unit::Second).unwrap();
    let local = opens.to_zoned(jiff::tz::TimeZone::UTC);
    let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        [local.weekday().to_monday_zero_offset() as usize];
    let toml = format!(
        "[calendar]\ntimezone = \"UTC\"\nbusiness_hours = {{ {day} = \"{}-24:00\" }}\n",
        local.strftime("%H:%M:%S")
    );
    (toml, SystemTime::from(opens))
}

/// A reminder to the owner 2 s before the due time, and a customer update 1 s before it
/// that waits for business hours.
const HELD_RULE: &str = r#"
[[rule]]
name = "held"
remind = ["-2s"]
customer_update = { at = "-1s", extend_by = "1 business day" }
"#;

fn an_update_due_outside_business_hours_waits_until_they_open(store: Store) {
    let start = common::monday_morning();
    let (calendar, opens) = calendar_opening_in(start, Duration::from_secs(7));
    let env = Env::with_calendar_on(store, HELD_RULE, &calendar);
    env.use_test_clock(start);
    let daemon = env.start();
    let id = env.add("Call back about the boiler", "+4s", &[]);
    // The owner's reminder (at +2s) is not held: it comes before opening.
    env.wait_planned(Duration::from_secs(10));
    env.advance(Duration::from_secs(2));
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(to(&got, "ana@example.com").len(), 1);
    let got = until_opening(&env, opens);
    assert_held_until_opening(&env, id, &got, opens);
    assert!(daemon.stop().success());
}

/// Moves the test clock to a second before `opens`, checks that no customer mail went
/// out by then, then to `opens`; returns what arrived once the customer update (and
/// its copy to the owner) did.
fn until_opening(env: &Env, opens: SystemTime) -> Vec<Received> {
    let opens = jiff::Timestamp::try_from(opens).unwrap();
    env.set_clock(opens - jiff::SignedDuration::from_secs(1));
    env.wait_idle(Duration::from_secs(10));
    assert!(
        to(&env.smtp.messages(), "joe@example.org").is_empty(),
        "a customer update before opening"
    );
    env.set_clock(opens);
    env.smtp.wait_for(3, Duration::from_secs(15))
}

/// The customer update of commitment `id` reached the customer once, after `opens`
/// (see [`until_opening`]), and its step shows it sent at or after opening. (How soon
/// after opening: bench/run.sh windows.)
fn assert_held_until_opening(env: &Env, id: i64, got: &[Received], opens: SystemTime) {
    let customer = to(got, "joe@example.org");
    assert_eq!(customer.len(), 1, "held until opening, then sent once");
    let shown = env.show(id);
    let update = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "customer_update")
        .unwrap()
        .clone();
    assert_eq!(update["state"], "sent");
    assert!(system_time(&update["fire_at"]) >= opens);
}

fn catch_up_after_downtime_never_sends_a_customer_update_outside_business_hours(store: Store) {
    let start = common::monday_morning();
    let (calendar, opens) = calendar_opening_in(start, Duration::from_secs(11));
    let env = Env::with_calendar_on(
        store,
        &format!("{HELD_RULE}catch_up = \"send\"\n"),
        &calendar,
    );
    env.write_config("daemon.toml", "[daemon]\nlate_after = \"1s\"\n");
    env.use_test_clock(start);
    let daemon = env.start();
    let id = env.add("Quote for the new radiators", "+4s", &[]);
    env.wait_planned(Duration::from_secs(10));
    assert!(daemon.stop().success());
    // The reminder (+2s) and the update (+3s) pass while the daemon is down; it comes
    // back 2 s after the later one, still a week-night for the customer.
    let asked = env.sql().count("SELECT MAX(planned_at) FROM steps");
    env.set_clock(
        jiff::Timestamp::from_millisecond(asked).unwrap() + jiff::SignedDuration::from_secs(2),
    );
    let mut daemon = env.start();
    let got = env.smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(
        to(&got, "ana@example.com").len(),
        1,
        "the owner's catch-up is not held"
    );
    daemon.wait_first_pass(Duration::from_secs(10));
    // The daemon has decided about the update: it waits for opening.
    let row = env.sql().rows(&format!(
        "SELECT state, fire_at FROM steps WHERE commitment_id = {id} AND kind = 'customer_update'"
    ));
    let state = row[0][0].clone().unwrap();
    let fire_at: i64 = row[0][1].as_deref().unwrap().parse().unwrap();
    assert!(
        from_epoch_ms(fire_at) >= opens && SystemTime::from(env.now()) < opens,
        "the update at {fire_at} ({state}), opening at {opens:?}"
    );
    assert!(
        to(&env.smtp.messages(), "joe@example.org").is_empty(),
        "a customer update went out before business hours because of catch-up"
    );
    let got = until_opening(&env, opens);
    assert_held_until_opening(&env, id, &got, opens);
    assert!(daemon.stop().success());
}

fn alerts_escalations_and_check_ins_reach_the_right_people(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "service"
alert = { at = "+0s", to = ["service-team@example.com", "Desk <desk@example.com>"] }
escalate = { after = "+2s", to = ["lead@example.com"] }
check_in = { after = "2s", to = "customer" }
"#,
    );
    let daemon = env.start();
    let id = env.add("Repair the heating", "+1s", &[]);
    let got = env.smtp.wait_for(3, Duration::from_secs(15));
    assert_eq!(got.len(), 3);
    let team = to(&got, "service-team@example.com");
    assert_eq!(team.len(), 1);
    assert!(
        team[0].subject().starts_with("Promise missed by"),
        "{}",
        team[0].subject()
    );
    assert!(team[0].text().contains("Joe Mensah <joe@example.org>"));
    assert_eq!(to(&got, "desk@example.com").len(), 1);
    let lead = to(&got, "lead@example.com");
    assert_eq!(lead.len(), 1);
    assert!(
        lead[0].subject().starts_with("Escalation:"),
        "{}",
        lead[0].subject()
    );
    assert!(
        to(&got, "joe@example.org").is_empty(),
        "alerts are internal"
    );

    env.cli_ok(&["done", &id.to_string()]);
    let got = env.smtp.wait_for(4, Duration::from_secs(10));
    let check_in = to(&got, "joe@example.org");
    assert_eq!(check_in.len(), 1);
    assert!(
        check_in[0].subject().starts_with("How did it go?"),
        "{}",
        check_in[0].subject()
    );
    assert!(daemon.stop().success());
}

fn a_check_in_for_the_owner_follows_done(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"x\"\ncheck_in = { after = \"1s\" }\n",
    );
    let daemon = env.start();
    let id = env.add("Fit the new valve", "+1h", &[]);
    env.cli_ok(&["done", &id.to_string()]);
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert!(got[0].subject().starts_with("Check in with Joe Mensah"));
    assert!(daemon.stop().success());
}

fn hostile_names_and_notes_cannot_forge_headers_or_messages(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "all"
remind = ["-1s"]
customer_update = { at = "-1s", extend_by = "1d" }
"#,
    );
    let daemon = env.start();
    let out = env.cli_ok(&[
        "add",
        "--title",
        "Angebot für Zoë: Ölkessel\r\nBcc: evil@example.net",
        "--owner",
        "Ana Ruiz <ana@example.com>",
        "--customer",
        "Zoë Ångström\r\nBcc: evil@example.net <zoe@example.org>",
        "--due",
        "+3s",
        "--note",
        "first line\n.\nMAIL FROM:<x@evil.example>\nRCPT TO:<evil@example.net>\nDATA\nSubject: forged\n\nforged body\n.\nlast line",
    ]);
    let id: i64 = out.trim().parse().unwrap();
    env.smtp.wait_for(3, Duration::from_secs(15));
    env.wait_idle(Duration::from_secs(10));
    let got = env.smtp.messages();
    assert_eq!(
        env.smtp.messages().len(),
        3,
        "the owner's reminder, the customer's update, the owner's copy: nothing smuggled"
    );
    for mail in &got {
        assert!(
            mail.to.iter().all(|t| t != "evil@example.net"),
            "{:?}",
            mail.to
        );
        assert_eq!(mail.to.len(), 1);
        let names = strict_rfc5322(&mail.data);
        assert!(!names.iter().any(|n| n == "bcc"), "a Bcc header: {names:?}");
        assert_eq!(names.iter().filter(|n| *n == "subject").count(), 1);
        let parsed = mail.parsed();
        assert!(
            parsed
                .subject()
                .unwrap()
                .contains("Angebot für Zoë: Ölkessel"),
            "{:?}",
            parsed.subject()
        );
    }
    let reminder = to(&got, "ana@example.com")
        .into_iter()
        .find(|m| m.subject().starts_with("Due"))
        .unwrap();
    let body = reminder.text();
    assert!(
        body.contains("MAIL FROM:<x@evil.example>"),
        "the note arrives whole: {body}"
    );
    assert!(
        body.contains("forged body") && body.contains("last line"),
        "{body}"
    );
    let customer = to(&got, "zoe@example.org");
    assert_eq!(customer.len(), 1);
    let parsed = customer[0].parsed();
    let to_header = parsed.to().unwrap().first().unwrap();
    assert_eq!(to_header.address(), Some("zoe@example.org"));
    assert_eq!(to_header.name(), Some("Zoë Ångström Bcc: evil@example.net"));
    assert!(customer[0].text().contains("Dear Zoë Ångström"));
    let shown = env.show(id);
    assert_eq!(shown["deliveries"].as_array().unwrap().len(), 3);
    assert!(daemon.stop().success());
}

fn a_dry_run_renders_and_records_but_sends_nothing(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"all\"\nremind = [\"0s\"]\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    let followup = std::fs::read_to_string(env.config_dir().join("followup.toml")).unwrap();
    env.write_config(
        "followup.toml",
        &followup.replace(
            "transport = \"smtp\"",
            "transport = \"smtp\"\ndry_run = true",
        ),
    );
    let daemon = env.start();
    let id = env.add("Quote", "+1s", &[]);
    env.wait_timeline_done(id, Duration::from_secs(10));
    env.wait_idle(Duration::from_secs(10));
    assert!(env.smtp.messages().is_empty(), "a dry run sends nothing");
    let shown = env.show(id);
    let deliveries = shown["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{shown:#}");
    assert!(deliveries.iter().all(|d| d["state"] == "skipped"));
    assert!(
        shown["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "skipped")
    );
    assert!(
        shown["revisions"].as_array().unwrap().is_empty(),
        "a dry run moves no due time"
    );
    assert!(daemon.stop().success());
}

fn preview_prints_the_timeline_ahead_with_each_email(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "quotes"
remind = ["-1d", "-2h"]
customer_update = { at = "-1h", extend_by = "2 business days", max = 2 }
alert = { to = "team@example.com" }
"#,
    );
    let id = env.add(
        "Send quote",
        "+3d",
        &["--reason", "waiting for the supplier"],
    );
    let out = env.cli_ok(&["preview", &id.to_string()]);
    for needle in [
        "remind  -1d",
        "remind  -2h",
        "customer_update  update 1 of 2 (-1h)",
        "alert  missed",
        "rule \"quotes\"",
        "To: Joe Mensah <joe@example.org> (customer, template no_news_yet)",
        "To: team@example.com (team, template alert)",
        "Reply-To: Ana Ruiz <ana@example.com>",
        "| Waiting for the supplier.",
    ] {
        assert!(out.contains(needle), "preview lacks {needle:?}:\n{out}");
    }
    // Only the customer's email has a Reply-To (the owner); each says who it is from.
    assert_eq!(out.matches("Reply-To: ").count(), 1, "{out}");
    assert_eq!(
        out.matches("  From: ").count(),
        out.matches("  To: ").count(),
        "{out}"
    );
}

fn a_rule_naming_a_missing_template_or_an_unknown_variable_fails_check_config(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"x\"\ncustomer_update = { at = \"-1h\", extend_by = \"1d\", template = \"sorry\" }\n",
    );
    let out = env.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stdout).contains("template 'sorry'"));
    env.write_config(
        "templates/sorry.txt",
        "Subject: Sorry, {{ commitment.title }}\n\nNew time: {{ update.new_time }}\n",
    );
    let out = env.cli(&["check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sorry.txt:3:") && stdout.contains("update.new_time"),
        "{stdout}"
    );
    env.write_config(
        "templates/sorry.txt",
        "Subject: Sorry, {{ commitment.title }}\n\nNew time: {{ update.new_due }}\n",
    );
    assert!(env.cli(&["check-config"]).status.success());
}

on_both_stores!(
    an_open_commitment_past_its_update_time_tells_the_customer_exactly_once,
    a_delay_by_hand_tells_the_customer_once_with_the_reason,
    an_update_due_outside_business_hours_waits_until_they_open,
    alerts_escalations_and_check_ins_reach_the_right_people,
    a_check_in_for_the_owner_follows_done,
    hostile_names_and_notes_cannot_forge_headers_or_messages,
    a_dry_run_renders_and_records_but_sends_nothing,
    preview_prints_the_timeline_ahead_with_each_email,
    a_rule_naming_a_missing_template_or_an_unknown_variable_fails_check_config,
    catch_up_after_downtime_never_sends_a_customer_update_outside_business_hours,
);
