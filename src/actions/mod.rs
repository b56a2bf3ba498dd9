//! The verbs a person takes on a commitment: done, cancel, delay, snooze, hold a
//! customer update, send it now, edit. The command line and the web pages are thin
//! callers of these functions, so both check the same things and record the same
//! facts.
//!
//! Each verb takes a `&dyn Store` (the caller opens it, and runs it off the async runtime)
//! and is one [`Store::act`](crate::store::Store#method.act): it looks at the commitment, checks, and hands the store
//! the revision that says what, who and how, written in the store's one transaction,
//! which queues the commitment for planning; it returns what happened ([`Outcome`]) so the
//! caller can say it. Acting twice is harmless: a verb whose effect is already there
//! says when, by whom and how it came about ([`Earlier`]). Nothing here sends mail or
//! plans steps: the daemon does, once it sees the change.

mod close;
mod edit;
mod update;

#[cfg(test)]
mod tests;

use jiff::Timestamp;

pub use close::{close, resume, wait};
pub use edit::{describe, edit, set_reason};
pub use update::{CommitmentState, UpdateStep, hold, send_now, state, viewed};

use crate::calendar::Calendar;
use crate::commitment::{Commitment, Status, StoredCommitment};
use crate::config::Config;
use crate::store::{
    Act, Applied, Deed, Effect, Facts, NewAction, NewRevision, RevisionRecord, Store, StoreError,
    Write,
};
use crate::when::format_stored;

/// How an action reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A `followup` command.
    Cli,
    /// A page reached through a link in an email.
    Web,
}

impl Via {
    /// The word stored in `revisions.via`.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Cli => "cli",
            Via::Web => "web",
        }
    }
}

/// How, in words for people, from the stored word (`web`: `by email link`).
pub fn how(via: &str) -> String {
    match via {
        "cli" => "by command".to_string(),
        "web" => "by email link".to_string(),
        "daemon" => "automatically".to_string(),
        other => format!("by {other}"),
    }
}

/// Who takes an action and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The address a link was sent to (lowercased), or the user who ran the command.
    pub who: String,
    /// How.
    pub via: Via,
}

impl Actor {
    fn deed(&self, action: &'static str) -> Deed {
        Deed {
            action,
            actor: Some(self.who.clone()),
            via: Some(self.via.as_str()),
        }
    }

    /// `ana@example.com (by email link)`.
    fn words(&self) -> String {
        format!("{} ({})", self.who, how(self.via.as_str()))
    }
}

/// The person running a command: `$SUDO_USER` (who became root to run it), else
/// `$USER`, else the name of the process's user, else its uid.
pub fn cli_actor() -> Actor {
    let from_env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let who = from_env("SUDO_USER")
        .or_else(|| from_env("USER"))
        .unwrap_or_else(|| {
            let uid = nix::unistd::getuid();
            match nix::unistd::User::from_uid(uid) {
                Ok(Some(user)) => user.name,
                _ => format!("uid {uid}"),
            }
        });
    Actor { who, via: Via::Cli }
}

/// What an action did, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It was taken.
    Acted(Acted),
    /// Its effect was already there: nothing changed.
    Already(Earlier),
}

/// An action taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acted {
    /// The commitment.
    pub id: i64,
    /// The revision that records it.
    pub revision: i64,
    /// What happened, one sentence a line, for the person who acted.
    pub said: Vec<String>,
}

/// What makes an action moot: the earlier action or event that already had its effect
/// ("already marked done on Tue 1 Dec 15:02 by ana@example.com (by email link)").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Earlier {
    /// What it was: `done`, `cancel`, `hold`, `send_now`, or for an update that went its
    /// own way `sent`, `skipped`, `failed`.
    pub action: String,
    /// When, if known (a row another program cancelled says no time).
    pub at: Option<Timestamp>,
    /// Who, if a person.
    pub who: Option<String>,
    /// How, as stored (`cli`, `web`, `daemon`).
    pub via: Option<String>,
    /// What more there is to say: a hold's reason, why an update was skipped.
    pub detail: Option<String>,
}

impl Earlier {
    fn from_revision(revision: &RevisionRecord) -> Earlier {
        Earlier {
            action: revision.action.clone().unwrap_or_default(),
            at: Some(revision.created_at),
            who: revision.actor.clone(),
            via: revision.via.clone(),
            detail: revision.reason.clone(),
        }
    }

    /// The sentence for people, with times as `calendar` shows them.
    pub fn describe(&self, calendar: &Calendar) -> String {
        let mut detail = self.detail.as_deref().filter(|d| !d.trim().is_empty());
        let (what, since) = match self.action.as_str() {
            "done" => ("marked done".to_string(), false),
            "cancel" => ("cancelled".to_string(), false),
            "hold" => ("held".to_string(), false),
            "send_now" => ("asked to be sent now".to_string(), false),
            // The outcome belongs to the verb: `closed won`.
            "close" => (
                format!("closed {}", detail.take().unwrap_or_default()),
                false,
            ),
            "wait" => ("waiting on the customer".to_string(), true),
            "resume" => ("resumed".to_string(), false),
            other => (other.to_string(), false),
        };
        let mut text = format!("already {}", what.trim_end());
        if let Some(at) = self.at {
            let word = if since { "since" } else { "on" };
            text.push_str(&format!(" {word} {}", calendar.display(at)));
        }
        if let Some(who) = &self.who {
            text.push_str(&format!(" by {who}"));
        }
        if let Some(via) = &self.via {
            text.push_str(&format!(" ({})", how(via)));
        }
        if let Some(detail) = detail {
            text.push_str(&format!(": {detail}"));
        }
        text
    }
}

/// Why an action could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No commitment has this id.
    #[error("no commitment with id {0}")]
    NotFound(i64),
    /// The action needs an open commitment (delaying a done one).
    #[error("commitment {id} is {status}; only open commitments can be {action}")]
    NotOpen {
        /// The commitment.
        id: i64,
        /// Its status.
        status: Status,
        /// What was asked, as a past participle: `delayed`, `snoozed`.
        action: &'static str,
    },
    /// A value given is wrong: `until Tue 1 Dec 2026 15:02 CET has already passed`.
    #[error("{field} {problem}")]
    Field {
        /// The field (the form's, and the command's flag without its dashes).
        field: &'static str,
        /// What is wrong with it, following the field's name.
        problem: String,
    },
    /// The commitment cannot take this action as it is (its row has problems, an
    /// edit would leave it without a rule).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> ActionError {
        match e {
            StoreError::NotFound(id) => ActionError::NotFound(id),
            other => ActionError::Store(other),
        }
    }
}

/// Result of an action.
pub type Result<T, E = ActionError> = std::result::Result<T, E>;

/// What a verb decided, with what to say when it is taken.
enum Decided {
    /// Its effect is already there.
    Already(Earlier),
    /// It writes these records and says this, one sentence a line.
    Acted {
        writes: Vec<Write>,
        said: Vec<String>,
    },
}

/// Takes a verb on commitment `id` in one store operation: `decide` looks at the
/// commitment and says what to write; the store writes it, or nothing if `decide` fails.
fn act(
    store: &dyn Store,
    id: i64,
    now: Timestamp,
    mut decide: impl FnMut(&dyn Facts) -> Result<Decided>,
) -> Result<Outcome> {
    let mut said = Vec::new();
    let applied = store.act::<ActionError>(id, now, &mut |facts| {
        Ok(match decide(facts)? {
            Decided::Already(earlier) => Act::Already(earlier),
            Decided::Acted {
                writes,
                said: words,
            } => {
                said = words;
                Act::Write(writes)
            }
        })
    })?;
    match applied {
        Applied::Already(earlier) => Ok(Outcome::Already(earlier)),
        Applied::Wrote(revisions) => match revisions.last() {
            Some(&revision) => Ok(Outcome::Acted(Acted { id, revision, said })),
            None => Err(ActionError::Invalid(format!(
                "commitment {id}: the action recorded nothing"
            ))),
        },
    }
}

/// The commitment of `row`, if its values can be read.
fn check(row: &StoredCommitment, config: &Config) -> Result<Commitment> {
    row.check(config.calendar.zone()).map_err(|problems| {
        ActionError::Invalid(format!(
            "commitment {} has problems: {}",
            row.id,
            problems.join("; ")
        ))
    })
}

/// The status of a row, if it can be read.
fn status_of(row: &StoredCommitment) -> Option<Status> {
    row.status
        .as_deref()
        .map_or(Some(Status::Open), |s| s.parse().ok())
}

/// What closed the commitment (status `status`): the last revision that set that
/// status, else the row itself (closed before schema version 10, or by another
/// program), which knows no one and, for a cancel, no time.
fn closed_by(facts: &dyn Facts, status: Status) -> Result<Earlier> {
    let action = match status {
        Status::Done => "done",
        _ => "cancel",
    };
    let revisions = facts.revisions()?;
    if let Some(revision) = revisions
        .iter()
        .rev()
        .find(|r| r.action.as_deref() == Some(action))
    {
        return Ok(Earlier::from_revision(revision));
    }
    let at = match status {
        Status::Done => facts
            .commitment()
            .done_at
            .as_deref()
            .and_then(|t| t.parse().ok()),
        _ => None,
    };
    Ok(Earlier {
        action: action.to_string(),
        at,
        who: None,
        via: None,
        detail: None,
    })
}

/// Marks commitment `id` done: later reminders stop, and the check-in follows if the
/// rule has one. Already done or cancelled: says by whom.
pub fn done(
    store: &dyn Store,
    config: &Config,
    id: i64,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    finish(store, config, id, Status::Done, actor, now)
}

/// Cancels commitment `id`: every later step stops. Already done or cancelled: says
/// by whom.
pub fn cancel(
    store: &dyn Store,
    config: &Config,
    id: i64,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    finish(store, config, id, Status::Cancelled, actor, now)
}

/// A closed commitment stays closed: a stale Done link must not undo a cancel, nor a
/// Cancel link a done. A row whose status cannot be read is closed as asked.
fn finish(
    store: &dyn Store,
    _config: &Config,
    id: i64,
    status: Status,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    act(store, id, now, |facts| {
        if let Some(closed @ (Status::Done | Status::Cancelled)) = status_of(facts.commitment()) {
            return Ok(Decided::Already(closed_by(facts, closed)?));
        }
        let (action, words) = match status {
            Status::Done => ("done", "marked done"),
            _ => ("cancel", "cancelled"),
        };
        Ok(Decided::Acted {
            writes: vec![Write::Action(NewAction {
                commitment_id: id,
                deed: actor.deed(action),
                words: format!("{words} by {}", actor.words()),
                reason: None,
                step_key: None,
                effect: Effect::Status(status),
            })],
            said: vec![format!(
                "commitment {id} is {status}; its remaining reminders are cancelled"
            )],
        })
    })
}

/// The commitment `facts` are about, checked and open, for the verbs that change what
/// happens next.
fn open_one(
    facts: &dyn Facts,
    config: &Config,
    id: i64,
    action: &'static str,
) -> Result<Commitment> {
    let commitment = check(facts.commitment(), config)?;
    if commitment.status != Status::Open {
        return Err(ActionError::NotOpen {
            id,
            status: commitment.status,
            action,
        });
    }
    Ok(commitment)
}

/// `reason` without the spaces around it, or the error saying it is empty and `hint`
/// (`is empty: say why, in words for the customer`).
fn given_reason<'a>(reason: &'a str, hint: &str) -> Result<&'a str> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ActionError::Field {
            field: "reason",
            problem: hint.to_string(),
        });
    }
    Ok(reason)
}

/// `until Tue 1 Dec 2026 15:02 CET has already passed`, for a time that must lie ahead.
fn ahead(field: &'static str, at: Timestamp, now: Timestamp, calendar: &Calendar) -> Result<()> {
    if at <= now {
        return Err(ActionError::Field {
            field,
            problem: format!("{} has already passed", calendar.display(at)),
        });
    }
    Ok(())
}

/// Moves the due time of commitment `id` to `until`, records why (`reason`, in words
/// for the customer) and, if `notify`, has the daemon tell the customer now or when
/// business hours open.
#[allow(clippy::too_many_arguments)]
pub fn delay(
    store: &dyn Store,
    config: &Config,
    id: i64,
    until: Timestamp,
    reason: &str,
    notify: bool,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let reason = given_reason(reason, "is empty: say why, in words for the customer")?;
    let cal = &config.calendar;
    act(store, id, now, |facts| {
        let commitment = open_one(facts, config, id, "delayed")?;
        ahead("until", until, now, cal)?;
        let zone = commitment.zone(cal.zone()).clone();
        let revision = NewRevision {
            commitment_id: id,
            old_due: facts.commitment().due_at.clone().unwrap_or_default(),
            new_due: format_stored(until, &zone),
            reason: Some(reason.to_string()),
            source: match actor.via {
                Via::Cli => "followup delay".to_string(),
                Via::Web => format!("delay by {}", actor.words()),
            },
            automatic: false,
            notify,
        };
        let mut said = vec![format!("commitment {id} is now due {}", cal.display(until))];
        said.push(if !notify {
            "the customer is not told".to_string()
        } else {
            let opens = cal.next_open_in(now, &zone);
            if opens <= now {
                "the customer is told now".to_string()
            } else {
                format!(
                    "the customer is told when business hours open: {}",
                    crate::calendar::display_in(&zone, opens)
                )
            }
        });
        Ok(Decided::Acted {
            writes: vec![Write::ReviseDue(revision, actor.deed("delay"))],
            said,
        })
    })
}

/// Stops the owner's reminders of commitment `id` until `until`; the due time and what
/// the customer hears do not change. A later snooze replaces an earlier one.
pub fn snooze(
    store: &dyn Store,
    config: &Config,
    id: i64,
    until: Timestamp,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let cal = &config.calendar;
    act(store, id, now, |facts| {
        open_one(facts, config, id, "snoozed")?;
        ahead("until", until, now, cal)?;
        let shown = cal.display(until);
        Ok(Decided::Acted {
            writes: vec![Write::Action(NewAction {
                commitment_id: id,
                deed: actor.deed("snooze"),
                words: format!("snoozed until {shown} by {}", actor.words()),
                reason: None,
                step_key: None,
                effect: Effect::Snooze(until),
            })],
            said: vec![format!(
                "commitment {id}: reminders are snoozed until {shown}; the due time and the \
                 customer's updates do not change"
            )],
        })
    })
}
