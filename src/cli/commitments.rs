//! `add`, `done`, `cancel`: writing commitments.

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use crate::calendar::{display_in, parse_zone};
use crate::commitment::{Status, StoredCommitment, one_line, parse_mailbox};
use crate::config::Config;
use crate::rule::rule_for;
use crate::store::{NewCommitment, NewRevision, Store, StoreError};
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
    /// When it is due: RFC 3339, local "YYYY-MM-DD HH:MM", "tomorrow 17:00", "friday 17:00",
    /// "17:00", or "+2h", "+3d", "+30s".
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
    /// Why it may be late, in words for the customer (used in "no news yet" updates).
    #[arg(long)]
    pub reason: Option<String>,
}

/// `followup delay`.
#[derive(Debug, Args)]
pub struct DelayArgs {
    /// Commitment id.
    pub id: i64,
    /// The new due time: RFC 3339, local "YYYY-MM-DD HH:MM", or "+2h", "+2 business days".
    #[arg(long, value_name = "WHEN")]
    pub until: String,
    /// Why, in words for the customer.
    #[arg(long)]
    pub reason: String,
    /// Record the delay without telling the customer.
    #[arg(long)]
    pub no_notify: bool,
}

/// `followup note`.
#[derive(Debug, Args)]
pub struct NoteArgs {
    /// Commitment id.
    pub id: i64,
    /// The note.
    pub text: String,
    /// Make the text the reason the customer is given for a delay, instead of a note.
    #[arg(long)]
    pub reason: bool,
}

/// The fields of a new commitment as a user gave them, on the command line or in a row
/// of an imported file.
#[derive(Debug, Default)]
pub(super) struct Fields<'a> {
    pub title: &'a str,
    pub owner: &'a str,
    pub customer: &'a str,
    pub due: &'a str,
    pub kind: Option<&'a str>,
    pub note: Option<&'a str>,
    pub external_ref: Option<&'a str>,
    pub timezone: Option<&'a str>,
    pub reason: Option<&'a str>,
}

fn mailbox_text(text: &str) -> Result<String, String> {
    let mailbox = parse_mailbox(text)?;
    Ok(match &mailbox.name {
        Some(name) => format!("{name} <{}>", mailbox.email),
        None => mailbox.email.to_string(),
    })
}

fn filled(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Checks the fields of a new commitment the way `add` and `import` both need: every
/// problem is returned, each naming its field as `{prefix}{name}` (`--owner` on the
/// command line, `owner` in a file). Returns the row to insert and its due time.
pub(super) fn check_new(
    config: &Config,
    fields: &Fields<'_>,
    now: Timestamp,
    prefix: &str,
) -> Result<(NewCommitment, Timestamp), Vec<String>> {
    let mut problems = Vec::new();
    let title = one_line(fields.title);
    if title.is_empty() {
        problems.push(format!("{prefix}title is empty"));
    }
    let mut mailbox = |name: &str, text: &str| {
        mailbox_text(text)
            .map_err(|e| problems.push(format!("{prefix}{name}: {e}")))
            .ok()
    };
    let owner = mailbox("owner", fields.owner);
    let customer = mailbox("customer", fields.customer);
    let timezone = filled(fields.timezone);
    let zone = match timezone.map(parse_zone) {
        Some(Ok(zone)) => zone,
        Some(Err(e)) => {
            problems.push(format!("{prefix}tz: {e}"));
            config.calendar.zone().clone()
        }
        None => config.calendar.zone().clone(),
    };
    let due = parse_when(fields.due, now, &zone, &config.calendar)
        .map_err(|e| problems.push(format!("{prefix}due: {e}")))
        .ok();
    let kind = filled(fields.kind).map(one_line);
    let (Some(owner), Some(customer), Some(due)) = (owner, customer, due) else {
        return Err(problems);
    };
    let new = NewCommitment {
        title,
        owner,
        customer,
        timezone: timezone.map(str::to_string),
        due_at: format_stored(due, &zone),
        kind,
        note: filled(fields.note).map(|_| fields.note.unwrap_or_default().to_string()),
        external_ref: filled(fields.external_ref).map(one_line),
        reason: filled(fields.reason).map(str::to_string),
    };
    let probe = StoredCommitment {
        title: Some(new.title.clone()),
        owner: Some(new.owner.clone()),
        customer: Some(new.customer.clone()),
        timezone: new.timezone.clone(),
        due_at: Some(new.due_at.clone()),
        kind: new.kind.clone(),
        status: Some("open".into()),
        ..Default::default()
    };
    match probe.check(config.calendar.zone()) {
        Err(found) => problems.extend(found),
        Ok(checked) if rule_for(&config.rules, &checked).is_none() => problems.push(format!(
            "no rule matches kind '{}': add a [[rule]] for it (or one without match keys) in {}",
            new.kind.as_deref().unwrap_or(""),
            config.dir.display()
        )),
        Ok(_) => {}
    }
    if problems.is_empty() {
        Ok((new, due))
    } else {
        Err(problems)
    }
}

/// Checks the arguments, inserts the commitment and prints its id.
pub fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();
    let fields = Fields {
        title: &args.title,
        owner: &args.owner,
        customer: &args.customer,
        due: &args.due,
        kind: args.kind.as_deref(),
        note: args.note.as_deref(),
        external_ref: args.external_ref.as_deref(),
        timezone: args.timezone.as_deref(),
        reason: args.reason.as_deref(),
    };
    let (new, due) = check_new(config, &fields, now, "--")
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
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
    let previous = found(store.set_status(id, status))?;
    match previous.as_deref() {
        Some(p) if p == status.as_str() => println!("commitment {id} was already {status}"),
        _ => println!("commitment {id} is {status}; its remaining reminders are cancelled"),
    }
    Ok(())
}

/// The result of a store call about one commitment, with a clear error for an unknown id.
pub(super) fn found<T>(result: Result<T, StoreError>) -> anyhow::Result<T> {
    match result {
        Err(StoreError::NotFound(id)) => {
            bail!("no commitment with id {id} (see followup list --status all)")
        }
        other => Ok(other?),
    }
}

/// The commitment `id`, checked, with a clear error for an unknown id or a bad row.
pub(super) fn checked(
    store: &Store,
    config: &Config,
    id: i64,
) -> anyhow::Result<(StoredCommitment, crate::commitment::Commitment)> {
    let row = found(store.commitment(id))?;
    let commitment = row.check(config.calendar.zone()).map_err(|problems| {
        anyhow::anyhow!("commitment {id} has problems: {}", problems.join("; "))
    })?;
    Ok((row, commitment))
}

/// Moves the due time of a commitment, records the revision and (unless told not to)
/// has the daemon tell the customer now or when business hours open.
pub fn delay(config: &Config, args: DelayArgs) -> anyhow::Result<()> {
    let reason = args.reason.trim().to_string();
    if reason.is_empty() {
        bail!("--reason is empty: say why, in words for the customer");
    }
    let store = open(config)?;
    let (row, commitment) = checked(&store, config, args.id)?;
    if commitment.status != Status::Open {
        bail!(
            "commitment {} is {}; only open commitments can be delayed",
            args.id,
            commitment.status
        );
    }
    let zone = commitment
        .timezone
        .clone()
        .unwrap_or_else(|| config.calendar.zone().clone());
    let now = Timestamp::now();
    let until = parse_when(&args.until, now, &zone, &config.calendar)
        .map_err(|e| anyhow::anyhow!("--until: {e}"))?;
    if until <= now {
        bail!(
            "--until {} has already passed",
            config.calendar.display(until)
        );
    }
    let revision = NewRevision {
        commitment_id: args.id,
        old_due: row.due_at.clone().unwrap_or_default(),
        new_due: format_stored(until, &zone),
        reason: Some(reason),
        source: "followup delay".to_string(),
        automatic: false,
        notify: !args.no_notify,
    };
    store.transaction(|s| s.revise_due(&revision, now))?;
    println!(
        "commitment {} is now due {}",
        args.id,
        config.calendar.display(until)
    );
    if args.no_notify {
        println!("the customer is not told (--no-notify)");
    } else {
        let opens = config.calendar.next_open_in(now, &zone);
        if opens <= now {
            println!("the customer is told now");
        } else {
            println!(
                "the customer is told when business hours open: {}",
                display_in(&zone, opens)
            );
        }
    }
    Ok(())
}

/// Appends a note, or sets the reason the customer is given.
pub fn note(config: &Config, args: NoteArgs) -> anyhow::Result<()> {
    let text = args.text.trim();
    if text.is_empty() {
        bail!("the note is empty");
    }
    let store = open(config)?;
    let result = if args.reason {
        store.set_reason(args.id, text)
    } else {
        let stamp = config.calendar.display(Timestamp::now());
        store.append_note(args.id, &format!("{stamp}: {text}"))
    };
    found(result)?;
    if args.reason {
        println!(
            "commitment {}: the customer will be given this reason for any delay",
            args.id
        );
    } else {
        println!("commitment {}: note added", args.id);
    }
    Ok(())
}

/// Opens the configured store, with the path in any error. Run as root, it first
/// becomes the store's owner ([`super::identity`]); files the command reads (an import)
/// are opened before, as root.
pub(super) fn open(config: &Config) -> anyhow::Result<Store> {
    super::identity::adopt_store_owner(&config.store.path)?;
    Store::open(&config.store.path)
        .with_context(|| format!("opening the store {}", config.store.path.display()))
}
