//! Spam filters let customer mail through: every shipped customer template, rendered by
//! the real daemon into the message it sends, scores below 2.0 with SpamAssassin's
//! local tests (`spamassassin -L -t`).
//!
//! Without `spamassassin` on PATH the test says so and passes, unless
//! `FOLLOWUP_REQUIRE_SPAMASSASSIN=1` (CI sets it after installing Debian's package).

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BUSINESS, Env, Received};

/// The highest score a customer email may have.
const LIMIT: f64 = 2.0;

const RULES: &str = r#"
[[rule]]
name = "order-info"
match = { kind = "order-info" }
customer_update = { at = "0s", extend_by = "2 business days" }

[[rule]]
name = "quote"
match = { kind = "quote" }
check_in = { after = "1s", to = "customer", template = "quote_follow_up" }

[[rule]]
name = "complaint"
match = { kind = "complaint" }
check_in = { after = "1s", to = "customer", template = "wrap_up" }

[[rule]]
name = "repair"
match = { kind = "repair" }
check_in = { after = "1s", to = "customer" }
"#;

fn spamassassin() -> Option<()> {
    let found = Command::new("spamassassin")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(());
    }
    if std::env::var("FOLLOWUP_REQUIRE_SPAMASSASSIN").as_deref() == Ok("1") {
        panic!("FOLLOWUP_REQUIRE_SPAMASSASSIN=1 but spamassassin is not on PATH");
    }
    println!("spamassassin is not on PATH: the customer templates' spam scores are not checked");
    None
}

/// SpamAssassin's score of `message` with local tests only, and the tests that hit.
fn score(message: &[u8]) -> (f64, String) {
    let mut child = Command::new("spamassassin")
        // Local tests only; no Bayes, so a run learns nothing and changes no database.
        .args(["-L", "-t", "--cf=use_bayes 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spamassassin starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message)
        .expect("spamassassin reads the message");
    let out = child.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = report
        .lines()
        .skip_while(|l| !l.starts_with("X-Spam-Status:"))
        .take_while(|l| l.starts_with("X-Spam-Status:") || l.starts_with(char::is_whitespace))
        .collect::<Vec<_>>()
        .join(" ");
    let score = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("score="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in spamassassin's answer: {report}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (score, status)
}

#[test]
fn every_shipped_customer_template_scores_below_two_with_spamassassin() {
    if spamassassin().is_none() {
        return;
    }
    let env = Env::new(&format!("{RULES}{BUSINESS}"));
    let daemon = env.start();
    let cases = [
        (
            "order-info",
            "Order 1234 for Joe",
            "information on your order 1234",
        ),
        (
            "quote",
            "Q-77 Joe kitchen",
            "the quote for your new kitchen",
        ),
        (
            "complaint",
            "Leak complaint Joe",
            "the repair of the leak under your sink",
        ),
        ("repair", "Boiler service Joe", "the service of your boiler"),
    ];
    let mut ids = Vec::new();
    for (kind, title, promise) in cases {
        let due = if kind == "order-info" { "+2s" } else { "+2h" };
        let id = env.add(
            title,
            due,
            &["--kind", kind, "--reason", "the part is delayed"],
        );
        env.db()
            .execute(
                "UPDATE commitments SET promise = ?2 WHERE id = ?1",
                rusqlite::params![id, promise],
            )
            .unwrap();
        ids.push(id);
    }
    // The delay notice: the owner moves a due time by hand and the customer is told.
    let delayed = env.add("Gutter repair Joe", "+3d", &["--kind", "repair"]);
    env.cli_ok(&[
        "delay",
        &delayed.to_string(),
        "--until",
        "+5d",
        "--reason",
        "the scaffolding comes later",
    ]);
    for id in &ids[1..] {
        env.cli_ok(&["done", &id.to_string()]);
    }
    let to_customer = |m: &&Received| m.to == ["joe@example.org"];
    let got = env.smtp.wait_until(
        "an email of each customer template",
        Duration::from_secs(30),
        |all| all.iter().filter(to_customer).count() >= 5,
    );
    assert!(daemon.stop().success());
    let mut failed = Vec::new();
    for message in got.iter().filter(to_customer) {
        let (score, status) = score(&message.data);
        println!("{score:5.1}  {}  [{status}]", message.subject());
        if score >= LIMIT {
            failed.push(format!("{score}: {} ({status})", message.subject()));
        }
    }
    assert!(failed.is_empty(), "scored {LIMIT} or more: {failed:#?}");
}
