//! The store at a glance, for the daemon's `STATUS=` line and `followup status`.
//!
//! [`Summaries::workload`] is cheap (SQLite reads only the partial indexes of planned
//! steps and pending deliveries), so the daemon can call it after every planning pass.
//! [`Summaries::summary`] adds the history (sent and failed emails, problems), which
//! counts whole tables and is for the command line only.

use jiff::Timestamp;
use serde::Serialize;

use super::Result;

/// The work ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// Steps planned and not yet fired.
    pub planned_steps: u64,
    /// The earliest of them.
    pub next_step: Option<NextStep>,
    /// Emails in the outbox, waiting for their first attempt or a retry.
    pub pending_deliveries: u64,
}

/// The planned step that fires first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextStep {
    /// When it fires.
    pub fire_at: Timestamp,
    /// The commitment it belongs to.
    pub commitment_id: i64,
    /// Its kind, e.g. `remind`.
    pub kind: String,
    /// Its label, e.g. `-2h`.
    pub label: String,
}

/// The work ahead and what happened so far.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Planned steps and pending emails.
    #[serde(flatten)]
    pub workload: Workload,
    /// Commitments still to be kept.
    pub open_commitments: u64,
    /// Writes to commitments the daemon has not planned yet: many while it is stopped.
    pub changes_waiting: u64,
    /// Commitments whose row cannot be planned (bad address, unreadable due time, no
    /// rule): their steps are held until the row is fixed.
    pub quarantined_commitments: u64,
    /// Pending emails whose last attempt failed and that wait for a retry.
    pub retrying_deliveries: u64,
    /// Emails that failed for good.
    pub failed_deliveries: u64,
    /// Emails the server accepted.
    pub sent_deliveries: u64,
    /// Customer emails sent that may have gone twice: the daemon sending one stopped
    /// and another took it over ([`DeliveryRecord::taken_over`](crate::store::DeliveryRecord::taken_over)).
    pub customer_mail_maybe_twice: u64,
    /// When the last one was accepted.
    pub last_sent_at: Option<Timestamp>,
    /// The most recent error recorded on an email: one still being retried first, else
    /// the newest failure.
    pub last_error: Option<DeliveryError>,
}

/// An error recorded on one email.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryError {
    /// The delivery.
    pub delivery_id: i64,
    /// The commitment it is about.
    pub commitment_id: i64,
    /// `pending` (will be retried) or `failed`.
    pub state: String,
    /// What went wrong.
    pub error: String,
}

/// The store at a glance.
pub trait Summaries {
    /// Planned steps, the next one, and pending emails.
    fn workload(&self) -> Result<Workload>;

    /// The workload and the history, for `followup status`.
    fn summary(&self) -> Result<Summary>;
}
