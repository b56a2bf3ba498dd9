//! How a fresh plan meets the steps already stored: which to add, revive, move or
//! retire, so that a re-plan never duplicates an email and never touches one decided.

use jiff::Timestamp;

use super::{PAST_GRACE, PlannedStep, SkipCode, Step, StepState};
use crate::commitment::Status;

/// One change to the stored steps that brings them in line with a fresh plan.
#[derive(Clone, Debug, PartialEq)]
pub enum StepChange {
    /// A step the store does not have yet, planned or recorded skipped.
    Add {
        /// The step.
        step: PlannedStep,
        /// `None` to plan it; `Some` to record it skipped, and why (already past, a
        /// snooze, a hold).
        skip: Option<(SkipCode, String)>,
    },
    /// A step skipped by an earlier re-plan that the plan has again.
    Revive {
        /// Row id.
        id: i64,
        /// The step as planned now.
        step: PlannedStep,
    },
    /// A planned step that moved: its key stays (e.g. the next customer update) while
    /// its time follows a new due time or new business hours.
    Move {
        /// Row id.
        id: i64,
        /// The step as planned now.
        step: PlannedStep,
    },
    /// A planned step the plan no longer has.
    Retire {
        /// Row id.
        id: i64,
        /// Why.
        code: SkipCode,
        /// Why, for people.
        reason: String,
    },
}

/// The changes that turn `stored` into `fresh`. `since` is when the commitment was
/// written (the earliest change not yet planned); `closed` tells whether the commitment
/// is done or cancelled, which words the reason for retiring its steps.
/// Steps already queued, sent, failed or skipped for good are never touched.
pub fn reconcile(
    stored: &[Step],
    fresh: Vec<PlannedStep>,
    since: Timestamp,
    closed: Option<Status>,
) -> Vec<StepChange> {
    let mut changes = Vec::new();
    let past_before = since - PAST_GRACE;
    for step in &fresh {
        match stored.iter().find(|s| s.key == step.key) {
            None => {
                let skip = step.skip.clone().or_else(|| {
                    (step.planned_at < past_before)
                        .then(|| (SkipCode::Past, past_reason(step, since)))
                });
                changes.push(StepChange::Add {
                    step: step.clone(),
                    skip,
                });
            }
            // The plan keeps it, not to be sent: a planned one is retired, one already
            // skipped or sent stays as it is.
            Some(s) if step.skip.is_some() => {
                if s.state == StepState::Planned
                    && let Some((code, reason)) = &step.skip
                {
                    changes.push(StepChange::Retire {
                        id: s.id,
                        code: *code,
                        reason: reason.clone(),
                    });
                }
            }
            Some(s) if s.state == StepState::Planned && step.planned_at < past_before => {
                changes.push(StepChange::Retire {
                    id: s.id,
                    code: SkipCode::Past,
                    reason: past_reason(step, since),
                });
            }
            Some(s)
                if s.state == StepState::Planned
                    && (s.fire_at != step.fire_at || s.planned_at != step.planned_at) =>
            {
                changes.push(StepChange::Move {
                    id: s.id,
                    step: step.clone(),
                });
            }
            Some(s)
                if s.state == StepState::Skipped
                    && SkipCode::may_revive(s.skip_code.as_deref())
                    && step.planned_at >= past_before =>
            {
                changes.push(StepChange::Revive {
                    id: s.id,
                    step: step.clone(),
                });
            }
            Some(_) => {}
        }
    }
    for s in stored {
        if s.state == StepState::Planned && !fresh.iter().any(|f| f.key == s.key) {
            let (code, reason) = match closed {
                Some(status) => (
                    SkipCode::Closed,
                    format!("the commitment was marked {status}"),
                ),
                None => (
                    SkipCode::Replanned,
                    "no longer in the plan (the due time or the rules changed)".to_string(),
                ),
            };
            changes.push(StepChange::Retire {
                id: s.id,
                code,
                reason,
            });
        }
    }
    changes
}

fn past_reason(step: &PlannedStep, since: Timestamp) -> String {
    format!(
        "its time ({}) had already passed when the commitment was written ({})",
        step.planned_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        since.strftime("%Y-%m-%d %H:%M:%S UTC"),
    )
}
