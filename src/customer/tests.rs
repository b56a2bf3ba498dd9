//! The profile on promises whose outcome is worked out by hand.

use jiff::Timestamp;

use super::*;
use crate::commitment::{Commitment, Outcome, parse_mailbox};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-12-01T12:00:00Z";

/// A commitment to Joe first promised for `first_due`, due now at `due`.
fn fact(id: i64, first_due: &str, due: &str, status: Status, done: Option<&str>) -> Fact {
    Fact {
        commitment: Commitment {
            id,
            title: format!("job {id}"),
            owner: parse_mailbox("ana@example.com").unwrap(),
            customer: parse_mailbox("joe@example.org").unwrap(),
            timezone: None,
            due_at: ts(due),
            kind: None,
            status,
            note: String::new(),
            external_ref: None,
            reason: None,
            created_at: ts("2026-10-01T09:00:00Z") + jiff::SignedDuration::from_hours(id),
            done_at: done.map(ts),
            promise: None,
            outcome: None,
            closed_at: None,
            waiting_since: None,
        },
        first_due: ts(first_due),
        updates_sent: Vec::new(),
    }
}

fn told(mut fact: Fact, at: &str) -> Fact {
    fact.updates_sent.push(ts(at));
    fact
}

#[test]
fn done_by_the_time_first_promised_is_kept_on_time_even_exactly_at_it() {
    let early = fact(
        1,
        "2026-11-03T10:00:00Z",
        "2026-11-03T10:00:00Z",
        Status::Done,
        Some("2026-11-02T10:00:00Z"),
    );
    let exactly = fact(
        2,
        "2026-11-03T10:00:00Z",
        "2026-11-03T10:00:00Z",
        Status::Done,
        Some("2026-11-03T10:00:00Z"),
    );
    assert_eq!(Kept::of(&early, ts(NOW)), Kept::OnTime);
    assert_eq!(Kept::of(&exactly, ts(NOW)), Kept::OnTime);
}

#[test]
fn done_late_is_after_notice_only_if_the_customer_was_told_before_the_time_first_promised() {
    let late = || {
        fact(
            1,
            "2026-11-03T10:00:00Z",
            "2026-11-05T10:00:00Z",
            Status::Done,
            Some("2026-11-05T09:00:00Z"),
        )
    };
    assert_eq!(
        Kept::of(&told(late(), "2026-11-03T09:00:00Z"), ts(NOW)),
        Kept::AfterNotice
    );
    assert_eq!(
        Kept::of(&told(late(), "2026-11-03T10:00:00Z"), ts(NOW)),
        Kept::AfterNotice
    );
    // Told once the promise had already passed: the customer was left waiting.
    assert_eq!(
        Kept::of(&told(late(), "2026-11-04T10:00:00Z"), ts(NOW)),
        Kept::Missed
    );
    assert_eq!(Kept::of(&late(), ts(NOW)), Kept::Missed);
}

#[test]
fn an_open_promise_is_missed_once_past_due_unless_it_waits_on_the_customer() {
    let past = fact(
        1,
        "2026-11-20T10:00:00Z",
        "2026-11-30T10:00:00Z",
        Status::Open,
        None,
    );
    let ahead = fact(
        2,
        "2026-11-20T10:00:00Z",
        "2026-12-02T10:00:00Z",
        Status::Open,
        None,
    );
    let mut waiting = past.clone();
    waiting.commitment.waiting_since = Some(ts("2026-11-29T10:00:00Z"));
    assert_eq!(Kept::of(&past, ts(NOW)), Kept::Missed);
    assert_eq!(Kept::of(&ahead, ts(NOW)), Kept::Open);
    assert_eq!(Kept::of(&waiting, ts(NOW)), Kept::Open);
    let cancelled = fact(
        3,
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:00Z",
        Status::Cancelled,
        None,
    );
    assert_eq!(Kept::of(&cancelled, ts(NOW)), Kept::Cancelled);
}

#[test]
fn a_closed_promise_counts_as_kept() {
    let mut closed = fact(
        1,
        "2026-11-03T10:00:00Z",
        "2026-11-03T10:00:00Z",
        Status::Done,
        Some("2026-11-03T09:00:00Z"),
    );
    closed.commitment.outcome = Some(Outcome::Lost);
    closed.commitment.closed_at = Some(ts("2026-11-10T09:00:00Z"));
    let profile = Profile::new(history(vec![closed]), ts(NOW));
    assert_eq!(profile.commitments[0].kept, Kept::OnTime);
    assert_eq!(profile.commitments[0].outcome.as_deref(), Some("lost"));
    assert_eq!(profile.kept.kept_percent, Some(100));
}

fn history(facts: Vec<Fact>) -> History {
    History {
        address: "joe@example.org".into(),
        facts,
        ..History::default()
    }
}

/// Two on time, one after notice, one missed late, one open past due (missed), one
/// open ahead, one cancelled.
fn joe() -> Vec<Fact> {
    vec![
        fact(
            1,
            "2026-06-01T10:00:00Z",
            "2026-06-01T10:00:00Z",
            Status::Done,
            Some("2026-06-01T09:00:00Z"),
        ),
        fact(
            2,
            "2026-11-01T10:00:00Z",
            "2026-11-01T10:00:00Z",
            Status::Done,
            Some("2026-11-01T09:00:00Z"),
        ),
        told(
            fact(
                3,
                "2026-11-03T10:00:00Z",
                "2026-11-04T10:00:00Z",
                Status::Done,
                Some("2026-11-04T09:00:00Z"),
            ),
            "2026-11-03T08:00:00Z",
        ),
        fact(
            4,
            "2026-07-01T10:00:00Z",
            "2026-07-01T10:00:00Z",
            Status::Done,
            Some("2026-07-03T09:00:00Z"),
        ),
        fact(
            5,
            "2026-11-28T10:00:00Z",
            "2026-11-28T10:00:00Z",
            Status::Open,
            None,
        ),
        fact(
            6,
            "2026-12-05T10:00:00Z",
            "2026-12-05T10:00:00Z",
            Status::Open,
            None,
        ),
        fact(
            7,
            "2026-11-10T10:00:00Z",
            "2026-11-10T10:00:00Z",
            Status::Cancelled,
            None,
        ),
    ]
}

#[test]
fn the_shares_count_the_settled_promises_and_leave_out_open_and_cancelled_ones() {
    let profile = Profile::new(history(joe()), ts(NOW));
    let kept = &profile.kept;
    assert_eq!((kept.on_time, kept.after_notice, kept.missed), (2, 1, 2));
    assert_eq!(kept.on_time_percent, Some(40));
    assert_eq!(kept.after_notice_percent, Some(20));
    assert_eq!(kept.missed_percent, Some(40));
    assert_eq!(kept.kept_percent, Some(60));
    assert_eq!(profile.open, 2);
    assert_eq!(profile.since, Some(ts("2026-10-01T10:00:00Z")));
}

#[test]
fn a_new_customer_has_no_percentages_yet() {
    let profile = Profile::new(
        history(vec![fact(
            1,
            "2026-12-05T10:00:00Z",
            "2026-12-05T10:00:00Z",
            Status::Open,
            None,
        )]),
        ts(NOW),
    );
    assert_eq!(profile.kept, Shares::default());
    assert_eq!(profile.open, 1);
}

#[test]
fn the_standing_of_an_email_names_the_other_open_promises_and_those_missed_in_90_days() {
    let profile = Profile::new(history(joe()), ts(NOW));
    let standing = profile.standing(6, ts(NOW));
    let ids = |list: &[Promise]| list.iter().map(|p| p.id).collect::<Vec<_>>();
    // 6 is the email's own; 5 is open (and past due).
    assert_eq!(ids(&standing.open_promises), [5]);
    // 4 was missed in July, more than 90 days ago.
    assert_eq!(ids(&standing.missed_recent), [5]);
    assert_eq!(standing.kept_percent, Some(60));
    let about_five = profile.standing(5, ts(NOW));
    assert_eq!(ids(&about_five.open_promises), [6]);
    assert!(about_five.missed_recent.is_empty());
}

#[test]
fn the_name_and_zone_come_from_the_latest_commitment_that_gives_them() {
    let mut facts = joe();
    facts[0].commitment.customer = parse_mailbox("Joe M <joe@example.org>").unwrap();
    facts[0].commitment.timezone = Some(jiff::tz::TimeZone::get("Europe/Paris").unwrap());
    facts[2].commitment.customer = parse_mailbox("Joe Mensah <JOE@example.org>").unwrap();
    let profile = Profile::new(history(facts), ts(NOW));
    assert_eq!(profile.name.as_deref(), Some("Joe Mensah"));
    assert_eq!(profile.timezone.as_deref(), Some("Europe/Paris"));
}
