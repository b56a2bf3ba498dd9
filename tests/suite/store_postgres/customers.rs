//! `Customers` on PostgreSQL: a customer is their address, in any case.

use followup::store::prelude::*;

use super::{Email, at, fixture, insert_step, sample};

#[test]
fn a_customer_is_found_by_address_in_any_case_with_or_without_a_name() {
    let Some(mut f) = fixture("pg_customer_address") else {
        return;
    };
    for customer in [
        "Joe Mensah <Joe@Example.org>",
        "joe@example.org",
        "bigjoe@example.org",
        "Joe <joe@example.org.uk>",
    ] {
        f.db.execute(
            "INSERT INTO commitments (title, owner, customer, due_at)
             VALUES ('Quote', 'ana@example.com', $1, '2026-12-01T10:00:00Z')",
            &[&customer],
        )
        .unwrap();
    }
    let ids: Vec<i64> = f
        .store
        .customer_rows("JOE@example.org")
        .unwrap()
        .iter()
        .map(|r| r.row.id)
        .collect();
    assert_eq!(ids, [1, 2]);
}

#[test]
fn notes_are_kept_by_lower_case_address_in_order() {
    let Some(mut f) = fixture("pg_customer_notes") else {
        return;
    };
    let first = f
        .store
        .keep_customer_note(
            "Joe@Example.org",
            "prefers calls",
            "ana",
            "cli",
            at("2026-11-01T10:00:00Z"),
        )
        .unwrap();
    assert!(!first.has_commitments);
    assert!(f.store.knows_customer("joe@example.org").unwrap());
    f.db.execute(
        "INSERT INTO commitments (title, owner, customer, due_at)
         VALUES ('Quote', 'ana@example.com', 'Joe <joe@example.org>', '2026-12-01T10:00:00Z')",
        &[],
    )
    .unwrap();
    let second = f
        .store
        .keep_customer_note(
            "joe@example.org",
            "gate code 1234",
            "bob",
            "cli",
            at("2026-11-02T10:00:00Z"),
        )
        .unwrap();
    assert!(second.has_commitments);
    assert_ne!(first.id, second.id);
    f.store
        .keep_customer_note(
            "amy@example.org",
            "other",
            "bob",
            "cli",
            at("2026-11-02T10:00:00Z"),
        )
        .unwrap();
    let records = f.store.customer_records("JOE@EXAMPLE.ORG", false).unwrap();
    let bodies: Vec<&str> = records.notes.iter().map(|n| n.body.as_str()).collect();
    assert_eq!(bodies, ["prefers calls", "gate code 1234"]);
    assert_eq!(records.notes[0].actor.as_deref(), Some("ana"));
    assert_eq!(records.notes[0].created_at, at("2026-11-01T10:00:00Z"));
    assert_eq!(records.rows.len(), 1);
    assert!(records.emails.is_empty());
    assert!(!f.store.knows_customer("zoe@example.org").unwrap());
}

#[test]
fn a_customers_records_have_their_emails_and_the_updates_they_were_sent() {
    let Some(mut f) = fixture("pg_customer_records") else {
        return;
    };
    let mut c = sample("2026-12-03T12:00:00Z");
    c.customer = "Joe <Joe@Example.org>".into();
    let id = f.store.insert_commitment(&c).unwrap();
    let update = insert_step(
        &mut f.db,
        id,
        "customer_update#1",
        "customer_update",
        at("2026-12-02T09:00:00Z"),
        "sent",
    );
    let remind = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-02T08:00:00Z"),
        "sent",
    );
    let email = |step, audience, recipient, sent_at| Email {
        step,
        commitment: id,
        audience,
        recipient,
        state: "sent",
        attempts: 1,
        sent_at: Some(sent_at),
        last_error: None,
    };
    let sent_at = at("2026-12-02T09:00:01Z").as_millisecond();
    let to_joe = email(update, "customer", "JOE@example.org", sent_at).insert(&mut f.db);
    email(remind, "owner", "ana@example.com", sent_at + 5).insert(&mut f.db);
    let records = f.store.customer_records("joe@example.org", true).unwrap();
    assert_eq!(records.rows.len(), 1);
    assert_eq!(records.rows[0].updates_sent, [at("2026-12-02T09:00:01Z")]);
    assert_eq!(records.rows[0].first_old_due, None);
    let emails: Vec<i64> = records.emails.iter().map(|e| e.id).collect();
    assert_eq!(emails, [to_joe]);
    assert_eq!(records.emails[0].attempts, 1);
    assert_eq!(records.emails[0].sent_at, Some(at("2026-12-02T09:00:01Z")));
}
