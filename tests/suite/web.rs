//! The pages behind the links in the daemon's emails, tested as the issue accepts them:
//! from real mail received over SMTP, over real HTTP, and in a real browser.

use crate::common;

use std::time::Duration;

use common::browser::Browser;
use common::pages::*;
use common::{Env, http};
use followup::web::link::{Action, Links, Signer};
use jiff::SignedDuration;

/// Tokens that must all be refused: each a small change of `good` (a byte changed,
/// dropped or added, cut short, lengthened), a payload relabelled under the same MAC,
/// another key's, an expired one and one for a commitment that does not exist (both
/// signed with the right key), and random text.
fn forgeries(env: &Env, base: &str, good: &str, id: i64, count: usize) -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    let mut rng = fastrand::Rng::with_seed(15);
    let (payload, mac) = good.split_once('.').unwrap();
    let day = SignedDuration::from_hours(24);
    let mut fixed = vec![
        token_of(&signed_link(env, base, id, Action::Done, -day)).to_string(),
        token_of(&signed_link(env, base, 999_999, Action::Done, day)).to_string(),
        token_of(&Links::new(Signer::new(&[9; 32]), base, day).url(
            id,
            "ana@example.com",
            Action::Done,
            jiff::Timestamp::now(),
        ))
        .to_string(),
        format!(
            "{}.{mac}",
            b64.encode(format!("{id}:cancel:4102444800:ana@example.com"))
        ),
        format!(
            "{}.{mac}",
            b64.encode(format!("{}:done:4102444800:ana@example.com", id + 1))
        ),
        format!("{payload}."),
        format!(".{mac}"),
        payload.to_string(),
        format!("{good}{good}"),
        "A".repeat(600),
        "x".to_string(),
    ];
    while fixed.len() < count {
        let mut bytes = good.as_bytes().to_vec();
        let at = rng.usize(..bytes.len());
        let other = ALPHABET[rng.usize(..ALPHABET.len())];
        match rng.u8(..6) {
            0 | 1 => bytes[at] = other,
            2 => {
                bytes.remove(at);
            }
            3 => bytes.insert(at, other),
            4 => bytes.truncate(at.max(1)),
            _ => {
                bytes = (0..rng.usize(1..200))
                    .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
                    .collect()
            }
        }
        let forged = String::from_utf8(bytes).unwrap();
        if forged != good {
            fixed.push(forged);
        }
    }
    fixed
}

#[test]
fn a_thousand_forged_or_altered_tokens_all_get_the_same_refusal() {
    let env = Env::new(REMIND);
    let id = env.add("Send quote for the boiler service", "2099-11-24 17:00", &[]);
    let daemon = env.start();
    let base = http::web_url(&daemon, Duration::from_secs(10));
    let good_link = signed_link(
        &env,
        &base,
        id,
        Action::Done,
        SignedDuration::from_hours(24),
    );
    let good = token_of(&good_link).to_string();
    assert_eq!(http::get(&good_link).status, 200, "the genuine link works");
    env.wait_idle(Duration::from_secs(10));
    let before = store_snapshot(&env);

    let refusal = http::get(&format!("{base}/a/nothing"));
    assert_eq!(refusal.status, 404);
    assert!(
        refusal.text().contains("not valid"),
        "the refusal says so: {}",
        refusal.text()
    );
    let forged = forgeries(&env, &base, &good, id, 1000);
    assert_eq!(forged.len(), 1000);
    let origin = http::Url::parse(&base).origin();
    for (i, token) in forged.iter().enumerate() {
        let url = format!("{base}/a/{token}");
        let answer = if i % 10 == 0 {
            http::post_form(&url, &[("choice", "done")], &[("Origin", &origin)])
        } else {
            http::get(&url)
        };
        assert_eq!(
            (answer.status, answer.text()),
            (refusal.status, refusal.text()),
            "token {i} {token:?}"
        );
    }
    assert_eq!(
        store_snapshot(&env),
        before,
        "no forged token changed anything"
    );
    let log = daemon.log();
    assert!(!log.contains(&good), "the genuine token is not logged");
    for token in forged.iter().filter(|t| t.len() > 20) {
        assert!(
            !log.contains(token.as_str()),
            "a forged token was logged: {token}"
        );
    }
}

#[test]
fn from_a_real_email_a_link_shows_its_form_and_only_the_post_acts() {
    let env = Env::new(REMIND);
    let daemon = env.start();
    let base = http::web_url(&daemon, Duration::from_secs(10));
    // One commitment for each action taken from its reminder.
    let taken = ["done", "delay", "snooze", "cancel"];
    let ids: Vec<i64> = taken
        .iter()
        .map(|action| env.add(&format!("Boiler quote ({action})"), "+1s", &[]))
        .collect();
    let mails = env
        .smtp
        .wait_until("a reminder for each", Duration::from_secs(20), |m| {
            m.len() >= ids.len()
        });

    for (action, id) in taken.iter().zip(&ids) {
        let mail = mails
            .iter()
            .find(|m| m.text().contains(&format!("Boiler quote ({action})")))
            .unwrap_or_else(|| panic!("no reminder for the {action} commitment"));
        let links = action_links(mail);
        let words: Vec<String> = links.iter().map(|l| claim_of(l).1).collect();
        for word in ["done", "delay", "snooze", "cancel", "open"] {
            assert!(
                words.iter().any(|w| w == word),
                "a {word} link in {}",
                mail.text()
            );
        }
        for link in &links {
            assert_eq!(claim_of(link).0, *id, "{link}");
            assert_eq!(claim_of(link).2, "ana@example.com", "{link}");
            assert!(link.starts_with(&base), "{link} on {base}");
        }

        // Looking changes nothing.
        env.wait_idle(Duration::from_secs(10));
        let before = store_snapshot(&env);
        for link in &links {
            let page = http::get(link);
            assert_eq!(page.status, 200, "GET {link}: {}", page.text());
            assert_eq!(http::head(link).status, 200, "HEAD {link}");
        }
        assert_eq!(
            store_snapshot(&env),
            before,
            "GET and HEAD changed the store"
        );

        // The POST of the page's form acts, recorded as from the web by the recipient.
        let link = links.iter().find(|l| claim_of(l).1 == *action).unwrap();
        let page = http::get(link);
        let answers = submit_page(link, &page, &[("reason", "the part arrives Friday")]);
        let answer = answers.last().unwrap();
        let recorded = actions_of(&env, *id);
        assert_eq!(
            recorded.last(),
            Some(&(
                action.to_string(),
                Some("ana@example.com".to_string()),
                Some("web".to_string())
            )),
            "{action}: {recorded:?}; the page said {}",
            answer.text()
        );
        let shown = env.show(*id);
        match *action {
            "done" => assert_eq!(shown["commitment"]["status"], "done"),
            "cancel" => assert_eq!(shown["commitment"]["status"], "cancelled"),
            _ => assert_eq!(shown["commitment"]["status"], "open"),
        }
        if *action == "delay" {
            // The customer's email is shown before it leaves, then sent.
            assert_eq!(answers.len(), 2, "a preview, then the confirmation");
            assert!(
                answers[0].text().contains("part arrives Friday"),
                "the preview shows the customer's email: {}",
                answers[0].text()
            );
            env.smtp.wait_until(
                "the customer told of the delay",
                Duration::from_secs(10),
                |m| {
                    m.iter().any(|m| {
                        m.to.iter().any(|t| t == "joe@example.org")
                            && m.text().contains("part arrives Friday")
                    })
                },
            );
        }

        // A second POST of a closing action does nothing new and says why.
        if matches!(*action, "done" | "cancel") {
            let again = submit_page(link, &page, &[]).pop().unwrap();
            let said = if *action == "done" {
                "Already marked done"
            } else {
                "Already cancelled"
            };
            assert!(
                again.text().contains(said) && again.text().contains("(by email link)"),
                "the second {action}: {}",
                again.text()
            );
            assert_eq!(actions_of(&env, *id), recorded, "acting twice is harmless");
        }
    }
}

/// A timeline that sends every kind of email to the owner and the team: reminder,
/// overdue repeat, alert, escalation, the owner's copy of a customer update, and (once
/// a second commitment is marked done) the check-in to the owner.
const FULL_TIMELINE: &str = r#"
[[rule]]
name = "full"
match = { kind = "full" }
remind = ["0s"]
overdue_every = "1s"
overdue_max = 1
customer_update = { at = "-1s", extend_by = "2s", max = 1 }
alert = { at = "+0s", to = ["service-team@example.com"] }
escalate = { after = "+1s", to = ["lead@example.com"] }

[[rule]]
name = "check-in"
match = { kind = "check-in" }
check_in = { after = "1s", to = "owner" }
"#;

#[test]
fn a_scanner_fetching_every_link_of_a_full_timeline_changes_nothing() {
    let env = Env::new(FULL_TIMELINE);
    let daemon = env.start();
    let base = http::web_url(&daemon, Duration::from_secs(10));
    let full = env.add(
        "Repair the heating",
        "+2s",
        &["--kind", "full", "--reason", "parts"],
    );
    let closed = env.add(
        "Service the boiler",
        "2099-11-24 17:00",
        &["--kind", "check-in"],
    );
    env.cli_ok(&["done", &closed.to_string()]);
    env.wait_timeline_done(full, Duration::from_secs(30));
    env.wait_timeline_done(closed, Duration::from_secs(30));
    env.wait_idle(Duration::from_secs(30));
    let mails = env.smtp.messages();

    let mut links = Vec::new();
    for mail in &mails {
        let found = action_links(mail);
        let to_customer = mail.to.iter().any(|t| t == "joe@example.org");
        if to_customer {
            assert!(
                found.is_empty(),
                "a customer email with links: {}",
                mail.text()
            );
        } else {
            assert!(
                !found.is_empty(),
                "an email to {:?} without links: {} {}",
                mail.to,
                mail.subject(),
                mail.text()
            );
        }
        links.extend(found);
    }
    assert!(
        mails.len() >= 6,
        "the whole timeline: {} emails",
        mails.len()
    );

    let before = store_snapshot(&env);
    for link in &links {
        for method in ["GET", "HEAD"] {
            let answer = http::request(
                method,
                link,
                &[("User-Agent", "Mozilla/5.0 (compatible; SafeLinks scanner)")],
                b"",
            );
            assert!(link.starts_with(&base), "{link} on {base}");
            assert_eq!(answer.status, 200, "{method} {link}: {}", answer.text());
        }
    }
    assert_eq!(
        store_snapshot(&env),
        before,
        "a GET or HEAD of one of {} links changed the store",
        links.len()
    );
    assert_eq!(
        env.smtp.messages().len(),
        mails.len(),
        "nothing more was sent"
    );
}

#[test]
fn in_a_real_browser_the_done_link_of_an_email_marks_it_done() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let env = Env::new(REMIND);
    let daemon = env.start();
    let base = http::web_url(&daemon, Duration::from_secs(10));
    let id = env.add("Send quote for the boiler service", "+1s", &[]);
    let mail = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);

    // Every page, as the phone shows it; looking changes nothing.
    env.wait_idle(Duration::from_secs(10));
    let before = store_snapshot(&env);
    for link in action_links(&mail) {
        browser.goto(&link);
        browser.screenshot(&format!("web-{}", claim_of(&link).1));
    }
    browser.goto(&format!("{base}/a/not-a-token"));
    assert!(browser.text().contains("not valid"), "{}", browser.text());
    browser.screenshot("web-not-valid");
    assert_eq!(
        store_snapshot(&env),
        before,
        "the browser's GETs changed the store"
    );

    browser.goto(&link_for(&mail, "done"));
    browser.click("form[method=post] button[type=submit]");
    common::wait_until("the commitment done", Duration::from_secs(10), || {
        (env.show(id)["commitment"]["status"] == "done").then_some(())
    });
    browser.wait_for_text("Marked done", Duration::from_secs(10));
    browser.screenshot("web-done-result");
    assert_eq!(
        actions_of(&env, id),
        vec![(
            "done".to_string(),
            Some("ana@example.com".to_string()),
            Some("web".to_string())
        )]
    );
    // The same link again: the page says it is already done, and by whom.
    browser.goto(&link_for(&mail, "done"));
    let text = browser.text();
    assert!(text.contains("Already marked done"), "{text}");
    assert!(
        text.contains("ana@example.com (by email link)"),
        "who and how: {text}"
    );
    browser.screenshot("web-done-again");
}

#[test]
fn in_a_real_browser_the_owners_say_and_the_delay_preview_are_pictured() {
    let Some(browser) = Browser::start() else {
        return;
    };
    // The notice is due at once: the update goes in an hour.
    let env = Env::new(
        r#"
[[rule]]
name = "ask"
match = {}
customer_update = { at = "-1s", extend_by = "1d", max = 1, ask_owner = "1h" }
"#,
    );
    let daemon = env.start();
    let _base = http::web_url(&daemon, Duration::from_secs(10));
    let id = env.add(
        "Replace the boiler valve",
        "+3601s",
        &["--reason", "parts late"],
    );
    let notice = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);
    assert!(notice.text().contains("will be told"), "{}", notice.text());
    env.wait_idle(Duration::from_secs(10));
    let before = store_snapshot(&env);
    for action in ["send_now", "hold"] {
        browser.goto(&link_for(&notice, action));
        browser.screenshot(&format!("web-ask-{action}"));
    }
    assert_eq!(
        store_snapshot(&env),
        before,
        "the browser's GETs changed the store"
    );

    // Delay: the customer's email is shown before anything is sent.
    browser.goto(&link_for(&notice, "delay"));
    browser.fill("#reason", "the valve comes on Friday");
    browser.click("form[method=post] button[type=submit]");
    browser.wait_for_text("valve comes on Friday", Duration::from_secs(10));
    browser.screenshot("web-delay-preview");
    assert!(
        !actions_of(&env, id).iter().any(|a| a.0 == "delay"),
        "the preview delayed nothing"
    );
}
