//! `customer`: a customer's profile (`followup customer ADDR|NAME`) and the notes
//! about them (`followup customer note ADDR TEXT`).

use anyhow::Context as _;
use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::commitments::open;
use super::show::{print_emails, print_table};
use crate::commitment::parse_mailbox;
use crate::config::Config;
use crate::customer::{History, Profile};
use crate::store::Store;

/// `followup customer`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CustomerArgs {
    /// Notes about the customer.
    #[command(subcommand)]
    pub command: Option<CustomerCommand>,
    /// The customer: an address (any case), or a name or part of one or of an address.
    #[arg(value_name = "ADDR|NAME", required = true)]
    pub customer: Option<String>,
    /// Print the profile as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `followup customer note`.
#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Keep a note about the customer (not about one commitment); `customer` shows it.
    Note {
        /// The customer's address.
        #[arg(value_name = "ADDR")]
        address: String,
        /// The note.
        #[arg(value_name = "TEXT")]
        text: String,
    },
}

/// Runs `followup customer`.
pub fn customer(config: &Config, args: CustomerArgs) -> anyhow::Result<()> {
    match (args.command, args.customer) {
        (Some(CustomerCommand::Note { address, text }), _) => note(config, &address, &text),
        (None, Some(customer)) => profile(config, &customer, args.json),
        (None, None) => anyhow::bail!("give a customer: an address, or a name or part of one"),
    }
}

fn note(config: &Config, address: &str, text: &str) -> anyhow::Result<()> {
    let mailbox =
        parse_mailbox(address).map_err(|e| anyhow::anyhow!("customer note: the address {e}"))?;
    let address = mailbox.email.to_string().to_lowercase();
    let text = text.trim();
    if text.is_empty() {
        anyhow::bail!("customer note {address}: the note is empty");
    }
    let store = open(config)?;
    let actor = crate::actions::cli_actor();
    let kept = store
        .keep_customer_note(&address, text, &actor.who, actor.via.as_str(), super::now())
        .with_context(|| format!("keeping a note about {address}"))?;
    if !kept.has_commitments {
        eprintln!(
            "followup: warning: no commitment is for {address} yet; the note is kept for them"
        );
    }
    println!("note kept for {address}");
    Ok(())
}

fn profile(config: &Config, customer: &str, json: bool) -> anyhow::Result<()> {
    let text = customer.trim();
    if text.is_empty() {
        anyhow::bail!("customer: the customer is empty: give an address, or a name or part of one");
    }
    let store = open(config)?;
    let address = find(&*store, text)?;
    let zone = config.calendar.zone();
    let history = History::read(&*store, &address, zone, true)?;
    let profile = Profile::new(history, super::now());
    if json {
        println!("{}", serde_json::to_string_pretty(&profile)?);
    } else {
        print_profile(config, &profile);
    }
    Ok(())
}

/// The one customer `text` names: an address that has commitments or notes, else the
/// only customer whose name or address contains it (any case). Several, or none, is an
/// error that lists or says so.
fn find(store: &dyn Store, text: &str) -> anyhow::Result<String> {
    if let Ok(mailbox) = parse_mailbox(text) {
        let address = mailbox.email.to_string().to_lowercase();
        if store.knows_customer(&address)? {
            return Ok(address);
        }
    }
    // Each address once, with the name its latest commitment gives.
    let mut found: Vec<(String, Option<String>)> = Vec::new();
    for row in store.commitments_of_customers_like(text)? {
        let Some(mailbox) = row.customer.as_deref().and_then(|c| parse_mailbox(c).ok()) else {
            continue;
        };
        let address = mailbox.email.to_string().to_lowercase();
        match found.iter_mut().find(|(a, _)| *a == address) {
            Some((_, name)) => *name = mailbox.name.or(name.take()),
            None => found.push((address, mailbox.name)),
        }
    }
    match &found[..] {
        [] => anyhow::bail!(
            "customer '{text}': no commitment's customer has it in their name or address"
        ),
        [(address, _)] => Ok(address.clone()),
        several => {
            let list: Vec<String> = several
                .iter()
                .map(|(address, name)| match name {
                    Some(name) => format!("  {name} <{address}>"),
                    None => format!("  {address}"),
                })
                .collect();
            anyhow::bail!(
                "customer '{text}' matches {} customers; give one's address:\n{}",
                several.len(),
                list.join("\n")
            )
        }
    }
}

fn percent(p: Option<u32>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p}%"))
}

fn print_profile(config: &Config, p: &Profile) {
    let cal = &config.calendar;
    let when = |at: Option<Timestamp>| at.map_or_else(|| "never".to_string(), |at| cal.display(at));
    match &p.name {
        Some(name) => println!("Customer {name} <{}>", p.address),
        None => println!("Customer {}", p.address),
    }
    let zone = cal.zone().iana_name().unwrap_or("UTC");
    match &p.timezone {
        Some(own) => println!("Zone:           {own}"),
        None => println!("Zone:           {zone} (the calendar's; no commitment gives one)"),
    }
    println!("Customer since: {}", when(p.since));
    let k = &p.kept;
    println!(
        "Promises kept:  {} ({} on time, {} after notice, {} missed, of {} settled)",
        percent(k.kept_percent),
        percent(k.on_time_percent),
        percent(k.after_notice_percent),
        percent(k.missed_percent),
        k.on_time + k.after_notice + k.missed
    );
    println!("Open now:       {}", p.open);
    println!("Last contact:   {}", when(p.last_contact));
    println!();
    println!("Notes:");
    if p.notes.is_empty() {
        println!("  (none)");
    }
    for n in &p.notes {
        let who = n.actor.as_deref().unwrap_or("someone");
        println!("  {}  {who}: {}", cal.display(n.created_at), n.body);
    }
    println!();
    println!("Commitments:");
    let rows: Vec<Vec<String>> = p
        .commitments
        .iter()
        .map(|c| {
            let status = match &c.outcome {
                Some(outcome) => format!("{} ({outcome})", c.status),
                None => c.status.to_string(),
            };
            vec![
                format!("  {}", c.id),
                status,
                cal.display(c.due_at),
                c.kept.as_str().to_string(),
                c.title.clone(),
            ]
        })
        .chain(p.unreadable.iter().map(|(id, problem)| {
            vec![
                format!("  {id}"),
                "unreadable".into(),
                String::new(),
                String::new(),
                format!("PROBLEM: {problem}"),
            ]
        }))
        .collect();
    print_table(&["  ID", "STATUS", "DUE", "HOW IT WENT", "TITLE"], &rows);
    println!();
    println!("Emails:");
    print_emails(config, &p.emails);
}
