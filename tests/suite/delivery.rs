//! Delivery that loses nothing: kill -9 in a burst, an SMTP server that is down or
//! refuses an address, downtime across due steps, concurrent writers, reloads, rate
//! limits. Real binary, real SQLite file, real SMTP server on 127.0.0.1.

use crate::common;
use common::store::{Store, opt_lit};

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{Env, SmtpServer, free_port, message_id, wait_until};

/// Inserts `n` commitments due now in one transaction, as another program would.
fn insert_due_now(env: &Env, n: usize, kind: Option<&str>) {
    let due = jiff::Timestamp::now();
    let kind = opt_lit(kind);
    let rows: Vec<String> = (0..n)
        .map(|i| {
            format!("('Burst {i:05}', 'owner{i}@example.com', 'joe@example.org', '{due}', {kind})")
        })
        .collect();
    env.sql().execute(&format!(
        "BEGIN; INSERT INTO commitments (title, owner, customer, due_at, kind) VALUES {}; COMMIT;",
        rows.join(", ")
    ));
}

fn deliveries_by_state(env: &Env) -> HashMap<String, i64> {
    env.sql()
        .rows("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
        .into_iter()
        .map(|r| {
            (
                r[0].clone().unwrap(),
                r[1].as_deref().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn kill_9_in_a_burst_loses_nothing_and_repeats_at_most_the_mails_in_flight(store: Store) {
    const N: usize = 2000;
    let _heavy = common::heavy();
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let connections = 4;
    env.smtp_options(&format!("connections = {connections}"));
    let daemon = env.start();
    insert_due_now(&env, N, None);
    let got = env.smtp.wait_for(300, Duration::from_secs(60));
    assert!(got.len() >= 300, "the burst started");
    daemon.kill();
    let at_kill = env.smtp.messages().len();
    assert!(
        at_kill < N,
        "killed in the middle of the burst ({at_kill} of {N} sent)"
    );

    let daemon = env.start();
    let unique_ids = |got: &[common::Received]| -> HashSet<String> {
        got.iter().map(|m| message_id(&m.data)).collect()
    };
    let got = env.smtp.wait_until(
        "every delivery reached the server at least once",
        Duration::from_secs(120),
        |got| unique_ids(got).len() >= N,
    );
    let unique = unique_ids(&got);
    assert_eq!(unique.len(), N);
    // Once the store has every one sent, nothing is in flight: a repeat would have to
    // come from a delivery still pending.
    wait_until(
        "every delivery recorded sent",
        Duration::from_secs(30),
        || (deliveries_by_state(&env).get("sent") == Some(&(N as i64))).then_some(()),
    );
    let total = env.smtp.messages().len();
    let duplicates = total - N;
    assert!(
        duplicates <= connections,
        "{duplicates} duplicates; at most the {connections} in flight at the kill may repeat"
    );
    // The store agrees with the server.
    assert_eq!(deliveries_by_state(&env).get("sent"), Some(&(N as i64)));
    let stored: HashSet<String> = env
        .sql()
        .column("SELECT message_id FROM deliveries")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(stored, unique);
    assert!(daemon.stop().success());
}

fn mail_waits_out_an_smtp_outage_and_then_goes_in_order(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    let port = free_port();
    env.edit_config("followup.toml", |t| {
        t.replace(
            &format!("port = {}", env.smtp.port),
            &format!("port = {port}"),
        )
    });
    env.mail_options("retry_after = \"1s\"");
    env.smtp_options("connections = 1");
    let daemon = env.start();
    let ids: Vec<i64> = ["+1s", "+2s", "+3s"]
        .iter()
        .enumerate()
        .map(|(i, due)| env.add(&format!("Outage {i}"), due, &[]))
        .collect();
    // All three are due, and the outage holds each of them for a retry.
    let mut db = env.sql();
    wait_until(
        "every delivery held by the outage",
        Duration::from_secs(20),
        || {
            let held = db.count(&format!(
                "SELECT COUNT(*) FROM deliveries d JOIN steps s ON s.id = d.step_id
                 WHERE s.fire_at <= {} AND d.state = 'pending' AND d.last_error LIKE '%onnect%'",
                common::epoch_ms(std::time::SystemTime::now())
            ));
            (held == 3).then_some(())
        },
    );
    for id in &ids {
        let shown = env.show(*id);
        let delivery = &shown["deliveries"][0];
        assert_eq!(delivery["state"], "pending", "{shown:#}");
        assert!(
            delivery["last_error"]
                .as_str()
                .unwrap_or("")
                .contains("onnect"),
            "{shown:#}"
        );
    }
    let server = SmtpServer::start_on(port);
    let got = server.wait_for(3, Duration::from_secs(20));
    assert_eq!(
        got.len(),
        3,
        "everything is delivered once the server is up"
    );
    let subjects: Vec<String> = got.iter().map(|m| m.subject()).collect();
    for (i, subject) in subjects.iter().enumerate() {
        assert!(
            subject.contains(&format!("Outage {i}")),
            "in order of due time: {subjects:?}"
        );
    }
    let shown = env.show(ids[0]);
    let delivery = &shown["deliveries"][0];
    assert_eq!(delivery["state"], "sent");
    assert!(
        delivery["attempts"].as_u64().unwrap() >= 2,
        "the retries are visible: {shown:#}"
    );
    let table = env.cli_ok(&["show", &ids[0].to_string()]);
    assert!(table.contains("sent"), "{table}");
    assert!(daemon.stop().success());
}

fn an_address_the_server_refuses_fails_once_and_the_owner_is_told_once(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    env.smtp.reject("bad@example.org");
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let good = env.add("For the good customer", "+1s", &[]);
    let out = env.cli_ok(&[
        "add",
        "--title",
        "For the bad address",
        "--owner",
        "Ana Ruiz <ana@example.com>",
        "--customer",
        "Bad <bad@example.org>",
        "--due",
        "+1s",
    ]);
    let bad: i64 = out.trim().parse().unwrap();
    env.advance(Duration::from_secs(1));
    // The good customer's update and the owner's copy of it; for the bad address one
    // notice, and no copy saying the customer was told.
    env.smtp.wait_for(3, Duration::from_secs(15));
    // Everything due has been decided: what has not arrived by now is not coming.
    env.wait_idle(Duration::from_secs(15));
    let got = env.smtp.messages();
    assert_eq!(
        got.len(),
        3,
        "{:?}",
        got.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|m| m.to != vec!["bad@example.org"]));
    let notices: Vec<_> = got
        .iter()
        .filter(|m| m.subject().starts_with("Not delivered"))
        .collect();
    assert_eq!(notices.len(), 1, "the owner is told once");
    assert_eq!(notices[0].to, vec!["ana@example.com"]);
    let text = notices[0].text();
    assert!(
        text.contains("bad@example.org") && text.contains("550"),
        "{text}"
    );
    let shown = env.show(bad);
    let failed: Vec<_> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"], 1, "a 5xx is not retried");
    assert_eq!(env.show(good)["deliveries"][0]["state"], "sent");
    assert!(daemon.stop().success());
}

fn each_catch_up_policy_does_what_it_says_after_downtime(store: Store) {
    let env = Env::on(
        store,
        r#"
[[rule]]
name = "send-all"
match = { kind = "a" }
remind = ["0s", "+1s", "+2s"]
catch_up = "send"

[[rule]]
name = "newest-only"
match = { kind = "b" }
remind = ["0s", "+1s", "+2s"]
catch_up = "latest"

[[rule]]
name = "recent-only"
match = { kind = "c" }
remind = ["0s", "+1s", "+6s"]
catch_up = "skip_older_than:4s"
"#,
    );
    env.write_config("daemon.toml", "[daemon]\nlate_after = \"1s\"\n");
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let a = env.add("Policy send", "+2s", &["--kind", "a"]);
    let b = env.add("Policy latest", "+2s", &["--kind", "b"]);
    let c = env.add("Policy skip", "+2s", &["--kind", "c"]);
    env.wait_planned(Duration::from_secs(10));
    assert!(daemon.stop().success());
    assert!(env.smtp.messages().is_empty());
    // Every step passes while the daemon is down. It comes back 1.5 s after the last
    // one (c's +6s): later than late_after for every step, and in the middle of c's
    // window, where its first two steps are more than 4 s old and its last is not.
    let last = env.sql().count("SELECT MAX(fire_at) FROM steps");
    env.set_clock(
        jiff::Timestamp::from_millisecond(last).unwrap() + jiff::SignedDuration::from_millis(1500),
    );
    let daemon = env.start();
    env.wait_idle(Duration::from_secs(10));
    let count = |title: &str| {
        env.smtp
            .messages()
            .iter()
            .filter(|m| m.subject().contains(title))
            .count()
    };
    assert_eq!(count("Policy send"), 3);
    assert_eq!(count("Policy latest"), 1);
    assert_eq!(count("Policy skip"), 1);
    let states = |id: i64| -> Vec<(String, bool)> {
        env.show(id)["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["state"].as_str().unwrap().to_string(),
                    s["late"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(states(a), vec![("sent".into(), true); 3]);
    assert_eq!(
        states(b),
        vec![
            ("skipped".into(), false),
            ("skipped".into(), false),
            ("sent".into(), true)
        ]
    );
    assert_eq!(
        states(c),
        vec![
            ("skipped".into(), false),
            ("skipped".into(), false),
            ("sent".into(), true)
        ]
    );
    let late = env
        .smtp
        .messages()
        .into_iter()
        .find(|m| m.subject().contains("Policy send"))
        .unwrap();
    assert!(
        late.text().contains("This reminder comes late"),
        "{}",
        late.text()
    );
    let shown = env.show(c);
    assert!(
        shown["timeline"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("skip_older_than")
    );
    assert!(daemon.stop().success());
}

#[test]
fn a_writer_inserting_ten_thousand_commitments_meets_no_busy_errors_and_misses_nothing() {
    const N: usize = 10_000;
    let _heavy = common::heavy();
    let env = Env::new("[[rule]]\nname = \"later\"\nremind = [\"+1d\"]\n");
    let daemon = env.start();
    let writer = {
        let path = env.db_path();
        std::thread::spawn(move || {
            let mut db = rusqlite::Connection::open(path).unwrap();
            db.busy_timeout(Duration::from_secs(10)).unwrap();
            let due = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
            for chunk in 0..N / 50 {
                let tx = db.transaction().unwrap();
                for i in 0..50 {
                    tx.execute(
                        "INSERT INTO commitments (title, owner, customer, due_at) VALUES (?1, 'ana@example.com', 'joe@example.org', ?2)",
                        rusqlite::params![format!("Row {}", chunk * 50 + i), due],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
        })
    };
    // The CLI writes at the same time.
    for i in 0..5 {
        env.add(&format!("By hand {i}"), "+3h", &[]);
    }
    writer.join().unwrap();
    let db = env.db();
    let planned = || -> (i64, i64) {
        let pending: i64 = db
            .query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))
            .unwrap();
        let planned: i64 = db
            .query_row(
                "SELECT COUNT(DISTINCT commitment_id) FROM steps WHERE state = 'planned'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (pending, planned)
    };
    let every_one = (0, (N + 5) as i64);
    let what = format!("{} commitments planned", N + 5);
    wait_until(&what, Duration::from_secs(60), || {
        (planned() == every_one).then_some(())
    });
    let log = daemon.log();
    assert!(!log.contains("ERROR") && !log.contains("WARN"), "{log}");
    assert!(daemon.stop().success());
}

fn sighup_keeps_the_old_rules_when_the_new_ones_are_broken_and_applies_good_ones(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"r\"\nremind = [\"0s\", \"+1h\"]\n",
    );
    env.use_test_clock(common::monday_morning());
    let mut daemon = env.start();
    let id = env.add("Reload me", "+1s", &[]);
    env.advance(Duration::from_secs(1));
    env.smtp.wait_for(1, Duration::from_secs(10));
    // Read the store directly: the CLI refuses to run on the broken config too.
    let mut db = env.sql();
    let mut labels = |state: &str| -> Vec<String> {
        db.column(&format!(
            "SELECT label FROM steps WHERE commitment_id = {id} AND state = '{state}'
             ORDER BY fire_at"
        ))
        .into_iter()
        .map(Option::unwrap)
        .collect()
    };
    assert_eq!(labels("planned"), ["+1h"]);

    env.write_config(
        "rules.toml",
        "[[rule]]\nname = \"r\"\nremind = [\"0s\", \"+2h\", \"sometime\"]\n",
    );
    daemon.signal("HUP");
    daemon.wait_notice("RELOADING=1", Duration::from_secs(10));
    daemon.wait_notice("READY=1", Duration::from_secs(10));
    assert_eq!(
        labels("planned"),
        ["+1h"],
        "the running rules stay in force"
    );
    let log = daemon.log();
    assert!(
        log.contains("rules.toml:3:") && log.contains("'sometime' is not an offset"),
        "{log}"
    );

    env.write_config(
        "rules.toml",
        "[[rule]]\nname = \"r\"\nremind = [\"0s\", \"+2h\"]\n",
    );
    daemon.signal("HUP");
    daemon.wait_notice("RELOADING=1", Duration::from_secs(10));
    daemon.wait_notice("READY=1", Duration::from_secs(10));
    wait_until("the new rules applied", Duration::from_secs(10), || {
        (labels("planned") == ["+2h"]).then_some(())
    });
    env.wait_idle(Duration::from_secs(10));
    assert_eq!(
        env.smtp.messages().len(),
        1,
        "nothing already sent is sent again"
    );
    assert!(daemon.stop().success());
}

fn max_per_minute_holds_the_excess_back_without_dropping_it(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    env.mail_options("max_per_minute = 3");
    let daemon = env.start();
    insert_due_now(&env, 5, None);
    env.smtp.wait_for(3, Duration::from_secs(10));
    wait_until("three sent, two waiting", Duration::from_secs(10), || {
        let states = deliveries_by_state(&env);
        (states.get("sent") == Some(&3) && states.get("pending") == Some(&2)).then_some(())
    });
    // Stopped, the daemon has said its last word: the two were held, not in flight.
    assert!(daemon.stop().success());
    assert_eq!(env.smtp.messages().len(), 3, "three a minute");
    let states = deliveries_by_state(&env);
    assert_eq!(states.get("sent"), Some(&3));
    assert_eq!(states.get("pending"), Some(&2), "the rest wait");
}

fn list_problems_shows_rows_that_cannot_be_planned(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"quotes\"\nmatch = { kind = \"quote\" }\nremind = [\"0s\"]\n",
    );
    let daemon = env.start();
    let mut db = env.sql();
    db.execute(
        "INSERT INTO commitments (title, owner, customer, due_at, kind)
         VALUES ('Odd kind', 'ana@example.com', 'joe@example.org', '2030-01-01 10:00', 'mystery')",
    );
    db.execute(
        "INSERT INTO commitments (title, owner, customer, due_at, status)
         VALUES (NULL, NULL, 'joe@example.org', NULL, 'open')",
    );
    let out = wait_until("both problems listed", Duration::from_secs(10), || {
        let out = env.cli_ok(&["list", "--problems"]);
        (out.lines().count() >= 3).then_some(out)
    });
    assert!(out.contains("no rule matches kind 'mystery'"), "{out}");
    assert!(
        out.contains("title is empty") && out.contains("due_at is empty"),
        "{out}"
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("cannot be planned").count(),
        2,
        "logged once each: {log}"
    );
    assert!(daemon.stop().success());
}

fn sigterm_gives_up_on_a_stuck_send_and_records_nothing_it_did_not_send(store: Store) {
    let env = Env::on(store, "[[rule]]\nname = \"now\"\nremind = [\"0s\"]\n");
    // Far longer than the test waits: only giving up on the send lets the daemon exit.
    env.smtp.stall(Duration::from_secs(600));
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    let id = env.add("Stuck", "+1s", &[]);
    env.advance(Duration::from_secs(1));
    env.smtp.wait_stalled(1, Duration::from_secs(10));
    let log = daemon.log_path();
    let status = daemon.stop_within(Duration::from_secs(60));
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("in-flight sends did not finish in time"),
        "{log}"
    );
    let shown = env.show(id);
    assert_eq!(
        shown["deliveries"][0]["state"], "pending",
        "not marked sent: {shown:#}"
    );
    assert_eq!(shown["timeline"][0]["state"], "queued");
}

fn a_step_the_store_refuses_fails_alone_and_the_rest_of_its_batch_goes_out(store: Store) {
    let env = Env::on(
        store,
        "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    env.use_test_clock(common::monday_morning());
    let daemon = env.start();
    // Both fall due at the same moment, so one batch queues them together.
    let refused = env.add("Refused by the store", "+3s", &[]);
    let good = env.add("Goes out", "+3s", &[]);
    // Another program's trigger refuses this commitment's emails: its step fails in
    // the middle of the batch.
    let trigger = match env.store {
        Store::Sqlite => format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries WHEN NEW.commitment_id = {refused}
             BEGIN SELECT RAISE(ABORT, 'refused by another program'); END;"
        ),
        Store::Postgres { .. } => format!(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.commitment_id = {refused} THEN
                     RAISE EXCEPTION 'refused by another program';
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON deliveries
             FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    };
    env.sql().execute(&trigger);
    env.advance(Duration::from_secs(3));
    // The good commitment's update and its copy to the owner.
    env.smtp.wait_for(2, Duration::from_secs(15));
    env.wait_idle(Duration::from_secs(15));
    let got = env.smtp.messages();
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    assert!(got.iter().all(|m| !m.subject().contains("Refused")));
    assert_eq!(env.show(good)["deliveries"][0]["state"], "sent");
    let row = env.sql().rows(&format!(
        "SELECT state, reason FROM steps WHERE commitment_id = {refused} AND kind = 'customer_update'"
    ));
    let (state, reason) = (row[0][0].clone().unwrap(), row[0][1].clone().unwrap());
    assert_eq!(state, "failed");
    assert!(
        reason.contains("cannot be queued") && reason.contains("refused by another program"),
        "{reason}"
    );
    assert!(daemon.stop().success());
}

on_both_stores!(
    an_address_the_server_refuses_fails_once_and_the_owner_is_told_once,
    max_per_minute_holds_the_excess_back_without_dropping_it,
    sigterm_gives_up_on_a_stuck_send_and_records_nothing_it_did_not_send,
    kill_9_in_a_burst_loses_nothing_and_repeats_at_most_the_mails_in_flight,
    mail_waits_out_an_smtp_outage_and_then_goes_in_order,
    each_catch_up_policy_does_what_it_says_after_downtime,
    sighup_keeps_the_old_rules_when_the_new_ones_are_broken_and_applies_good_ones,
    list_problems_shows_rows_that_cannot_be_planned,
    a_step_the_store_refuses_fails_alone_and_the_rest_of_its_batch_goes_out,
);
