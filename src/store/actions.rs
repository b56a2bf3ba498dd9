//! Recording an action a person took on a commitment that does not move its due time
//! (done, cancel, snooze, hold, send now): a revision saying what, who and how, and the
//! change to the row, in the transaction of [`Store::act`](crate::store::Store#method.act). Which action is allowed is
//! decided above the store ([`crate::actions`]).

use jiff::Timestamp;

use super::{Deed, Result};
use crate::commitment::{Status, StoredCommitment};
use crate::planner::StepKind;

/// What an action changes in the commitment's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Sets its status (done, cancelled).
    Status(Status),
    /// Snoozes the owner's reminders until then.
    Snooze(Timestamp),
    /// Closes it with how it ended, at that time.
    Close(crate::commitment::Outcome, Timestamp),
    /// It waits on the customer from then on.
    Wait(Timestamp),
    /// Nothing in the row: the revision alone says it (a hold, a send-now), and the
    /// commitment is queued for planning.
    Plan,
}

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAction {
    /// The commitment.
    pub commitment_id: i64,
    /// What it is, who took it and how.
    pub deed: Deed,
    /// The action in words for people (`held by ana@example.com (by email link) on Tue
    /// 1 Dec 15:02: I called him`), kept as the revision's source.
    pub words: String,
    /// Why, when the person said (a hold's reason).
    pub reason: Option<String>,
    /// The customer update it is about (`customer_update#N`).
    pub step_key: Option<String>,
    /// What it changes in the row.
    pub effect: Effect,
}

/// What [`Store::glance`](crate::store::Glances::glance) reads.
#[derive(Debug)]
pub struct Glance {
    /// The row as stored.
    pub row: StoredCommitment,
    /// Until when the owner's reminders are snoozed, if a snooze was set.
    pub snoozed_until: Option<Timestamp>,
    /// The key and time of the earliest step of the kind asked for still planned.
    pub next_planned: Option<(String, Timestamp)>,
}

/// Quick looks at a commitment that a verb's page or notice needs before acting.
pub trait Glances {
    /// Commitment `id` as a page shows it, in one statement (so one consistent read and
    /// one taking of the locks): its row, its snooze, and the earliest step of
    /// `update_kind` still planned.
    fn glance(&self, id: i64, update_kind: StepKind) -> Result<Glance>;

    /// Until when the owner's reminders of commitment `id` are snoozed, if they are.
    fn snoozed_until(&self, id: i64) -> Result<Option<Timestamp>>;
}
