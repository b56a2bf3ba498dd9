//! `edit`: corrects what was recorded about a commitment (a misspelt title, the wrong
//! customer address, a missing zone). Each edit is a revision naming every field it
//! changed, so `show` tells what the commitment said before; the daemon plans the
//! commitment again, so mail not yet sent carries the corrected fields. The due time is
//! not edited here: moving it is `delay`, which may tell the customer.

use anyhow::bail;
use clap::Args;
use jiff::Timestamp;

use super::commitments::{filled, mailbox_text, open};
use crate::calendar::parse_zone;
use crate::commitment::{StoredCommitment, one_line};
use crate::config::Config;
use crate::rule::rule_for;
use crate::store::{Field, FieldChange, NewEdit, StoreError};
use crate::when::{format_stored, parse_stored};

/// `followup edit`. The flags are those of `add`; an empty value clears an optional field.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Commitment id (`show --ref EXTERNAL_ID` finds it: here --ref sets the reference).
    pub id: i64,
    /// What was promised.
    #[arg(long)]
    pub title: Option<String>,
    /// Who it was made to: "Name <address>" or an address.
    #[arg(long)]
    pub customer: Option<String>,
    /// Who made the promise: "Name <address>" or an address.
    #[arg(long)]
    pub owner: Option<String>,
    /// Kind, used to choose the rule.
    #[arg(long)]
    pub kind: Option<String>,
    /// The note for the owner, replacing the one there (`note` adds to it instead).
    #[arg(long)]
    pub note: Option<String>,
    /// The id in another system (CRM).
    #[arg(long = "ref", value_name = "EXTERNAL_ID")]
    pub external_ref: Option<String>,
    /// The commitment's (customer's) time zone; the due time stays the same instant.
    #[arg(long = "tz", value_name = "ZONE")]
    pub timezone: Option<String>,
    /// Why it may be late, in words for the customer.
    #[arg(long)]
    pub reason: Option<String>,
}

impl EditArgs {
    /// The fields given, each with its value as the store keeps it (`None`: cleared),
    /// or every problem with them.
    fn wanted(&self) -> Result<Vec<(Field, Option<String>)>, Vec<String>> {
        let mut wanted = Vec::new();
        let mut problems = Vec::new();
        if let Some(title) = &self.title {
            match one_line(title) {
                t if t.is_empty() => problems.push("--title is empty".to_string()),
                t => wanted.push((Field::Title, Some(t))),
            }
        }
        for (field, flag, text) in [
            (Field::Owner, "--owner", &self.owner),
            (Field::Customer, "--customer", &self.customer),
        ] {
            if let Some(text) = text {
                match mailbox_text(text) {
                    Ok(mailbox) => wanted.push((field, Some(mailbox))),
                    Err(e) => problems.push(format!("{flag}: {e}")),
                }
            }
        }
        if let Some(zone) = &self.timezone {
            match filled(Some(zone)) {
                Some(name) => match parse_zone(name) {
                    Ok(_) => wanted.push((Field::Timezone, Some(name.to_string()))),
                    Err(e) => problems.push(format!("--tz: {e}")),
                },
                None => wanted.push((Field::Timezone, None)),
            }
        }
        let optional = [
            (Field::Kind, &self.kind, true),
            (Field::ExternalRef, &self.external_ref, true),
            (Field::Note, &self.note, false),
            (Field::Reason, &self.reason, false),
        ];
        for (field, text, single_line) in optional {
            if let Some(text) = text {
                let value = filled(Some(text)).map(|v| {
                    if single_line {
                        one_line(v)
                    } else {
                        v.to_string()
                    }
                });
                wanted.push((field, value));
            }
        }
        if problems.is_empty() {
            Ok(wanted)
        } else {
            Err(problems)
        }
    }
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
    }
}

/// Checks the edit against the commitment as stored, records it and prints what changed.
pub fn edit(config: &Config, args: EditArgs) -> anyhow::Result<()> {
    let wanted = args
        .wanted()
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    if wanted.is_empty() {
        bail!(
            "nothing to edit: give at least one of --title, --customer, --owner, --kind, --note, --ref, --tz, --reason"
        );
    }
    let id = args.id;
    let store = open(config)?;
    let changes = store.transaction(|store| {
        let row = match store.commitment(id) {
            Err(StoreError::NotFound(_)) => {
                bail!("no commitment with id {id} (see followup list --status all)")
            }
            other => other?,
        };
        let mut edited = row.clone();
        let mut changes = Vec::new();
        for (field, new) in wanted {
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
            bail!("nothing to change: commitment {id} already has these values");
        }
        let due_at = keep_due_instant(&row, &edited, config);
        edited.due_at = Some(due_at.clone());
        let checked = edited.check(config.calendar.zone()).map_err(|problems| {
            anyhow::anyhow!(
                "commitment {id} would not be valid after this edit: {}",
                problems.join("; ")
            )
        })?;
        if rule_for(&config.rules, &checked).is_none() {
            bail!(
                "no rule matches kind '{}': add a [[rule]] for it (or one without match keys) in {}",
                checked.kind.as_deref().unwrap_or(""),
                config.dir.display()
            );
        }
        let edit = NewEdit {
            commitment_id: id,
            changes,
            due_at,
            source: "followup edit".to_string(),
        };
        store.edit_commitment(&edit, Timestamp::now())?;
        Ok(edit.changes)
    })?;
    for change in &changes {
        println!("commitment {id}: {}", describe(change));
    }
    println!("the daemon plans it again; mail not yet sent carries the change");
    Ok(())
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
pub(super) fn describe(change: &FieldChange) -> String {
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
