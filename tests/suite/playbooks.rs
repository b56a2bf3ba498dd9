//! The shipped playbooks, each told as a story: the rule file exactly as `config/` ships
//! it, the real binary, a real SQLite file and a real SMTP server, and every email the
//! playbook sends read back.
//!
//! The harness's calendar is open around the clock, so "3 business days" is 72 hours
//! whenever the suite runs. A follow-up days after the work cannot be waited for; such
//! a story writes the rows as they stood days ago while the daemon was stopped (the
//! change that announces them dated then too), and starts the daemon: what fell due
//! meanwhile goes out at once, as after any outage (`catch_up = "send"`).

use crate::common;
use common::store::{Store, lit};

use std::time::Duration;

use common::{Env, Received, wait_until};
use jiff::{SignedDuration, Timestamp};

const DEADLINE: Duration = Duration::from_secs(30);

const QUOTE: &str = include_str!("../../config/10-quote.toml");
const CALLBACK: &str = include_str!("../../config/20-callback.toml");
const EMAIL_REPLY: &str = include_str!("../../config/30-email-reply.toml");
const ORDER_INFO: &str = include_str!("../../config/40-order-info.toml");
const COMPLAINT: &str = include_str!("../../config/50-complaint.toml");
const EMPLOYEE_CONCERN: &str = include_str!("../../config/60-employee-concern.toml");
const SHIPPED: &str = include_str!("../../config/followup.toml");

const JOE: &str = "Joe Mensah <joe@example.org>";

const DAY: SignedDuration = SignedDuration::from_hours(24);
const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// The rule blocks of the shipped `followup.toml` (its tables are the harness's).
fn catch_all() -> &'static str {
    &SHIPPED[SHIPPED
        .find("\n[[rule]]")
        .expect("followup.toml has the catch-all rule")..]
}

/// `ago` before now, as the RFC 3339 text the time columns hold.
fn iso(ago: SignedDuration) -> String {
    (Timestamp::now() - ago).to_string()
}

/// Dates the pending changes of commitment `id` `ago` before now: as if it had been
/// written then and the daemon had been stopped since. Call with the daemon stopped.
fn written_ago(env: &Env, id: i64, ago: SignedDuration) {
    let at = (Timestamp::now() - ago).as_millisecond();
    env.sql().execute(&format!(
        "UPDATE changes SET changed_at = {at} WHERE commitment_id = {id}"
    ));
}

/// Marks commitment `id` done `ago` before now, as another program would, with the
/// change dated then. Call with the daemon stopped.
fn done_ago(env: &Env, id: i64, ago: SignedDuration) {
    env.sql().execute(&format!(
        "UPDATE commitments SET status = 'done', done_at = '{}' WHERE id = {id}",
        iso(ago)
    ));
    written_ago(env, id, ago);
}

/// Waits until the step of commitment `id` whose key is like `key` (SQL `LIKE`) is in
/// `state`; returns its skip code.
fn step_becomes(env: &Env, id: i64, key: &str, state: &str) -> Option<String> {
    let mut db = env.sql();
    let sql = format!(
        "SELECT skip_code FROM steps WHERE commitment_id = {id} AND key LIKE {} AND state = {}",
        lit(key),
        lit(state)
    );
    wait_until(&format!("step {key} of {id} {state}"), DEADLINE, || {
        db.column(&sql).into_iter().next()
    })
}

/// `followup add --kind KIND` by Ana Ruiz for `customer`, with `extra` flags (no
/// `--due`: the rule's `due_in`, unless `extra` gives one); returns the id.
fn add_kind(env: &Env, kind: &str, title: &str, customer: &str, extra: &[&str]) -> i64 {
    let mut args = vec![
        "add",
        "--kind",
        kind,
        "--title",
        title,
        "--owner",
        "Ana Ruiz <ana@example.com>",
        "--customer",
        customer,
    ];
    args.extend_from_slice(extra);
    env.cli_ok(&args).trim().parse().unwrap()
}

/// The due time stored for commitment `id`.
fn due_of(env: &Env, id: i64) -> Timestamp {
    let due = env
        .sql()
        .text(&format!("SELECT due_at FROM commitments WHERE id = {id}"))
        .unwrap();
    due.parse().unwrap()
}

/// The messages to `address`.
fn to<'a>(got: &'a [Received], address: &str) -> Vec<&'a Received> {
    got.iter()
        .filter(|m| m.to.iter().any(|t| t == address))
        .collect()
}

/// Customer mail says the promise, never the internal title, and a reply reaches the
/// owner.
fn says_the_promise(message: &Received, promise: &str, title: &str) {
    let subject = message.subject();
    let text = message.text();
    assert!(
        text.contains(promise) || subject.to_lowercase().contains(promise),
        "{subject}\n{text}"
    );
    assert!(!subject.contains(title), "{subject}");
    assert!(!text.contains(title), "{text}");
    let reply_to = message
        .parsed()
        .reply_to()
        .and_then(|r| r.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    assert_eq!(reply_to.as_deref(), Some("ana@example.com"));
}

fn quote_reminds_before_it_is_due_then_follows_up_twice_until_closed(store: Store) {
    let env = Env::on(store, QUOTE);
    let title = "Boiler quote CRM-1042";
    let promise = "your quote for the boiler service";
    let daemon = env.start();
    let id = env.add(title, "+3s", &["--kind", "quote", "--promise", promise]);
    // -1d and -2h were past when it was written; the reminder at the due time goes.
    let got = env.smtp.wait_for(1, DEADLINE);
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert!(got[0].subject().contains(title), "{}", got[0].subject());
    assert!(daemon.stop().success());

    // Sent (done) 8 days ago: both follow-ups (3 and 7 business days) fell due since.
    done_ago(&env, id, 8 * DAY);
    // Another quote, sent 4 days ago: its first follow-up is due, its second is not.
    let second = env.add("Gas safety quote CRM-1043", "+1h", &["--kind", "quote"]);
    done_ago(&env, second, 4 * DAY);
    let daemon = env.start();
    let got = env.smtp.wait_for(4, DEADLINE);
    let joe = to(&got, "joe@example.org");
    assert_eq!(
        joe.len(),
        3,
        "{:?}",
        got.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    for m in &joe {
        assert!(m.subject().contains("any questions"), "{}", m.subject());
    }
    // They arrive in any order: the second quote's names it, the first's two do not.
    let (of_second, of_first): (Vec<_>, Vec<_>) =
        joe.iter().partition(|m| m.text().contains("CRM-1043"));
    assert_eq!((of_first.len(), of_second.len()), (2, 1));
    for m in of_first {
        says_the_promise(m, promise, title);
    }
    step_becomes(&env, id, "after_done#2", "sent");
    step_becomes(&env, second, "check_in", "sent");
    step_becomes(&env, second, "after_done#2", "planned");

    // Won: the follow-up still to come is skipped.
    env.cli_ok(&["close", &second.to_string(), "--outcome", "won"]);
    assert_eq!(
        step_becomes(&env, second, "after_done#2", "skipped").as_deref(),
        Some("closed")
    );
    assert_eq!(env.smtp.messages().len(), 4);
    assert!(daemon.stop().success());
}

fn callback_is_due_in_two_business_hours_reminds_before_and_escalates_after(store: Store) {
    let env = Env::on(store, CALLBACK);
    let before = Timestamp::now();
    let id = add_kind(
        &env,
        "callback",
        "Call Joe Mensah back about the pump",
        JOE,
        &[],
    );
    let due = due_of(&env, id);
    let after = Timestamp::now();
    // Always open: two business hours are two hours (stored to the second).
    assert!(
        due >= before + 2 * HOUR - SignedDuration::from_secs(1),
        "{due}"
    );
    assert!(due <= after + 2 * HOUR, "{due}");

    // As written three hours ago and due 70 minutes ago, still open: the reminder (30
    // minutes before) and the escalation (an hour after) have both fallen due.
    env.sql().execute(&format!(
        "UPDATE commitments SET due_at = '{}', created_at = '{}' WHERE id = {id}",
        iso(SignedDuration::from_mins(70)),
        iso(3 * HOUR)
    ));
    written_ago(&env, id, 3 * HOUR);
    let daemon = env.start();
    let got = env.smtp.wait_for(2, DEADLINE);
    let ana = to(&got, "ana@example.com");
    let lead = to(&got, "lead@example.com");
    assert_eq!((ana.len(), lead.len()), (1, 1), "{got:?}");
    assert!(
        lead[0]
            .text()
            .contains("Call Joe Mensah back about the pump")
    );
    assert!(to(&got, "joe@example.org").is_empty());
    assert!(daemon.stop().success());
}

fn email_reply_is_due_in_one_business_day_and_reminds_until_answered(store: Store) {
    let env = Env::on(store, EMAIL_REPLY);
    let id = add_kind(
        &env,
        "email-reply",
        "Answer Joe Mensah about the invoice",
        JOE,
        &[],
    );
    let due = due_of(&env, id);
    let left = due.duration_since(Timestamp::now());
    assert!(left > 23 * HOUR && left <= DAY, "{left:?}");

    // Written two days ago, due 25 hours ago: the reminders 2 hours before and at the
    // due time, and the first overdue one a business day after it, have fallen due.
    env.sql().execute(&format!(
        "UPDATE commitments SET due_at = '{}' WHERE id = {id}",
        iso(25 * HOUR)
    ));
    written_ago(&env, id, 2 * DAY);
    let daemon = env.start();
    let got = env.smtp.wait_for(3, DEADLINE);
    assert_eq!(to(&got, "ana@example.com").len(), 3, "{got:?}");
    step_becomes(&env, id, "overdue#2@%", "planned");
    assert!(daemon.stop().success());
}

fn order_info_tells_the_customer_before_the_due_time_with_the_reason_and_new_time(store: Store) {
    let env = Env::on(store, ORDER_INFO);
    let title = "Tell Mr Mensah when the Grundfos pump arrives";
    let promise = "news of your order 1234";
    let daemon = env.start();
    let due = (Timestamp::now() + HOUR + SignedDuration::from_secs(4)).to_string();
    // -1d and -2h are past; the owner's say 2 hours before the update is too.
    let id = env.add(title, &due, &["--kind", "order-info", "--promise", promise]);
    env.cli_ok(&[
        "note",
        &id.to_string(),
        "--reason",
        "the supplier shipped the pump a week late",
    ]);
    // The update goes an hour before the due time, with its copy to the owner.
    let got = env.smtp.wait_for(2, DEADLINE);
    let joe = to(&got, "joe@example.org");
    assert_eq!(joe.len(), 1, "{got:?}");
    says_the_promise(joe[0], promise, title);
    let text = joe[0].text();
    assert!(
        text.contains("The supplier shipped the pump a week late."),
        "{text}"
    );
    assert_eq!(to(&got, "ana@example.com").len(), 1);
    // The due time moved by 2 business days.
    let moved = due_of(&env, id);
    let old: Timestamp = due.parse().unwrap();
    // Stored to the second.
    let by = moved.duration_since(old);
    assert!(
        (by - 2 * DAY).abs() < SignedDuration::from_secs(1),
        "{by:?}"
    );
    assert!(daemon.stop().success());
}

fn complaint_alerts_the_team_at_once_then_checks_in_and_wraps_up(store: Store) {
    let env = Env::on(store, COMPLAINT);
    // An earlier promise to the same customer, missed, written by another program.
    env.sql().execute(&format!(
        "INSERT INTO commitments (title, owner, customer, due_at, created_at)
         VALUES ('Service the boiler', 'ana@example.com', 'joe@example.org', '{}', '{}')",
        iso(10 * DAY),
        iso(12 * DAY)
    ));
    let daemon = env.start();
    let title = "Leaking seal after the pump service";
    let promise = "a visit to fix the leaking seal";
    let id = add_kind(&env, "complaint", title, JOE, &["--promise", promise]);
    let got = env.smtp.wait_until("the on-open email", DEADLINE, |got| {
        !to(got, "service-team@example.com").is_empty()
    });
    let team = to(&got, "service-team@example.com");
    let text = team[0].text();
    assert!(team[0].subject().contains(title), "{}", team[0].subject());
    assert!(text.contains("Service the boiler"), "{text}");
    assert!(daemon.stop().success());

    // Done 6 days ago: the owner's check-in (an hour after) and the customer's wrap-up
    // (5 business days after) have fallen due.
    done_ago(&env, id, 6 * DAY);
    let daemon = env.start();
    let got = env.smtp.wait_for(3, DEADLINE);
    let ana = to(&got, "ana@example.com");
    assert_eq!(ana.len(), 1, "{got:?}");
    assert!(
        ana[0].subject().starts_with("Check in with Joe Mensah"),
        "{}",
        ana[0].subject()
    );
    let joe = to(&got, "joe@example.org");
    assert_eq!(joe.len(), 1, "{got:?}");
    assert!(
        joe[0].subject().contains("thank you"),
        "{}",
        joe[0].subject()
    );
    says_the_promise(joe[0], promise, title);
    env.cli_ok(&["close", &id.to_string(), "--outcome", "resolved"]);
    assert!(daemon.stop().success());
}

fn employee_concern_stays_internal_reminders_and_a_check_in_for_the_owner(store: Store) {
    let env = Env::on(store, EMPLOYEE_CONCERN);
    let employee = "Sam Okafor <sam@example.com>";
    let id = add_kind(
        &env,
        "employee-concern",
        "Van seat for Sam is broken",
        employee,
        &["--due", "+1h"],
    );
    // Written 3 days ago, due a day ago: the reminders a day before and at the due time
    // have fallen due.
    env.sql().execute(&format!(
        "UPDATE commitments SET due_at = '{}' WHERE id = {id}",
        iso(DAY)
    ));
    written_ago(&env, id, 3 * DAY);
    let daemon = env.start();
    let got = env.smtp.wait_for(2, DEADLINE);
    assert_eq!(to(&got, "ana@example.com").len(), 2, "{got:?}");
    assert!(daemon.stop().success());

    // Done 4 days ago: the owner's check-in with the employee (3 business days after).
    done_ago(&env, id, 4 * DAY);
    let daemon = env.start();
    let got = env.smtp.wait_for(3, DEADLINE);
    let last = &got[2];
    assert_eq!(last.to, vec!["ana@example.com"]);
    assert!(last.subject().contains("Sam Okafor"), "{}", last.subject());
    step_becomes(&env, id, "check_in", "sent");
    assert!(to(&got, "sam@example.com").is_empty());
    assert!(daemon.stop().success());
}

fn the_catch_all_reminds_the_owner_at_the_due_time(store: Store) {
    let env = Env::on(store, catch_all());
    let daemon = env.start();
    let id = env.add("Send the brochure", "+3s", &[]);
    let got = env.smtp.wait_for(1, DEADLINE);
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert!(got[0].subject().contains("Send the brochure"));
    step_becomes(&env, id, "overdue#1@%", "planned");
    assert!(daemon.stop().success());
}

on_both_stores!(
    quote_reminds_before_it_is_due_then_follows_up_twice_until_closed,
    order_info_tells_the_customer_before_the_due_time_with_the_reason_and_new_time,
    the_catch_all_reminds_the_owner_at_the_due_time,
    callback_is_due_in_two_business_hours_reminds_before_and_escalates_after,
    email_reply_is_due_in_one_business_day_and_reminds_until_answered,
    complaint_alerts_the_team_at_once_then_checks_in_and_wraps_up,
    employee_concern_stays_internal_reminders_and_a_check_in_for_the_owner,
);
