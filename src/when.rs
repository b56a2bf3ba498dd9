//! Reading the times people type and other programs store.
//!
//! These forms are accepted:
//! - RFC 3339 with an offset: `2026-11-24T17:00:00+01:00` (also `Z`, and a trailing
//!   `[Zone/Name]` annotation);
//! - a local time `YYYY-MM-DD HH:MM[:SS]` (or with `T`), read in the commitment's zone or
//!   else the calendar's. A time that a daylight-saving change skips (02:30 on the night
//!   clocks go forward) moves forward by the length of the gap; a time that happens twice
//!   (01:30 on the night clocks go back) means the first of the two;
//! - relative to now, for typing only: `+30s`, `+2h`, `+3d`, `+1h30m`, `+2 business days`.
//!   Days are calendar days in the zone; business time follows the calendar;
//! - a day in words and a time, for typing only: `today 17:00`, `tomorrow 17:00`,
//!   `friday 17:00` or `fri 17:00` (the first such day whose 17:00 is still ahead: today
//!   if today is a Friday before 17:00, else the coming one), and `17:00` alone (today,
//!   refused once that time has passed, since the writer may have meant tomorrow).
//!
//! Pure: the caller passes `now`.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;

use crate::calendar::{Calendar, Offset, shift_in};

mod words;
pub use words::{day_in_words, time_in_words};

/// Why a time could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WhenError {
    /// Not one of the accepted forms.
    #[error(
        "cannot read '{0}' as a time: use RFC 3339 (2026-11-24T17:00:00+01:00), a local time \
         (2026-11-24 17:00), a day and a time (today 17:00, tomorrow 17:00, friday 17:00, 17:00) \
         or a time from now (+2h, +3d, +30s)"
    )]
    Unreadable(String),
    /// A date or time of the right shape with a field out of its range: which one.
    #[error("'{input}': {problem}")]
    OutOfField {
        /// What was typed.
        input: String,
        /// The field that is wrong, e.g. "13 is not a month (1-12)".
        problem: String,
    },
    /// A date without a time of day; a promise needs an hour.
    #[error("'{0}' has a date but no time of day: write e.g. '{0} 17:00'")]
    DateOnly(String),
    /// A time of day alone that has passed today: the writer may have meant tomorrow.
    #[error(
        "'{0}' today has already passed: write 'tomorrow {0}', a weekday ('friday {0}') or a date"
    )]
    TimePassed(String),
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

/// A time typed by a user: absolute, local in `zone`, a day in words and a time, or
/// `+span` from `now` (business time through `calendar`).
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
    if let Some(day_and_time) = in_words(text)? {
        return day_and_time.resolve(text, now, zone);
    }
    parse_absolute(text, zone)
}

/// A due time as stored in the `commitments` table: RFC 3339 or local, never relative.
pub fn parse_stored(input: &str, zone: &TimeZone) -> Result<Timestamp, WhenError> {
    let text = input.trim();
    if text.starts_with('+') || matches!(in_words(text), Ok(Some(_))) {
        return Err(WhenError::RelativeInStore(input.to_string()));
    }
    parse_absolute(text, zone)
}

/// Which day a time in words names, counted from today in the zone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Day {
    /// `17:00` alone: today, and only while still ahead.
    Bare,
    Today,
    Tomorrow,
    /// The first such day whose time is still ahead.
    Next(Weekday),
}

/// A day in words and a time of day, before `now` says which date they mean.
#[derive(Clone, Copy, Debug, PartialEq)]
struct DayAndTime {
    day: Day,
    time: Time,
}

impl DayAndTime {
    fn resolve(self, text: &str, now: Timestamp, zone: &TimeZone) -> Result<Timestamp, WhenError> {
        let today = now.to_zoned(zone.clone()).date();
        let at = |date: Date| {
            date.to_datetime(self.time)
                .to_zoned(zone.clone())
                .map(|z| z.timestamp())
                .map_err(|_| WhenError::OutOfRange(text.to_string()))
        };
        match self.day {
            Day::Today => at(today),
            Day::Bare => {
                let time = at(today)?;
                if time <= now {
                    return Err(WhenError::TimePassed(text.to_string()));
                }
                Ok(time)
            }
            Day::Tomorrow => at(today
                .tomorrow()
                .map_err(|_| WhenError::OutOfRange(text.to_string()))?),
            Day::Next(weekday) => {
                if today.weekday() == weekday {
                    let time = at(today)?;
                    if time > now {
                        return Ok(time);
                    }
                }
                at(today
                    .nth_weekday(1, weekday)
                    .map_err(|_| WhenError::OutOfRange(text.to_string()))?)
            }
        }
    }
}

/// Reads `[today|tomorrow|WEEKDAY] HH:MM[:SS]`: `None` when the text has another form,
/// an error when it has this form with a bad time of day.
fn in_words(text: &str) -> Result<Option<DayAndTime>, WhenError> {
    let (word, clock) = match text.split_once(char::is_whitespace) {
        Some((word, clock)) => (word, clock.trim()),
        None => ("", text),
    };
    let day = match word.to_lowercase().as_str() {
        "" => Day::Bare,
        "today" => Day::Today,
        "tomorrow" => Day::Tomorrow,
        name => match weekday(name) {
            Some(weekday) => Day::Next(weekday),
            None => return Ok(None),
        },
    };
    if !looks_like_clock(clock) {
        return match day {
            // A date, RFC 3339 or anything else without a day word is not ours.
            Day::Bare => Ok(None),
            _ => Err(WhenError::Unreadable(text.to_string())),
        };
    }
    match clock_time(clock) {
        Ok(time) => Ok(Some(DayAndTime { day, time })),
        Err(problem) => Err(WhenError::OutOfField {
            input: text.to_string(),
            problem,
        }),
    }
}

fn weekday(name: &str) -> Option<Weekday> {
    const NAMES: [(&str, Weekday); 7] = [
        ("monday", Weekday::Monday),
        ("tuesday", Weekday::Tuesday),
        ("wednesday", Weekday::Wednesday),
        ("thursday", Weekday::Thursday),
        ("friday", Weekday::Friday),
        ("saturday", Weekday::Saturday),
        ("sunday", Weekday::Sunday),
    ];
    NAMES
        .into_iter()
        .find(|(full, _)| name == *full || (name.len() == 3 && full.starts_with(name)))
        .map(|(_, weekday)| weekday)
}

/// `H:MM` or `HH:MM[:SS]`: digits and colons only, two or three fields.
fn looks_like_clock(text: &str) -> bool {
    let fields: Vec<&str> = text.split(':').collect();
    (2..=3).contains(&fields.len())
        && fields
            .iter()
            .all(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()))
}

/// The time of a clock that [`looks_like_clock`], or the first field out of its range,
/// in words.
fn clock_time(clock: &str) -> Result<Time, String> {
    let mut fields = clock.split(':').map(|f| f.parse::<i8>().unwrap_or(i8::MAX));
    let hour = fields.next().unwrap_or(i8::MAX);
    let minute = fields.next().unwrap_or(i8::MAX);
    let second = fields.next().unwrap_or(0);
    if !(0..=23).contains(&hour) {
        return Err(format!("{hour} is not an hour (0-23)"));
    }
    if !(0..=59).contains(&minute) {
        return Err(format!("{minute} is not a minute (0-59)"));
    }
    if !(0..=59).contains(&second) {
        return Err(format!("{second} is not a second (0-59)"));
    }
    Time::new(hour, minute, second, 0).map_err(|e| e.to_string())
}

/// For a local date and time of the right shape that did not parse, the field that is
/// out of its range: month, day (of that month), then the time of day.
fn date_problem(text: &str) -> Option<String> {
    let (date, clock) = match text.split_once([' ', 'T']) {
        Some((date, clock)) => (date, Some(clock.trim())),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    let (year, month, day) = (
        year.parse::<i16>().ok()?,
        month.parse::<i8>().ok()?,
        day.parse::<i8>().ok()?,
    );
    if !(1..=12).contains(&month) {
        return Some(format!("{month} is not a month (1-12)"));
    }
    let first = Date::new(year, month, 1).ok()?;
    let days = first.days_in_month();
    if !(1..=days).contains(&day) {
        return Some(format!(
            "{day} is not a day of {} (1-{days})",
            first.strftime("%B %Y")
        ));
    }
    clock
        .filter(|c| looks_like_clock(c))
        .and_then(|c| clock_time(c).err())
}

fn parse_absolute(text: &str, zone: &TimeZone) -> Result<Timestamp, WhenError> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let local: DateTime = text.parse().map_err(|_| match date_problem(text) {
        Some(problem) => WhenError::OutOfField {
            input: text.to_string(),
            problem,
        },
        None => WhenError::Unreadable(text.to_string()),
    })?;
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
    }

    #[test]
    fn a_date_out_of_range_names_the_field() {
        let z = zone("Europe/London");
        let now = ts("2026-11-23T10:00:00Z");
        let said = |text: &str| parse_when(text, now, &z, &cal()).unwrap_err().to_string();
        assert!(said("2026-13-01 10:00").contains("13 is not a month (1-12)"));
        assert!(said("2026-01-32 10:00").contains("32 is not a day of January 2026 (1-31)"));
        assert!(said("2026-02-29 10:00").contains("29 is not a day of February 2026 (1-28)"));
        assert!(said("2026-11-24 25:00").contains("25 is not an hour (0-23)"));
        assert!(said("2026-11-24 17:60").contains("60 is not a minute (0-59)"));
        assert!(said("2026-13-01T10:00:00Z").contains("13 is not a month"));
        assert!(said("tomorrow 24:00").contains("24 is not an hour"));
        assert!(said("2026-13-01 10:00").starts_with("'2026-13-01 10:00': "));
    }

    #[test]
    fn today_and_tomorrow_are_days_in_the_zone() {
        // 23:30 in New York on Monday 23 Nov is already Tuesday in UTC.
        let ny = zone("America/New_York");
        let now = ts("2026-11-24T04:30:00Z");
        assert_eq!(
            parse_when("today 17:00", now, &ny, &cal()),
            Ok(ts("2026-11-23T22:00:00Z"))
        );
        assert_eq!(
            parse_when("Tomorrow 17:00", now, &ny, &cal()),
            Ok(ts("2026-11-24T22:00:00Z"))
        );
        assert_eq!(
            parse_when("tomorrow  9:30:15", now, &ny, &cal()),
            Ok(ts("2026-11-24T14:30:15Z"))
        );
    }

    #[test]
    fn tomorrow_across_a_daylight_saving_change_keeps_the_wall_clock() {
        // Saturday 27 Mar 2027 in London is GMT; Sunday 28th is BST.
        let z = zone("Europe/London");
        let now = ts("2027-03-27T12:00:00Z");
        assert_eq!(
            parse_when("tomorrow 17:00", now, &z, &cal()),
            Ok(ts("2027-03-28T16:00:00Z"))
        );
        // 01:30 does not exist that night: it moves forward by the gap, like a date.
        assert_eq!(
            parse_when("tomorrow 01:30", now, &z, &cal()),
            Ok(ts("2027-03-28T01:30:00Z"))
        );
    }

    #[test]
    fn a_weekday_is_the_first_such_day_still_ahead() {
        let z = zone("Europe/London");
        // Wednesday 25 Nov 2026, 10:00.
        let wednesday = ts("2026-11-25T10:00:00Z");
        assert_eq!(
            parse_when("friday 17:00", wednesday, &z, &cal()),
            Ok(ts("2026-11-27T17:00:00Z"))
        );
        assert_eq!(
            parse_when("fri 17:00", wednesday, &z, &cal()),
            Ok(ts("2026-11-27T17:00:00Z"))
        );
        assert_eq!(
            parse_when("Mon 09:00", wednesday, &z, &cal()),
            Ok(ts("2026-11-30T09:00:00Z"))
        );
        // On a Wednesday: later today, or a week on once that time has passed.
        assert_eq!(
            parse_when("wednesday 17:00", wednesday, &z, &cal()),
            Ok(ts("2026-11-25T17:00:00Z"))
        );
        assert_eq!(
            parse_when("wed 09:00", wednesday, &z, &cal()),
            Ok(ts("2026-12-02T09:00:00Z"))
        );
        assert!(matches!(
            parse_when("fryday 17:00", wednesday, &z, &cal()),
            Err(WhenError::Unreadable(_))
        ));
    }

    #[test]
    fn a_time_alone_is_today_and_refused_once_past() {
        let z = zone("Europe/London");
        let now = ts("2026-11-25T10:00:00Z");
        assert_eq!(
            parse_when("17:00", now, &z, &cal()),
            Ok(ts("2026-11-25T17:00:00Z"))
        );
        let err = parse_when("09:00", now, &z, &cal()).unwrap_err();
        assert_eq!(err, WhenError::TimePassed("09:00".into()));
        assert!(err.to_string().contains("tomorrow 09:00"));
        // `today` is explicit: the caller decides what a past due time means.
        assert_eq!(
            parse_when("today 09:00", now, &z, &cal()),
            Ok(ts("2026-11-25T09:00:00Z"))
        );
    }

    #[test]
    fn stored_rows_cannot_hold_a_day_in_words() {
        let z = zone("Europe/London");
        for text in ["tomorrow 17:00", "17:00", "friday 09:00"] {
            assert_eq!(
                parse_stored(text, &z),
                Err(WhenError::RelativeInStore(text.into()))
            );
        }
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
