//! Calendar arithmetic, told with fixed times: wall-clock days, exact hours, business
//! time across nights, weekends, holidays and clock changes, in the calendar's zone and
//! in a customer's.

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn london() -> Calendar {
    Calendar::new(zone("Europe/London"))
}

/// The shop of the examples: Mon–Thu 09:00–17:30, Fri 09:00–16:00, closed at Christmas.
fn shop() -> Calendar {
    let day: Hours = "09:00-17:30".parse().unwrap();
    let friday: Hours = "09:00-16:00".parse().unwrap();
    let holidays: BTreeSet<jiff::civil::Date> = ["2026-12-25", "2026-12-28"]
        .iter()
        .map(|d| d.parse().unwrap())
        .collect();
    Calendar::with_hours(
        zone("Europe/London"),
        [
            Some(day),
            Some(day),
            Some(day),
            Some(day),
            Some(friday),
            None,
            None,
        ],
        holidays,
    )
}

fn shift(cal: &Calendar, at: &str, offset: &str) -> Timestamp {
    cal.shift(ts(at), &offset.parse().unwrap()).unwrap()
}

#[test]
fn a_day_before_keeps_the_wall_clock_across_a_clock_change() {
    // London moves to BST on 2027-03-28.
    assert_eq!(
        shift(&london(), "2027-03-29T09:00:00Z", "-1d"),
        ts("2027-03-28T09:00:00Z")
    );
    assert_eq!(
        shift(&london(), "2027-03-28T09:00:00Z", "-1d"),
        ts("2027-03-27T10:00:00Z")
    );
}

#[test]
fn hours_are_exact_elapsed_time() {
    assert_eq!(
        shift(&london(), "2027-03-28T02:30:00Z", "-2h"),
        ts("2027-03-28T00:30:00Z")
    );
}

#[test]
fn business_days_skip_weekends_and_keep_the_time_of_day() {
    // Thursday 26 Nov 2026 15:00 + 2 business days = Monday 30 Nov 15:00.
    assert_eq!(
        shift(&shop(), "2026-11-26T15:00:00Z", "2 business days"),
        ts("2026-11-30T15:00:00Z")
    );
    // Backwards too: Monday 15:00 - 1 business day = Friday 15:00.
    assert_eq!(
        shift(&shop(), "2026-11-30T15:00:00Z", "-1 business day"),
        ts("2026-11-27T15:00:00Z")
    );
}

#[test]
fn business_days_land_inside_that_days_hours() {
    // Thursday 17:00 + 1 business day is Friday, which closes at 16:00.
    assert_eq!(
        shift(&shop(), "2026-11-26T17:00:00Z", "1 business day"),
        ts("2026-11-27T16:00:00Z")
    );
    // Before opening time becomes opening time.
    assert_eq!(
        shift(&shop(), "2026-11-26T07:00:00Z", "1 business day"),
        ts("2026-11-27T09:00:00Z")
    );
}

#[test]
fn business_days_skip_holidays() {
    // Thursday 24 Dec 2026 12:00 + 2 business days: Fri 25 and Mon 28 are holidays, the
    // weekend is closed: Tuesday 29, then Wednesday 30.
    assert_eq!(
        shift(&shop(), "2026-12-24T12:00:00Z", "2 business days"),
        ts("2026-12-30T12:00:00Z")
    );
}

#[test]
fn business_hours_count_only_open_time() {
    // Friday 15:00 + 3 business hours: one hour on Friday (closes 16:00), two on Monday.
    assert_eq!(
        shift(&shop(), "2026-11-27T15:00:00Z", "3 business hours"),
        ts("2026-11-30T11:00:00Z")
    );
    // From Saturday night: counting starts at Monday's opening.
    assert_eq!(
        shift(&shop(), "2026-11-28T22:00:00Z", "90 business minutes"),
        ts("2026-11-30T10:30:00Z")
    );
    // Backwards: Monday 10:00 - 2 business hours = Friday 15:00.
    assert_eq!(
        shift(&shop(), "2026-11-30T10:00:00Z", "-2 business hours"),
        ts("2026-11-27T15:00:00Z")
    );
}

#[test]
fn business_hours_across_the_spring_clock_change_count_real_hours() {
    // Friday 26 Mar 2027 15:00 GMT + 2 business hours: 1 h Friday, then Monday 29 Mar
    // opens at 09:00 BST (08:00 UTC): the result is 10:00 BST.
    assert_eq!(
        shift(&shop(), "2027-03-26T15:00:00Z", "2 business hours"),
        ts("2027-03-29T09:00:00Z")
    );
}

#[test]
fn the_next_open_moment_is_now_inside_hours_else_the_next_opening() {
    let cal = shop();
    let z = cal.zone().clone();
    assert_eq!(
        cal.next_open_in(ts("2026-11-26T10:00:00Z"), &z),
        ts("2026-11-26T10:00:00Z")
    );
    assert!(cal.is_open_in(ts("2026-11-26T10:00:00Z"), &z));
    // Thursday evening waits for Friday morning; Friday evening for Monday morning.
    assert_eq!(
        cal.next_open_in(ts("2026-11-26T18:00:00Z"), &z),
        ts("2026-11-27T09:00:00Z")
    );
    assert_eq!(
        cal.next_open_in(ts("2026-11-27T16:30:00Z"), &z),
        ts("2026-11-30T09:00:00Z")
    );
    // Christmas Eve evening waits past the holidays and the weekend.
    assert_eq!(
        cal.next_open_in(ts("2026-12-24T18:00:00Z"), &z),
        ts("2026-12-29T09:00:00Z")
    );
    // Closing time itself is closed.
    assert!(!cal.is_open_in(ts("2026-11-26T17:30:00Z"), &z));
}

#[test]
fn business_hours_read_in_the_customers_zone() {
    // 14:00 London is 09:00 in New York: a New York customer's hours open then.
    let cal = shop();
    let ny = zone("America/New_York");
    assert_eq!(
        cal.next_open_in(ts("2026-11-26T10:00:00Z"), &ny),
        ts("2026-11-26T14:00:00Z")
    );
    assert!(!cal.is_open_in(ts("2026-11-26T13:59:00Z"), &ny));
    assert!(cal.is_open_in(ts("2026-11-26T14:00:00Z"), &ny));
    // And a Tokyo customer, 9 hours ahead: London Thursday 10:00 is 19:00 there, so the
    // next opening is Friday 09:00 Tokyo, which is Thursday 24:00 London.
    let tokyo = zone("Asia/Tokyo");
    assert_eq!(
        cal.next_open_in(ts("2026-11-26T10:00:00Z"), &tokyo),
        ts("2026-11-27T00:00:00Z")
    );
}

#[test]
fn hours_are_read_strictly() {
    assert!("09:00-17:30".parse::<Hours>().is_ok());
    assert!("00:00-24:00".parse::<Hours>().is_ok());
    assert!("09:00:30-17:00:15".parse::<Hours>().is_ok());
    for bad in [
        "9-5",
        "17:00-09:00",
        "09:00-09:00",
        "09:60-10:00",
        "25:00-26:00",
        "09:00",
        "09:00-24:00:01",
        "09:00:00:00-10:00",
    ] {
        assert!(bad.parse::<Hours>().is_err(), "{bad}");
    }
}

#[test]
fn a_day_open_until_midnight_ends_at_the_next_midnight() {
    let all_day: Hours = "00:00-24:00".parse().unwrap();
    let cal = Calendar::with_hours(zone("UTC"), [Some(all_day); 7], BTreeSet::new());
    assert!(cal.is_open_in(ts("2026-11-26T23:59:00Z"), &zone("UTC")));
    assert_eq!(
        shift(&cal, "2026-11-26T23:00:00Z", "2 business hours"),
        ts("2026-11-27T01:00:00Z")
    );
}

#[test]
fn distances_read_like_a_person_wrote_them() {
    let t = ts("2026-11-24T15:00:00Z");
    assert_eq!(humanize(t, ts("2026-11-24T17:00:00Z")), "2 hours");
    assert_eq!(humanize(t, ts("2026-11-25T16:00:00Z")), "1 day 1 hour");
    assert_eq!(humanize(t, ts("2026-11-24T15:45:10Z")), "45 minutes");
    assert_eq!(
        humanize(t, ts("2026-11-24T15:00:20Z")),
        "less than a minute"
    );
    assert_eq!(humanize(ts("2026-11-26T15:00:00Z"), t), "2 days");
    assert_eq!(humanize(t, ts("2026-11-24T16:30:00Z")), "1 hour 30 minutes");
}

#[test]
fn times_show_in_the_calendar_zone() {
    assert_eq!(
        london().display(ts("2026-11-24T17:00:00Z")),
        "Tue 24 Nov 2026 17:00 GMT"
    );
    assert_eq!(
        london().display(ts("2027-06-01T16:00:00Z")),
        "Tue 1 Jun 2027 17:00 BST"
    );
}
