//! What rules can say, each key told as a story with the real binary, a real SQLite
//! file and a real SMTP server: after_done and its stop on close, due_in, on_open,
//! waiting on the customer, owner_hours.

use crate::common;
use common::store::{Store, lit};

use std::time::Duration;

use common::{Env, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

/// The stored step `key` of commitment `id`, once the daemon has it in `state`:
/// (skip_code, reason, fire_at in ms).
fn step_in_state(
    env: &Env,
    id: i64,
    key: &str,
    state: &str,
) -> (Option<String>, Option<String>, i64) {
    let mut db = env.sql();
    let sql = format!(
        "SELECT skip_code, reason, fire_at FROM steps
         WHERE commitment_id = {id} AND key = {} AND state = {}",
        lit(key),
        lit(state)
    );
    wait_until(&format!("step {key} {state}"), DEADLINE, || {
        db.rows(&sql).into_iter().next().map(|mut r| {
            let fire_at = r[2].as_deref().unwrap().parse().unwrap();
            (r[0].take(), r[1].take(), fire_at)
        })
    })
}

fn the_follow_ups_after_done_go_in_turn_and_stop_once_the_commitment_is_closed(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "complaint"
after_done = [
  { after = "1s", to = "owner" },
  { after = "2s", to = "customer" },
  { after = "1h", to = "customer" },
]
"#,
    );
    let daemon = env.start();
    let id = env.add("Replace the leaking pump seal", "+1h", &[]);
    env.cli_ok(&["done", &id.to_string()]);
    let got = env.smtp.wait_for(2, DEADLINE);
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert!(got[0].subject().starts_with("Check in with Joe Mensah"));
    assert_eq!(got[1].to, vec!["joe@example.org"]);
    step_in_state(&env, id, "check_in", "sent");
    step_in_state(&env, id, "after_done#2", "sent");
    step_in_state(&env, id, "after_done#3", "planned");

    // Closed won by another program writing the documented columns.
    env.sql().execute(&format!(
        "UPDATE commitments SET outcome = 'won', closed_at = '2026-12-02T10:00:00Z'
         WHERE id = {id}"
    ));
    let (code, reason, _) = step_in_state(&env, id, "after_done#3", "skipped");
    assert_eq!(code.as_deref(), Some("closed"));
    let reason = reason.unwrap();
    assert!(reason.starts_with("closed won on "), "{reason}");
    // The sent ones stay sent, and nothing more went.
    step_in_state(&env, id, "after_done#2", "sent");
    assert_eq!(env.smtp.messages().len(), 2);
    assert!(daemon.stop().success());
}

fn add_without_a_due_time_takes_the_rules_due_in_and_names_the_rule_without_one(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "callback"
match = { kind = "callback" }
due_in = "2h"

[[rule]]
name = "everything else"
"#,
    );
    let before = jiff::Timestamp::now();
    let out = env.cli_ok(&[
        "add",
        "--title",
        "Call Mr Mensah back about the pump",
        "--owner",
        "ana@example.com",
        "--customer",
        "joe@example.org",
        "--kind",
        "callback",
    ]);
    let id: i64 = out.trim().parse().unwrap();
    let due = env
        .sql()
        .text(&format!("SELECT due_at FROM commitments WHERE id = {id}"))
        .unwrap();
    let due: jiff::Timestamp = due.parse().unwrap();
    let after = jiff::Timestamp::now();
    let two_hours = jiff::SignedDuration::from_hours(2);
    // Stored to the second: allow that rounding.
    assert!(
        due >= before + two_hours - jiff::SignedDuration::from_secs(1),
        "{due}"
    );
    assert!(due <= after + two_hours, "{due}");

    let refused = env.cli(&[
        "add",
        "--title",
        "Send the brochure",
        "--owner",
        "ana@example.com",
        "--customer",
        "joe@example.org",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("rule 'everything else' (for no kind) has no due_in"),
        "{stderr}"
    );
}

fn the_team_hears_of_a_commitment_the_moment_it_is_recorded_but_not_of_old_imports(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "complaint"
on_open = { to = ["service-team@example.com", "desk@example.com"] }
"#,
    );
    let daemon = env.start();
    let id = env.add(
        "Make good the damaged wall",
        "+1d",
        &["--kind", "complaint"],
    );
    let got = env.smtp.wait_for(2, DEADLINE);
    let mut to: Vec<String> = got.iter().flat_map(|m| m.to.clone()).collect();
    to.sort();
    assert_eq!(to, ["desk@example.com", "service-team@example.com"]);
    assert!(
        got[0].subject().contains("Joe Mensah"),
        "{}",
        got[0].subject()
    );
    assert!(got[0].text().contains("Make good the damaged wall"));
    step_in_state(&env, id, "on_open", "sent");

    // A row recorded long ago, written now by another program.
    let old = env.sql().count(
        "INSERT INTO commitments (title, owner, customer, due_at, created_at)
         VALUES ('Old complaint', 'ana@example.com', 'joe@example.org',
                 '2030-01-01T10:00:00Z', '2026-01-05T09:00:00Z')
         RETURNING id",
    );
    let (code, _, _) = step_in_state(&env, old, "on_open", "skipped");
    assert_eq!(code.as_deref(), Some("past"));
    assert_eq!(env.smtp.messages().len(), 2);
    assert!(daemon.stop().success());
}

fn while_waiting_on_the_customer_no_reminder_goes(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "quote"
remind = ["-1s", "0s"]
"#,
    );
    let daemon = env.start();
    // Waiting from the start, due in three seconds: written by another program.
    let mut db = env.sql();
    let now = jiff::Timestamp::now();
    let due = now + jiff::SignedDuration::from_secs(3);
    let id = db.count(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, waiting_since)
         VALUES ('Send the quote for the new boiler', 'ana@example.com', 'joe@example.org',
                 '{due:.0}', '{now:.0}')
         RETURNING id"
    ));
    env.wait_timeline_done(id, DEADLINE);
    let steps: Vec<(String, Option<String>, Option<String>)> = db
        .rows(&format!(
            "SELECT state, skip_code, reason FROM steps WHERE commitment_id = {id}"
        ))
        .into_iter()
        .map(|mut r| (r[0].take().unwrap(), r[1].take(), r[2].take()))
        .collect();
    assert_eq!(steps.len(), 2, "{steps:?}");
    for (state, code, reason) in &steps {
        assert_eq!(state, "skipped");
        assert_eq!(code.as_deref(), Some("waiting"), "{reason:?}");
        let reason = reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("waiting on the customer since "),
            "{reason}"
        );
    }
    assert!(env.smtp.messages().is_empty(), "no reminder while waiting");
    assert!(daemon.stop().success());
}

fn with_owner_hours_a_reminder_outside_business_hours_waits_for_them(store: Store) {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let tomorrow = today.tomorrow().unwrap();
    let opens = tomorrow.tomorrow().unwrap();
    let calendar = format!(
        "[calendar]\ntimezone = \"UTC\"\nholidays = [\"{today}\", \"{tomorrow}\"]\nbusiness_hours = {{ mon = \"00:00-24:00\", tue = \"00:00-24:00\", wed = \"00:00-24:00\", thu = \"00:00-24:00\", fri = \"00:00-24:00\", sat = \"00:00-24:00\", sun = \"00:00-24:00\" }}"
    );
    let env = Env::with_calendar_on(
        store,
        "[[rule]]\nname = \"quote\"\nremind = [\"0s\"]\nowner_hours = true\n",
        &calendar,
    );
    let daemon = env.start();
    let id = env.add("Send the quote for the new boiler", "+1h", &[]);
    env.wait_planned(DEADLINE);
    let fire_at = env.sql().count(&format!(
        "SELECT fire_at FROM steps WHERE commitment_id = {id} AND kind = 'remind'"
    ));
    let opening = opens
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond();
    assert_eq!(
        fire_at, opening,
        "the reminder waits for the first open day"
    );
    assert!(daemon.stop().success());
}

on_both_stores!(
    the_follow_ups_after_done_go_in_turn_and_stop_once_the_commitment_is_closed,
    add_without_a_due_time_takes_the_rules_due_in_and_names_the_rule_without_one,
    the_team_hears_of_a_commitment_the_moment_it_is_recorded_but_not_of_old_imports,
    while_waiting_on_the_customer_no_reminder_goes,
    with_owner_hours_a_reminder_outside_business_hours_waits_for_them,
);
