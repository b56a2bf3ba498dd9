//! `Retries`, `PlanViews` and `DeliveryRecords` on PostgreSQL: held mail made due,
//! what a preview reads, and the outbox's records.

use followup::store::StoreError;
use followup::store::prelude::*;
use jiff::{SignedDuration, Timestamp};

use super::{Email, at, fixture, insert_step, sample};

#[test]
fn a_retry_makes_held_mail_due_but_not_mail_composed_ahead_of_its_time() {
    let Some(mut f) = fixture("pg_retry") else {
        return;
    };
    let now = at("2026-12-01T10:00:00Z");
    let ms = |t: Timestamp| t.as_millisecond();
    assert!(matches!(
        f.store.retry(Some(7), now),
        Err(StoreError::NotFound(7))
    ));
    assert_eq!(f.store.retry(None, now).unwrap(), 0);

    let mut email =
        |kind: &str, fire_at: &str, attempts, last_error, created: &str, due: Timestamp| {
            let id = f
                .store
                .insert_commitment(&sample("2026-12-01T17:00:00Z"))
                .unwrap();
            let step = insert_step(
                &mut f.db,
                id,
                &format!("{kind}#1"),
                kind,
                at(fire_at),
                "queued",
            );
            let delivery = Email {
                step,
                commitment: id,
                audience: "owner",
                recipient: "ana@example.com",
                state: "pending",
                attempts,
                sent_at: None,
                last_error,
            }
            .insert_at(&mut f.db, ms(at(created)), ms(due));
            (id, delivery)
        };
    let hold = now + SignedDuration::from_mins(30);
    let (_, retried) = email(
        "remind",
        "2026-12-01T09:00:00Z",
        1,
        Some("421 try later"),
        "2026-12-01T09:00:00Z",
        now + SignedDuration::from_mins(10),
    );
    let (_, ahead) = email(
        "remind",
        "2026-12-01T10:00:02Z",
        0,
        Some("waiting: no connection"),
        "2026-12-01T09:59:57Z",
        hold,
    );
    let (third, postponed) = email(
        "alert",
        "2026-12-01T09:59:00Z",
        0,
        Some("waiting: no connection"),
        "2026-12-01T09:59:00Z",
        hold,
    );
    // Composed ahead and never held: it is not waiting for anything.
    let (_, not_held) = email(
        "remind",
        "2026-12-01T10:20:00Z",
        0,
        None,
        "2026-12-01T10:19:57Z",
        at("2026-12-01T10:20:00Z"),
    );
    let next_attempt =
        |f: &super::Fixture, id| f.store.delivery(id).unwrap().unwrap().next_attempt_at;

    // One commitment's mail only.
    assert_eq!(f.store.retry(Some(third), now).unwrap(), 1);
    assert_eq!(next_attempt(&f, postponed), now);
    assert!(next_attempt(&f, retried) > now);

    // All of it: the retried one, with its attempt still counted, and the email
    // composed ahead, held by the outage, back to its step's time.
    assert_eq!(f.store.retry(None, now).unwrap(), 2);
    let record = f.store.delivery(retried).unwrap().unwrap();
    assert_eq!((record.next_attempt_at, record.attempts), (now, 1));
    assert_eq!(next_attempt(&f, ahead), at("2026-12-01T10:00:02Z"));
    assert_eq!(next_attempt(&f, not_held), at("2026-12-01T10:20:00Z"));
    assert_eq!(f.store.retry(None, now).unwrap(), 0, "nothing left held");
}

#[test]
fn a_plan_view_has_the_history_revisions_steps_and_customer_rows() {
    let Some(mut f) = fixture("pg_plan_view") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let other = f
        .store
        .insert_commitment(&sample("2026-12-04T12:00:00Z"))
        .unwrap();
    let revision: i64 =
        f.db.query_one(
            "INSERT INTO revisions (commitment_id, old_due, new_due, source, notify, created_at)
             VALUES ($1, '2026-12-02T12:00:00Z', '2026-12-03T12:00:00Z', 'followup delay', true, $2)
             RETURNING id",
            &[&id, &at("2026-12-01T09:00:00Z").as_millisecond()],
        )
        .unwrap()
        .get(0);
    let step = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-03T11:00:00Z"),
        "planned",
    );

    let view = f.store.plan_view(id, "joe@example.org").unwrap();
    assert_eq!(
        view.history.notices,
        vec![(revision, at("2026-12-01T09:00:00Z"))]
    );
    assert_eq!(
        view.revisions.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![revision]
    );
    assert_eq!(
        view.steps.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![step]
    );
    let rows: Vec<i64> = view.customer_rows.iter().map(|r| r.row.id).collect();
    assert_eq!(rows, vec![id, other]);
    assert_eq!(
        view.customer_rows[0].first_old_due.as_deref(),
        Some("2026-12-02T12:00:00Z")
    );
}

#[test]
fn a_delivery_is_read_by_id_by_recipient_in_any_case_and_its_message_by_its_commitment() {
    let Some(mut f) = fixture("pg_delivery_records") else {
        return;
    };
    let id = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let other = f
        .store
        .insert_commitment(&sample("2026-12-03T12:00:00Z"))
        .unwrap();
    let step = insert_step(
        &mut f.db,
        id,
        "remind#1",
        "remind",
        at("2026-12-03T11:00:00Z"),
        "sent",
    );
    let sent = Email {
        step,
        commitment: id,
        audience: "customer",
        recipient: "Joe@Example.org",
        state: "sent",
        attempts: 1,
        sent_at: Some(at("2026-12-03T11:00:01Z").as_millisecond()),
        last_error: None,
    }
    .insert(&mut f.db);

    let record = f.store.delivery(sent).unwrap().expect("the delivery");
    assert_eq!(
        (record.step_id, record.state.as_str(), record.attempts),
        (Some(step), "sent", 1)
    );
    assert_eq!(record.sent_at, Some(at("2026-12-03T11:00:01Z")));
    assert!(f.store.delivery(sent + 1).unwrap().is_none());

    let to: Vec<i64> = f
        .store
        .deliveries_to(" joe@EXAMPLE.org ")
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(to, vec![sent]);
    assert!(f.store.deliveries_to("ana@example.com").unwrap().is_empty());

    let message = f.store.message_of(id, sent).unwrap().expect("its message");
    assert!(message.starts_with(b"Subject: About your quote\r\n"));
    assert_eq!(
        f.store.message_of(other, sent).unwrap(),
        None,
        "another commitment's email"
    );
}
