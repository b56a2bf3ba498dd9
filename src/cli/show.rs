//! `list` and `show`: reading commitments, their timelines and what was sent.

use clap::{Args, ValueEnum};
use jiff::Timestamp;
use serde::Serialize;

use super::Format;
use super::commitments::{found, open};
use super::target::Target;
use crate::calendar::{Calendar, humanize};
use crate::commitment::{Status, StoredCommitment};
use crate::config::Config;
use crate::planner::Step;
use crate::store::{DeliveryRecord, RevisionRecord, StatusFilter};

/// Which commitments `list` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Still to be kept.
    Open,
    /// Kept.
    Done,
    /// Withdrawn.
    Cancelled,
    /// Every commitment.
    All,
}

/// `followup list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Which commitments.
    #[arg(long, value_enum, default_value = "open")]
    pub status: StatusArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only rows the daemon cannot plan (bad rows written by other programs), with why.
    #[arg(long, conflicts_with = "status")]
    pub problems: bool,
    /// Every commitment to this customer (any status) and every email sent to them: an
    /// address, or a name or part of one or of an address (any case).
    #[arg(long, value_name = "NAME|ADDR", conflicts_with_all = ["status", "problems"])]
    pub customer: Option<String>,
}

/// `followup show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// Print email N of the commitment exactly as it was sent (or, in a dry run, would
    /// have been): N is its number in the EMAIL column of the list of emails.
    #[arg(long, value_name = "N", conflicts_with = "format")]
    pub email: Option<i64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// One commitment as `list` and `show` print it; rows that do not check still print.
#[derive(Debug, Serialize)]
struct Listed {
    id: i64,
    status: String,
    due_at: Option<String>,
    due_local: Option<String>,
    kind: Option<String>,
    owner: Option<String>,
    customer: Option<String>,
    title: Option<String>,
    note: Option<String>,
    r#ref: Option<String>,
    timezone: Option<String>,
    created_at: Option<String>,
    done_at: Option<String>,
    promise: Option<String>,
    outcome: Option<String>,
    closed_at: Option<String>,
    waiting_since: Option<String>,
    problem: Option<String>,
}

fn listed(row: StoredCommitment, calendar: &Calendar) -> Listed {
    let checked = row.check(calendar.zone());
    let (due_at, due_local, problem) = match &checked {
        Ok(c) => (
            Some(crate::when::format_stored(c.due_at, calendar.zone())),
            Some(calendar.display(c.due_at)),
            None,
        ),
        Err(problems) => (row.due_at.clone(), None, Some(problems.join("; "))),
    };
    Listed {
        id: row.id,
        status: row.status.unwrap_or_default(),
        due_at,
        due_local,
        kind: row.kind,
        owner: row.owner,
        customer: row.customer,
        title: row.title,
        note: row.note,
        r#ref: row.external_ref,
        timezone: row.timezone,
        created_at: row.created_at,
        done_at: row.done_at,
        promise: row.promise,
        outcome: row.outcome,
        closed_at: row.closed_at,
        waiting_since: row.waiting_since,
        problem,
    }
}

/// Prints the commitments with the chosen status.
pub fn list(config: &Config, args: ListArgs) -> anyhow::Result<()> {
    let filter = match args.status {
        StatusArg::Open => StatusFilter::Only(Status::Open),
        StatusArg::Done => StatusFilter::Only(Status::Done),
        StatusArg::Cancelled => StatusFilter::Only(Status::Cancelled),
        StatusArg::All => StatusFilter::All,
    };
    let store = open(config)?;
    if let Some(customer) = &args.customer {
        return customer_history(config, &*store, customer, args.format);
    }
    let rows: Vec<Listed> = if args.problems {
        let mut rows = Vec::new();
        for (commitment, reason) in store.commitments_with_problems()? {
            let mut row = listed(commitment, &config.calendar);
            row.problem = Some(reason);
            rows.push(row);
        }
        rows
    } else {
        store
            .commitments(filter)?
            .into_iter()
            .map(|row| listed(row, &config.calendar))
            .collect()
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.to_string(),
                        r.status.clone(),
                        r.due_local
                            .clone()
                            .or_else(|| r.due_at.clone())
                            .unwrap_or_default(),
                        r.kind.clone().unwrap_or_default(),
                        r.owner.clone().unwrap_or_default(),
                        r.customer.clone().unwrap_or_default(),
                        match &r.problem {
                            Some(p) => format!("PROBLEM: {p}"),
                            None => r.title.clone().unwrap_or_default(),
                        },
                    ]
                })
                .collect();
            print_table(
                &["ID", "STATUS", "DUE", "KIND", "OWNER", "CUSTOMER", "TITLE"],
                &table,
            );
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct CustomerHistory {
    /// The address, or the text asked for when it matched several customers.
    customer: String,
    /// The addresses of the customers found.
    customers: Vec<String>,
    commitments: Vec<Listed>,
    emails: Vec<DeliveryRecord>,
}

/// Every commitment to `customer` and every email sent to them: a profile of the
/// customer's history with the business. An address is matched whole (so
/// `joe@example.org` does not find `bigjoe@example.org`); any other text, or an address
/// no commitment has, is looked for in names and addresses.
fn customer_history(
    config: &Config,
    store: &dyn crate::store::Store,
    customer: &str,
    format: Format,
) -> anyhow::Result<()> {
    let text = customer.trim();
    if text.is_empty() {
        anyhow::bail!("--customer is empty: give a name, an address, or part of one");
    }
    let exact = match crate::commitment::parse_mailbox(text) {
        Ok(mailbox) => Some(history(config, store, mailbox.email.as_ref())?),
        Err(_) => None,
    };
    let history = match exact {
        Some(history) if !history.commitments.is_empty() => history,
        _ => history_like(config, store, text)?,
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&history)?),
        Format::Table => print_history(config, &history),
    }
    Ok(())
}

fn history(
    config: &Config,
    store: &dyn crate::store::Store,
    address: &str,
) -> anyhow::Result<CustomerHistory> {
    Ok(CustomerHistory {
        commitments: store
            .commitments_of_customer(address)?
            .into_iter()
            .map(|row| listed(row, &config.calendar))
            .collect(),
        emails: store.deliveries_to(address)?,
        customer: address.to_string(),
        customers: vec![address.to_string()],
    })
}

/// The history of every customer whose name or address contains `text`.
fn history_like(
    config: &Config,
    store: &dyn crate::store::Store,
    text: &str,
) -> anyhow::Result<CustomerHistory> {
    let rows = store.commitments_of_customers_like(text)?;
    let mut customers: Vec<String> = Vec::new();
    for row in &rows {
        let address = row
            .customer
            .as_deref()
            .and_then(|c| crate::commitment::parse_mailbox(c).ok())
            .map(|m| m.email.to_string().to_lowercase());
        if let Some(address) = address.filter(|a| !customers.contains(a)) {
            customers.push(address);
        }
    }
    if rows.is_empty() {
        anyhow::bail!(
            "--customer '{text}': no commitment's customer has it in their name or address"
        );
    }
    let mut emails = Vec::new();
    for address in &customers {
        emails.extend(store.deliveries_to(address)?);
    }
    emails.sort_by_key(|d| d.id);
    Ok(CustomerHistory {
        customer: match &customers[..] {
            [one] => one.clone(),
            _ => text.to_string(),
        },
        customers,
        commitments: rows
            .into_iter()
            .map(|row| listed(row, &config.calendar))
            .collect(),
        emails,
    })
}

fn print_history(config: &Config, history: &CustomerHistory) {
    let whom = match &history.customers[..] {
        [] => history.customer.clone(),
        all => all.join(", "),
    };
    // With several customers found, each row says whose it is.
    let several = history.customers.len() > 1;
    println!("Commitments to {whom}:");
    let rows: Vec<Vec<String>> = history
        .commitments
        .iter()
        .map(|r| {
            let mut row = vec![
                format!("  {}", r.id),
                r.status.clone(),
                r.due_local
                    .clone()
                    .or_else(|| r.due_at.clone())
                    .unwrap_or_default(),
                r.owner.clone().unwrap_or_default(),
            ];
            if several {
                row.push(r.customer.clone().unwrap_or_default());
            }
            row.push(r.title.clone().unwrap_or_default());
            row
        })
        .collect();
    let header: &[&str] = if several {
        &["  ID", "STATUS", "DUE", "OWNER", "CUSTOMER", "TITLE"]
    } else {
        &["  ID", "STATUS", "DUE", "OWNER", "TITLE"]
    };
    print_table(header, &rows);
    println!();
    println!("Emails to {whom}:");
    print_emails(config, &history.emails);
}

/// Prints emails as `show` and `list --customer` list them.
pub(super) fn print_emails(config: &Config, emails: &[DeliveryRecord]) {
    let cal = &config.calendar;
    if emails.is_empty() {
        println!("  (none yet)");
        return;
    }
    let rows: Vec<Vec<String>> = emails
        .iter()
        .map(|d| {
            let when = d.sent_at.unwrap_or(d.created_at);
            let detail = match (&d.state[..], &d.last_error) {
                ("pending", Some(e)) => format!(
                    "{} [retry at {}: {e}]",
                    d.subject,
                    cal.display(d.next_attempt_at)
                ),
                (_, Some(e)) => format!("{} [{e}]", d.subject),
                _ => d.subject.clone(),
            };
            let detail = match d.taken_over {
                0 => detail,
                _ => format!(
                    "{detail} [may have gone twice: the daemon sending it stopped and another took it over]"
                ),
            };
            vec![
                format!("  {}", d.id),
                cal.display(when),
                d.recipient.clone(),
                d.state.clone(),
                d.attempts.to_string(),
                detail,
            ]
        })
        .collect();
    print_table(
        &["  EMAIL", "WHEN", "TO", "STATE", "TRIES", "SUBJECT"],
        &rows,
    );
}

/// Prints `rows` under `header` in aligned columns; the last column is not padded.
pub(super) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[derive(Debug, Serialize)]
struct Shown {
    commitment: Listed,
    /// Until when the owner's reminders are snoozed, if a snooze was ever set.
    snoozed_until: Option<Timestamp>,
    /// True when it has no promise and its rule mails the customer, who then reads
    /// the title.
    promise_missing: bool,
    timeline: Vec<Step>,
    deliveries: Vec<DeliveryRecord>,
    revisions: Vec<RevisionRecord>,
    customer_history: Option<CustomerHistory>,
}

/// Prints one commitment, its timeline and its deliveries.
pub fn show(config: &Config, args: ShowArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    if let Some(email) = args.email {
        found(store.commitment(id))?;
        return print_message(&*store, id, email);
    }
    // The row, its timeline, emails and revisions as they stood at one moment.
    let view = found(store.commitment_view(id, crate::planner::StepKind::CustomerUpdate))?;
    let row = view.glance.row;
    let customer_history = match row
        .customer
        .as_deref()
        .map(crate::commitment::parse_mailbox)
    {
        Some(Ok(customer)) => Some(history(config, &*store, customer.email.as_ref())?),
        _ => None,
    };
    let promise_missing = row.promise.as_deref().is_none_or(|p| p.trim().is_empty())
        && row.check(config.calendar.zone()).ok().is_some_and(|c| {
            crate::rule::rule_for(&config.rules, &c).is_some_and(crate::rule::Rule::mails_customer)
        });
    let mut commitment = listed(row, &config.calendar);
    if commitment.problem.is_none() {
        commitment.problem = store.problem(id)?;
    }
    let shown = Shown {
        customer_history,
        promise_missing,
        snoozed_until: view.glance.snoozed_until,
        commitment,
        timeline: view.steps,
        deliveries: view.deliveries,
        revisions: view.revisions,
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&shown)?),
        Format::Table => print_shown(config, &shown),
    }
    Ok(())
}

/// Writes the stored message, byte for byte, so it can be piped to a mail client or
/// checked as it left.
fn print_message(store: &dyn crate::store::Store, id: i64, email: i64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let Some(message) = store.message_of(id, email)? else {
        anyhow::bail!(
            "commitment {id} has no email {email}: `followup show {id}` numbers its emails in the EMAIL column"
        );
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&message)?;
    out.flush()?;
    Ok(())
}

fn print_shown(config: &Config, shown: &Shown) {
    let cal = &config.calendar;
    let c = &shown.commitment;
    let now = super::now();
    println!(
        "Commitment {}: {}",
        c.id,
        c.title.as_deref().unwrap_or("(no title)")
    );
    let due = match (&c.due_local, &c.due_at) {
        (Some(local), Some(iso)) => {
            let when = iso.parse::<Timestamp>().ok().map(|at| {
                if at > now {
                    format!(" (in {})", humanize(now, at))
                } else {
                    format!(" ({} ago)", humanize(at, now))
                }
            });
            format!("{local}{}", when.unwrap_or_default())
        }
        (_, Some(raw)) => raw.clone(),
        _ => String::new(),
    };
    let promise = match (&c.promise, shown.promise_missing) {
        (Some(p), _) if !p.trim().is_empty() => Some(p.clone()),
        (_, true) => Some("none (customer mail uses the title)".to_string()),
        _ => None,
    };
    // RFC 3339 as the actions write them; another program's text as it is.
    let shown_time = |stored: Option<&str>| match stored.map(str::parse::<Timestamp>) {
        Some(Ok(at)) => cal.display(at),
        _ => stored.unwrap_or("(no time)").to_string(),
    };
    let fields = [
        ("promise", promise),
        ("status", Some(c.status.clone())),
        ("due", Some(due)),
        ("owner", c.owner.clone()),
        ("customer", c.customer.clone()),
        ("kind", c.kind.clone()),
        ("ref", c.r#ref.clone()),
        ("timezone", c.timezone.clone()),
        ("created", c.created_at.clone()),
        ("done", c.done_at.clone()),
        (
            "closed",
            c.outcome
                .as_ref()
                .map(|o| format!("{o} on {}", shown_time(c.closed_at.as_deref()))),
        ),
        (
            "waiting",
            c.waiting_since
                .as_deref()
                .map(|since| format!("on the customer since {}", shown_time(Some(since)))),
        ),
        ("problem", c.problem.clone()),
    ];
    for (name, value) in fields {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            println!("  {:<9} {value}", format!("{name}:"));
        }
    }
    if let Some(until) = shown.snoozed_until.filter(|until| *until > now) {
        println!(
            "  {:<9} reminders until {} (in {})",
            "snoozed:",
            cal.display(until),
            humanize(now, until)
        );
    }
    if let Some(note) = c.note.as_deref().filter(|n| !n.trim().is_empty()) {
        println!("  note:");
        for line in note.lines() {
            println!("    {line}");
        }
    }
    // Times as every other table shows them; a stored text that cannot be read (another
    // program's row) is shown as it is.
    let zone = c
        .timezone
        .as_deref()
        .and_then(|name| crate::calendar::parse_zone(name).ok())
        .unwrap_or_else(|| cal.zone().clone());
    let due_text = |stored: &str| match crate::when::parse_stored(stored, &zone) {
        Ok(at) => cal.display(at),
        Err(_) => stored.to_string(),
    };
    super::revisions::print(cal, &shown.revisions, &due_text);
    println!();
    println!("Timeline ({}):", cal.zone_name());
    if shown.timeline.is_empty() {
        println!("  (no steps)");
    } else {
        let rows: Vec<Vec<String>> = shown
            .timeline
            .iter()
            .map(|s| {
                vec![
                    format!("  {}", cal.display(s.fire_at)),
                    s.kind.to_string(),
                    s.label.clone(),
                    s.state_shown(),
                    s.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        print_table(&["  WHEN", "STEP", "LABEL", "STATE", "REASON"], &rows);
    }
    println!();
    println!("Emails:");
    print_emails(config, &shown.deliveries);
    if let Some(history) = &shown.customer_history {
        println!();
        print_history(config, history);
    }
}
