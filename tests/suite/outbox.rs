//! The outbox after a fault: held mail goes at once when the relay is fixed (a reload
//! that changes `[mail]`, or `followup retry`), and a customer update that bounces
//! takes its move of the due time back. Real binary, real SQLite file, real SMTP
//! server on 127.0.0.1.

use crate::common;
use common::store::Store;

use std::time::Duration;

use common::{Env, SmtpServer, free_port, wait_until};

/// Each wait for mail that is held: far below the ten minutes the email would wait
/// for its retry, so only trying it at once can meet it.
const PROMPTLY: Duration = Duration::from_secs(20);

/// An installation whose relay is down (nothing listens on its port), whose failed
/// attempts wait ten minutes before the next, and whose rule reminds at the due time.
fn with_relay_down(store: Store) -> (Env, u16) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let port = free_port();
    env.write_smtp_config(port, "tls = \"none\"");
    env.mail_options("retry_after = \"10m\"");
    (env, port)
}

/// The first email of commitment `id` as `show` has it.
fn email(env: &Env, id: i64) -> serde_json::Value {
    env.show(id)["deliveries"][0].clone()
}

/// Waits until the first email of commitment `id` was tried and is held for a retry.
fn wait_held(env: &Env, id: i64) {
    wait_until("the email is held for a retry", PROMPTLY, || {
        let email = email(env, id);
        (email["state"] == "pending" && email["attempts"].as_u64().unwrap_or(0) >= 1).then_some(())
    });
    let email = email(env, id);
    let next = common::system_time(&email["next_attempt_at"]);
    let wait = next
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        wait > Duration::from_secs(5 * 60),
        "the retry waits minutes: {email:#}"
    );
}

fn a_reload_that_fixes_the_relay_sends_held_mail_at_once(store: Store) {
    let (env, _) = with_relay_down(store);
    let mut daemon = env.start();
    let id = env.add("Call back about the leak", "+1s", &[]);
    wait_held(&env, id);

    // The fix: point the config at the relay that runs, and reload.
    env.write_smtp_config(env.smtp.port, "tls = \"none\"");
    env.mail_options("retry_after = \"10m\"");
    daemon.signal("HUP");
    daemon.wait_notice("RELOADING=1", Duration::from_secs(10));
    let got = env.smtp.wait_for(1, PROMPTLY);
    assert_eq!(got.len(), 1, "the held email went at once after the reload");
    assert!(got[0].subject().contains("Call back about the leak"));
    wait_until("the email is recorded as sent", PROMPTLY, || {
        (email(&env, id)["state"] == "sent").then_some(())
    });
    assert_eq!(
        email(&env, id)["attempts"],
        2,
        "the failed attempt stays counted"
    );
    assert!(daemon.stop().success());
}

fn followup_retry_id_sends_the_held_mail_of_that_commitment_at_once(store: Store) {
    let (env, port) = with_relay_down(store);
    let daemon = env.start();
    let id = env.add("Send the quote", "+1s", &[]);
    wait_held(&env, id);
    let out = env.cli(&["retry", "999"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no commitment with id 999"),
        "{out:?}"
    );

    // The relay comes back on the same address; nothing in the config changes.
    let relay = SmtpServer::start_on(port);
    let said = env.cli_ok(&["retry", &id.to_string()]);
    assert_eq!(
        said.trim(),
        format!("1 email of commitment {id} is tried now")
    );
    let got = relay.wait_for(1, PROMPTLY);
    assert_eq!(got.len(), 1, "the held email went at once after the retry");
    wait_until("the email is recorded as sent", PROMPTLY, || {
        (email(&env, id)["state"] == "sent").then_some(())
    });
    assert_eq!(
        email(&env, id)["attempts"],
        2,
        "the failed attempt stays counted"
    );
    assert_eq!(
        env.cli_ok(&["retry", &id.to_string()]).trim(),
        format!("no email of commitment {id} is waiting for a retry")
    );
    assert!(daemon.stop().success());
}

fn followup_retry_id_leaves_the_held_mail_of_other_commitments_waiting(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    env.mail_options("retry_after = \"10m\"");
    // The relay works but refuses the owner's mailbox for now (452), so each email
    // waits for its own retry; nothing holds the whole outbox.
    env.smtp.defer("ana@example.com");
    let daemon = env.start();
    let first = env.add("Quote for the kitchen", "+1s", &[]);
    let second = env.add("Quote for the bathroom", "+1s", &[]);
    wait_held(&env, first);
    wait_held(&env, second);

    env.smtp.undefer("ana@example.com");
    env.cli_ok(&["retry", &first.to_string()]);
    let got = env.smtp.wait_for(1, PROMPTLY);
    assert!(
        got[0].subject().contains("kitchen"),
        "{:?}",
        got[0].subject()
    );
    wait_until("the email is recorded as sent", PROMPTLY, || {
        (email(&env, first)["state"] == "sent").then_some(())
    });
    let other = email(&env, second);
    assert_eq!(other["state"], "pending", "{other:#}");
    assert_eq!(other["attempts"], 1, "not tried again: {other:#}");
    assert_eq!(env.smtp.messages().len(), 1);
    assert!(daemon.stop().success());
}

fn followup_retry_sends_every_held_email_at_once(store: Store) {
    let (env, port) = with_relay_down(store);
    let daemon = env.start();
    let id = env.add("Order the part", "+1s", &[]);
    wait_held(&env, id);
    let relay = SmtpServer::start_on(port);
    assert_eq!(env.cli_ok(&["retry"]).trim(), "1 email is tried now");
    assert_eq!(relay.wait_for(1, PROMPTLY).len(), 1);
    assert!(daemon.stop().success());
}

const UPDATE_AT_DUE: &str =
    "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\", max = 1 }\n";

/// The emails of commitment `id` with `audience`, as `show` has them.
fn emails_to(env: &Env, id: i64, audience: &str) -> Vec<serde_json::Value> {
    env.show(id)["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["audience"] == audience)
        .cloned()
        .collect()
}

fn a_customer_update_that_bounces_is_undone_and_the_owner_gets_one_email_saying_so(store: Store) {
    let env = Env::on(store, UPDATE_AT_DUE);
    env.smtp.reject("joe@example.org");
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let id = env.add("Quote for the boiler", "+1s", &[]);
    // Read before the update's time: it moves the due time until the bounce undoes it.
    let promise = env.show(id)["commitment"]["due_at"].clone();
    env.advance(Duration::from_secs(1));

    // Done once the owner's notice is recorded as sent and nothing else waits.
    wait_until("the owner's notice is sent", PROMPTLY, || {
        let shown = env.show(id);
        let deliveries = shown["deliveries"].as_array().unwrap();
        let settled = deliveries.len() >= 3
            && deliveries
                .iter()
                .all(|d| d["state"] != "pending" && d["state"] != "waiting");
        settled.then_some(())
    });
    let got = env.smtp.messages();
    let subjects: Vec<String> = got.iter().map(|m| m.subject()).collect();
    assert_eq!(got.len(), 1, "one email, to the owner: {subjects:?}");
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert!(
        subjects[0].starts_with("Not delivered: ") && subjects[0].contains("still due"),
        "{subjects:?}"
    );
    let text = got[0].text();
    for said in [
        "was not told that it will be late",
        "550",
        "The due time is back to",
    ] {
        assert!(text.contains(said), "{said:?} in {text}");
    }

    let shown = env.show(id);
    assert_eq!(
        shown["commitment"]["due_at"], promise,
        "the old promise holds"
    );
    let undone = shown["revisions"][0]["undone"].as_str().unwrap_or_default();
    assert!(undone.contains("550"), "{shown:#}");
    let owner: Vec<_> = emails_to(&env, id, "owner");
    assert!(
        owner.iter().any(|d| d["state"] == "skipped"
            && d["subject"].as_str().unwrap().starts_with("Customer told")),
        "the copy saying the customer was told is not sent: {owner:#?}"
    );
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(table.contains("undone: customer not told"), "{table}");
    assert!(daemon.stop().success());
}

fn the_owners_copy_of_an_update_goes_only_after_the_customers_email_was_accepted(store: Store) {
    let env = Env::on(store, UPDATE_AT_DUE);
    let port = free_port();
    env.write_smtp_config(port, "tls = \"none\"");
    env.mail_options("retry_after = \"10m\"");
    let daemon = env.start();
    let id = env.add("Order the valve", "+1s", &[]);
    // While the relay cannot take the customer's email, the owner's copy is not tried.
    wait_until("the customer's email is held for a retry", PROMPTLY, || {
        emails_to(&env, id, "customer")
            .first()
            .is_some_and(|d| d["attempts"].as_u64().unwrap_or(0) >= 1)
            .then_some(())
    });
    let copy = emails_to(&env, id, "owner");
    assert_eq!(copy.len(), 1);
    assert_eq!(copy[0]["state"], "waiting", "{copy:#?}");
    assert_eq!(copy[0]["attempts"], 0);

    let relay = SmtpServer::start_on(port);
    env.cli_ok(&["retry", &id.to_string()]);
    let got = relay.wait_for(2, PROMPTLY);
    let to: Vec<_> = got.iter().map(|m| m.to[0].as_str()).collect();
    assert_eq!(to, ["joe@example.org", "ana@example.com"], "customer first");
    assert!(got[1].subject().starts_with("Customer told"));
    assert!(daemon.stop().success());
}

on_both_stores!(
    followup_retry_id_leaves_the_held_mail_of_other_commitments_waiting,
    a_customer_update_that_bounces_is_undone_and_the_owner_gets_one_email_saying_so,
    the_owners_copy_of_an_update_goes_only_after_the_customers_email_was_accepted,
    a_reload_that_fixes_the_relay_sends_held_mail_at_once,
    followup_retry_id_sends_the_held_mail_of_that_commitment_at_once,
    followup_retry_sends_every_held_email_at_once,
);
