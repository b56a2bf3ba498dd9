//! Offsets as rules write them: a wall-clock span (`-1d`, `-2h`, `0s`, `+4h`, `1h30m`,
//! `2 days`) or an amount of business time (`2 business days`, `3 business hours`).

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Span};
use serde::{Deserialize, Deserializer};

/// A signed distance from a reference time. The original text is kept for labels.
#[derive(Clone, Debug)]
pub struct Offset {
    text: String,
    kind: OffsetKind,
}

/// What an offset counts.
#[derive(Clone, Debug)]
pub enum OffsetKind {
    /// Wall-clock time: days are calendar days in the zone, hours and less are exact.
    Span(Span),
    /// Business time of the calendar: open hours only, or open days only.
    Business(Business),
}

/// An amount of business time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Business {
    /// Whole business days: the same time of day on the Nth open day, kept inside
    /// that day's hours.
    Days(i64),
    /// Open time, counted in minutes; nights, weekends and holidays do not count.
    Minutes(i64),
}

impl Offset {
    /// The offset as the user wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What it counts.
    pub fn kind(&self) -> &OffsetKind {
        &self.kind
    }

    fn sign(&self) -> i64 {
        match self.kind {
            OffsetKind::Span(span) => i64::from(span.signum()),
            OffsetKind::Business(Business::Days(n) | Business::Minutes(n)) => n.signum(),
        }
    }

    /// True for offsets after the reference time (`+4h`); zero is not positive.
    pub fn is_positive(&self) -> bool {
        self.sign() > 0
    }

    /// True for offsets before the reference time (`-1d`).
    pub fn is_negative(&self) -> bool {
        self.sign() < 0
    }

    /// True for business-time offsets.
    pub fn is_business(&self) -> bool {
        matches!(self.kind, OffsetKind::Business(_))
    }

    /// The offset as an exact duration with a day counted as 24 hours, for limits such
    /// as timeouts and ages; `None` for business time, which has no fixed length.
    pub fn exact(&self) -> Option<SignedDuration> {
        match self.kind {
            OffsetKind::Span(span) => span
                .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
                .ok(),
            OffsetKind::Business(_) => None,
        }
    }
}

impl PartialEq for Offset {
    fn eq(&self, other: &Self) -> bool {
        match (&self.kind, &other.kind) {
            (OffsetKind::Span(a), OffsetKind::Span(b)) => a.fieldwise() == b.fieldwise(),
            (OffsetKind::Business(a), OffsetKind::Business(b)) => a == b,
            _ => false,
        }
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
    /// The text is not an offset.
    #[error(
        "'{0}' is not an offset: write a number and a unit such as -1d, -2h, 30m, 0s, +4h, '2 days' or '2 business days'"
    )]
    Invalid(String),
    /// Weeks, months and years have no fixed length here.
    #[error("'{0}' uses weeks, months or years: write days instead (e.g. 7d)")]
    UnsupportedUnit(String),
    /// Applying the offset left the supported range of times.
    #[error("offset '{0}' moves the time out of range")]
    OutOfRange(String),
}

fn business(text: &str) -> Option<Business> {
    let mut words = text.split_whitespace();
    let first = words.next()?;
    let (sign, number) = match first {
        "+" | "-" => (first, words.next()?),
        _ => match first.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("+", first.strip_prefix('+').unwrap_or(first)),
        },
    };
    let amount: i64 = number.parse().ok()?;
    let amount = if sign == "-" { -amount } else { amount };
    if words.next()? != "business" {
        return None;
    }
    let unit = words.next()?;
    if words.next().is_some() {
        return None;
    }
    match unit {
        "day" | "days" => Some(Business::Days(amount)),
        "hour" | "hours" => amount.checked_mul(60).map(Business::Minutes),
        "minute" | "minutes" => Some(Business::Minutes(amount)),
        _ => None,
    }
}

impl FromStr for Offset {
    type Err = OffsetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.contains("business") {
            let amount = business(trimmed).ok_or_else(|| OffsetError::Invalid(text.to_string()))?;
            return Ok(Offset {
                text: trimmed.to_string(),
                kind: OffsetKind::Business(amount),
            });
        }
        let span: Span = trimmed
            .parse()
            .map_err(|_| OffsetError::Invalid(text.to_string()))?;
        if span.get_years() != 0 || span.get_months() != 0 || span.get_weeks() != 0 {
            return Err(OffsetError::UnsupportedUnit(text.to_string()));
        }
        Ok(Offset {
            text: trimmed.to_string(),
            kind: OffsetKind::Span(span),
        })
    }
}

impl<'de> Deserialize<'de> for Offset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_the_forms_rules_use() {
        for text in ["-1d", "-2h", "0s", "+4h", "1h30m", "2 days", "-90m"] {
            let offset: Offset = text.parse().unwrap();
            assert!(!offset.is_business(), "{text}");
        }
        assert!("-1d".parse::<Offset>().unwrap().is_negative());
        assert!("+4h".parse::<Offset>().unwrap().is_positive());
        assert!(!"0s".parse::<Offset>().unwrap().is_positive());
    }

    #[test]
    fn business_offsets_count_days_or_minutes() {
        let kind = |t: &str| match t.parse::<Offset>().unwrap().kind {
            OffsetKind::Business(b) => b,
            OffsetKind::Span(_) => panic!("{t} is not business time"),
        };
        assert_eq!(kind("2 business days"), Business::Days(2));
        assert_eq!(kind("1 business day"), Business::Days(1));
        assert_eq!(kind("+3 business hours"), Business::Minutes(180));
        assert_eq!(kind("-1 business hour"), Business::Minutes(-60));
        assert_eq!(kind("- 2 business days"), Business::Days(-2));
        assert_eq!(kind("90 business minutes"), Business::Minutes(90));
        assert!("2 business weeks".parse::<Offset>().is_err());
        assert!("two business days".parse::<Offset>().is_err());
        assert!("2 business days please".parse::<Offset>().is_err());
        assert_eq!("2 business days".parse::<Offset>().unwrap().exact(), None);
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
}
