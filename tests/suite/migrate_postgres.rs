//! `followup migrate --to postgres://...`: a SQLite store with a history (emails sent
//! by the daemon, a delay, notes, a finished commitment) copied into a real
//! PostgreSQL, compared table by table and row by row, and then served from there.
//! Skipped where PostgreSQL is not installed.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::Env;
use common::postgres::Postgres;

const RULES: &str = r#"
[[rule]]
name = "upd"
match = { kind = "upd" }
customer_update = { at = "0s", extend_by = "1d" }

[[rule]]
name = "now"
remind = ["0s", "1d"]
"#;

/// Every row of every table of the SQLite file, each value in words: what a copy
/// must reproduce.
type Tables = BTreeMap<String, Vec<Vec<String>>>;

fn sqlite_tables(env: &Env) -> Tables {
    let db = env.db();
    let names: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = Tables::new();
    for table in names {
        let columns = sqlite_columns(&db, &table);
        let list = columns.join(", ");
        let mut stmt = db
            .prepare(&format!("SELECT {list} FROM {table} ORDER BY 1"))
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..columns.len())
                    .map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => "NULL".to_string(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Real(x) => x.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(b) => hex(b),
                    })
                    .collect())
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        out.insert(table, rows);
    }
    out
}

fn sqlite_columns(db: &rusqlite::Connection, table: &str) -> Vec<String> {
    let mut columns: Vec<String> = db
        .prepare(&format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        ))
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // The queue of changes is numbered again by PostgreSQL.
    columns.retain(|c| !(table == "changes" && c == "seq"));
    columns
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same tables and columns read from PostgreSQL, values in SQLite's words.
fn postgres_tables(db: &mut postgres::Client, like: &Tables, env: &Env) -> Tables {
    let sqlite = env.db();
    let mut out = Tables::new();
    for table in like.keys() {
        let columns = sqlite_columns(&sqlite, table);
        let types: BTreeMap<String, String> = db
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_name = $1",
                &[table],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let list: Vec<String> = columns
            .iter()
            .map(|c| match types[c].as_str() {
                "boolean" => format!("CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"),
                "bytea" => format!("encode({c}, 'hex')"),
                _ => format!("{c}::text"),
            })
            .collect();
        let order = if table == "changes" { "seq" } else { "1" };
        let rows = db
            .query(
                &format!("SELECT {} FROM {table} ORDER BY {order}", list.join(", ")),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| {
                (0..columns.len())
                    .map(|i| {
                        r.get::<_, Option<String>>(i)
                            .unwrap_or_else(|| "NULL".into())
                    })
                    .collect()
            })
            .collect();
        out.insert(table.clone(), rows);
    }
    out
}

/// A store with a history: reminders and a customer update sent, a delay, notes, one
/// commitment done, one written by another program and not yet planned.
fn store_with_history() -> Env {
    let env = Env::new(RULES);
    let daemon = env.start();
    let ana = env.add("Quote for the boiler", "+1s", &[]);
    env.add("Pump arrives", "+1s", &["--kind", "upd"]);
    let later = env.add("Roof survey", "+3d", &[]);
    env.smtp.wait_for(4, Duration::from_secs(30));
    env.cli_ok(&[
        "delay",
        &later.to_string(),
        "--until",
        "+5d",
        "--reason",
        "the scaffold is late",
    ]);
    env.cli_ok(&["note", &later.to_string(), "ring before noon"]);
    env.cli_ok(&["customer", "note", "joe@example.org", "prefers email"]);
    env.cli_ok(&["done", &ana.to_string()]);
    env.wait_idle(Duration::from_secs(30));
    assert!(daemon.stop().success());
    env.db()
        .execute(
            "INSERT INTO commitments (title, owner, customer, due_at) VALUES ('Call back', 'ana@example.com', 'joe@example.org', '2031-01-01T10:00:00Z')",
            [],
        )
        .unwrap();
    env
}

#[test]
fn migrate_copies_every_table_row_by_row_and_the_daemon_serves_it_from_postgres() {
    let Some(server) = Postgres::shared() else {
        return;
    };
    let env = store_with_history();
    let url = server.create_database("migrate_copy");
    let before = sqlite_tables(&env);
    let said = env.cli_ok(&["migrate", "--to", &url]);
    assert!(said.contains("every table's count matches"), "{said}");
    for (table, rows) in &before {
        assert!(
            said.lines()
                .any(|l| l.starts_with(table.as_str()) && l.ends_with(&rows.len().to_string())),
            "{table} counted: {said}"
        );
    }
    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let after = postgres_tables(&mut db, &before, &env);
    for (table, rows) in &before {
        assert_eq!(&after[table], rows, "table {table} copied row by row");
    }
    assert!(before["revisions"].len() >= 2, "the history came along");
    assert_eq!(before["changes"].len(), 1, "the row not yet planned");

    // A second copy into the same database is refused and changes nothing.
    let refused = env.cli_fails(&["migrate", "--to", &url]);
    assert!(refused.contains("already holds"), "{refused}");
    assert_eq!(postgres_tables(&mut db, &before, &env), after);

    // Served from PostgreSQL, the commitments read as they did from SQLite.
    let shown_before = env.show(3);
    let sqlite_path = env.db_path().display().to_string();
    env.edit_config("followup.toml", |t| {
        t.replace(
            &format!("[store]\npath = \"{sqlite_path}\""),
            &format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\""),
        )
    });
    assert_eq!(env.show(3), shown_before);
    // New rows take ids after the copied ones.
    let max: i64 = db
        .query_one("SELECT max(id) FROM commitments", &[])
        .unwrap()
        .get(0);
    let id: i64 = db
        .query_one(
            "INSERT INTO commitments (title, owner, customer, due_at) VALUES ('New', 'ana@example.com', 'joe@example.org', '2031-01-02T10:00:00Z') RETURNING id",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(id > max);

    let daemon = env.start();
    common::wait_until("the copied queue planned", Duration::from_secs(30), || {
        let waiting: i64 = db
            .query_one("SELECT count(*) FROM changes", &[])
            .unwrap()
            .get(0);
        (waiting == 0).then_some(())
    });
    assert!(daemon.stop().success());
}

#[test]
fn migrate_refuses_a_running_daemon_and_a_server_it_cannot_reach_without_showing_the_password() {
    let Some(server) = Postgres::shared() else {
        return;
    };
    let env = Env::new(RULES);
    env.add("Quote", "+3d", &[]);
    let url = server.create_database("migrate_refused");
    let daemon = env.start();
    let running = env.cli_fails(&["migrate", "--to", &url]);
    assert!(running.contains("stop it first"), "{running}");
    assert!(daemon.stop().success());

    let port = common::free_port();
    let unreachable = env.cli_fails(&[
        "migrate",
        "--to",
        &format!("postgres://followup:s3cret@127.0.0.1:{port}/followup"),
    ]);
    assert!(
        unreachable.contains(&format!("127.0.0.1:{port}")),
        "{unreachable}"
    );
    assert!(!unreachable.contains("s3cret"), "{unreachable}");
}
