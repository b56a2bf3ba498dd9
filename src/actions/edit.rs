//! Correcting what was recorded about a commitment (a misspelt title, the wrong
//! customer address, a missing zone, the reason the customer is given). Each edit is a
//! revision naming every field it changed, so `show` tells what the commitment said
//! before; the daemon plans the commitment again, so mail not yet sent carries the
//! corrected fields. The due time is not edited here: moving it is [`super::delay`].

use jiff::Timestamp;

use super::{ActionError, Actor, Decided, Outcome, Result, act, given_reason};
use crate::calendar::parse_zone;
use crate::commitment::{StoredCommitment, one_line};
use crate::config::Config;
use crate::rule::rule_for;
use crate::store::{Field, FieldChange, NewEdit, Store, Write};
use crate::when::{format_stored, parse_stored};

/// Sets the fields in `wanted` (each with its value as the store keeps it; `None`
/// clears it) of commitment `id`, after checking that the commitment is still valid
/// and has a rule. Values equal to the stored ones are left out; if nothing is left,
/// that is [`ActionError::Invalid`].
pub fn edit(
    store: &dyn Store,
    config: &Config,
    id: i64,
    wanted: Vec<(Field, Option<String>)>,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    act(store, id, now, |facts| {
        let row = facts.commitment();
        let mut edited = row.clone();
        let mut changes = Vec::new();
        for (field, new) in wanted.iter().cloned() {
            let place = slot(&mut edited, field);
            let old = place.clone().filter(|v| !v.trim().is_empty());
            if old.as_deref().map(str::trim) != new.as_deref() {
                changes.push(FieldChange {
                    field,
                    old,
                    new: new.clone(),
                });
                *place = new;
            }
        }
        if changes.is_empty() {
            return Err(ActionError::Invalid(format!(
                "nothing to change: commitment {id} already has these values"
            )));
        }
        let due_at = keep_due_instant(row, &edited, config);
        edited.due_at = Some(due_at.clone());
        let checked = edited.check(config.calendar.zone()).map_err(|problems| {
            ActionError::Invalid(format!(
                "commitment {id} would not be valid after this edit: {}",
                problems.join("; ")
            ))
        })?;
        if rule_for(&config.rules, &checked).is_none() {
            return Err(ActionError::Invalid(format!(
                "no rule matches kind '{}': add a [[rule]] for it (or one without match keys) in {}",
                checked.kind.as_deref().unwrap_or(""),
                config.dir.display()
            )));
        }
        let edit = NewEdit {
            commitment_id: id,
            changes,
            due_at,
            source: match actor.via {
                super::Via::Cli => "followup edit".to_string(),
                super::Via::Web => format!("edit by {}", actor.words()),
            },
            deed: actor.deed("edit"),
        };
        let said = edit
            .changes
            .iter()
            .map(|change| format!("commitment {id}: {}", describe(change)))
            .collect();
        Ok(Decided::Acted {
            writes: vec![Write::Edit(edit)],
            said,
        })
    })
}

/// Sets the reason the customer is given for any delay of commitment `id`: an edit of
/// that one field, recorded like any other.
pub fn set_reason(
    store: &dyn Store,
    config: &Config,
    id: i64,
    reason: &str,
    actor: &Actor,
    now: Timestamp,
) -> Result<Outcome> {
    let reason = given_reason(reason, "is empty: say why, in words for the customer")?;
    edit(
        store,
        config,
        id,
        vec![(Field::Reason, Some(reason.to_string()))],
        actor,
        now,
    )
}

/// The stored value of `field` in `row`, and a place to write a new one.
fn slot(row: &mut StoredCommitment, field: Field) -> &mut Option<String> {
    match field {
        Field::Title => &mut row.title,
        Field::Owner => &mut row.owner,
        Field::Customer => &mut row.customer,
        Field::Kind => &mut row.kind,
        Field::Note => &mut row.note,
        Field::ExternalRef => &mut row.external_ref,
        Field::Timezone => &mut row.timezone,
        Field::Reason => &mut row.reason,
        Field::Promise => &mut row.promise,
    }
}

/// The due time to store after the edit: unchanged, unless the zone changes, when the
/// same instant is written in the new zone (a local time would otherwise move with it).
fn keep_due_instant(
    before: &StoredCommitment,
    after: &StoredCommitment,
    config: &Config,
) -> String {
    let stored = before.due_at.clone().unwrap_or_default();
    if before.timezone == after.timezone {
        return stored;
    }
    let zone_of = |row: &StoredCommitment| {
        row.timezone
            .as_deref()
            .and_then(|name| parse_zone(name).ok())
            .unwrap_or_else(|| config.calendar.zone().clone())
    };
    match parse_stored(&stored, &zone_of(before)) {
        Ok(at) => format_stored(at, &zone_of(after)),
        Err(_) => stored,
    }
}

/// One change as `edit` and `show` print it: `title: 'Quote' -> 'Quote for the roof'`.
pub fn describe(change: &FieldChange) -> String {
    let value = |v: &Option<String>| match v {
        Some(text) => format!("'{}'", one_line(text)),
        None => "(none)".to_string(),
    };
    format!(
        "{}: {} -> {}",
        change.field.column(),
        value(&change.old),
        value(&change.new)
    )
}
