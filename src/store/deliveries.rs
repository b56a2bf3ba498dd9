//! Deliveries: the outbox. A due step's emails are written here, fully rendered, before
//! any SMTP traffic; the sender records each outcome after the server answered. A crash
//! between the two repeats only the emails that were in flight.

mod records;

pub use records::DeliveryRecords;

use jiff::Timestamp;
use serde::Serialize;

use super::Result;

/// One email to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// What it belongs to.
    pub origin: Origin,
    /// owner, customer, team, digest, report, ...
    pub audience: String,
    /// Envelope sender address.
    pub sender: String,
    /// Envelope recipient address.
    pub recipient: String,
    /// Subject, for `show`.
    pub subject: String,
    /// Message-ID, unique.
    pub message_id: String,
    /// The whole message.
    pub message: Vec<u8>,
}

/// What an email belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A step of a commitment.
    Step {
        /// The step.
        step_id: i64,
        /// Its commitment.
        commitment_id: i64,
    },
    /// A run of a calendar job (digest, report).
    Job {
        /// The run.
        run_id: i64,
    },
}

/// An outbox entry ready for an attempt.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    /// Delivery id.
    pub id: i64,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipient.
    pub recipient: String,
    /// The whole message.
    pub message: Vec<u8>,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it entered the outbox.
    pub created_at: Timestamp,
}

/// What became of an attempt (or of the transport), as the sender records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The server accepted delivery `id` at `at`.
    Sent {
        /// Delivery id.
        id: i64,
        /// When.
        at: Timestamp,
    },
    /// The attempt failed; try again at `retry_at`.
    Retry {
        /// Delivery id.
        id: i64,
        /// Why it failed.
        error: String,
        /// The next attempt.
        retry_at: Timestamp,
    },
    /// Delivery `id` failed for good at `at`.
    Failed {
        /// Delivery id.
        id: i64,
        /// Why.
        error: String,
        /// When.
        at: Timestamp,
    },
    /// Plan the commitment of delivery `delivery` again (as of `at`): it failed for
    /// good, and the owner's notice of it is planned with the rest.
    PlanAgain {
        /// Delivery id.
        delivery: i64,
        /// When.
        at: Timestamp,
    },
    /// The transport is down: every pending delivery due before `until` waits until
    /// then, with `why` as its last error.
    HoldAll {
        /// The next attempt.
        until: Timestamp,
        /// Why they wait.
        why: String,
    },
    /// The transport works again: every delivery waiting for a retry is due at `now`.
    ReleaseAll {
        /// Now.
        now: Timestamp,
    },
}

/// What writing a group of outcomes did besides recording them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Deliveries [`DeliveryOutcome::ReleaseAll`] made due (the transport is back).
    pub released: usize,
    /// Emails that waited for one that was sent, now due.
    pub followers: usize,
}

/// A delivery as `show` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRecord {
    /// Delivery id.
    pub id: i64,
    /// Step id, for an email of a commitment's step.
    pub step_id: Option<i64>,
    /// Audience.
    pub audience: String,
    /// Recipient address.
    pub recipient: String,
    /// Subject.
    pub subject: String,
    /// Message-ID.
    pub message_id: String,
    /// pending, waiting (for the other emails of its step), sent, failed, skipped.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// When it entered the outbox.
    pub created_at: Timestamp,
    /// When the server accepted it.
    pub sent_at: Option<Timestamp>,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Timestamp,
    /// How often a daemon that held it, sending, was taken over: each time it may
    /// have reached the server already, so a sent email with this above 0 may have
    /// gone twice (with one Message-ID). Only a store that several daemons share
    /// counts it; after a crash of SQLite's one daemon it stays 0.
    pub taken_over: u32,
}

/// The mail threads of one commitment: what its next emails' Message-IDs build on.
#[derive(Clone, Debug, Default)]
pub struct Threads {
    /// The store's id ([`Store::id`](crate::store::Store::id)), which every Message-ID carries.
    pub store_id: String,
    /// For each audience that has had an email about the commitment, that first
    /// email's Message-ID: the thread's root, which later emails refer to. Read back
    /// rather than made again, so a thread begun before the store had an id goes on.
    pub roots: Vec<(String, String)>,
}

/// The outbox as the daemon's start and its planning task see it.
pub trait Deliveries {
    /// Takes back every email composed ahead of its time and never tried, whether its
    /// time has come or not; for the start, before the sender reads anything. The steps
    /// are planned again, so one whose time passed while the daemon was down goes
    /// through its rule's `catch_up` like any other. Returns how many steps. One
    /// transaction of its own.
    fn withdraw_all_ahead(&self, now: Timestamp) -> Result<usize>;

    /// True if a pending email is due at `now`: the sender has work, whoever wrote it.
    fn mail_due(&self, now: Timestamp) -> Result<bool>;
}
