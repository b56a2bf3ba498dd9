//! Reading the times people type and other programs store.
//!
//! Three forms are accepted:
//! - RFC 3339 with an offset: `2026-11-24T17:00:00+01:00` (also `Z`, and a trailing
//!   `[Zone/Name]` annotation);
//! - a local time `YYYY-MM-DD HH:MM[:SS]` (or with `T`), read in the commitment's zone or
//!   else the calendar's. A time that a daylight-saving change skips (02:30 on the night
//!   clocks go forward) moves forward by the length of the gap; a time that happens twice
//!   (01:30 on the night clocks go back) means the first of the two;
//! - relative to now, for typing only: `+30s`, `+2h`, `+3d`, `+1h30m`, `+2 business days`.
//!   Days are calendar days in the zone; business time follows the calendar.
//!
//! Pure: the caller passes `now`.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use crate::calendar::{Calendar, Offset, shift_in};

/// Why a time could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WhenError {
    /// Not one of the accepted forms.
    #[error(
        "cannot read '{0}' as a time: use RFC 3339 (2026-11-24T17:00:00+01:00), a local time \
         (2026-11-24 17:00) or a time from now (+2h, +3d, +30s)"
    )]
    Unreadable(String),
    /// A date without a time of day; a promise needs an hour.
    #[error("'{0}' has a date but no time of day: write e.g. '{0} 17:00'")]
    DateOnly(String),
    /// `+...` that goes backwards or nowhere.
    #[error("'{0}' must be a positive time from now, such as +2h")]
    NotForward(String),
    /// Relative times make no sense in a stored row.
    #[error("'{0}' is relative; stored due times must be absolute (RFC 3339 or YYYY-MM-DD HH:MM)")]
    RelativeInStore(String),
    /// The result is outside the range of supported times.
    #[error("'{0}' is out of range")]
    OutOfRange(String),
}

/// A time typed by a user: absolute, local in `zone`, or `+span` from `now` (business
/// time through `calendar`).
pub fn parse_when(
    input: &str,
    now: Timestamp,
    zone: &TimeZone,
    calendar: &Calendar,
) -> Result<Timestamp, WhenError> {
    let text = input.trim();
    if let Some(rest) = text.strip_prefix('+') {
        let offset: Offset = rest
            .parse()
            .map_err(|_| WhenError::Unreadable(input.to_string()))?;
        if !offset.is_positive() {
            return Err(WhenError::NotForward(input.to_string()));
        }
        let moved = if offset.is_business() {
            calendar.shift(now, &offset)
        } else {
            shift_in(zone, now, &offset)
        };
        return moved.map_err(|_| WhenError::OutOfRange(input.to_string()));
    }
    parse_absolute(text, zone)
}

/// A due time as stored in the `commitments` table: RFC 3339 or local, never relative.
pub fn parse_stored(input: &str, zone: &TimeZone) -> Result<Timestamp, WhenError> {
    let text = input.trim();
    if text.starts_with('+') {
        return Err(WhenError::RelativeInStore(input.to_string()));
    }
    parse_absolute(text, zone)
}

fn parse_absolute(text: &str, zone: &TimeZone) -> Result<Timestamp, WhenError> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let local: DateTime = text
        .parse()
        .map_err(|_| WhenError::Unreadable(text.to_string()))?;
    if !text.contains(':') {
        return Err(WhenError::DateOnly(text.to_string()));
    }
    local
        .to_zoned(zone.clone())
        .map(|z| z.timestamp())
        .map_err(|_| WhenError::OutOfRange(text.to_string()))
}

/// `at` written as RFC 3339 with the offset of `zone`, the form `followup` stores.
pub fn format_stored(at: Timestamp, zone: &TimeZone) -> String {
    at.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn cal() -> Calendar {
        Calendar::new(zone("Europe/London"))
    }

    #[test]
    fn rfc3339_is_taken_as_written() {
        let z = zone("Europe/London");
        let now = ts("2026-11-23T10:00:00Z");
        assert_eq!(
            parse_when("2026-11-24T17:00:00+01:00", now, &z, &cal()),
            Ok(ts("2026-11-24T16:00:00Z"))
        );
        assert_eq!(
            parse_when("2026-11-24T17:00:00Z", now, &z, &cal()),
            Ok(ts("2026-11-24T17:00:00Z"))
        );
    }

    #[test]
    fn local_times_are_read_in_the_given_zone() {
        let now = ts("2026-11-23T10:00:00Z");
        assert_eq!(
            parse_when("2026-11-24 17:00", now, &zone("America/New_York"), &cal()),
            Ok(ts("2026-11-24T22:00:00Z"))
        );
        assert_eq!(
            parse_when("2026-11-24T17:00:30", now, &zone("Europe/London"), &cal()),
            Ok(ts("2026-11-24T17:00:30Z"))
        );
    }

    #[test]
    fn a_local_time_in_the_spring_gap_moves_forward() {
        // 02:30 does not exist in New York on 2027-03-14; it is read as 03:30 EDT.
        let got = parse_stored("2027-03-14 02:30", &zone("America/New_York")).unwrap();
        assert_eq!(got, ts("2027-03-14T07:30:00Z"));
    }

    #[test]
    fn a_local_time_in_the_autumn_fold_means_the_first_one() {
        // 01:30 happens twice in New York on 2027-11-07; the first is EDT (-04:00).
        let got = parse_stored("2027-11-07 01:30", &zone("America/New_York")).unwrap();
        assert_eq!(got, ts("2027-11-07T05:30:00Z"));
    }

    #[test]
    fn relative_times_count_from_now() {
        let z = zone("Europe/London");
        let now = ts("2026-11-23T10:00:00Z");
        assert_eq!(
            parse_when("+30s", now, &z, &cal()),
            Ok(ts("2026-11-23T10:00:30Z"))
        );
        assert_eq!(
            parse_when("+2h", now, &z, &cal()),
            Ok(ts("2026-11-23T12:00:00Z"))
        );
        assert_eq!(
            parse_when("+3d", now, &z, &cal()),
            Ok(ts("2026-11-26T10:00:00Z"))
        );
        assert_eq!(
            parse_when("+1h30m", now, &z, &cal()),
            Ok(ts("2026-11-23T11:30:00Z"))
        );
    }

    #[test]
    fn relative_business_time_follows_the_calendar() {
        // Friday 27 Nov 2026 15:00 + 1 business day: Monday 15:00 (default hours 9-17).
        let now = ts("2026-11-27T15:00:00Z");
        let z = zone("Europe/London");
        assert_eq!(
            parse_when("+1 business day", now, &z, &cal()),
            Ok(ts("2026-11-30T15:00:00Z"))
        );
        assert_eq!(
            parse_when("+3 business hours", now, &z, &cal()),
            Ok(ts("2026-11-30T10:00:00Z"))
        );
    }

    #[test]
    fn relative_days_are_calendar_days() {
        // From 12:00 GMT on 2027-03-27, +1d is 12:00 BST on the 28th: 23 hours later.
        let z = zone("Europe/London");
        let now = ts("2027-03-27T12:00:00Z");
        assert_eq!(
            parse_when("+1d", now, &z, &cal()),
            Ok(ts("2027-03-28T11:00:00Z"))
        );
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let z = zone("Europe/London");
        let now = ts("2026-11-23T10:00:00Z");
        assert!(matches!(
            parse_when("friday", now, &z, &cal()),
            Err(WhenError::Unreadable(_))
        ));
        assert!(matches!(
            parse_when("2026-11-24", now, &z, &cal()),
            Err(WhenError::DateOnly(_))
        ));
        assert!(matches!(
            parse_when("+0s", now, &z, &cal()),
            Err(WhenError::NotForward(_))
        ));
        assert!(matches!(
            parse_when("+-2h", now, &z, &cal()),
            Err(WhenError::NotForward(_))
        ));
        assert!(matches!(
            parse_stored("+2h", &z),
            Err(WhenError::RelativeInStore(_))
        ));
        assert!(parse_when("", now, &z, &cal()).is_err());
        assert!(parse_when("2026-13-01 10:00", now, &z, &cal()).is_err());
    }

    #[test]
    fn stored_form_round_trips() {
        let z = zone("Europe/London");
        let at = ts("2027-06-01T16:00:00Z");
        let text = format_stored(at, &z);
        assert_eq!(text, "2027-06-01T17:00:00+01:00");
        assert_eq!(parse_stored(&text, &z), Ok(at));
    }
}
