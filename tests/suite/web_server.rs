//! The daemon's pages over real HTTP: the real binary, its own store and SMTP server,
//! links signed with the key the daemon made, and a plain HTTP/1.1 client over a
//! `TcpStream`. GET and HEAD change nothing; the POST of a page's form acts once.

use crate::common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use common::{Daemon, Env, wait_until};
use followup::web::link::{Action, Claim, Signer};

const FAR_RULE: &str = r#"
[[rule]]
name = "far"
remind = ["-1d"]
customer_update = { at = "-1h", extend_by = "1 business day" }
"#;

/// One HTTP answer.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends `raw` as one request on a fresh connection and reads the answer to the end.
fn exchange(port: u16, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(raw).unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    Answer {
        status,
        head: head.to_string(),
        body: body.to_string(),
    }
}

fn get(port: u16, method: &str, path: &str) -> Answer {
    exchange(
        port,
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
}

fn post(port: u16, path: &str, headers: &str, form: &str) -> Answer {
    exchange(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
             {headers}\r\n{form}",
            form.len()
        )
        .as_bytes(),
    )
}

/// The port the daemon says its pages are on.
fn web_port(daemon: &Daemon) -> u16 {
    wait_until(
        "the web address in the log",
        Duration::from_secs(10),
        || {
            let log = daemon.log();
            let at = log.find("web pages at http://127.0.0.1:")?;
            let rest = &log[at + "web pages at http://127.0.0.1:".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        },
    )
}

/// The path of a link for Ana to take `action` on commitment `id`, signed with the
/// daemon's key.
fn link(env: &Env, id: i64, action: Action) -> String {
    let key = followup::web::key::load_or_create(&env.db_path()).unwrap();
    let token = Signer::new(&key).sign(&Claim {
        commitment: id,
        recipient: "ana@example.com".into(),
        action,
        expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    });
    format!("/a/{token}")
}

/// Everything a page could change about commitment `id`, as one text.
fn snapshot(env: &Env, id: i64) -> String {
    let db = env.db();
    let row: String = db
        .query_row(
            "SELECT status || '|' || due_at || '|' || ifnull(snoozed_until, '') \
             FROM commitments WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    let revisions: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM revisions WHERE commitment_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap();
    format!("{row} revisions={revisions}")
}

fn last_revision(env: &Env, id: i64) -> (String, String, String) {
    env.db()
        .query_row(
            "SELECT action, actor, via FROM revisions WHERE commitment_id = ?1 \
             ORDER BY id DESC LIMIT 1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
}

#[test]
fn every_page_shows_without_changing_anything_and_a_post_acts_once() {
    let env = Env::new(FAR_RULE);
    let id = env.add("Quote for ACME", "+3d", &[]);
    let daemon = env.start();
    let port = web_port(&daemon);
    env.wait_planned(Duration::from_secs(10));
    let before = snapshot(&env, id);
    for action in followup::web::link::ACTIONS {
        let path = link(&env, id, action);
        let shown = get(port, "GET", &path);
        assert_eq!(shown.status, 200, "GET {action}: {}", shown.body);
        assert!(
            shown.body.contains("Quote for ACME"),
            "{action}: {}",
            shown.body
        );
        assert_eq!(shown.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(shown.header("x-frame-options").as_deref(), Some("DENY"));
        let head = get(port, "HEAD", &path);
        assert_eq!(head.status, 200, "HEAD {action}");
        assert!(head.body.is_empty(), "HEAD has no body");
    }
    assert_eq!(snapshot(&env, id), before, "GET and HEAD changed the store");
    let asked = get(port, "GET", &link(&env, id, Action::Done));
    assert!(asked.body.contains("Mark &#39;Quote for ACME&#39; done?"));
    assert!(asked.body.contains("<form method=\"post\">"));

    let done = link(&env, id, Action::Done);
    let acted = post(port, &done, "", "");
    assert_eq!(acted.status, 200, "{}", acted.body);
    assert!(acted.body.contains("Marked done"), "{}", acted.body);
    assert_eq!(env.show(id)["commitment"]["status"], "done");
    assert_eq!(
        last_revision(&env, id),
        ("done".into(), "ana@example.com".into(), "web".into())
    );
    let again = post(port, &done, "", "");
    assert_eq!(again.status, 200);
    assert!(
        again.body.contains("Already marked done on ")
            && again.body.contains("by ana@example.com (by email link)"),
        "{}",
        again.body
    );
    let after_second = snapshot(&env, id);
    assert!(after_second.starts_with("done|"), "{after_second}");
    let shown = get(port, "GET", &done);
    assert!(shown.body.contains("Already marked done"), "{}", shown.body);
}

#[test]
fn a_delay_shows_the_customers_email_before_it_moves_the_due_time() {
    let env = Env::new(FAR_RULE);
    let id = env.add(
        "Quote for ACME",
        "+3d",
        &["--reason", "the supplier is late"],
    );
    let daemon = env.start();
    let port = web_port(&daemon);
    env.wait_planned(Duration::from_secs(10));
    let before = snapshot(&env, id);
    let delay = link(&env, id, Action::Delay);
    let preview = post(
        port,
        &delay,
        "",
        "choice=%2B2+business+days&at=&reason=the+parts+are+late",
    );
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(
        preview.body.contains("The customer&#39;s email"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Dear Joe Mensah"), "{}", preview.body);
    assert!(
        preview.body.contains("the parts are late"),
        "{}",
        preview.body
    );
    assert_eq!(snapshot(&env, id), before, "a preview changed the store");
    let until = preview
        .body
        .split("name=\"until\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the confirmation carries the time")
        .to_string();
    let confirmed = post(
        port,
        &delay,
        "",
        &format!("until={until}&reason=the+parts+are+late&step=confirm"),
    );
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(confirmed.body.contains("Delayed"), "{}", confirmed.body);
    let (action, actor, via) = last_revision(&env, id);
    assert_eq!(
        (actor.as_str(), via.as_str()),
        ("ana@example.com", "web"),
        "{action}"
    );
    assert_ne!(snapshot(&env, id), before);
}

#[test]
fn snooze_hold_and_send_now_act_through_their_forms() {
    let env = Env::new(FAR_RULE);
    let id = env.add("Quote for ACME", "+3d", &[]);
    let daemon = env.start();
    let port = web_port(&daemon);
    env.wait_planned(Duration::from_secs(10));

    let snoozed = post(port, &link(&env, id, Action::Snooze), "", "choice=%2B2h");
    assert_eq!(snoozed.status, 200, "{}", snoozed.body);
    assert_eq!(last_revision(&env, id).0, "snooze");

    let hold = link(&env, id, Action::Hold);
    let page = get(port, "GET", &hold);
    let key = page
        .body
        .split("name=\"update\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the hold form names the update: {}", page.body))
        .to_string();
    let empty = post(port, &hold, "", &format!("update={key}&reason="));
    assert_eq!(empty.status, 400, "a hold needs a reason: {}", empty.body);
    let held = post(
        port,
        &hold,
        "",
        &format!("update={key}&reason=I+called+him"),
    );
    assert_eq!(held.status, 200, "{}", held.body);
    assert_eq!(last_revision(&env, id).0, "hold");
    let again = post(
        port,
        &hold,
        "",
        &format!("update={key}&reason=I+called+him"),
    );
    assert!(again.body.contains("Already held"), "{}", again.body);

    let other = env.add("Quote for the roof", "+3d", &[]);
    env.wait_planned(Duration::from_secs(10));
    let send_now = link(&env, other, Action::SendNow);
    let page = get(port, "GET", &send_now);
    assert!(
        page.body.contains("What Joe Mensah will be told"),
        "{}",
        page.body
    );
    let sent = post(port, &send_now, "", "update=customer_update%231");
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(
        last_revision(&env, other),
        ("send_now".into(), "ana@example.com".into(), "web".into())
    );
}

#[test]
fn a_bad_link_gets_one_page_whatever_is_wrong_with_it() {
    let env = Env::new(FAR_RULE);
    let id = env.add("Quote for ACME", "+3d", &[]);
    let daemon = env.start();
    let port = web_port(&daemon);
    let good = link(&env, id, Action::Done);
    let token = good.strip_prefix("/a/").unwrap();
    let other_key = Signer::new(&[9; 32]).sign(&Claim {
        commitment: id,
        recipient: "ana@example.com".into(),
        action: Action::Done,
        expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    });
    let missing = {
        let key = followup::web::key::load_or_create(&env.db_path()).unwrap();
        Signer::new(&key).sign(&Claim {
            commitment: 999_999,
            recipient: "ana@example.com".into(),
            action: Action::Done,
            expires: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
        })
    };
    let bad = [
        format!("/a/{}", &token[..token.len() - 1]),
        format!("/a/{token}x"),
        format!("/a/{other_key}"),
        format!("/a/{missing}"),
        "/a/not-a-token".to_string(),
        format!("/a/{}", "A".repeat(5000)),
        "/a/%FF%FE".to_string(),
        "/elsewhere".to_string(),
    ];
    let first = get(port, "GET", &bad[0]);
    assert_eq!(first.status, 404);
    assert!(first.body.contains("This link is not valid"));
    for path in &bad {
        for answer in [get(port, "GET", path), post(port, path, "", "")] {
            assert_eq!(answer.status, 404, "{path}");
            assert_eq!(answer.body, first.body, "{path}");
        }
    }
    let log = daemon.log();
    assert!(!log.contains(token), "a token was logged");
    assert_eq!(get(port, "GET", "/healthz").body, "ok");
}

#[test]
fn a_big_body_and_a_form_from_another_site_are_refused() {
    let env = Env::new(FAR_RULE);
    let id = env.add("Quote for ACME", "+3d", &[]);
    let daemon = env.start();
    let port = web_port(&daemon);
    let done = link(&env, id, Action::Done);
    let before = snapshot(&env, id);
    // The head alone: the length it announces is refused before any body is read.
    let big = exchange(
        port,
        format!(
            "POST {done} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 20000\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(big.status, 413, "{}", big.body);
    let cross = post(port, &done, "Origin: https://evil.example.net\r\n", "");
    assert_eq!(cross.status, 403, "{}", cross.body);
    let scanner = post(port, &done, "Sec-Fetch-Site: cross-site\r\n", "");
    assert_eq!(scanner.status, 403);
    let json = exchange(
        port,
        format!(
            "POST {done} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        )
        .as_bytes(),
    );
    assert_eq!(json.status, 415, "{}", json.body);
    assert_eq!(
        snapshot(&env, id),
        before,
        "a refused POST changed the store"
    );
    let same_site = post(
        port,
        &done,
        &format!("Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n"),
        "",
    );
    assert_eq!(same_site.status, 200, "{}", same_site.body);
}

#[test]
fn a_client_that_stalls_halfway_through_its_head_holds_up_nothing() {
    let env = Env::new("[[rule]]\nname = \"soon\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let port = web_port(&daemon);
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0")
            .unwrap();
        stalled.push(stream);
    }
    assert_eq!(get(port, "GET", "/healthz").body, "ok");
    env.add("Call back Joe", "+2s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "the reminder went while clients stalled");
    // The server drops a head that takes too long.
    let mut first = stalled.remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "a stalled head gets nothing or 408: {text}"
    );
}

#[test]
fn a_taken_port_leaves_the_daemon_serving_reminders() {
    let env = Env::new("[[rule]]\nname = \"soon\"\nremind = [\"0s\"]\n");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    env.edit_config("followup.toml", |t| {
        t.replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
    });
    let daemon = env.start();
    wait_until("the bind error in the log", Duration::from_secs(10), || {
        daemon
            .log()
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
            .then_some(())
    });
    let id = env.add("Call back Joe", "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "the reminder went without the pages");
    let text = got[0].text();
    assert!(
        text.contains(&format!("done {id}")) && !text.contains("/a/"),
        "without pages the email quotes the commands: {text}"
    );
}

/// Adds a commitment whose reminder goes at once, and returns its id and the paths of
/// the links in the reminder received (the Done link first), once the daemon is idle.
fn reminder_with_links(env: &Env, port: u16) -> (i64, Vec<String>) {
    let id = env.add("Call back Joe", "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    let text = got[0].text();
    let prefix = format!("http://127.0.0.1:{port}");
    let paths: Vec<String> = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&prefix))
        .map(str::to_string)
        .collect();
    assert!(!paths.is_empty(), "links to the pages: {text}");
    env.wait_idle(Duration::from_secs(10));
    (id, paths)
}

#[test]
fn the_done_link_of_a_received_reminder_marks_it_done_once() {
    let env = Env::new("[[rule]]\nname = \"soon\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let port = web_port(&daemon);
    let (id, paths) = reminder_with_links(&env, port);
    let done = paths[0].as_str();
    let before = snapshot(&env, id);
    for path in &paths {
        assert_eq!(get(port, "GET", path).status, 200, "{path}");
        assert_eq!(get(port, "HEAD", path).status, 200, "{path}");
    }
    assert_eq!(
        snapshot(&env, id),
        before,
        "opening the links changed the store"
    );
    let page = get(port, "GET", done);
    assert!(
        page.body.contains("Mark &#39;Call back Joe&#39; done?"),
        "{}",
        page.body
    );
    let acted = post(port, done, "", "");
    assert!(acted.body.contains("Marked done"), "{}", acted.body);
    assert_eq!(
        last_revision(&env, id),
        ("done".into(), "ana@example.com".into(), "web".into())
    );
    let again = post(port, done, "", "");
    assert!(again.body.contains("Already marked done"), "{}", again.body);
}

#[test]
fn a_page_shown_before_another_program_acted_shows_what_it_did_soon_after() {
    let env = Env::new("[[rule]]\nname = \"soon\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let port = web_port(&daemon);
    let (id, paths) = reminder_with_links(&env, port);
    let done = &paths[0];
    // Shown twice, so that the page is made from the state the pages keep.
    for _ in 0..2 {
        let page = get(port, "GET", done);
        assert!(page.body.contains("done?"), "{}", page.body);
    }
    // Another program marks it done: the page says so once the daemon has seen it.
    env.cli_ok(&["done", &id.to_string()]);
    common::wait_until(
        "the page to say it is done",
        Duration::from_secs(10),
        || {
            let page = get(port, "GET", done);
            page.body.contains("Already marked done").then_some(())
        },
    );
}
