//! The end of a commitment after the work (close it with how it ended) and the pause
//! while the business waits on the customer (wait, resume).

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::{
    ActionError, Actor, Decided, Earlier, Outcome, Result, act, given_reason, open_one, status_of,
};
use crate::calendar::{Calendar, humanize};
use crate::commitment::{Outcome as Ending, Status};
use crate::config::Config;
use crate::rule::{Rule, rule_for};
use crate::store::{Effect, Facts, NewAction, NewRevision, Store, Write};
use crate::when::format_stored;

/// Closes commitment `id` with how it ended: marked done first if it is still open,
/// then its follow-ups after the work stop. Already closed: says how, when and by whom;
/// a cancelled commitment cannot be closed.
pub fn close(
    store: &dyn Store,
    _config: &Config,
    id: i64,
    ending: Ending,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    act(store, id, now, |facts| {
        if let Some(earlier) = closed_with(facts)? {
            return Ok(Decided::Already(earlier));
        }
        let mut writes = Vec::new();
        let mut said = Vec::new();
        match status_of(facts.commitment()) {
            Some(Status::Cancelled) => {
                return Err(ActionError::Invalid(format!(
                    "commitment {id} is cancelled; only open or done commitments can be closed"
                )));
            }
            Some(Status::Done) => {}
            _ => {
                writes.push(Write::Action(NewAction {
                    commitment_id: id,
                    deed: actor.deed("done"),
                    words: format!("marked done by {} to close it", actor.words()),
                    reason: None,
                    step_key: None,
                    effect: Effect::Status(Status::Done),
                }));
                said.push(format!("commitment {id} is done"));
            }
        }
        writes.push(Write::Action(NewAction {
            commitment_id: id,
            deed: actor.deed("close"),
            words: format!("closed {ending} by {}", actor.words()),
            reason: Some(ending.as_str().to_string()),
            step_key: None,
            effect: Effect::Close(ending, now),
        }));
        said.push(format!(
            "commitment {id} is closed {ending}; its follow-ups after the work stop"
        ));
        Ok(Decided::Acted { writes, said })
    })
}

/// What closed the commitment if it has an outcome: its last `close` revision, else
/// the row itself (closed by another program).
pub(super) fn closed_with(facts: &dyn Facts) -> Result<Option<Earlier>> {
    let row = facts.commitment();
    let Some(outcome) = row.outcome.as_deref().filter(|o| !o.trim().is_empty()) else {
        return Ok(None);
    };
    let last = facts
        .revisions()?
        .into_iter()
        .rev()
        .find(|r| r.action.as_deref() == Some("close"));
    Ok(Some(match last {
        Some(revision) => Earlier {
            detail: Some(outcome.to_string()),
            ..Earlier::from_revision(&revision)
        },
        None => Earlier {
            action: "close".to_string(),
            at: row.closed_at.as_deref().and_then(|t| t.parse().ok()),
            who: None,
            via: None,
            detail: Some(outcome.to_string()),
        },
    }))
}

/// Pauses the clock of commitment `id` while the business waits on the customer
/// (`reason`: what for): its reminders, updates, alerts and escalations are not
/// planned until [`resume`]. Already waiting: says since when and why.
pub fn wait(
    store: &dyn Store,
    config: &Config,
    id: i64,
    reason: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let reason = given_reason(
        reason,
        "is empty: say what the customer is to send or answer",
    )?;
    act(store, id, now, |facts| {
        let commitment = open_one(facts, config, id, "paused")?;
        if let Some(since) = commitment.waiting_since {
            return Ok(Decided::Already(waiting(facts, since)?));
        }
        Ok(Decided::Acted {
            writes: vec![Write::Action(NewAction {
                commitment_id: id,
                deed: actor.deed("wait"),
                words: format!("waiting on the customer, by {}", actor.words()),
                reason: Some(reason.to_string()),
                step_key: None,
                effect: Effect::Wait(now),
            })],
            said: vec![format!(
                "commitment {id} waits on the customer ({reason}): its reminders, updates, \
                 alerts and escalations are paused until `followup resume {id}`"
            )],
        })
    })
}

/// The wait that the commitment is in since `since`: its last `wait` revision, else
/// the row alone (set by another program).
pub(super) fn waiting(facts: &dyn Facts, since: Timestamp) -> Result<Earlier> {
    let last = facts
        .revisions()?
        .into_iter()
        .rev()
        .find(|r| r.action.as_deref() == Some("wait"));
    Ok(match last {
        Some(revision) => Earlier {
            at: Some(since),
            ..Earlier::from_revision(&revision)
        },
        None => Earlier {
            action: "wait".to_string(),
            at: Some(since),
            who: None,
            via: None,
            detail: None,
        },
    })
}

/// Restarts the clock of commitment `id`: the due time moves by the time spent
/// waiting (business time when the rule's `due_in` is, else plain time), recorded as
/// a revision the customer is not told of (they were the ones waited on). Not waiting:
/// says when it last resumed.
pub fn resume(
    store: &dyn Store,
    config: &Config,
    id: i64,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let cal = &config.calendar;
    act(store, id, now, |facts| {
        let commitment = open_one(facts, config, id, "resumed")?;
        let Some(since) = commitment.waiting_since else {
            let last = facts
                .revisions()?
                .into_iter()
                .rev()
                .find(|r| r.action.as_deref() == Some("resume"));
            return match last {
                Some(revision) => Ok(Decided::Already(Earlier::from_revision(&revision))),
                None => Err(ActionError::Invalid(format!(
                    "commitment {id} is not waiting on the customer (`followup wait {id} \
                     --reason ...` pauses it)"
                ))),
            };
        };
        let zone = commitment.zone(cal.zone()).clone();
        let rule = rule_for(&config.rules, &commitment);
        let new_due = moved_due(cal, &zone, commitment.due_at, since, now, rule);
        let waited = humanize(since, now.max(since));
        let revision = NewRevision {
            commitment_id: id,
            old_due: facts.commitment().due_at.clone().unwrap_or_default(),
            new_due: format_stored(new_due, &zone),
            reason: None,
            source: format!(
                "resumed by {} after waiting {waited} since {}",
                actor.words(),
                cal.display(since)
            ),
            automatic: false,
            notify: false,
        };
        Ok(Decided::Acted {
            writes: vec![Write::Resume(revision, actor.deed("resume"))],
            said: vec![
                format!("commitment {id} resumed after waiting {waited}"),
                format!(
                    "commitment {id} is now due {}; the customer is not told",
                    cal.display(new_due)
                ),
            ],
        })
    })
}

/// `due` moved by the time between `since` and `now`: when the rule's `due_in` is
/// business time, the open time that passed (business hours read in `zone`) added as
/// open time from `due`; otherwise the plain time.
fn moved_due(
    cal: &Calendar,
    zone: &TimeZone,
    due: Timestamp,
    since: Timestamp,
    now: Timestamp,
    rule: Option<&Rule>,
) -> Timestamp {
    if rule
        .and_then(|r| r.due_in.as_ref())
        .is_some_and(|due_in| due_in.is_business())
    {
        let waited = cal.business_time_between(since, now, zone);
        return cal.add_business_time_in(due, waited, zone).unwrap_or(due);
    }
    let waited = since.duration_until(now).max(SignedDuration::ZERO);
    due.checked_add(waited).unwrap_or(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::Via;
    use crate::store::prelude::*;
    use crate::store::{NewCommitment, SqliteStore};

    /// A store with one commitment due Thu 3 Dec 2026 12:00 UTC under a rule whose
    /// `due_in` is `due_in`, and a Mon-Fri 09:00-17:00 UTC calendar.
    fn fixture(due_in: &str) -> (tempfile::TempDir, SqliteStore, Config, i64) {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(
            config_dir.join("rules.toml"),
            format!(
                "[calendar]\ntimezone = \"UTC\"\n\n[[rule]]\nname = \"callbacks\"\n\
                 due_in = \"{due_in}\"\nremind = [\"-1h\"]\n"
            ),
        )
        .unwrap();
        let config = crate::config::load(&config_dir, false).unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let id = store
            .insert_commitment(&NewCommitment::sample("2026-12-03T12:00:00Z"))
            .unwrap();
        (dir, store, config, id)
    }

    fn ana() -> Actor {
        Actor {
            who: "ana".into(),
            via: Via::Cli,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Waits from Tue 1 Dec 15:00 to Wed 2 Dec 11:00 (20 hours, of which 4 open) and
    /// returns the due time after resuming.
    fn due_after_waiting(due_in: &str) -> Timestamp {
        let (_dir, store, config, id) = fixture(due_in);
        let since = at("2026-12-01T15:00:00Z");
        wait(&store, &config, id, "photos", &ana(), since).unwrap();
        resume(&store, &config, id, &ana(), at("2026-12-02T11:00:00Z")).unwrap();
        let row = store.commitment(id).unwrap();
        assert_eq!(row.waiting_since, None);
        row.check(config.calendar.zone()).unwrap().due_at
    }

    #[test]
    fn resume_moves_a_business_due_time_by_the_open_time_waited() {
        // 2 h on Tue (15:00-17:00) and 2 h on Wed (09:00-11:00): 4 open hours after
        // Thu 12:00.
        assert_eq!(
            due_after_waiting("2 business hours"),
            at("2026-12-03T16:00:00Z")
        );
    }

    #[test]
    fn resume_moves_a_plain_due_time_by_the_plain_time_waited() {
        // Thu 12:00 plus the 20 hours waited.
        assert_eq!(due_after_waiting("2h"), at("2026-12-04T08:00:00Z"));
    }

    #[test]
    fn the_wait_reason_reaches_the_planner_history() {
        let (_dir, store, config, id) = fixture("2h");
        let since = at("2026-12-01T15:00:00Z");
        wait(&store, &config, id, "photos", &ana(), since).unwrap();
        assert_eq!(
            store.history(id).unwrap().waiting_reason.as_deref(),
            Some("photos")
        );
    }
}
