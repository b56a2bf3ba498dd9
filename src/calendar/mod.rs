//! The calendar: the time zone local times are read and shown in, the business hours and
//! holidays that customer mail waits for, and offsets (`-1d`, `+4h`,
//! `2 business days`) that rules place steps with.
//!
//! Pure: nothing here reads the clock or touches a file. Days are calendar days in the
//! zone (a `-1d` reminder comes at the same wall-clock time the day before, across a
//! daylight-saving change); hours, minutes and seconds are exact elapsed time; business
//! time skips nights, weekends and holidays. Business hours are wall-clock hours, so
//! they can be read in another zone (the customer's) than the calendar's own.

mod offset;

use std::collections::BTreeSet;
use std::str::FromStr;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, SpanRound, Timestamp, Unit, Zoned};
use serde::{Deserialize, Deserializer};

pub use offset::{Business, Offset, OffsetError, OffsetKind};

/// Opening and closing time of one day, in seconds after midnight (closing may be the
/// next midnight, written `24:00`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hours {
    open: u32,
    close: u32,
}

const DAY_SECONDS: u32 = 24 * 3600;

impl FromStr for Hours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{text}' is not a range of hours: write e.g. \"09:00-17:30\"");
        let (open, close) = text.trim().split_once('-').ok_or_else(bad)?;
        let seconds = |hms: &str| -> Option<u32> {
            let mut parts = hms.trim().split(':');
            let h: u32 = parts.next()?.parse().ok()?;
            let m: u32 = parts.next()?.parse().ok()?;
            let s: u32 = parts.next().map_or(Some(0), |s| s.parse().ok())?;
            let total = h * 3600 + m * 60 + s;
            (parts.next().is_none() && m < 60 && s < 60 && total <= DAY_SECONDS).then_some(total)
        };
        let (open, close) = (
            seconds(open).ok_or_else(bad)?,
            seconds(close).ok_or_else(bad)?,
        );
        if open >= close {
            return Err(format!(
                "'{text}': the opening time must come before the closing time"
            ));
        }
        Ok(Hours { open, close })
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Business hours per weekday, Monday first; `None` is a closed day.
pub type Week = [Option<Hours>; 7];

/// Monday to Friday, 09:00 to 17:00: the hours used when config names none.
pub const DEFAULT_WEEK: Week = {
    let day = Some(Hours {
        open: 9 * 3600,
        close: 17 * 3600,
    });
    [day, day, day, day, day, None, None]
};

/// Zone, business hours and holidays.
#[derive(Clone, Debug)]
pub struct Calendar {
    zone: TimeZone,
    week: Week,
    holidays: BTreeSet<Date>,
}

/// How far the calendar looks for an open day before giving up (a week with no open
/// day is refused by config, so this only bounds a calendar of nothing but holidays).
const SEARCH_DAYS: usize = 3 * 366;

impl Calendar {
    /// A calendar in `zone` with the default hours and no holidays.
    pub fn new(zone: TimeZone) -> Self {
        Calendar::with_hours(zone, DEFAULT_WEEK, BTreeSet::new())
    }

    /// A calendar in `zone` open in `week`, closed on `holidays`.
    pub fn with_hours(zone: TimeZone, week: Week, holidays: BTreeSet<Date>) -> Self {
        Calendar {
            zone,
            week,
            holidays,
        }
    }

    /// The calendar's time zone.
    pub fn zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The IANA name of the zone, or `UTC` for a fixed or unnamed zone.
    pub fn zone_name(&self) -> &str {
        self.zone.iana_name().unwrap_or("UTC")
    }

    /// `at` as a person in the calendar's zone reads it, e.g. `Tue 24 Nov 2026 17:00 GMT`.
    pub fn display(&self, at: Timestamp) -> String {
        display_in(&self.zone, at)
    }

    /// The business window of `date` read in `zone`, if the day is open.
    fn window(&self, date: Date, zone: &TimeZone) -> Option<(Timestamp, Timestamp)> {
        if self.holidays.contains(&date) {
            return None;
        }
        let hours = self.week[date.weekday().to_monday_zero_offset() as usize]?;
        let at = |seconds: u32| -> Option<Timestamp> {
            let (day, seconds) = if seconds >= DAY_SECONDS {
                (date.tomorrow().ok()?, 0)
            } else {
                (date, seconds)
            };
            let time = Time::new(
                (seconds / 3600) as i8,
                (seconds / 60 % 60) as i8,
                (seconds % 60) as i8,
                0,
            )
            .ok()?;
            day.to_datetime(time)
                .to_zoned(zone.clone())
                .ok()
                .map(|z| z.timestamp())
        };
        Some((at(hours.open)?, at(hours.close)?))
    }

    /// The first moment at or after `at` that is inside business hours read in `zone`.
    pub fn next_open_in(&self, at: Timestamp, zone: &TimeZone) -> Timestamp {
        let mut date = at.to_zoned(zone.clone()).date();
        for _ in 0..SEARCH_DAYS {
            if let Some((open, close)) = self.window(date, zone)
                && at < close
            {
                return at.max(open);
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        at
    }

    /// True if `at` is inside business hours read in `zone`.
    pub fn is_open_in(&self, at: Timestamp, zone: &TimeZone) -> bool {
        self.next_open_in(at, zone) == at
    }

    /// `at` moved by `offset`: spans on the calendar's wall clock, business time through
    /// its hours and holidays.
    pub fn shift(&self, at: Timestamp, offset: &Offset) -> Result<Timestamp, OffsetError> {
        let out_of_range = || OffsetError::OutOfRange(offset.text().to_string());
        match offset.kind() {
            OffsetKind::Span(_) => shift_in(&self.zone, at, offset),
            OffsetKind::Business(Business::Days(n)) => {
                self.add_business_days(at, *n).ok_or_else(out_of_range)
            }
            OffsetKind::Business(Business::Minutes(n)) => self
                .add_business_time(at, SignedDuration::from_mins(*n))
                .ok_or_else(out_of_range),
        }
    }

    /// The same time of day `n` open days later (earlier for negative `n`), kept inside
    /// that day's hours: after closing time it becomes closing time, before opening time
    /// opening time.
    fn add_business_days(&self, at: Timestamp, n: i64) -> Option<Timestamp> {
        if n == 0 {
            return Some(at);
        }
        let local = at.to_zoned(self.zone.clone());
        let mut date = local.date();
        let mut left = n.unsigned_abs();
        let mut searched = 0;
        let window = loop {
            date = if n > 0 {
                date.tomorrow().ok()?
            } else {
                date.yesterday().ok()?
            };
            searched += 1;
            if searched > SEARCH_DAYS + left as usize {
                return None;
            }
            if let Some(window) = self.window(date, &self.zone) {
                left -= 1;
                if left == 0 {
                    break window;
                }
            }
        };
        let same_time = date
            .to_datetime(local.time())
            .to_zoned(self.zone.clone())
            .ok()?
            .timestamp();
        Some(same_time.clamp(window.0, window.1))
    }

    /// `at` moved by `amount` of open time; nights, weekends and holidays do not count.
    fn add_business_time(&self, at: Timestamp, amount: SignedDuration) -> Option<Timestamp> {
        self.add_business_time_in(at, amount, &self.zone)
    }

    /// `at` moved by `amount` of open time, with business hours read in `zone` (a
    /// customer's): nights, weekends and holidays do not count.
    pub fn add_business_time_in(
        &self,
        at: Timestamp,
        amount: SignedDuration,
        zone: &TimeZone,
    ) -> Option<Timestamp> {
        let forward = !amount.is_negative();
        let mut left = amount.abs();
        let mut date = at.to_zoned(zone.clone()).date();
        for _ in 0..SEARCH_DAYS + (left.as_hours() / 24) as usize * 7 {
            if let Some((open, close)) = self.window(date, zone) {
                if forward && at < close {
                    let start = at.max(open);
                    let available = start.duration_until(close);
                    if left <= available {
                        return start.checked_add(left).ok();
                    }
                    left -= available;
                } else if !forward && at > open {
                    let end = at.min(close);
                    let available = open.duration_until(end);
                    if left <= available {
                        return end.checked_sub(left).ok();
                    }
                    left -= available;
                }
            }
            date = if forward {
                date.tomorrow().ok()?
            } else {
                date.yesterday().ok()?
            };
        }
        None
    }
}

impl Calendar {
    /// The open time between `from` and `to` (zero if `to` is not later), with business
    /// hours read in `zone`: how much business time a pause took.
    pub fn business_time_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        zone: &TimeZone,
    ) -> SignedDuration {
        let mut total = SignedDuration::ZERO;
        let mut date = from.to_zoned(zone.clone()).date();
        let last = to.to_zoned(zone.clone()).date();
        while date <= last {
            if let Some((open, close)) = self.window(date, zone) {
                let (start, end) = (open.max(from), close.min(to));
                if start < end {
                    total += start.duration_until(end);
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }
}

/// `at` moved by a wall-clock `offset` in `zone`; business offsets need a calendar and
/// are refused here.
pub fn shift_in(zone: &TimeZone, at: Timestamp, offset: &Offset) -> Result<Timestamp, OffsetError> {
    let OffsetKind::Span(span) = offset.kind() else {
        return Err(OffsetError::Invalid(offset.text().to_string()));
    };
    at.to_zoned(zone.clone())
        .checked_add(*span)
        .map(|z| z.timestamp())
        .map_err(|_| OffsetError::OutOfRange(offset.text().to_string()))
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
        (i64::from(span.get_days()), "day"),
        (i64::from(span.get_hours()), "hour"),
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
mod tests;
