//! The calendar: the time zone that local times are read and shown in, and the offsets
//! (`-1d`, `+4h`, `0s`) that rules place steps with.
//!
//! Pure: nothing here reads the clock or touches a file. Days are calendar days in the
//! zone (a `-1d` reminder comes at the same wall-clock time the day before, across a
//! daylight-saving change); hours, minutes and seconds are exact elapsed time.

use std::fmt;
use std::str::FromStr;

use jiff::tz::TimeZone;
use jiff::{Span, SpanRound, Timestamp, Unit, Zoned};
use serde::{Deserialize, Deserializer};

/// Where local times live: the zone for reading `YYYY-MM-DD HH:MM` and showing times.
#[derive(Clone, Debug)]
pub struct Calendar {
    zone: TimeZone,
}

impl Calendar {
    /// A calendar in `zone`.
    pub fn new(zone: TimeZone) -> Self {
        Calendar { zone }
    }

    /// The calendar's time zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The IANA name of the zone, or `UTC` for a fixed or unnamed zone.
    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// `at` moved by `offset`, with days counted on the calendar's wall clock.
    pub fn shift(&self, at: Timestamp, offset: &Offset) -> Result<Timestamp, OffsetError> {
        shift_in(&self.zone, at, offset)
    }

    /// `at` as a person in the calendar's zone reads it, e.g. `Tue 24 Nov 2026 17:00 GMT`.
    pub fn display(&self, at: Timestamp) -> String {
        display_in(&self.zone, at)
    }
}

/// `at` moved by `offset`, with days counted on the wall clock of `zone`.
pub fn shift_in(zone: &TimeZone, at: Timestamp, offset: &Offset) -> Result<Timestamp, OffsetError> {
    let zoned = at.to_zoned(zone.clone());
    zoned
        .checked_add(offset.span)
        .map(|z| z.timestamp())
        .map_err(|_| OffsetError::OutOfRange(offset.text.clone()))
}

/// `at` as a person in `zone` reads it, e.g. `Tue 24 Nov 2026 17:00 GMT`.
pub fn display_in(zone: &TimeZone, at: Timestamp) -> String {
    let zoned: Zoned = at.to_zoned(zone.clone());
    zoned.strftime("%a %-d %b %Y %H:%M %Z").to_string()
}

/// A distance such as `"2 hours"`, `"1 day 3 hours"` or `"45 minutes"`, rounded to the
/// minute and with at most the two largest units, for subjects and bodies.
pub fn humanize(from: Timestamp, to: Timestamp) -> String {
    let span = match from.until(to) {
        Ok(span) => span.abs(),
        Err(_) => return "a long time".to_string(),
    };
    let round = SpanRound::new()
        .largest(Unit::Day)
        .smallest(Unit::Minute)
        .days_are_24_hours();
    let span = span.round(round).unwrap_or(span);
    let parts = [
        (span.get_days() as i64, "day"),
        (span.get_hours() as i64, "hour"),
        (span.get_minutes(), "minute"),
    ];
    let words: Vec<String> = parts
        .iter()
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n != 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    if words.is_empty() {
        "less than a minute".to_string()
    } else {
        words.join(" ")
    }
}

/// A signed distance from a reference time, as written in rules: `-1d`, `-2h`, `0s`,
/// `+4h`, `1h30m`, `2 days`. The original text is kept for labels and errors.
#[derive(Clone, Debug)]
pub struct Offset {
    text: String,
    span: Span,
}

impl Offset {
    /// The offset as the user wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signed span.
    pub fn span(&self) -> Span {
        self.span
    }

    /// True for offsets after the reference time (`+4h`); zero counts as not positive.
    pub fn is_positive(&self) -> bool {
        self.span.signum() > 0
    }

    /// True for offsets before the reference time (`-1d`).
    pub fn is_negative(&self) -> bool {
        self.span.signum() < 0
    }
}

impl PartialEq for Offset {
    fn eq(&self, other: &Self) -> bool {
        self.span.fieldwise() == other.span.fieldwise()
    }
}

impl Offset {
    /// The offset as an exact duration, counting a day as 24 hours: for limits such as
    /// timeouts and ages, where wall-clock days do not apply.
    pub fn exact(&self) -> jiff::SignedDuration {
        self.span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .unwrap_or(jiff::SignedDuration::MAX)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why an offset could not be read or applied.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OffsetError {
    /// The text is not a span.
    #[error(
        "'{0}' is not an offset: write a number and a unit such as -1d, -2h, 30m, 0s, +4h or '2 days'"
    )]
    Invalid(String),
    /// Weeks, months and years have no fixed length here.
    #[error("'{0}' uses weeks, months or years: write days instead (e.g. 7d)")]
    UnsupportedUnit(String),
    /// Applying the offset left the supported range of times.
    #[error("offset '{0}' moves the time out of range")]
    OutOfRange(String),
}

impl FromStr for Offset {
    type Err = OffsetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let span: Span = trimmed
            .parse()
            .map_err(|_| OffsetError::Invalid(text.to_string()))?;
        if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
            return Err(OffsetError::UnsupportedUnit(text.to_string()));
        }
        Ok(Offset {
            text: trimmed.to_string(),
            span,
        })
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A time zone named in config, e.g. `"Europe/London"`.
#[derive(Clone, Debug)]
pub struct Zone(pub TimeZone);

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        parse_zone(&name)
            .map(Zone)
            .map_err(serde::de::Error::custom)
    }
}

/// The IANA zone called `name`, with an error that says what a valid name looks like.
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!(
            "unknown time zone '{name}': use an IANA name such as Europe/London or America/New_York"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn london() -> Calendar {
        Calendar::new(TimeZone::get("Europe/London").unwrap())
    }

    #[test]
    fn offsets_read_the_forms_rules_use() {
        for text in ["-1d", "-2h", "0s", "+4h", "1h30m", "2 days", "-90m"] {
            assert!(text.parse::<Offset>().is_ok(), "{text}");
        }
        assert!("-1d".parse::<Offset>().unwrap().is_negative());
        assert!("+4h".parse::<Offset>().unwrap().is_positive());
        assert!(!"0s".parse::<Offset>().unwrap().is_positive());
    }

    #[test]
    fn offsets_reject_nonsense_and_variable_units() {
        assert!(matches!(
            "soon".parse::<Offset>(),
            Err(OffsetError::Invalid(_))
        ));
        assert!(matches!(
            "1w".parse::<Offset>(),
            Err(OffsetError::UnsupportedUnit(_))
        ));
        assert!(matches!(
            "1mo".parse::<Offset>(),
            Err(OffsetError::UnsupportedUnit(_))
        ));
    }

    #[test]
    fn a_day_before_keeps_the_wall_clock_across_a_clock_change() {
        // London moves to BST on 2027-03-28: the day before 10:00 BST is 10:00 GMT,
        // which is 25 hours earlier, not 24.
        let due = ts("2027-03-29T09:00:00Z"); // 10:00 BST
        let reminder = london().shift(due, &"-1d".parse().unwrap()).unwrap();
        assert_eq!(reminder, ts("2027-03-28T09:00:00Z")); // 10:00 BST on the 28th
        let due = ts("2027-03-28T09:00:00Z"); // 10:00 BST, the first BST morning
        let reminder = london().shift(due, &"-1d".parse().unwrap()).unwrap();
        assert_eq!(reminder, ts("2027-03-27T10:00:00Z")); // 10:00 GMT
    }

    #[test]
    fn hours_are_exact_elapsed_time() {
        let due = ts("2027-03-28T02:30:00Z");
        let reminder = london().shift(due, &"-2h".parse().unwrap()).unwrap();
        assert_eq!(reminder, ts("2027-03-28T00:30:00Z"));
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
}
