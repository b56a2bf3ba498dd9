//! `Marks` on PostgreSQL: the `changes` sequence as the mark, which another program's
//! write of a commitment moves and no read does.

use followup::commitment::StoredCommitment;
use followup::store::StatusFilter;
use followup::store::prelude::*;

use super::{fixture, sample};

#[test]
fn another_programs_write_moves_the_mark_and_a_read_does_not() {
    let Some(mut f) = fixture("pg_marks") else {
        return;
    };
    let mark = f.store.write_mark().unwrap();
    // Reads, the store's own and another connection's, in and out of transactions.
    let rows: Vec<StoredCommitment> = f.store.commitments(StatusFilter::All).unwrap();
    assert!(rows.is_empty());
    f.store.summary().unwrap();
    f.db.query("SELECT * FROM commitments", &[]).unwrap();
    assert!(
        !f.store.others_wrote_since(mark).unwrap(),
        "a read moved the mark"
    );
    assert_eq!(f.store.write_mark().unwrap(), mark);

    f.db.execute(
        "INSERT INTO commitments (title, owner, customer, due_at)
         VALUES ('Quote', 'ana@example.com', 'joe@example.org', '2026-12-03T12:00:00Z')",
        &[],
    )
    .unwrap();
    assert!(
        f.store.others_wrote_since(mark).unwrap(),
        "an insert went unseen"
    );

    // And again from there: an update by another program moves it too.
    let mark = f.store.write_mark().unwrap();
    assert!(!f.store.others_wrote_since(mark).unwrap());
    f.db.execute("UPDATE commitments SET title = 'Roof quote'", &[])
        .unwrap();
    assert!(
        f.store.others_wrote_since(mark).unwrap(),
        "an update went unseen"
    );

    // The store's own writes may move it as well: the daemon then looks once more.
    let mark = f.store.write_mark().unwrap();
    f.store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    assert!(f.store.others_wrote_since(mark).unwrap());
}
