//! Times as a customer reads them: in their own zone, in words, relative to the moment
//! the email is composed ("tomorrow, Wed 2 Dec, 10:00"). Pure: the caller passes `now`.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// How many days `day` is after `today` (negative: before).
fn days_between(today: Date, day: Date) -> i64 {
    today
        .until(day)
        .map(|span| i64::from(span.get_days()))
        .unwrap_or(i64::MAX)
}

/// `Wed 2 Dec`, with the year when it is not `today`'s.
fn day_name(day: Date, today: Date) -> String {
    if day.year() == today.year() {
        day.strftime("%a %-d %b").to_string()
    } else {
        day.strftime("%a %-d %b %Y").to_string()
    }
}

/// `at` in `zone` in words, as seen at `now`: "today, 15:00", "tomorrow, Wed 2 Dec,
/// 10:00", "yesterday, Mon 30 Nov, 17:00", else "Mon 7 Dec, 09:00" (with the year when
/// it is another year's).
pub fn time_in_words(at: Timestamp, now: Timestamp, zone: &TimeZone) -> String {
    let at = at.to_zoned(zone.clone());
    let today = now.to_zoned(zone.clone()).date();
    let clock = at.strftime("%H:%M");
    let day = at.date();
    match days_between(today, day) {
        0 => format!("today, {clock}"),
        1 => format!("tomorrow, {}, {clock}", day_name(day, today)),
        -1 => format!("yesterday, {}, {clock}", day_name(day, today)),
        _ => format!("{}, {clock}", day_name(day, today)),
    }
}

/// When `at`, a moment that has passed, happened, in words for the middle of a
/// sentence: "earlier today", "yesterday", else "on Mon 30 Nov" (with the year when it
/// is another year's). Measured from `now` in `zone`, never assumed.
pub fn day_in_words(at: Timestamp, now: Timestamp, zone: &TimeZone) -> String {
    let today = now.to_zoned(zone.clone()).date();
    let day = at.to_zoned(zone.clone()).date();
    match days_between(today, day) {
        0 if at <= now => "earlier today".to_string(),
        0 => "today".to_string(),
        -1 => "yesterday".to_string(),
        _ => format!("on {}", day_name(day, today)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn times_are_said_relative_to_now_in_the_readers_zone() {
        let london = TimeZone::get("Europe/London").unwrap();
        let now = ts("2026-12-01T09:00:00Z"); // Tue 1 Dec
        let words = |at| time_in_words(ts(at), now, &london);
        assert_eq!(words("2026-12-01T15:00:00Z"), "today, 15:00");
        assert_eq!(words("2026-12-02T10:00:00Z"), "tomorrow, Wed 2 Dec, 10:00");
        assert_eq!(
            words("2026-11-30T17:00:00Z"),
            "yesterday, Mon 30 Nov, 17:00"
        );
        assert_eq!(words("2026-12-07T09:00:00Z"), "Mon 7 Dec, 09:00");
        assert_eq!(words("2027-01-04T09:00:00Z"), "Mon 4 Jan 2027, 09:00");
        // 23:30 in London is already tomorrow in Tokyo.
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        let late = ts("2026-12-01T23:30:00Z");
        assert_eq!(
            time_in_words(late, ts("2026-12-01T14:00:00Z"), &london),
            "today, 23:30"
        );
        assert_eq!(
            time_in_words(late, ts("2026-12-01T14:00:00Z"), &tokyo),
            "tomorrow, Wed 2 Dec, 08:30"
        );
    }

    #[test]
    fn a_past_day_is_measured_not_assumed() {
        let zone = TimeZone::get("Europe/London").unwrap();
        let now = ts("2026-12-02T10:00:00Z"); // Wed 2 Dec
        let day = |at| day_in_words(ts(at), now, &zone);
        assert_eq!(day("2026-12-02T09:58:00Z"), "earlier today");
        assert_eq!(day("2026-12-01T16:00:00Z"), "yesterday");
        assert_eq!(day("2026-11-30T16:00:00Z"), "on Mon 30 Nov");
        assert_eq!(day("2025-11-30T16:00:00Z"), "on Sun 30 Nov 2025");
    }
}
