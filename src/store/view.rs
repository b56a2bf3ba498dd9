//! What the Open page shows of one commitment, read as one consistent view.

use super::act::Facts;
use super::{DeliveryRecord, Glance, Result, RevisionRecord};
use crate::commitment::StoredCommitment;
use crate::planner::{Step, StepKind};

/// One commitment with its history, timeline and emails, as they stood at one moment.
#[derive(Debug)]
pub struct CommitmentView {
    /// Its row, its snooze and its next planned step of the kind asked for.
    pub glance: Glance,
    /// Its revisions, oldest first.
    pub revisions: Vec<RevisionRecord>,
    /// Its steps, in the order they fire.
    pub steps: Vec<Step>,
    /// Its emails, oldest first.
    pub deliveries: Vec<DeliveryRecord>,
}

impl Facts for CommitmentView {
    fn commitment(&self) -> &StoredCommitment {
        &self.glance.row
    }

    fn revisions(&self) -> Result<Vec<RevisionRecord>> {
        Ok(self.revisions.clone())
    }

    fn steps(&self) -> Result<Vec<Step>> {
        Ok(self.steps.clone())
    }
}

/// A commitment as the Open page and `followup show` present it.
pub trait Views {
    /// Commitment `id` with everything the Open page shows of it (`update_kind` as for
    /// [`Store::glance`](crate::store::Glances::glance)), in one read transaction: one consistent view, and one taking
    /// of the locks for all of its reads.
    fn commitment_view(&self, id: i64, update_kind: StepKind) -> Result<CommitmentView>;
}
