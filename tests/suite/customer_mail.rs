//! Customer mail a business would sign: it comes from the business, a reply reaches a
//! person, and the words read as written by one.

use crate::common;
use common::store::{Store, lit};

use std::time::Duration;

use common::{BUSINESS, Env, Received};

const UPDATE_RULE: &str =
    "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n";

/// Starts the daemon on `env`, adds a promise to Joe due at once and returns the mail
/// the customer gets.
fn customer_update(env: &Env, extra: &[&str]) -> Received {
    let daemon = env.start();
    env.add("Tell Mr Joe Mensah when his pump will arrive", "+1s", extra);
    let got = to_joe(env);
    assert!(daemon.stop().success());
    got
}

/// The first message to Joe, once it arrives.
fn to_joe(env: &Env) -> Received {
    let for_joe = |m: &Received| m.to == ["joe@example.org"];
    let got = env
        .smtp
        .wait_until("the customer's email", Duration::from_secs(20), |all| {
            all.iter().any(for_joe)
        });
    got.into_iter().find(for_joe).unwrap()
}

fn header(message: &Received, name: &str) -> Option<String> {
    message
        .parsed()
        .header_raw(name)
        .map(|v| v.trim().to_string())
}

fn customer_mail_comes_from_the_business_and_a_reply_reaches_the_owner(store: Store) {
    let env = Env::on(store, &format!("{UPDATE_RULE}{BUSINESS}"));
    let got = customer_update(&env, &[]);
    let parsed = got.parsed();
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Mensah Plumbing"));
    assert_eq!(from.address(), Some("followup@example.com"));
    let reply_to = parsed.reply_to().and_then(|a| a.first()).unwrap();
    assert_eq!(reply_to.address(), Some("ana@example.com"));
    assert_eq!(reply_to.name(), Some("Ana Ruiz"));
    let text = got.text().replace("\r\n", "\n");
    assert!(
        text.trim_end().ends_with(
            "Kind regards,\nAna Ruiz\nMensah Plumbing\n+44 20 7946 0018\n\
             https://plumbing.example.com\n12 High Street, London"
        ),
        "{text}"
    );
}

fn reply_to_may_name_a_shared_inbox(store: Store) {
    let env = Env::on(
        store,
        &format!("{UPDATE_RULE}{BUSINESS}reply_to = \"Front desk <desk@plumbing.example.com>\"\n"),
    );
    let got = customer_update(&env, &[]);
    assert_eq!(
        header(&got, "Reply-To").as_deref(),
        Some("\"Front desk\" <desk@plumbing.example.com>")
    );
}

fn without_a_business_customer_mail_is_signed_by_the_owner_and_replies_reach_them(store: Store) {
    let env = Env::on(store, UPDATE_RULE);
    let got = customer_update(&env, &[]);
    assert_eq!(
        header(&got, "Reply-To").as_deref(),
        Some("\"Ana Ruiz\" <ana@example.com>")
    );
    let parsed = got.parsed();
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Followup"));
    let text = got.text().replace("\r\n", "\n");
    assert!(
        text.trim_end().ends_with("Kind regards,\nAna Ruiz"),
        "{text}"
    );
}

fn the_owners_own_mail_has_no_reply_to(store: Store) {
    let env = Env::on(store, &format!("{UPDATE_RULE}{BUSINESS}"));
    let daemon = env.start();
    env.add("Send the quote", "+1s", &[]);
    let got = env.smtp.wait_for(2, Duration::from_secs(20));
    let owner = got.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    assert_eq!(header(owner, "Reply-To"), None);
    let from = owner
        .parsed()
        .from()
        .and_then(|a| a.first())
        .map(|a| a.name().map(str::to_string));
    assert_eq!(from, Some(Some("Followup".to_string())));
    assert!(daemon.stop().success());
}

fn a_bad_business_value_is_a_config_error_with_its_line(store: Store) {
    let env = Env::on(
        store,
        &format!("{UPDATE_RULE}{BUSINESS}reply_to = \"the owner\"\n"),
    );
    let out = env.cli(&["check-config"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        stderr.contains("rules.toml:10:") && stderr.contains("reply_to must be \"owner\""),
        "{stderr}"
    );
}

fn the_customer_reads_the_promise_in_sentences_never_the_title_nor_hard_wraps(store: Store) {
    let env = Env::on(store, &format!("{UPDATE_RULE}{BUSINESS}"));
    let title = "Tell Mr Joe Mensah when his Grundfos pump will arrive";
    let id = env.add(title, "+2s", &["--reason", "parts delayed"]);
    // The promise, as another program (or `add --promise`) records it.
    env.sql().execute(&format!(
        "UPDATE commitments SET promise = 'news of your Grundfos pump' WHERE id = {id}"
    ));
    let daemon = env.start();
    let got = to_joe(&env);
    assert!(daemon.stop().success());
    let subject = got.subject();
    let text = got.text().replace("\r\n", "\n");
    assert!(
        subject.starts_with("News of your Grundfos pump: now expected tomorrow, "),
        "{subject}"
    );
    assert!(!subject.contains(title) && !text.contains(title), "{text}");
    assert!(
        text.contains("\nWe promised you news of your Grundfos pump by today, "),
        "{text}"
    );
    assert!(text.contains("\n\nParts delayed.\n\n"), "{text}");
    // On the wire the long lines are encoded, so no line of the message is long.
    let raw = String::from_utf8_lossy(&got.data).into_owned();
    for line in raw.split("\r\n") {
        assert!(line.len() <= 78, "a line of {} octets: {line}", line.len());
    }
    // One line per paragraph: every line of the body ends a sentence, or is the
    // greeting or a line of the sign-off.
    let paragraphs: Vec<&str> = text.trim_end().split("\n\n").collect();
    for paragraph in &paragraphs[1..paragraphs.len() - 1] {
        assert!(
            !paragraph.trim().contains('\n'),
            "a hard wrap: {paragraph:?}"
        );
        assert!(paragraph.trim().ends_with('.'), "{paragraph:?}");
    }
}

fn customer_mail_is_plain_text_and_html_saying_the_same_and_owner_mail_stays_plain(store: Store) {
    let env = Env::on(store, &format!("{UPDATE_RULE}{BUSINESS}"));
    let daemon = env.start();
    env.add(
        "Send the <quote> & prices",
        "+1s",
        &["--reason", "parts delayed"],
    );
    let got = env.smtp.wait_for(2, Duration::from_secs(20));
    assert!(daemon.stop().success());
    let customer = got.iter().find(|m| m.to == ["joe@example.org"]).unwrap();
    let raw = String::from_utf8_lossy(&customer.data).into_owned();
    assert!(
        raw.contains("Content-Type: multipart/alternative;"),
        "{raw}"
    );
    let parsed = customer.parsed();
    let html = parsed.body_html(0).unwrap().into_owned();
    assert!(html.contains("<p style="), "{html}");
    assert!(
        html.contains("Send the &lt;quote&gt; &amp; prices"),
        "escaped: {html}"
    );
    assert!(html.contains(">Parts delayed.</p>"), "{html}");
    assert!(html.contains("href=\"tel:+442079460018\""), "{html}");
    assert!(html.contains(">plumbing.example.com</a>"), "{html}");
    // The same paragraphs as the plain part.
    let text = customer.text().replace("\r\n", "\n");
    assert!(text.contains("Send the <quote> & prices"), "{text}");
    let owner = got.iter().find(|m| m.to == ["ana@example.com"]).unwrap();
    let raw = String::from_utf8_lossy(&owner.data).into_owned();
    assert!(!raw.contains("multipart"), "{raw}");
}

fn after_the_work_the_customer_hears_of_the_quote_and_the_wrap_up_in_measured_days(store: Store) {
    let env = Env::on(
        store,
        &format!(
            r#"
[[rule]]
name = "quote"
match = {{ kind = "quote" }}
check_in = {{ after = "1s", to = "customer", template = "quote_follow_up" }}

[[rule]]
name = "complaint"
match = {{ kind = "complaint" }}
check_in = {{ after = "1s", to = "customer", template = "wrap_up" }}
{BUSINESS}"#
        ),
    );
    let daemon = env.start();
    let quote = env.add("Q-77 kitchen", "+1h", &["--kind", "quote"]);
    let complaint = env.add("Leak complaint", "+1h", &["--kind", "complaint"]);
    for (id, promise) in [
        (quote, "the quote for your new kitchen"),
        (complaint, "the leak under your sink"),
    ] {
        env.sql().execute(&format!(
            "UPDATE commitments SET promise = {} WHERE id = {id}",
            lit(promise)
        ));
        env.cli_ok(&["done", &id.to_string()]);
    }
    let got = env
        .smtp
        .wait_until("both follow-ups", Duration::from_secs(20), |all| {
            all.iter().filter(|m| m.to == ["joe@example.org"]).count() == 2
        });
    assert!(daemon.stop().success());
    let texts: Vec<(String, String)> = got
        .iter()
        .filter(|m| m.to == ["joe@example.org"])
        .map(|m| (m.subject(), m.text().replace("\r\n", "\n")))
        .collect();
    let (subject, text) = texts.iter().find(|(s, _)| s.contains("kitchen")).unwrap();
    assert_eq!(subject, "The quote for your new kitchen: any questions?");
    assert!(
        text.contains(
            "\nEarlier today we sent you the quote for your new kitchen. \
             Did you have a chance to look at it?\n"
        ),
        "{text}"
    );
    assert!(text.contains("just reply to this email"), "{text}");
    let (subject, text) = texts.iter().find(|(s, _)| s.contains("leak")).unwrap();
    assert_eq!(
        subject,
        "The leak under your sink: thank you for your patience"
    );
    assert!(
        text.contains("We took care of the leak under your sink earlier today, and we hope"),
        "{text}"
    );
    assert!(text.contains("or call us on +44 20 7946 0018."), "{text}");
    assert!(!text.contains("Leak complaint"), "{text}");
}

on_both_stores!(
    customer_mail_comes_from_the_business_and_a_reply_reaches_the_owner,
    reply_to_may_name_a_shared_inbox,
    without_a_business_customer_mail_is_signed_by_the_owner_and_replies_reach_them,
    the_owners_own_mail_has_no_reply_to,
    a_bad_business_value_is_a_config_error_with_its_line,
    customer_mail_is_plain_text_and_html_saying_the_same_and_owner_mail_stays_plain,
    the_customer_reads_the_promise_in_sentences_never_the_title_nor_hard_wraps,
    after_the_work_the_customer_hears_of_the_quote_and_the_wrap_up_in_measured_days,
);
