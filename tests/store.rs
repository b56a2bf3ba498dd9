//! The store as other programs and other installations see it: due times written as
//! Unix seconds, one daemon per store, and Message-IDs unique to each store.

mod common;

use std::time::Duration;

use common::Env;

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
