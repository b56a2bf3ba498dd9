//! The outbox after a fault: held mail goes at once when the relay is fixed (a reload
//! that changes `[mail]`, or `followup retry`), and a customer update that bounces
//! takes its move of the due time back. Real binary, real SQLite file, real SMTP
//! server on 127.0.0.1.

mod common;

use std::time::{Duration, Instant};

use common::{Env, SmtpServer, free_port};

/// Each wait for mail that is held: far below the ten minutes the email would wait
/// for its retry, so only trying it at once can meet it.
const PROMPTLY: Duration = Duration::from_secs(20);

/// Polls `done` until it holds; fails with `what` after `timeout`.
fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An installation whose relay is down (nothing listens on its port), whose failed
/// attempts wait ten minutes before the next, and whose rule reminds at the due time.
fn with_relay_down() -> (Env, u16) {
    let env = Env::new("[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
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
        email["state"] == "pending" && email["attempts"].as_u64().unwrap_or(0) >= 1
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

#[test]
fn a_reload_that_fixes_the_relay_sends_held_mail_at_once() {
    let (env, _) = with_relay_down();
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
        email(&env, id)["state"] == "sent"
    });
    assert_eq!(
        email(&env, id)["attempts"],
        2,
        "the failed attempt stays counted"
    );
    assert!(daemon.stop().success());
}

#[test]
fn followup_retry_id_sends_the_held_mail_of_that_commitment_at_once() {
    let (env, port) = with_relay_down();
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
        email(&env, id)["state"] == "sent"
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

#[test]
fn followup_retry_sends_every_held_email_at_once() {
    let (env, port) = with_relay_down();
    let daemon = env.start();
    let id = env.add("Order the part", "+1s", &[]);
    wait_held(&env, id);
    let relay = SmtpServer::start_on(port);
    assert_eq!(env.cli_ok(&["retry"]).trim(), "1 email is tried now");
    assert_eq!(relay.wait_for(1, PROMPTLY).len(), 1);
    assert!(daemon.stop().success());
}
