//! Several daemons on one PostgreSQL database, and one daemon cut off from it: every
//! email goes once, a dead daemon's work is taken over within 30 s, and at most the
//! emails the dead daemon had in flight go twice, with their Message-IDs. Real
//! binaries, a real server (`common::postgres`), a real SMTP server on 127.0.0.1.
//! Skipped where PostgreSQL is not installed.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use common::postgres::Postgres;
use common::{Daemon, Env, Received, message_id, wait_for_moment, wait_until};

/// Owner reminders at the due time, and for `kind = "upd"` a customer update instead.
const RULES: &str = r#"
[[rule]]
name = "upd"
match = { kind = "upd" }
customer_update = { at = "0s", extend_by = "1d" }

[[rule]]
name = "now"
remind = ["0s"]
"#;

/// An installation whose store is the database at `url`, with [`RULES`] and
/// `connections` SMTP connections per daemon.
fn env_on(url: &str, connections: u32) -> Env {
    let env = Env::on(common::store::Store::Postgres { url: url.into() }, RULES);
    env.smtp_options(&format!("connections = {connections}"));
    env
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

/// Inserts commitments as another program would, one transaction per 500: `reminders`
/// owner reminders and `updates` customer updates, due one after another from `start`
/// over `spread`.
fn insert_due(
    db: &mut postgres::Client,
    reminders: usize,
    updates: usize,
    start: SystemTime,
    spread: Duration,
) {
    let total = reminders + updates;
    let first = common::epoch_ms(start);
    // Every `every`-th row is an update, spread through the burst.
    let every = total / updates.max(1);
    let rows: Vec<(String, Option<&str>, i64)> = (0..total)
        .map(|i| {
            let kind = (updates > 0 && i % every == 0 && i / every < updates).then_some("upd");
            let due = first + (spread.as_millis() as i64 * i as i64) / total as i64;
            (format!("Job {i:05}"), kind, due)
        })
        .collect();
    for chunk in rows.chunks(500) {
        let mut tx = db.transaction().unwrap();
        for (title, kind, due) in chunk {
            let due = jiff::Timestamp::from_millisecond(*due).unwrap().to_string();
            tx.execute(
                "INSERT INTO commitments (title, owner, customer, due_at, kind, promise)
                 VALUES ($1, 'ana@example.com', 'joe@example.org', $2, $3, 'your new boiler')",
                &[title, &due, kind],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
}

/// The messages received, by Message-ID, with every time each arrived.
fn by_message_id(got: &[Received]) -> HashMap<String, Vec<SystemTime>> {
    let mut out: HashMap<String, Vec<SystemTime>> = HashMap::new();
    for m in got {
        out.entry(message_id(&m.data)).or_default().push(m.at);
    }
    out
}

fn count(db: &mut postgres::Client, sql: &str) -> i64 {
    db.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn three_daemons_lose_nothing_when_one_is_killed_mid_burst() {
    const REMINDERS: usize = 5000;
    const UPDATES: usize = 200;
    const CONNECTIONS: u32 = 4;
    let Some(server) = Postgres::shared() else {
        return;
    };
    let _heavy = common::heavy();
    let url = server.create_database("cluster_failover");
    let env = env_on(&url, CONNECTIONS);
    let mut db = connect(&url);
    let mut daemons: Vec<Daemon> = (0..3).map(|_| env.start()).collect();
    let start = SystemTime::now() + Duration::from_secs(8);
    let spread = Duration::from_secs(20);
    insert_due(&mut db, REMINDERS, UPDATES, start, spread);
    // Each update mails the customer and, once accepted, the owner a copy.
    let expected = REMINDERS + 2 * UPDATES;

    env.smtp
        .wait_until("the burst under way", Duration::from_secs(60), |got| {
            got.len() >= expected / 3
        });
    let killed = daemons.remove(0);
    killed.kill();
    let kill_at = SystemTime::now();
    let received = by_message_id(&env.smtp.messages());
    assert!(
        received.len() < expected,
        "killed in the middle of the burst ({} of {expected} sent)",
        received.len()
    );

    let got = env.smtp.wait_until(
        "every email at least once",
        Duration::from_secs(120),
        |got| by_message_id(got).len() >= expected,
    );
    let last_arrival = got.iter().map(|m| m.at).max().unwrap();
    wait_until("every email recorded sent", Duration::from_secs(60), || {
        (count(
            &mut db,
            "SELECT count(*) FROM deliveries WHERE state = 'sent'",
        ) == expected as i64)
            .then_some(())
    });
    let got = env.smtp.messages();
    let received = by_message_id(&got);
    assert_eq!(received.len(), expected);
    let stored: HashSet<String> = db
        .query("SELECT message_id FROM deliveries", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let ids: HashSet<String> = received.keys().cloned().collect();
    assert_eq!(
        stored, ids,
        "every email arrived with the Message-ID it was stored with"
    );

    // A repeat is an email the killed daemon had in flight: its first copy reached
    // the server before the kill. Two live daemons never sent one email.
    let repeats: Vec<(&String, &Vec<SystemTime>)> =
        received.iter().filter(|(_, at)| at.len() > 1).collect();
    let duplicates: usize = repeats.iter().map(|(_, at)| at.len() - 1).sum();
    assert!(
        duplicates <= CONNECTIONS as usize,
        "{duplicates} duplicates; at most the killed daemon's {CONNECTIONS} in flight may repeat"
    );
    for (id, at) in &repeats {
        assert_eq!(at.len(), 2, "{id} arrived {} times", at.len());
        assert!(
            *at.iter().min().unwrap() <= kill_at,
            "{id} went twice, both after the kill: sent by two live daemons"
        );
    }
    // Every repeat is counted where `show` and `status` see it.
    for (id, _) in &repeats {
        let taken_over: i32 = db
            .query_one(
                "SELECT taken_over FROM deliveries WHERE message_id = $1",
                &[id],
            )
            .unwrap()
            .get(0);
        assert!(
            taken_over > 0,
            "{id} went twice and is not counted as taken over"
        );
    }
    eprintln!(
        "failover: {expected} emails, {duplicates} repeated, the last {:.1} s after the kill",
        common::seconds_between(kill_at, last_arrival)
    );
    // Takeover: everything was in by 30 s after the kill or after the last due time.
    let bound = std::cmp::max(kill_at, start + spread) + Duration::from_secs(30);
    assert!(
        last_arrival <= bound,
        "the last email arrived {:.1} s after the kill; the dead daemon's work is taken over within 30 s",
        common::seconds_between(kill_at, last_arrival)
    );
    // No step was queued twice: one set of emails per step.
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM (SELECT step_id FROM deliveries GROUP BY step_id, recipient HAVING count(*) > 1) d"
        ),
        0
    );
    for daemon in daemons {
        assert!(daemon.stop().success());
    }
}

#[test]
fn ten_thousand_rows_written_while_three_daemons_run_are_each_planned_once() {
    const ROWS: usize = 10_000;
    let Some(server) = Postgres::shared() else {
        return;
    };
    let _heavy = common::heavy();
    let url = server.create_database("cluster_writer");
    let env = env_on(&url, 4);
    env.write_config(
        "rules.toml",
        "[[rule]]\nname = \"later\"\nremind = [\"-1h\", \"0s\"]\n",
    );
    let daemons: Vec<Daemon> = (0..3).map(|_| env.start()).collect();
    let mut db = connect(&url);
    let due = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(48);
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(100) {
        let mut tx = db.transaction().unwrap();
        for i in chunk {
            tx.execute(
                "INSERT INTO commitments (title, owner, customer, due_at) VALUES ($1, 'ana@example.com', 'joe@example.org', $2)",
                &[&format!("Row {i:05}"), &due.to_string()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    wait_until("every row planned", Duration::from_secs(120), || {
        (count(&mut db, "SELECT count(*) FROM changes") == 0
            && count(&mut db, "SELECT count(DISTINCT commitment_id) FROM steps") == ROWS as i64)
            .then_some(())
    });
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM steps"),
        2 * ROWS as i64,
        "two reminders each, planned once"
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM (SELECT commitment_id, key FROM steps GROUP BY 1, 2 HAVING count(*) > 1) d"
        ),
        0
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM problems"), 0);
    for daemon in daemons {
        assert!(daemon.stop().success());
    }
}

#[test]
fn a_daemon_cut_off_from_the_database_for_20_s_loses_nothing_and_repeats_nothing() {
    let Some(mut server) = Postgres::start() else {
        return;
    };
    let url = server.create_database("cut_off");
    let env = env_on(&url, 2);
    let daemon = env.start();
    let mut db = connect(&url);
    // Due from 3 s on, every 200 ms for 30 s: some before the cut, many during it,
    // some after.
    let start = SystemTime::now() + Duration::from_secs(3);
    insert_due(&mut db, 150, 0, start, Duration::from_secs(30));
    drop(db);
    env.smtp
        .wait_until("the first emails", Duration::from_secs(30), |got| {
            got.len() >= 10
        });
    server.stop();
    let cut_at = SystemTime::now();
    wait_for_moment(cut_at + Duration::from_secs(20));
    server.start_again();

    let got = env
        .smtp
        .wait_until("every email", Duration::from_secs(90), |got| {
            by_message_id(got).len() >= 150
        });
    let mut db = connect(&url);
    wait_until("every email recorded sent", Duration::from_secs(60), || {
        (count(
            &mut db,
            "SELECT count(*) FROM deliveries WHERE state = 'sent'",
        ) == 150)
            .then_some(())
    });
    let got_now = env.smtp.messages();
    assert_eq!(
        got_now.len(),
        150,
        "nothing went twice ({} received)",
        got.len()
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM daemons"),
        1,
        "it kept its claim"
    );
    let log = daemon.log();
    assert!(
        log.contains("connected to the store again")
            && log.contains("listening for changes to the store again"),
        "the daemon was cut off and came back"
    );
    assert!(daemon.stop().success(), "it kept running through the cut");
}
