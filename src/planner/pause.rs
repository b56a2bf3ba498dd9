//! When planned steps may not go at their time: while the business waits on the
//! customer the clock is paused, and a rule with `owner_hours` keeps its owner and team
//! mail inside business hours.

use super::{PlannedStep, SkipCode};
use crate::calendar::Calendar;
use crate::commitment::Commitment;
use crate::rule::Rule;

/// Skips every step that runs the clock while `commitment` waits on the customer,
/// with the words "waiting on the customer since ...: <reason>".
pub(super) fn waiting(
    steps: &mut [PlannedStep],
    commitment: &Commitment,
    calendar: &Calendar,
    reason: Option<&str>,
) {
    let Some(since) = commitment.waiting_since else {
        return;
    };
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let words = match reason {
        Some(reason) => format!(
            "waiting on the customer since {}: {reason}",
            calendar.display(since)
        ),
        None => format!("waiting on the customer since {}", calendar.display(since)),
    };
    for step in steps.iter_mut().filter(|s| s.kind.runs_the_clock()) {
        step.skip = Some((SkipCode::Waiting, words.clone()));
    }
}

/// Moves the owner and team mail of a rule with `owner_hours` into the calendar's
/// business hours (in the business's zone); the alert may opt out.
pub(super) fn owner_hours(steps: &mut [PlannedStep], rule: &Rule, calendar: &Calendar) {
    for step in steps
        .iter_mut()
        .filter(|s| rule.keeps_owner_hours(s.kind, &s.key))
    {
        step.fire_at = calendar.next_open_in(step.fire_at, calendar.zone());
    }
}
