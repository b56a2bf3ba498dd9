//! What previewing a commitment's steps ahead reads, as one consistent view.

use super::{ReportRow, Result, RevisionRecord};
use crate::planner::{History, Step};

/// One commitment as planning it and composing its emails see it, at one moment: a
/// preview never plans from a past that its stored steps have moved on from.
#[derive(Debug)]
pub struct PlanView {
    /// What the planner needs to know of its past ([`Store::history`](crate::store::Revisions::history)).
    pub history: History,
    /// Its revisions, oldest first.
    pub revisions: Vec<RevisionRecord>,
    /// Its stored steps, in the order they fire.
    pub steps: Vec<Step>,
    /// Its customer's commitments ([`Store::customer_rows`](crate::store::Customers::customer_rows)), for what an email says
    /// of them.
    pub customer_rows: Vec<ReportRow>,
}

/// What `followup preview` reads.
pub trait PlanViews {
    /// Commitment `id` with its past, revisions and steps, and the rows of its
    /// customer at `customer` (an address), in one read transaction.
    fn plan_view(&self, id: i64, customer: &str) -> Result<PlanView>;
}
