//! Revisions: every move of a due time, with the old and new time, the reason and who or
//! what moved it, and every edit, with each field it changed. They are the commitment's
//! history, and they tell the planner how many automatic updates were made and which
//! hand-made delays the customer must hear of (an edit is neither).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::Result;
use crate::commitment::DueMove;
use crate::planner::History;
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
