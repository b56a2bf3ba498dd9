//! What calendar jobs read and write: their runs, the facts of the digest and the
//! report, and pruning.

use super::Store;
use jiff::Timestamp;

use super::{Claim, NewDelivery, Result, StatusFilter};
use crate::commitment::StoredCommitment;

/// What the report needs of one commitment, as stored.
#[derive(Debug, Clone)]
pub struct ReportRow {
    /// The row.
    pub row: StoredCommitment,
    /// The due time before its first change, if it changed.
    pub first_old_due: Option<String>,
    /// When updates or delay notices were sent to the customer.
    pub updates_sent: Vec<Timestamp>,
}

/// An owner's own email that failed for good: the commitment's row, when it failed,
/// its subject and the error.
pub type OwnerMailFailed = (StoredCommitment, Timestamp, String, String);

/// One occurrence of a calendar job's schedule, to be run once.
#[derive(Debug, Clone, Copy)]
pub struct Occurrence<'a> {
    /// The schedule's name.
    pub schedule: &'a str,
    /// The job's name, as `job_runs` records it.
    pub job: &'a str,
    /// The occurrence's time.
    pub at: Timestamp,
    /// For a prune, the records of emails sent before this time are deleted first.
    pub prune_before: Option<Timestamp>,
}

/// What the run of an occurrence knows when its emails are composed.
#[derive(Debug, Clone, Copy)]
pub struct JobRun {
    /// Its record's id, which its emails' Message-IDs carry.
    pub id: i64,
    /// When the schedule ran before (wall-clock), if it ever did.
    pub previous: Option<Timestamp>,
    /// How many records of sent emails a prune deleted.
    pub pruned: usize,
}

/// What a run puts in the outbox and says of itself.
#[derive(Debug, Default)]
pub struct JobOutput {
    /// Its emails.
    pub deliveries: Vec<NewDelivery>,
    /// Why they are recorded without being sent (a dry run), if so.
    pub not_sent: Option<&'static str>,
    /// What the run did, for its record.
    pub summary: String,
}

/// What composing a job's emails may read: the store, for reading only.
#[derive(Clone, Copy)]
pub struct JobReads<'a>(pub(super) &'a dyn Store);

impl JobReads<'_> {
    /// The store's id, which Message-IDs carry.
    pub fn store_id(&self) -> &str {
        self.0.id()
    }

    /// See [`Store::commitments`](crate::store::Commitments::commitments).
    pub fn commitments(&self, filter: StatusFilter) -> Result<Vec<StoredCommitment>> {
        self.0.commitments(filter)
    }

    /// See [`Store::customer_updates_since`](crate::store::Jobs::customer_updates_since).
    pub fn customer_updates_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(StoredCommitment, Timestamp, String)>> {
        self.0.customer_updates_since(since)
    }

    /// See [`Store::owner_mail_failed_since`](crate::store::Jobs::owner_mail_failed_since).
    pub fn owner_mail_failed_since(&self, since: Timestamp) -> Result<Vec<OwnerMailFailed>> {
        self.0.owner_mail_failed_since(since)
    }

    /// See [`Store::report_rows`](crate::store::Jobs::report_rows).
    pub fn report_rows(&self) -> Result<Vec<ReportRow>> {
        self.0.report_rows()
    }
}

/// The calendar jobs: one occurrence at a time, and what composing one reads.
pub trait Jobs {
    /// Runs `occurrence` once, in one transaction: records the run (nothing happens if
    /// the occurrence ran already, also across restarts and crashes), prunes if asked,
    /// and puts in the outbox the emails `compose` makes of what it reads. Returns how
    /// many emails; 0 if it ran before.
    fn run_occurrence(
        &self,
        claim: &Claim,
        occurrence: &Occurrence<'_>,
        now: Timestamp,
        compose: &dyn Fn(JobReads<'_>, &JobRun) -> Result<JobOutput>,
    ) -> Result<usize>;

    /// When schedule `name` last ran: the occurrence it ran for.
    fn last_run(&self, name: &str) -> Result<Option<Timestamp>>;

    /// Updates and delay notices sent to customers at or after `since`, with their
    /// commitments' rows, subjects and times.
    fn customer_updates_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(StoredCommitment, Timestamp, String)>>;

    /// The owners' own emails that failed for good at or after `since`, oldest first,
    /// with their commitments' rows, failure times, subjects and errors. Nobody else
    /// hears of these failures, so the digest and `status` show them.
    fn owner_mail_failed_since(&self, since: Timestamp) -> Result<Vec<OwnerMailFailed>>;

    /// Every commitment with what the report needs: its first due time and the updates
    /// sent to its customer.
    fn report_rows(&self) -> Result<Vec<ReportRow>>;
}
