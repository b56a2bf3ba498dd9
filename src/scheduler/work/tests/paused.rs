//! A wait or a close written after the plan was made, caught when the step fires.

use super::*;

fn write(f: &Fixture, sql: &str) {
    let db = rusqlite::Connection::open(f.path()).unwrap();
    db.execute(sql, [f.id]).unwrap();
}

#[test]
fn a_wait_written_since_the_plan_skips_the_reminder_when_it_fires() {
    let f = Fixture::new("");
    let (first, _, _) = keys(&f);
    write(
        &f,
        "UPDATE commitments SET waiting_since = '2026-01-01T00:00:00Z' WHERE id = ?1",
    );
    f.queue(f.due - secs(10));
    let step = f.step(&first);
    assert_eq!(step.state, "skipped");
    assert_eq!(step.reason.as_deref(), Some("waiting on the customer"));
    assert!(f.store.deliveries_of(f.id).unwrap().is_empty());
}
