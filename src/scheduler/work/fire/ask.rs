//! The owner's say before a customer update (`ask_owner#N`): which update it asks
//! about (`customer_update#N`), and whether there is still something to ask.

use jiff::Timestamp;

use crate::mail::compose::asked_update_key;
use crate::planner::Step;
use crate::planner::{SkipCode, StepKind, StepState};
use crate::store::{DueStep, StepFacts};

/// For an owner's say, the stored step of the update it asks about (if the store has
/// it); `None` for every other step.
pub(super) fn asked_step<'f>(due: &DueStep, facts: &'f StepFacts) -> Option<&'f Step> {
    if due.step.kind != StepKind::AskOwner {
        return None;
    }
    let key = asked_update_key(&due.step.key)?;
    facts.steps.iter().find(|s| s.key == key)
}

/// The update an owner's say at `at` asks about, if it is still to go after `at`; else
/// why the say is skipped: the owner held it, it went already, or its time has come.
pub(super) fn asked_update(
    asked: Option<&Step>,
    at: Timestamp,
) -> Result<&Step, (SkipCode, String)> {
    let Some(asked) = asked else {
        return Err((
            SkipCode::Replanned,
            "the customer update it asks about is no longer planned".into(),
        ));
    };
    if asked.state != StepState::Planned {
        // Held, sent at once or skipped: nothing is left to ask. Should a later plan
        // bring the update back, the say may come back with it.
        return Err((
            SkipCode::Replanned,
            format!("the customer update it asks about is {}", asked.state),
        ));
    }
    if asked.fire_at <= at {
        return Err((
            SkipCode::CatchUp,
            "the customer update it asks about goes now: too late to ask".into(),
        ));
    }
    Ok(asked)
}
