//! The store as other programs and other installations see it: due times written as
//! Unix seconds, one daemon per store, and Message-IDs unique to each store.

use crate::common;

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{Env, binary};

const NOW_RULE: &str = "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n";

#[test]
fn a_due_time_written_as_unix_seconds_is_planned_and_reminded() {
    let env = Env::new(NOW_RULE);
    let daemon = env.start();
    let db = env.db();
    let due = jiff::Timestamp::now().as_second() + 2;
    let insert = "INSERT INTO commitments (title, owner, customer, due_at) VALUES (?1, 'ana@example.com', 'joe@example.org', ?2)";
    // As a CRM following docs/schema.md writes it: an INTEGER, which the column's TEXT
    // affinity stores as digits; and digits written as text.
    db.execute(insert, rusqlite::params!["Integer due", due])
        .unwrap();
    db.execute(insert, rusqlite::params!["Digits due", due.to_string()])
        .unwrap();
    let got = env.smtp.wait_for(2, Duration::from_secs(15));
    let mut subjects: Vec<String> = got.iter().map(|m| m.subject()).collect();
    subjects.sort();
    assert_eq!(got.len(), 2, "{subjects:?}\n{}", daemon.log());
    assert!(subjects[0].contains("Digits due"), "{subjects:?}");
    assert!(subjects[1].contains("Integer due"), "{subjects:?}");
    for id in [1, 2] {
        let shown = env.show(id);
        assert!(shown["commitment"]["problem"].is_null(), "{shown}");
    }
    assert!(daemon.stop().success());
}

/// A child process that is killed and reaped if it is dropped still running, as when a
/// wait for its exit fails the test.
struct KilledOnDrop(Option<Child>);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `followup run` on `env`'s store and waits up to `timeout` for it to exit;
/// panics, naming `what`, if it is still running then (and kills it).
fn run_expecting_exit(env: &Env, what: &str, timeout: Duration) -> Output {
    let child = Command::new(binary())
        .arg("--config")
        .arg(env.config_dir())
        .arg("run")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = KilledOnDrop(Some(child));
    common::wait_until(what, timeout, || {
        running.0.as_mut().unwrap().try_wait().unwrap()
    });
    running.0.take().unwrap().wait_with_output().unwrap()
}

#[test]
fn a_second_daemon_on_one_store_refuses_to_start_and_names_the_first() {
    let env = Env::new(NOW_RULE);
    let first = env.start();
    let second = run_expecting_exit(
        &env,
        "the exit of a second daemon on the same store",
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.pid())) && stderr.contains("already running"),
        "{stderr}"
    );

    // The kernel lets go of the lock of a killed daemon: the next one starts.
    first.kill();
    let again = env.start();
    let id = env.add("After the restart", "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1, "{}", again.log());
    assert!(
        got[0].subject().contains("After the restart"),
        "commitment {id}"
    );
    assert!(again.stop().success());
}

#[test]
fn writing_verbs_warn_only_while_no_daemon_runs_and_status_says_which() {
    const WARNING: &str = "nothing will be sent until `followup run` starts";
    let env = Env::new(NOW_RULE);
    let add = |title: &str| {
        env.cli(&[
            "add",
            "--title",
            title,
            "--owner",
            "ana@example.com",
            "--customer",
            "joe@example.org",
            "--due",
            "+1h",
        ])
    };
    let status_json = || -> serde_json::Value {
        serde_json::from_str(&env.cli_ok(&["status", "--format", "json"])).unwrap()
    };

    let out = add("Without a daemon");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(WARNING), "{stderr}");
    let out = env.cli(&["delay", "1", "--until", "+2h", "--reason", "parts are late"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(WARNING));
    let table = env.cli_ok(&["status"]);
    assert!(
        table.contains(&format!("running:     no: {WARNING}")),
        "{table}"
    );
    let json = status_json();
    assert_eq!(json["daemon"]["running"], false, "{json:#}");
    assert!(json["daemon"]["pid"].is_null(), "{json:#}");

    let daemon = env.start();
    let out = add("With a daemon");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let table = env.cli_ok(&["status"]);
    assert!(
        table.contains(&format!("running:     yes, pid {}", daemon.pid())),
        "{table}"
    );
    let json = status_json();
    assert_eq!(json["daemon"]["running"], true, "{json:#}");
    assert_eq!(json["daemon"]["pid"], daemon.pid(), "{json:#}");
    assert!(daemon.stop().success());

    // A daemon that stopped leaves its lock file behind, and no lock.
    assert!(String::from_utf8_lossy(&add("After it stopped").stderr).contains(WARNING));
}

#[test]
fn two_stores_give_one_commitment_different_message_ids_and_one_store_keeps_its_own() {
    const TWO_REMINDERS: &str = "[[rule]]\nname = \"two\"\nremind = [\"-3s\", \"0s\"]\n";
    let staging = Env::new(TWO_REMINDERS);
    let production = Env::new(TWO_REMINDERS);
    let mut first_ids = Vec::new();
    for env in [&staging, &production] {
        let daemon = env.start();
        assert_eq!(env.add("Send the quote", "+4s", &[]), 1);
        let got = env.smtp.wait_for(1, Duration::from_secs(10));
        assert_eq!(got.len(), 1, "{}", daemon.log());
        first_ids.push(common::message_id(&got[0].data));
        assert!(daemon.stop().success());
    }
    assert_ne!(
        first_ids[0], first_ids[1],
        "the same commitment id in two stores"
    );
    let store_id: String = staging
        .db()
        .query_row("SELECT id FROM store_identity", [], |r| r.get(0))
        .unwrap();
    assert!(first_ids[0].contains(&store_id), "{first_ids:?} {store_id}");

    // After a restart the store's next email goes on the same thread, from the same store.
    let daemon = staging.start();
    let got = staging.smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(got.len(), 2, "{}", daemon.log());
    let second = got[1].parsed();
    assert_eq!(
        second.in_reply_to().as_text(),
        Some(first_ids[0].trim_matches(['<', '>']))
    );
    let second_id = common::message_id(&got[1].data);
    assert!(second_id.contains(&store_id), "{second_id}");
    assert_ne!(second_id, first_ids[0]);
    assert!(daemon.stop().success());
}
