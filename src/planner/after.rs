//! The steps around the work itself: the internal email when a commitment is recorded
//! (`on_open`) and the follow-ups once it is done (`after_done`), which stop when it is
//! closed with an outcome.

use super::{PlannedStep, SkipCode, StepKind};
use crate::calendar::Calendar;
use crate::commitment::Commitment;
use crate::rule::{CheckInTo, Rule};

/// The `on_open` email, at the moment the commitment was recorded. One recorded long
/// before it was written (an import) is past, and skipped as such when reconciled.
pub(super) fn on_open(commitment: &Commitment, rule: &Rule) -> Option<PlannedStep> {
    rule.on_open.as_ref()?;
    let at = commitment.created_at;
    Some(PlannedStep {
        key: "on_open".into(),
        kind: StepKind::OnOpen,
        rule: rule.name.clone(),
        label: "on open".into(),
        planned_at: at,
        fire_at: at,
        skip: None,
    })
}

/// Each `after_done` entry, counted from `done_at`; an entry to the customer waits for
/// their business hours. Once the commitment is closed the entries are in the plan
/// still, skipped: the ones already sent stay sent, the others are recorded as not
/// sent because of the close.
pub(super) fn after_done(
    commitment: &Commitment,
    rule: &Rule,
    calendar: &Calendar,
) -> Vec<PlannedStep> {
    let Some(done) = commitment.done_at else {
        return Vec::new();
    };
    let customer_zone = commitment.zone(calendar.zone());
    let closed = commitment.outcome.map(|outcome| {
        let on = commitment
            .closed_at
            .map(|at| format!(" on {}", calendar.display(at)))
            .unwrap_or_default();
        (SkipCode::Closed, format!("closed {}{on}", outcome.as_str()))
    });
    rule.after_done
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let at = calendar.shift(done, &entry.after).ok()?;
            let fire_at = match entry.to {
                CheckInTo::Owner => at,
                CheckInTo::Customer => calendar.next_open_in(at, customer_zone),
            };
            Some(PlannedStep {
                key: Rule::after_done_key(index),
                kind: StepKind::CheckIn,
                rule: rule.name.clone(),
                label: format!("{} after done", entry.after),
                planned_at: at,
                fire_at,
                skip: closed.clone(),
            })
        })
        .collect()
}
