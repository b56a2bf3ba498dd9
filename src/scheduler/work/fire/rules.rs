//! Whether a due step may go now, as the commitment and its rule stand when it fires:
//! the plan decided the same, but a change written since (done, closed, waiting) or a
//! step missed while the daemon was down must not slip through.

use jiff::Timestamp;

use super::Decision;
use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::mail::compose::writes_to_customer;
use crate::planner::{SkipCode, StepKind};
use crate::rule::Rule;

/// `Some` to skip or hold the step of `kind` with `key` at `at`; `None` to go on.
pub(super) fn paused(
    config: &Config,
    commitment: &Commitment,
    rule: &Rule,
    kind: StepKind,
    key: &str,
    at: Timestamp,
) -> Option<Decision> {
    if kind.needs_open() && commitment.status != Status::Open {
        return Some(Decision::Skip {
            code: SkipCode::Closed,
            reason: format!("the commitment was marked {}", commitment.status),
        });
    }
    if kind == StepKind::CheckIn
        && let Some(outcome) = commitment.outcome
    {
        return Some(Decision::Skip {
            code: SkipCode::Closed,
            reason: format!("closed {}", outcome.as_str()),
        });
    }
    if kind.runs_the_clock() && commitment.waiting_since.is_some() {
        return Some(Decision::Skip {
            code: SkipCode::Waiting,
            reason: "waiting on the customer".into(),
        });
    }
    let zone = commitment.zone(config.calendar.zone());
    let hours_zone = if writes_to_customer(kind, key, rule) {
        Some(zone)
    } else if rule.keeps_owner_hours(kind, key) {
        Some(config.calendar.zone())
    } else {
        None
    };
    let opens = config.calendar.next_open_in(at, hours_zone?);
    (opens > at).then_some(Decision::Hold { until: opens })
}
