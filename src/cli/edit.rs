//! `edit`: corrects what was recorded about a commitment (a misspelt title, the wrong
//! customer address, a missing zone): reads the flags into fields, and leaves the
//! checking and recording to [`crate::actions::edit`].

use anyhow::bail;
use clap::Args;

use super::commitments::{acted, filled, mailbox_text, open, say};
use crate::actions;
use crate::calendar::parse_zone;
use crate::commitment::one_line;
use crate::config::Config;
use crate::store::Field;

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
    /// What the customer was promised, in their words (customer mail says it).
    #[arg(long)]
    pub promise: Option<String>,
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
            (Field::Promise, &self.promise, true),
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

/// Checks the edit against the commitment as stored, records it and prints what changed.
pub fn edit(config: &Config, args: EditArgs) -> anyhow::Result<()> {
    let wanted = args
        .wanted()
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    if wanted.is_empty() {
        bail!(
            "nothing to edit: give at least one of --title, --customer, --owner, --kind, --note, --ref, --tz, --reason, --promise"
        );
    }
    let store = open(config)?;
    let outcome = actions::edit(
        &*store,
        config,
        args.id,
        wanted,
        &actions::cli_actor(),
        super::now(),
    );
    say(config, args.id, acted(outcome)?);
    println!("the daemon plans it again; mail not yet sent carries the change");
    Ok(())
}
