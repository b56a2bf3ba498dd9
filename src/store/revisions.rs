//! Revisions: every move of a due time, with the old and new time, the reason and who or
//! what moved it, and every edit, with each field it changed. They are the commitment's
//! history, and they tell the planner how many automatic updates were made and which
//! hand-made delays the customer must hear of (an edit is neither).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::Result;
use crate::commitment::DueMove;
use crate::planner::{FailedEmail, History, Snooze};
use crate::when::parse_stored;

/// What an action was, who took it and how, as every revision records it (schema V10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deed {
    /// `delay`, `edit`, `done`, `cancel`, `snooze`, `hold`, `send_now`, `update`.
    pub action: &'static str,
    /// The address a link was sent to, or the user who ran the command; none for the
    /// daemon.
    pub actor: Option<String>,
    /// `cli`, `web` or `daemon`; none when the caller does not say.
    pub via: Option<&'static str>,
}

impl Deed {
    /// The daemon's automatic customer update.
    pub fn daemon_update() -> Deed {
        Deed {
            action: "update",
            actor: None,
            via: Some("daemon"),
        }
    }
}

/// A move of a due time to record.
#[derive(Debug, Clone)]
pub struct NewRevision {
    /// The commitment.
    pub commitment_id: i64,
    /// The due time before, as stored.
    pub old_due: String,
    /// The due time after, as stored.
    pub new_due: String,
    /// Why, in words for the customer.
    pub reason: Option<String>,
    /// Who or what moved it: `automatic update 1 of 2`, `followup delay`, ...
    pub source: String,
    /// True for the daemon's automatic updates.
    pub automatic: bool,
    /// True if the customer is still to be told (hand-made delays).
    pub notify: bool,
}

/// A field of a commitment that `edit` may correct; each is one column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// `title`.
    Title,
    /// `owner`.
    Owner,
    /// `customer`.
    Customer,
    /// `kind`.
    Kind,
    /// `note`.
    Note,
    /// `external_ref`.
    ExternalRef,
    /// `timezone`.
    Timezone,
    /// `reason`.
    Reason,
    /// `promise`.
    Promise,
}

impl Field {
    /// The column it is stored in (and its name in the revision's JSON).
    pub fn column(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Owner => "owner",
            Field::Customer => "customer",
            Field::Kind => "kind",
            Field::Note => "note",
            Field::ExternalRef => "external_ref",
            Field::Timezone => "timezone",
            Field::Reason => "reason",
            Field::Promise => "promise",
        }
    }
}

/// One field an edit changed, with the stored values before and after (`None`: empty).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Which field.
    pub field: Field,
    /// Before.
    pub old: Option<String>,
    /// After.
    pub new: Option<String>,
}

/// A correction of a commitment's fields to record, already checked by the caller.
#[derive(Debug, Clone)]
pub struct NewEdit {
    /// The commitment.
    pub commitment_id: i64,
    /// What changes; never empty.
    pub changes: Vec<FieldChange>,
    /// The due time to store: the same instant, written anew when the zone changes.
    pub due_at: String,
    /// Who made it: `followup edit`, ...
    pub source: String,
    /// Who took it and how (its action is `edit`).
    pub deed: Deed,
}

/// A recorded revision.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionRecord {
    /// Revision id.
    pub id: i64,
    /// The due time before.
    pub old_due: String,
    /// The due time after.
    pub new_due: String,
    /// Why.
    pub reason: Option<String>,
    /// Who or what moved it.
    pub source: String,
    /// Made by the daemon.
    pub automatic: bool,
    /// The customer is told.
    pub notify: bool,
    /// For an edit, each field it changed; empty for a move of the due time.
    pub changes: Vec<FieldChange>,
    /// When.
    pub created_at: Timestamp,
    /// Why the move was taken back (the customer's update bounced), if it was.
    pub undone: Option<String>,
    /// When it was taken back.
    pub undone_at: Option<Timestamp>,
    /// What it was (`delay`, `done`, `snooze`, ...); none in rows older than schema
    /// version 10, which are moves of the due time or edits.
    pub action: Option<String>,
    /// Who took it: the address a link was sent to, or the user who ran the command.
    pub actor: Option<String>,
    /// How: `cli`, `web` or `daemon`.
    pub via: Option<String>,
    /// The customer update a hold or a send-now is about (`customer_update#N`).
    pub step_key: Option<String>,
    /// The end of a snooze.
    pub until_at: Option<Timestamp>,
}

impl RevisionRecord {
    /// The move of the due time it records, read in `zone` (the commitment's, see
    /// [`Commitment::zone`](crate::commitment::Commitment::zone)).
    pub fn due_move(&self, zone: &TimeZone) -> DueMove {
        let read = |text: &str| parse_stored(text, zone).map_err(|e| e.to_string());
        DueMove {
            revision: self.id,
            from: read(&self.old_due),
            to: read(&self.new_due),
            reason: self.reason.clone(),
            automatic: self.automatic,
        }
    }
}

/// A commitment's revisions and its history.
pub trait Revisions {
    /// Every revision of commitment `id`, oldest first.
    fn revisions_of(&self, id: i64) -> Result<Vec<RevisionRecord>>;

    /// What the planner needs to know of commitment `id`'s past.
    fn history(&self, id: i64) -> Result<History>;
}

/// The planner's history of a commitment, made of what a store read of it: its
/// revisions (oldest first), its failed emails, and its row's `late_from` and
/// `snoozed_until`. The same for every store.
pub(super) fn history_from(
    revisions: Vec<RevisionRecord>,
    failed: Vec<FailedEmail>,
    late_from: Option<Timestamp>,
    snoozed_until: Option<Timestamp>,
) -> History {
    let mut history = History::default();
    let mut snooze_words = None;
    for revision in revisions {
        // An update that bounced is not counted, so the plan's next update is the
        // one whose step failed, and it is not tried again: the next would go to
        // the same address.
        if revision.automatic && revision.undone.is_none() {
            history.auto_updates += 1;
        }
        if revision.notify {
            history.notices.push((revision.id, revision.created_at));
        }
        // The words of an action were written for people when it was taken (in
        // the business's zone): the store has no calendar to write them now.
        match (revision.action.as_deref(), revision.step_key) {
            (Some("hold"), Some(key)) => history.held.push((key, revision.source)),
            (Some("send_now"), Some(key)) => history.send_now.push((key, revision.created_at)),
            (Some("wait"), _) => history.waiting_reason = revision.reason,
            (Some("snooze"), _) => {
                snooze_words = Some((revision.until_at, revision.created_at, revision.source))
            }
            _ => {}
        }
    }
    history.failed = failed;
    history.late_from = late_from;
    // Another program may set `snoozed_until` without a snooze revision to match:
    // the words then say only until when.
    history.snoozed = snoozed_until.map(|until| match snooze_words {
        Some((Some(end), from, words)) if end == until => Snooze { from, until, words },
        // Without its revision the snooze counts from the epoch: every reminder
        // before its end is skipped, and one is planned at its end.
        _ => Snooze {
            from: Timestamp::UNIX_EPOCH,
            until,
            words: format!(
                "snoozed until {}",
                crate::calendar::display_in(&TimeZone::UTC, until)
            ),
        },
    });
    history
}
