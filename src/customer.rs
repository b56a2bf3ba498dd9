//! A customer's profile: who they are, since when they are a customer, how the
//! promises made to them went, what is open now, and every email they were sent.
//!
//! A customer has no row of its own: the profile is gathered from the commitments
//! made to one address (any case), so a row another program writes counts at once.
//! Pure but for [`History::read`] and [`standing_of`]: the caller passes the facts
//! and the moment.
//!
//! How a promise went (also in the README), each commitment in exactly one way:
//!
//! - **kept on time**: done no later than the time first promised;
//! - **kept after notice**: done later, but the customer was sent a delay notice or an
//!   automatic update no later than the time first promised;
//! - **missed**: done later with no such notice, or still open past its due time;
//! - **open**: still open, and not past its due time (or waiting on the customer);
//! - **cancelled**: withdrawn; it counts in no percentage.
//!
//! A closed commitment (`followup close`) is done, so it counts as kept. The
//! percentages are of those kept on time, after notice, or missed.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use jiff::tz::TimeZone;

use crate::commitment::{Commitment, Status, parse_mailbox};
use crate::jobs::report::Fact;
use crate::store::{DeliveryRecord, ReportRow, Store, StoreError};

/// How long back `missed_recent` looks: promises missed in the last 90 days.
pub const RECENT: SignedDuration = SignedDuration::from_hours(90 * 24);

/// How one promise went, as seen at a moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kept {
    /// Done no later than first promised.
    OnTime,
    /// Done later, the customer told before the time first promised.
    AfterNotice,
    /// Done later with no notice in time, or open past its due time.
    Missed,
    /// Open, not past due (or waiting on the customer).
    Open,
    /// Withdrawn.
    Cancelled,
}

impl Kept {
    /// How `fact` stands at `now`.
    pub fn of(fact: &Fact, now: Timestamp) -> Kept {
        let c = &fact.commitment;
        let told_in_time = || fact.updates_sent.iter().any(|at| *at <= fact.first_due);
        match c.status {
            Status::Cancelled => Kept::Cancelled,
            Status::Done => match c.done_at.unwrap_or(c.due_at) {
                done if done <= fact.first_due => Kept::OnTime,
                _ if told_in_time() => Kept::AfterNotice,
                _ => Kept::Missed,
            },
            // Waiting on the customer pauses the clock: not missed while it waits.
            Status::Open if c.waiting_since.is_none() && c.due_at < now => Kept::Missed,
            Status::Open => Kept::Open,
        }
    }

    /// In words, for people.
    pub fn as_str(self) -> &'static str {
        match self {
            Kept::OnTime => "kept on time",
            Kept::AfterNotice => "kept after notice",
            Kept::Missed => "missed",
            Kept::Open => "open",
            Kept::Cancelled => "cancelled",
        }
    }
}

/// A note about the customer, not about one commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// What was noted.
    pub body: String,
    /// Who wrote it, if known.
    pub actor: Option<String>,
    /// How: `cli`, `web`.
    pub via: Option<String>,
    /// When.
    pub created_at: Timestamp,
}

/// One commitment in the profile.
#[derive(Clone, Debug, Serialize)]
pub struct Promise {
    /// Its id.
    pub id: i64,
    /// The internal title.
    pub title: String,
    /// What the customer was promised, if said.
    pub promise: Option<String>,
    /// open, done or cancelled.
    pub status: Status,
    /// How it ended once closed (`won`, `lost`, ...).
    pub outcome: Option<String>,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// The time first promised.
    pub first_due: Timestamp,
    /// The due time now.
    pub due_at: Timestamp,
    /// When it was done, if it was.
    pub done_at: Option<Timestamp>,
    /// How it went.
    pub kept: Kept,
}

/// The shares of the settled promises (kept on time, after notice, missed), in
/// percent rounded; `None` while none is settled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Shares {
    /// How many were kept on time.
    pub on_time: u32,
    /// How many were kept after notice.
    pub after_notice: u32,
    /// How many were missed.
    pub missed: u32,
    /// Percent kept on time.
    pub on_time_percent: Option<u32>,
    /// Percent kept after notice.
    pub after_notice_percent: Option<u32>,
    /// Percent missed.
    pub missed_percent: Option<u32>,
    /// Percent kept, on time or after notice.
    pub kept_percent: Option<u32>,
}

impl Shares {
    fn of(promises: &[Promise]) -> Shares {
        let count = |k| promises.iter().filter(|p| p.kept == k).count() as u32;
        let (on_time, after_notice, missed) = (
            count(Kept::OnTime),
            count(Kept::AfterNotice),
            count(Kept::Missed),
        );
        let settled = on_time + after_notice + missed;
        let percent = |n: u32| (settled > 0).then(|| (n * 100 + settled / 2) / settled);
        Shares {
            on_time,
            after_notice,
            missed,
            on_time_percent: percent(on_time),
            after_notice_percent: percent(after_notice),
            missed_percent: percent(missed),
            kept_percent: percent(on_time + after_notice),
        }
    }
}

/// What the store holds about one customer.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// The customer's address, in lower case.
    pub address: String,
    /// Their commitments that check, oldest first.
    pub facts: Vec<Fact>,
    /// Their rows that do not check: id and the problems.
    pub unreadable: Vec<(i64, String)>,
    /// Notes about them, oldest first.
    pub notes: Vec<Note>,
    /// Every email to their address, oldest first.
    pub emails: Vec<DeliveryRecord>,
}

impl History {
    /// Reads what the store holds about the customer with address `address` (any
    /// case); local times of rows without a zone are read in `zone`. The emails only
    /// `with_emails`: an email's template needs none of them. With [`standing_of`],
    /// the part of this module that does I/O.
    pub fn read(
        store: &dyn Store,
        address: &str,
        zone: &TimeZone,
        with_emails: bool,
    ) -> Result<History, StoreError> {
        let records = store.customer_records(address, with_emails)?;
        let mut history = History::from_rows(address, records.rows, zone);
        history.notes = records.notes;
        history.emails = records.emails;
        Ok(history)
    }

    /// The history made of the customer's rows (from [`Store::customer_rows`](crate::store::Customers::customer_rows)), without
    /// notes or emails.
    pub fn from_rows(
        address: &str,
        rows: impl IntoIterator<Item = ReportRow>,
        zone: &TimeZone,
    ) -> History {
        let mut history = History {
            address: address.trim().to_lowercase(),
            ..History::default()
        };
        for row in rows {
            let id = row.row.id;
            // The query's LIKE takes `_` for any character: keep this address only.
            let theirs = row
                .row
                .customer
                .as_deref()
                .and_then(|c| parse_mailbox(c).ok());
            let same = |m: &lettre::message::Mailbox| {
                m.email.to_string().to_lowercase() == history.address
            };
            if !theirs.as_ref().is_some_and(same) {
                continue;
            }
            match crate::scheduler::jobs::fact(row, zone) {
                Ok(fact) => history.facts.push(fact),
                Err(problems) => history.unreadable.push((id, problems.join("; "))),
            }
        }
        history
    }
}

/// What an email about `commitment` says of its customer at `now` (see
/// [`Standing::from_rows`]), read from the store.
pub fn standing_of(
    store: &dyn Store,
    commitment: &Commitment,
    zone: &TimeZone,
    now: Timestamp,
) -> Result<Standing, StoreError> {
    let rows = store.customer_rows(commitment.customer.email.as_ref())?;
    Ok(Standing::from_rows(commitment, rows, zone, now))
}

/// The customer's profile, as `followup customer` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// Their address, in lower case.
    pub address: String,
    /// Their name, from their latest commitment that gives one.
    pub name: Option<String>,
    /// Their zone, from their latest commitment that gives one.
    pub timezone: Option<String>,
    /// When their first commitment was recorded.
    pub since: Option<Timestamp>,
    /// Notes about them.
    pub notes: Vec<Note>,
    /// Every commitment, oldest first.
    pub commitments: Vec<Promise>,
    /// Rows that could not be read, with why.
    pub unreadable: Vec<(i64, String)>,
    /// How the promises went.
    pub kept: Shares,
    /// How many are open now.
    pub open: u32,
    /// When the last email to them was sent.
    pub last_contact: Option<Timestamp>,
    /// Every email to their address.
    pub emails: Vec<DeliveryRecord>,
}

impl Profile {
    /// The profile made of `history`, as it stands at `now`.
    pub fn new(history: History, now: Timestamp) -> Profile {
        let latest =
            |get: &dyn Fn(&Fact) -> Option<String>| history.facts.iter().rev().find_map(get);
        let name = latest(&|f| f.commitment.customer.name.clone());
        let timezone = latest(&|f| {
            let zone = f.commitment.timezone.as_ref()?;
            zone.iana_name().map(str::to_string)
        });
        let commitments: Vec<Promise> = history
            .facts
            .iter()
            .map(|f| {
                let c = &f.commitment;
                Promise {
                    id: c.id,
                    title: c.title.clone(),
                    promise: c.promise.clone(),
                    status: c.status,
                    outcome: c.outcome.map(|o| o.to_string()),
                    created_at: c.created_at,
                    first_due: f.first_due,
                    due_at: c.due_at,
                    done_at: c.done_at,
                    kept: Kept::of(f, now),
                }
            })
            .collect();
        let last_contact = history
            .emails
            .iter()
            .filter(|e| e.state == "sent")
            .filter_map(|e| e.sent_at)
            .max();
        Profile {
            since: commitments.iter().map(|p| p.created_at).min(),
            kept: Shares::of(&commitments),
            open: commitments
                .iter()
                .filter(|p| p.status == Status::Open)
                .count() as u32,
            address: history.address,
            name,
            timezone,
            notes: history.notes,
            commitments,
            unreadable: history.unreadable,
            last_contact,
            emails: history.emails,
        }
    }

    /// What an email about commitment `about` says of the customer at `now`: the
    /// other promises open, and those missed in the last [`RECENT`].
    pub fn standing(&self, about: i64, now: Timestamp) -> Standing {
        let others = || self.commitments.iter().filter(move |p| p.id != about);
        let recent = now.checked_sub(RECENT).unwrap_or(Timestamp::MIN);
        Standing {
            since: self.since,
            kept_percent: self.kept.kept_percent,
            open_promises: others()
                .filter(|p| p.status == Status::Open)
                .cloned()
                .collect(),
            missed_recent: others()
                .filter(|p| p.kept == Kept::Missed && p.first_due >= recent)
                .cloned()
                .collect(),
        }
    }
}

/// The customer as one email sees them (`customer.*` in templates).
#[derive(Clone, Debug, Default)]
pub struct Standing {
    /// When their first commitment was recorded.
    pub since: Option<Timestamp>,
    /// Percent of their settled promises kept (on time or after notice).
    pub kept_percent: Option<u32>,
    /// Their open promises besides the one the email is about.
    pub open_promises: Vec<Promise>,
    /// Their promises missed in the last [`RECENT`], besides that one.
    pub missed_recent: Vec<Promise>,
}

impl Standing {
    /// What an email about `commitment` says of its customer at `now`, from the
    /// customer's rows ([`Store::customer_rows`](crate::store::Customers::customer_rows)); `zone` as for [`History::read`].
    pub fn from_rows(
        commitment: &Commitment,
        rows: impl IntoIterator<Item = ReportRow>,
        zone: &TimeZone,
        now: Timestamp,
    ) -> Standing {
        let history = History::from_rows(commitment.customer.email.as_ref(), rows, zone);
        Profile::new(history, now).standing(commitment.id, now)
    }
}

#[cfg(test)]
mod tests;
