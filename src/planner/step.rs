//! A step as stored: the one type that planning, firing and every view of a timeline
//! (`show`, `preview`, the Open page) read, with its kind and state already parsed.

use jiff::Timestamp;
use serde::Serialize;

use super::{StepKind, StepState};

/// One step of a commitment's timeline, as the store has it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Row id.
    pub id: i64,
    /// As planned: [`PlannedStep::key`](super::PlannedStep::key).
    pub key: String,
    /// As planned: [`PlannedStep::kind`](super::PlannedStep::kind).
    pub kind: StepKind,
    /// As the latest plan that had it wrote it:
    /// [`PlannedStep::rule`](super::PlannedStep::rule).
    pub rule: String,
    /// As the latest plan that had it wrote it:
    /// [`PlannedStep::label`](super::PlannedStep::label).
    pub label: String,
    /// As the latest plan that had it wrote it:
    /// [`PlannedStep::planned_at`](super::PlannedStep::planned_at).
    pub planned_at: Timestamp,
    /// When it fires, or fired: [`PlannedStep::fire_at`](super::PlannedStep::fire_at),
    /// or later once held.
    pub fire_at: Timestamp,
    /// Where it stands.
    pub state: StepState,
    /// Why it was skipped (`steps.skip_code`), which says whether a later plan may bring
    /// it back.
    #[serde(skip)]
    pub skip_code: Option<String>,
    /// Why it was skipped or failed, for people.
    pub reason: Option<String>,
    /// Whether it went out after its time.
    pub late: bool,
    /// Its last change of state.
    pub updated_at: Timestamp,
}

impl Step {
    /// Its state for people: `sent`, or `sent (late)` when it went out after its time.
    pub fn state_shown(&self) -> String {
        if self.late {
            format!("{} (late)", self.state)
        } else {
            self.state.to_string()
        }
    }
}
