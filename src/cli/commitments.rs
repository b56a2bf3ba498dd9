//! `add`, `done`, `cancel`: writing commitments.

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use crate::calendar::parse_zone;
use crate::commitment::{Status, StoredCommitment, one_line, parse_mailbox};
use crate::config::Config;
use crate::rule::rule_for;
use crate::store::{NewCommitment, Store, StoreError};
use crate::when::{format_stored, parse_when};

/// `followup add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// What was promised, e.g. "Send quote for the boiler service".
    #[arg(long)]
    pub title: String,
    /// Who made the promise: "Name <address>" or an address.
    #[arg(long)]
    pub owner: String,
    /// Who it was made to: "Name <address>" or an address.
    #[arg(long)]
    pub customer: String,
    /// When it is due: RFC 3339, local "YYYY-MM-DD HH:MM", or "+2h", "+3d", "+30s".
    #[arg(long)]
    pub due: String,
    /// Kind, used to choose the rule (quote, callback, order-info, ...).
    #[arg(long)]
    pub kind: Option<String>,
    /// A note for the owner.
    #[arg(long)]
    pub note: Option<String>,
    /// An id in another system (CRM).
    #[arg(long = "ref", value_name = "EXTERNAL_ID")]
    pub external_ref: Option<String>,
    /// The commitment's (customer's) time zone, e.g. America/New_York.
    #[arg(long = "tz", value_name = "ZONE")]
    pub timezone: Option<String>,
}

fn mailbox_text(flag: &str, text: &str) -> anyhow::Result<String> {
    let mailbox = parse_mailbox(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
    Ok(match &mailbox.name {
        Some(name) => format!("{name} <{}>", mailbox.email),
        None => mailbox.email.to_string(),
    })
}

/// Checks the arguments, inserts the commitment and prints its id.
pub fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let title = one_line(&args.title);
    if title.is_empty() {
        bail!("--title is empty");
    }
    let owner = mailbox_text("owner", &args.owner)?;
    let customer = mailbox_text("customer", &args.customer)?;
    let zone = match &args.timezone {
        Some(name) => parse_zone(name).map_err(|e| anyhow::anyhow!("--tz: {e}"))?,
        None => config.calendar.zone().clone(),
    };
    let now = Timestamp::now();
    let due = parse_when(&args.due, now, &zone).map_err(|e| anyhow::anyhow!("--due: {e}"))?;
    let kind = args.kind.as_deref().map(one_line).filter(|k| !k.is_empty());
    let new = NewCommitment {
        title,
        owner,
        customer,
        timezone: args.timezone.as_deref().map(str::trim).map(str::to_string),
        due_at: format_stored(due, &zone),
        kind,
        note: args.note.filter(|n| !n.trim().is_empty()),
        external_ref: args
            .external_ref
            .as_deref()
            .map(one_line)
            .filter(|r| !r.is_empty()),
    };
    let probe = StoredCommitment {
        id: 0,
        title: Some(new.title.clone()),
        owner: Some(new.owner.clone()),
        customer: Some(new.customer.clone()),
        timezone: new.timezone.clone(),
        due_at: Some(new.due_at.clone()),
        kind: new.kind.clone(),
        status: Some("open".into()),
        ..Default::default()
    };
    let checked = probe
        .check(config.calendar.zone())
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    if rule_for(&config.rules, &checked).is_none() {
        bail!(
            "no rule matches kind '{}': add a [[rule]] for it (or one without match keys) in {}",
            new.kind.as_deref().unwrap_or(""),
            config.dir.display()
        );
    }
    if due <= now {
        eprintln!(
            "followup: note: the due time {} has already passed",
            config.calendar.display(due)
        );
    }
    let store = open(config)?;
    let id = store.insert_commitment(&new)?;
    println!("{id}");
    Ok(())
}

/// Marks commitment `id` done or cancelled.
pub fn close(config: &Config, id: i64, status: Status) -> anyhow::Result<()> {
    let store = open(config)?;
    let previous = match store.set_status(id, status) {
        Err(StoreError::NotFound(id)) => {
            bail!("no commitment with id {id} (see followup list --status all)")
        }
        other => other?,
    };
    match previous.as_deref() {
        Some(p) if p == status.as_str() => println!("commitment {id} was already {status}"),
        _ => println!("commitment {id} is {status}; its remaining reminders are cancelled"),
    }
    Ok(())
}

/// Opens the configured store, with the path in any error.
pub(super) fn open(config: &Config) -> anyhow::Result<Store> {
    Store::open(&config.store.path)
        .with_context(|| format!("opening the store {}", config.store.path.display()))
}
