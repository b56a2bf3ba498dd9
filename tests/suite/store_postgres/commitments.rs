//! `Commitments` on PostgreSQL: the rows as written, read back as stored.

use followup::commitment::Status;
use followup::store::prelude::*;
use followup::store::{Imported, StatusFilter, StoreError};

use super::{fixture, sample};

#[test]
fn the_commitments_with_problems_come_with_their_reasons_and_no_stray_one() {
    let Some(mut f) = fixture("pg_problems") else {
        return;
    };
    let c = sample("2026-12-03T12:00:00Z");
    let fine = f.store.insert_commitment(&c).unwrap();
    let bad = f.store.insert_commitment(&c).unwrap();
    let insert = "INSERT INTO problems (commitment_id, reason, seen_at) VALUES ($1, $2, 0)";
    f.db.execute(insert, &[&bad, &"due_at: not a time"])
        .unwrap();
    f.db.execute(insert, &[&(bad + fine + 10), &"gone"])
        .unwrap();
    let found: Vec<(i64, String)> = f
        .store
        .commitments_with_problems()
        .unwrap()
        .into_iter()
        .map(|(c, reason)| (c.id, reason))
        .collect();
    assert_eq!(found, [(bad, "due_at: not a time".to_string())]);
    assert_eq!(
        f.store.problem(bad).unwrap().as_deref(),
        Some("due_at: not a time")
    );
    assert_eq!(f.store.problem(fine).unwrap(), None);
}

#[test]
fn a_due_time_in_unix_seconds_reads_the_same_as_an_integer_or_as_digits() {
    let Some(mut f) = fixture("pg_unix_seconds") else {
        return;
    };
    // An integer literal is cast to its digits by PostgreSQL, as a CRM may write it.
    for due in ["1796153293", "' 1796153293 '", "'1796153293x'"] {
        f.db.batch_execute(&format!(
            "INSERT INTO commitments (title, owner, customer, due_at)
             VALUES ('Quote', 'ana@example.com', 'joe@example.org', {due})"
        ))
        .unwrap();
    }
    let zone = jiff::tz::TimeZone::UTC;
    let expected: jiff::Timestamp = "2026-12-01T19:28:13Z".parse().unwrap();
    for id in [1, 2] {
        let row = f.store.commitment(id).unwrap();
        assert_eq!(row.check(&zone).unwrap().due_at, expected, "{row:?}");
    }
    let garbage = f.store.commitment(3).unwrap().check(&zone).unwrap_err();
    assert!(
        garbage
            .iter()
            .any(|p| p.contains("cannot read '1796153293x'")),
        "{garbage:?}"
    );
}

#[test]
fn a_commitment_is_read_back_as_written_and_a_missing_one_is_not_found() {
    let Some(f) = fixture("pg_insert_read") else {
        return;
    };
    let mut c = sample("2026-12-03T12:00:00Z");
    c.timezone = Some("Europe/Paris".into());
    c.promise = Some("the quote by Thursday".into());
    let id = f.store.insert_commitment(&c).unwrap();
    let other = f
        .store
        .insert_commitment(&sample("2026-12-04T12:00:00Z"))
        .unwrap();
    f.store.set_status(other, Status::Cancelled).unwrap();
    let row = f.store.commitment(id).unwrap();
    assert_eq!(row.status.as_deref(), Some("open"));
    assert_eq!(row.timezone.as_deref(), Some("Europe/Paris"));
    assert_eq!(row.promise.as_deref(), Some("the quote by Thursday"));
    assert_eq!(row.due_at.as_deref(), Some("2026-12-03T12:00:00Z"));
    let ids = |filter| -> Vec<i64> {
        f.store
            .commitments(filter)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect()
    };
    assert_eq!(ids(StatusFilter::All), [id, other]);
    assert_eq!(ids(StatusFilter::Only(Status::Open)), [id]);
    assert_eq!(ids(StatusFilter::Only(Status::Cancelled)), [other]);
    assert!(f.store.has_commitment(id).unwrap());
    assert!(!f.store.has_commitment(other + 1).unwrap());
    let missing = other + 1;
    assert!(matches!(f.store.commitment(missing), Err(StoreError::NotFound(m)) if m == missing));
    assert!(matches!(
        f.store.append_note(missing, "x"),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        f.store.set_reason(missing, "x"),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn notes_are_appended_line_by_line_and_the_reason_is_set() {
    let Some(f) = fixture("pg_notes_reason") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    f.store.append_note(id, "called Joe").unwrap();
    f.store.append_note(id, "sent the drawings").unwrap();
    f.store.set_reason(id, "the supplier is late").unwrap();
    let row = f.store.commitment(id).unwrap();
    assert_eq!(row.note.as_deref(), Some("called Joe\nsent the drawings"));
    assert_eq!(row.reason.as_deref(), Some("the supplier is late"));
}

#[test]
fn commitments_are_found_by_reference_and_by_customer() {
    let Some(f) = fixture("pg_find") else {
        return;
    };
    let with = |reference: Option<&str>, customer: &str| {
        let mut c = sample("2026-12-03T12:00:00Z");
        c.external_ref = reference.map(String::from);
        c.customer = customer.into();
        f.store.insert_commitment(&c).unwrap()
    };
    let joe = with(Some(" CRM-7 "), "Joe Mensah <Joe@Example.org>");
    let bare = with(Some("CRM-7"), "joe@example.org");
    let big = with(Some("CRM-8"), "bigjoe@example.org");
    let uk = with(None, "Joe <joe@example.org.uk>");
    assert_eq!(f.store.ids_with_ref("CRM-7 ").unwrap(), [joe, bare]);
    assert!(f.store.ids_with_ref("CRM").unwrap().is_empty());
    let ids = |rows: Vec<followup::commitment::StoredCommitment>| -> Vec<i64> {
        rows.iter().map(|c| c.id).collect()
    };
    assert_eq!(
        ids(f.store.commitments_of_customer(" JOE@example.org").unwrap()),
        [joe, bare]
    );
    assert_eq!(
        ids(f.store.commitments_of_customers_like("JOE@").unwrap()),
        [joe, bare, big, uk]
    );
    assert_eq!(
        ids(f.store.commitments_of_customers_like("mensah").unwrap()),
        [joe]
    );
}

fn imported(id: Option<i64>, status: Status, created_at: Option<&str>) -> Imported {
    Imported {
        id,
        commitment: sample("2026-12-03T12:00:00Z"),
        status,
        created_at: created_at.map(String::from),
        done_at: None,
    }
}

#[test]
fn an_import_keeps_ids_statuses_and_times_and_later_rows_get_fresh_ids() {
    let Some(f) = fixture("pg_import") else {
        return;
    };
    let ids = f
        .store
        .import_commitments(&[
            imported(Some(10), Status::Done, Some("2026-01-02T03:04:05Z")),
            imported(None, Status::Open, None),
        ])
        .unwrap();
    assert_eq!(ids, [10, 11]);
    let kept = f.store.commitment(10).unwrap();
    assert_eq!(kept.status.as_deref(), Some("done"));
    assert_eq!(kept.created_at.as_deref(), Some("2026-01-02T03:04:05Z"));
    let now_made = f.store.commitment(11).unwrap().created_at.unwrap();
    assert!(now_made.parse::<jiff::Timestamp>().is_ok(), "{now_made}");
    let next = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    assert_eq!(next, 12);
}

#[test]
fn an_import_is_all_or_nothing() {
    let Some(mut f) = fixture("pg_import_all_or_nothing") else {
        return;
    };
    let err = f
        .store
        .import_commitments(&[
            imported(Some(5), Status::Open, None),
            imported(Some(5), Status::Open, None),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    // The server's words are in the error's own message, not only in its causes: a log
    // line that prints just the error still says what went wrong.
    assert!(err.to_string().contains("duplicate key"), "{err}");
    assert!(f.store.commitments(StatusFilter::All).unwrap().is_empty());
    let queued: i64 =
        f.db.query_one("SELECT COUNT(*) FROM changes", &[])
            .unwrap()
            .get(0);
    assert_eq!(queued, 0, "no change of a row that was not kept");
}
