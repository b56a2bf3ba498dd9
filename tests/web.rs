//! The pages behind the links in the daemon's emails, tested as the issue accepts them:
//! from real mail received over SMTP, over real HTTP, and in a real browser. The first
//! tests prove the test helpers themselves on a small site of their own.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::time::Duration;

use common::browser::Browser;
use common::{Env, http};
use followup::web::link::{Action, Links, Signer};
use jiff::SignedDuration;

/// A small site on 127.0.0.1 for proving the helpers: `GET /` is a form, `POST /submit`
/// answers with the body it received.
fn static_site() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_one(stream));
        }
    });
    url
}

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><meta name="viewport" content="width=device-width"><title>Form</title></head>
<body><form method="post" action="/submit">
<input type="hidden" name="token" value="a&amp;b">
<label for="reason">Reason</label> <input id="reason" type="text" name="reason" value="">
<select name="when"><option value="1d">+1 day</option><option value="2d" selected>+2 days</option></select>
<textarea name="note">left &lt;here&gt;</textarea>
<button type="submit" name="choice" value="hold">Hold it</button>
</form></body></html>"#;

fn serve_one(stream: std::net::TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let (status, page) = if request_line.starts_with("POST /submit") {
        let got = String::from_utf8_lossy(&body).replace('&', "&amp;");
        (
            "200 OK",
            format!("<html><body><p id=\"result\">got {got}</p></body></html>"),
        )
    } else if request_line.starts_with("GET / ") || request_line.starts_with("HEAD / ") {
        ("200 OK", FORM_PAGE.to_string())
    } else {
        ("404 Not Found", "not here".to_string())
    };
    let head_only = request_line.starts_with("HEAD ");
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        page.len()
    );
    if !head_only {
        answer.push_str(&page);
    }
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
}

#[test]
fn http_helper_reads_pages_and_submits_forms() {
    let site = static_site();
    let page = http::get(&format!("{site}/"));
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let head = http::head(&format!("{site}/"));
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(http::get(&format!("{site}/nothing")).status, 404);

    let forms = http::forms_in(&page.text());
    assert_eq!(forms.len(), 1);
    let mut form = forms[0].clone();
    assert_eq!(form.method, "post");
    assert_eq!(form.field("token"), Some("a&b"));
    assert_eq!(form.field("when"), Some("2d"));
    assert_eq!(form.field("note"), Some("left <here>"));
    assert_eq!(
        form.buttons,
        vec![("choice".to_string(), "hold".to_string())]
    );
    form.set("reason", "I called him");
    let answer = form.submit(&format!("{site}/"), Some(("choice", "hold")));
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .text()
            .contains("got token=a%26b&amp;reason=I+called+him&amp;when=2d"),
        "{}",
        answer.text()
    );
}

#[test]
fn links_in_finds_each_url_of_an_email() {
    let text = "Mark it done: http://127.0.0.1:8025/a/AbC-_x1.\n\
                Delay (<https://followup.example.com/a/Zz9>), or open\thttp://h:1/a/q";
    assert_eq!(
        http::links_in(text),
        vec![
            "http://127.0.0.1:8025/a/AbC-_x1",
            "https://followup.example.com/a/Zz9",
            "http://h:1/a/q",
        ]
    );
}

#[test]
fn browser_helper_fills_and_submits_a_form() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let site = static_site();
    browser.goto(&format!("{site}/"));
    assert_eq!(browser.title(), "Form");
    browser.fill("#reason", "I called him");
    let shot = browser.screenshot("helper-form");
    assert!(std::fs::metadata(&shot).unwrap().len() > 0);
    browser.click("button[name=choice]");
    common::wait_until("the answer page", Duration::from_secs(10), || {
        browser.url().ends_with("/submit").then_some(())
    });
    let text = browser.text();
    assert!(text.contains("reason=I+called+him"), "{text}");
    assert!(text.contains("choice=hold"), "{text}");
}

// ---- The daemon's pages --------------------------------------------------------------

/// One reminder at the due time, nothing else: the smallest timeline with links.
const REMIND: &str = r#"
[[rule]]
name = "default"
match = {}
remind = ["0s"]
"#;

/// Every row of the tables an action or a GET could change, as text.
fn store_snapshot(env: &Env) -> String {
    let db = env.db();
    let mut out = String::new();
    for table in ["commitments", "steps", "revisions", "deliveries", "changes"] {
        let mut statement = db
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let columns = statement.column_count();
        let rows = statement
            .query_map([], |row| {
                (0..columns)
                    .map(|i| row.get_ref(i).map(shown))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {}\n", row.unwrap().join(" | ")));
        }
    }
    out
}

/// A value of a row, readable in a diff (a message as its length and a checksum).
fn shown(value: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => {
            let sum = b.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &x| {
                (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
            });
            format!("blob({} bytes, {sum:016x})", b.len())
        }
    }
}

/// A link for `action` on `id`, signed with the installation's own key, as the daemon's
/// emails carry them; expiring `lifetime` after now (negative: already expired).
fn signed_link(env: &Env, base: &str, id: i64, action: Action, lifetime: SignedDuration) -> String {
    let key = followup::web::key::load_or_create(&env.db_path()).unwrap();
    Links::new(Signer::new(&key), base, lifetime).url(
        id,
        "ana@example.com",
        action,
        jiff::Timestamp::now(),
    )
}

/// The token of a link: what follows `/a/`.
fn token_of(link: &str) -> &str {
    link.rsplit_once("/a/").map(|(_, t)| t).unwrap_or(link)
}

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

/// What a link's token says: (commitment, action word, recipient). The payload is
/// readable (only its MAC is secret), which lets a test tell the links apart.
fn claim_of(link: &str) -> (i64, String, String) {
    use base64::Engine as _;
    let token = token_of(link);
    let payload = token.split_once('.').map(|(p, _)| p).unwrap_or(token);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|_| panic!("not a link token: {link}"));
    let text = String::from_utf8(bytes).unwrap();
    let mut parts = text.splitn(4, ':');
    let id = parts.next().unwrap().parse().unwrap();
    let action = parts.next().unwrap().to_string();
    let _expires = parts.next();
    (id, action, parts.next().unwrap_or_default().to_string())
}

/// The links of the daemon's pages in `message` (its plain text).
fn action_links(message: &common::Received) -> Vec<String> {
    http::links_in(&message.text())
        .into_iter()
        .filter(|l| l.contains("/a/"))
        .collect()
}

/// The revisions of `id` recorded by an action: (action, actor, via), oldest first.
fn actions_of(env: &Env, id: i64) -> Vec<(String, Option<String>, Option<String>)> {
    let db = env.db();
    let mut statement = db
        .prepare(
            "SELECT action, actor, via FROM revisions
             WHERE commitment_id = ?1 AND action IS NOT NULL ORDER BY id",
        )
        .unwrap();
    statement
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Submits the first POST form of the page at `url` (as shown by `page`) with `set`
/// filled in; then, while the answer is a confirmation (a form with `step`), that one
/// too. Returns every answer, the last one last.
fn submit_page(url: &str, page: &http::Response, set: &[(&str, &str)]) -> Vec<http::Response> {
    let mut answers: Vec<http::Response> = Vec::new();
    loop {
        let shown = answers.last().unwrap_or(page);
        let form = http::forms_in(&shown.text())
            .into_iter()
            .find(|f| f.method == "post" && (answers.is_empty() || f.field("step").is_some()));
        let Some(mut form) = form else {
            assert!(
                !answers.is_empty(),
                "no form on the page at {url}: {}",
                page.text()
            );
            return answers;
        };
        if answers.is_empty() {
            for (name, value) in set {
                form.set(name, value);
            }
        }
        let answer = form.submit(url, None);
        assert_eq!(answer.status, 200, "POST {url}: {}", answer.text());
        answers.push(answer);
        assert!(answers.len() < 3, "a third form at {url}");
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
                answers[0].text().contains("the part arrives Friday"),
                "the preview shows the customer's email: {}",
                answers[0].text()
            );
            env.smtp.wait_until(
                "the customer told of the delay",
                Duration::from_secs(10),
                |m| {
                    m.iter().any(|m| {
                        m.to.iter().any(|t| t == "joe@example.org")
                            && m.text().contains("the part arrives Friday")
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

/// The link for `action` among a message's links.
fn link_for(mail: &common::Received, action: &str) -> String {
    action_links(mail)
        .into_iter()
        .find(|l| claim_of(l).1 == action)
        .unwrap_or_else(|| panic!("no {action} link in {}", mail.text()))
}

/// A step of a commitment as stored.
#[derive(Debug)]
struct Step {
    key: String,
    state: String,
    skip_code: Option<String>,
    reason: Option<String>,
    fire_at: i64,
}

/// The steps of `id`, in the order they fire.
fn steps_of(env: &Env, id: i64) -> Vec<Step> {
    let db = env.db();
    let mut statement = db
        .prepare(
            "SELECT key, state, skip_code, reason, fire_at FROM steps
             WHERE commitment_id = ?1 ORDER BY fire_at, key",
        )
        .unwrap();
    statement
        .query_map([id], |r| {
            Ok(Step {
                key: r.get(0)?,
                state: r.get(1)?,
                skip_code: r.get(2)?,
                reason: r.get(3)?,
                fire_at: r.get(4)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
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
fn a_snooze_skips_the_reminders_in_its_window_and_the_next_one_goes() {
    let env = Env::new(
        r#"
[[rule]]
name = "nagging"
match = {}
remind = ["0s"]
overdue_every = "3s"
overdue_max = 6
"#,
    );
    let daemon = env.start();
    let _base = http::web_url(&daemon, Duration::from_secs(10));
    let id = env.add("Send quote for the boiler service", "+1s", &[]);
    let first = env.smtp.wait_for(1, Duration::from_secs(20)).remove(0);
    let link = link_for(&first, "snooze");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    let answer = submit_page(&link, &page, &[("choice", "at"), ("at", "+8s")])
        .pop()
        .unwrap();
    assert_eq!(
        actions_of(&env, id).last().map(|a| a.0.clone()),
        Some("snooze".to_string()),
        "{}",
        answer.text()
    );
    let until: i64 = env
        .db()
        .query_row(
            "SELECT snoozed_until FROM commitments WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    // The reminder at the snooze's end, and the first repeat after it, go.
    env.wait_planned(Duration::from_secs(10));
    common::wait_until(
        "the reminder after the snooze sent",
        Duration::from_secs(30),
        || {
            let steps = steps_of(&env, id);
            let after_end = steps
                .iter()
                .find(|s| s.fire_at > until && s.key.starts_with("overdue"))?;
            (after_end.state == "sent").then_some(())
        },
    );
    let steps = steps_of(&env, id);
    let snoozed: Vec<_> = steps
        .iter()
        .filter(|s| s.skip_code.as_deref() == Some("snoozed"))
        .collect();
    assert!(
        !snoozed.is_empty(),
        "reminders in the window skipped: {steps:?}"
    );
    for step in &snoozed {
        assert_eq!(step.state, "skipped", "{step:?}");
        assert!(step.fire_at < until, "only those before the end: {step:?}");
        let reason = step.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("snoozed"), "{reason}");
    }
    for step in steps
        .iter()
        .filter(|s| s.fire_at < until && s.key.starts_with("overdue"))
    {
        assert_ne!(
            step.state, "sent",
            "a reminder in the window went: {steps:?}"
        );
    }
    let at_end = steps
        .iter()
        .find(|s| s.key.starts_with("snooze@"))
        .unwrap_or_else(|| panic!("a reminder at the snooze's end: {steps:?}"));
    assert_eq!(at_end.state, "sent", "{steps:?}");
}

/// The owner's say before a customer update: asked 10 s before the update goes.
const ASK_OWNER: &str = r#"
[[rule]]
name = "ask"
match = {}
remind = ["0s"]
customer_update = { at = "-1s", extend_by = "1d", max = 1, ask_owner = "10s" }
"#;

#[test]
fn the_owner_asked_before_an_update_can_hold_it_send_it_now_or_let_it_go() {
    let env = Env::new(ASK_OWNER);
    let daemon = env.start();
    let _base = http::web_url(&daemon, Duration::from_secs(10));
    let held = env.add_for("Joe Mensah <joe@example.org>", "Held repair", "+14s");
    let sent_now = env.add_for("Kofi Boateng <kofi@example.org>", "Urgent repair", "+14s");
    let left = env.add_for("Ama Owusu <ama@example.org>", "Plain repair", "+14s");
    let planned_update = |id: i64| {
        steps_of(&env, id)
            .into_iter()
            .find(|s| s.key == "customer_update#1")
            .map(|s| common::from_epoch_ms(s.fire_at))
    };
    env.wait_planned(Duration::from_secs(10));
    let left_goes_at = planned_update(left).expect("an update planned");

    // Three notices to the owner, each naming the customer and what they will be told.
    let notices = env
        .smtp
        .wait_until("the owner's three notices", Duration::from_secs(20), |m| {
            m.iter()
                .filter(|m| m.to.iter().any(|t| t == "ana@example.com"))
                .count()
                >= 3
        });
    let notice = |title: &str| {
        notices
            .iter()
            .find(|m| m.text().contains(title))
            .cloned()
            .unwrap_or_else(|| panic!("no notice about {title}"))
    };
    let held_notice = notice("Held repair");
    let text = held_notice.text();
    assert!(text.contains("Joe Mensah will be told"), "{text}");
    for action in ["send_now", "hold", "delay", "done"] {
        link_for(&held_notice, action);
    }
    assert!(
        env.smtp
            .messages()
            .iter()
            .all(|m| m.to.iter().all(|t| t == "ana@example.com")),
        "no customer was told before the owner's say"
    );

    // Hold it, with the owner's words.
    let link = link_for(&held_notice, "hold");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    submit_page(&link, &page, &[("reason", "I called him")]);
    assert_eq!(
        actions_of(&env, held).last(),
        Some(&(
            "hold".to_string(),
            Some("ana@example.com".to_string()),
            Some("web".to_string())
        ))
    );
    // Send the other now: it goes at once, long before its time.
    let urgent = notice("Urgent repair");
    let link = link_for(&urgent, "send_now");
    let page = http::get(&link);
    assert_eq!(page.status, 200, "{}", page.text());
    submit_page(&link, &page, &[]);
    assert_eq!(
        actions_of(&env, sent_now)
            .last()
            .map(|a| (a.0.as_str(), a.2.as_deref())),
        Some(("send_now", Some("web")))
    );
    let planned_then = planned_update(left).unwrap();
    let kofi = env
        .smtp
        .wait_until("the update sent at once", Duration::from_secs(10), |m| {
            m.iter()
                .any(|m| m.to.iter().any(|t| t == "kofi@example.org"))
        });
    let kofi = kofi
        .iter()
        .find(|m| m.to.iter().any(|t| t == "kofi@example.org"))
        .unwrap();
    assert!(kofi.at < planned_then, "sent before its planned time");

    // A restart in between changes none of it.
    assert!(daemon.stop().success());
    let daemon = env.start();
    let _ = http::web_url(&daemon, Duration::from_secs(10));

    // Unanswered, the third goes at its time; the held one's owner is reminded at the
    // due time as usual, and its customer hears nothing.
    env.smtp
        .wait_until("the unanswered update", Duration::from_secs(30), |m| {
            m.iter()
                .any(|m| m.to.iter().any(|t| t == "ama@example.org"))
        });
    env.wait_timeline_done(held, Duration::from_secs(30));
    let all = env.smtp.messages();
    let ama: Vec<_> = all
        .iter()
        .filter(|m| m.to.iter().any(|t| t == "ama@example.org"))
        .collect();
    assert_eq!(ama.len(), 1, "the unanswered update went once");
    assert!(ama[0].at >= left_goes_at, "not before its time");
    assert_eq!(
        all.iter()
            .filter(|m| m.to.iter().any(|t| t == "kofi@example.org"))
            .count(),
        1,
        "the update sent at once went once"
    );
    assert!(
        !all.iter()
            .any(|m| m.to.iter().any(|t| t == "joe@example.org")),
        "the held update was never sent"
    );
    let held_step = steps_of(&env, held)
        .into_iter()
        .find(|s| s.key == "customer_update#1")
        .unwrap();
    assert_eq!(held_step.state, "skipped", "{held_step:?}");
    assert_eq!(
        held_step.skip_code.as_deref(),
        Some("held"),
        "{held_step:?}"
    );
    assert!(
        held_step
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("I called him"),
        "{held_step:?}"
    );
    assert!(
        all.iter()
            .any(|m| m.to.iter().any(|t| t == "ana@example.com")
                && m.text().contains("Held repair")
                && !m.text().contains("will be told")),
        "the held one's owner reminded at the due time"
    );
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
    let text = browser.text();
    assert!(
        text.contains("the valve comes on Friday"),
        "the preview: {text}"
    );
    browser.screenshot("web-delay-preview");
    assert!(
        !actions_of(&env, id).iter().any(|a| a.0 == "delay"),
        "the preview delayed nothing"
    );
}
