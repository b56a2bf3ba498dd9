//! `add`, `done`, `cancel`: writing commitments.

use anyhow::{Context as _, bail};
use clap::Args;
use jiff::Timestamp;

use super::target::Target;
use crate::actions::{self, ActionError, Outcome};
use crate::calendar::parse_zone;
use crate::commitment::{Status, StoredCommitment, one_line, parse_mailbox};
use crate::config::Config;
use crate::rule::{Rule, rule_for, rule_for_kind};
use crate::store::{Location, NewCommitment, Store, StoreError};
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
    /// "17:00", or "+2h", "+3d", "+30s". Left out: the matching rule's `due_in` from now.
    #[arg(long)]
    pub due: Option<String>,
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
    /// What the customer was promised, in their words ("information on your order
    /// 1234"): customer mail says it instead of the title.
    #[arg(long)]
    pub promise: Option<String>,
    /// Record a --kind that looks like a typo of a kind a rule names.
    #[arg(long)]
    pub force: bool,
    /// The due time has already passed: plan the overdue reminders, the alert and the
    /// escalation from now.
    #[arg(long)]
    pub overdue: bool,
}

/// `followup delay`.
#[derive(Debug, Args)]
pub struct DelayArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
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
    /// The commitment's id, then the note; with --ref, the note alone.
    #[arg(value_name = "ID TEXT", num_args = 1..=2, required = true)]
    pub words: Vec<String>,
    /// The commitment's id in another system (as given to `add --ref`), instead of ID.
    #[arg(long = "ref", value_name = "EXTERNAL_ID")]
    pub external_ref: Option<String>,
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
    pub promise: Option<&'a str>,
}

pub(super) fn mailbox_text(text: &str) -> Result<String, String> {
    let mailbox = parse_mailbox(text)?;
    Ok(match &mailbox.name {
        Some(name) => format!("{name} <{}>", mailbox.email),
        None => mailbox.email.to_string(),
    })
}

pub(super) fn filled(value: Option<&str>) -> Option<&str> {
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
    let kind = filled(fields.kind).map(one_line);
    let due = match filled(Some(fields.due)) {
        Some(text) => parse_when(text, now, &zone, &config.calendar).map_err(|e| e.to_string()),
        None => default_due(&config.rules, kind.as_deref(), &config.calendar, now),
    }
    .map_err(|e| problems.push(format!("{prefix}due: {e}")))
    .ok();
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
        late_from: None,
        promise: filled(fields.promise).map(one_line),
    };
    match probe(&new).check(config.calendar.zone()) {
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

/// The row `new` will be, to check it and find its rule before it is written.
fn probe(new: &NewCommitment) -> StoredCommitment {
    StoredCommitment {
        title: Some(new.title.clone()),
        owner: Some(new.owner.clone()),
        customer: Some(new.customer.clone()),
        timezone: new.timezone.clone(),
        due_at: Some(new.due_at.clone()),
        kind: new.kind.clone(),
        status: Some("open".into()),
        promise: new.promise.clone(),
        ..Default::default()
    }
}

/// The warning for a commitment `new` (named `what`: `commitment 7`, `line 3`) that
/// has no promise while its rule mails the customer: the customer would read the
/// internal title.
pub(super) fn missing_promise(config: &Config, new: &NewCommitment, what: &str) -> Option<String> {
    if new.promise.is_some() {
        return None;
    }
    let checked = probe(new).check(config.calendar.zone()).ok()?;
    let rule = rule_for(&config.rules, &checked).filter(|r| r.mails_customer())?;
    Some(format!(
        "{what} ('{}') has no promise and the rule '{}' mails the customer: customer mail \
         uses the title; give the promise in the customer's words (--promise, or the \
         promise column; `followup edit ID --promise` adds it later)",
        new.title, rule.name
    ))
}

/// The due time of a commitment of `kind` given without one: the matching rule's
/// `due_in` from `now` (in business time for a business offset).
fn default_due(
    rules: &[Rule],
    kind: Option<&str>,
    calendar: &crate::calendar::Calendar,
    now: Timestamp,
) -> Result<Timestamp, String> {
    let kind_words = kind.map_or("no kind".to_string(), |k| format!("kind '{k}'"));
    let rule = rule_for_kind(rules, kind).ok_or_else(|| {
        format!("none given, and no rule matches {kind_words} to take due_in from")
    })?;
    let due_in = rule.due_in.as_ref().ok_or_else(|| {
        format!(
            "none given, and rule '{}' (for {kind_words}) has no due_in: give the due time, or add e.g. due_in = \"2 business hours\" to the rule",
            rule.name
        )
    })?;
    calendar
        .shift(now, due_in)
        .map_err(|e| format!("rule '{}': due_in: {e}", rule.name))
}

/// What [`check_kind`] found wrong with a kind that no rule names.
#[derive(Debug, PartialEq)]
pub(super) enum KindDoubt {
    /// Within two edits of a kind a rule names: most likely a typo, refused unless forced.
    Typo(String),
    /// Close to nothing a rule names: recorded, with a warning.
    Unnamed(String),
}

/// Whether `kind` is one a rule's `match.kind` names. A kind no rule names still gets
/// the catch-all rule, if there is one, so a typo would pass in silence: a kind within
/// two edits of a named one is a [`KindDoubt::Typo`] saying which, any other a
/// [`KindDoubt::Unnamed`] saying which rule it falls to.
pub(super) fn check_kind(rules: &[Rule], kind: Option<&str>) -> Option<KindDoubt> {
    let kind = kind?;
    let named: Vec<&str> = rules
        .iter()
        .filter_map(|r| r.kinds.as_deref())
        .flatten()
        .map(String::as_str)
        .collect();
    if named.contains(&kind) {
        return None;
    }
    let closest = named
        .iter()
        .map(|name| (edit_distance(kind, name), *name))
        .filter(|(distance, _)| *distance <= 2)
        .min();
    if let Some((_, name)) = closest {
        return Some(KindDoubt::Typo(format!(
            "no rule names the kind '{kind}': did you mean '{name}'? (--force records it as typed)"
        )));
    }
    let falls_to = rules
        .iter()
        .find(|r| r.kinds.is_none())
        .map_or(String::new(), |r| {
            format!("; it gets the rule '{}'", r.name)
        });
    let listed = if named.is_empty() {
        "no rule names any kind".to_string()
    } else {
        format!("rules name {}", named.join(", "))
    };
    Some(KindDoubt::Unnamed(format!(
        "no rule names the kind '{kind}' ({listed}){falls_to}"
    )))
}

/// Damerau-Levenshtein distance (optimal string alignment) over characters: the
/// edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

/// Checks the arguments, inserts the commitment and prints its id.
pub fn add(config: &Config, args: AddArgs) -> anyhow::Result<()> {
    let now = super::now();
    let fields = Fields {
        title: &args.title,
        owner: &args.owner,
        customer: &args.customer,
        due: args.due.as_deref().unwrap_or(""),
        kind: args.kind.as_deref(),
        note: args.note.as_deref(),
        external_ref: args.external_ref.as_deref(),
        timezone: args.timezone.as_deref(),
        reason: args.reason.as_deref(),
        promise: args.promise.as_deref(),
    };
    let (mut new, due) = check_new(config, &fields, now, "--")
        .map_err(|problems| anyhow::anyhow!(problems.join("; ")))?;
    match check_kind(&config.rules, new.kind.as_deref()) {
        Some(KindDoubt::Typo(doubt)) if !args.force => bail!("--kind: {doubt}"),
        Some(KindDoubt::Typo(doubt) | KindDoubt::Unnamed(doubt)) => {
            eprintln!("followup: warning: --kind: {doubt}");
        }
        None => {}
    }
    let due_shown = config.calendar.display(due);
    match (due <= now, args.overdue) {
        (true, false) => bail!(
            "--due: {due_shown} is already past: use --overdue to record a promise that is \
             already late (its overdue reminders, alert and escalation are planned from now)"
        ),
        (false, true) => {
            bail!("--overdue: the due time {due_shown} is still ahead; leave --overdue out")
        }
        (true, true) => new.late_from = Some(now),
        (false, false) => {}
    }
    let store = open(config)?;
    let id = store.insert_commitment(&new)?;
    println!("{id}");
    if let Some(warning) = missing_promise(config, &new, &format!("commitment {id}")) {
        eprintln!("followup: warning: {warning}");
    }
    Ok(())
}

/// Marks commitment `id` done or cancelled; if it already is, says when and by whom.
pub fn close(config: &Config, target: &Target, status: Status) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = target.resolve(&*store)?;
    let act = match status {
        Status::Cancelled => actions::cancel,
        _ => actions::done,
    };
    let outcome = act(&*store, config, id, &actions::cli_actor(), super::now());
    say(config, id, acted(outcome)?);
    Ok(())
}

/// The outcome of an action, with the hint `found` gives for an unknown id, and a
/// wrong value named by its flag (`--until ... has already passed`).
pub(super) fn acted(result: Result<Outcome, ActionError>) -> anyhow::Result<Outcome> {
    match result {
        Err(ActionError::NotFound(id)) => found(Err(StoreError::NotFound(id))),
        Err(ActionError::Field { field, problem }) => bail!("--{field} {problem}"),
        other => Ok(other?),
    }
}

/// Prints what an action did, or what had already done it.
pub(super) fn say(config: &Config, id: i64, outcome: Outcome) {
    match outcome {
        Outcome::Acted(acted) => {
            for line in acted.said {
                println!("{line}");
            }
        }
        Outcome::Already(earlier) => {
            println!("commitment {id}: {}", earlier.describe(&config.calendar))
        }
    }
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
    store: &dyn Store,
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
    if args.reason.trim().is_empty() {
        bail!("--reason is empty: say why, in words for the customer");
    }
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let now = super::now();
    let until = until_for(&*store, config, id, &args.until, now)?;
    let outcome = actions::delay(
        &*store,
        config,
        id,
        until,
        &args.reason,
        !args.no_notify,
        &actions::cli_actor(),
        now,
    );
    say(config, id, acted(outcome)?);
    Ok(())
}

/// The time `--until` gives for commitment `id`, read in the commitment's zone.
pub(super) fn until_for(
    store: &dyn Store,
    config: &Config,
    id: i64,
    text: &str,
    now: Timestamp,
) -> anyhow::Result<Timestamp> {
    let (_, commitment) = checked(store, config, id)?;
    let zone = commitment.zone(config.calendar.zone());
    parse_when(text, now, zone, &config.calendar).map_err(|e| anyhow::anyhow!("--until: {e}"))
}

/// Appends a note, or sets the reason the customer is given.
pub fn note(config: &Config, args: NoteArgs) -> anyhow::Result<()> {
    let (target, text) = Target::before_text(args.external_ref, args.words)?;
    let text = text.trim();
    if text.is_empty() {
        bail!("the note is empty");
    }
    let store = open(config)?;
    let id = target.resolve(&*store)?;
    if args.reason {
        let outcome = actions::set_reason(
            &*store,
            config,
            id,
            text,
            &actions::cli_actor(),
            super::now(),
        );
        acted(outcome)?;
        println!(
            "commitment {}: the customer will be given this reason for any delay",
            id
        );
    } else {
        let stamp = config.calendar.display(super::now());
        found(store.append_note(id, &format!("{stamp}: {text}")))?;
        println!("commitment {}: note added", id);
    }
    Ok(())
}

/// Opens the configured store, with the path in any error. Run as root, it first
/// becomes the store's owner ([`super::identity`]); files the command reads (an import)
/// are opened before, as root.
pub(super) fn open(config: &Config) -> anyhow::Result<Box<dyn Store>> {
    let location = config
        .store
        .location()
        .context("reading the store's password")?;
    if let Location::Sqlite(path) = &location {
        super::identity::adopt_store_owner(path)?;
    }
    crate::store::open(&location).with_context(|| format!("opening the store {location}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn rules() -> Vec<Rule> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("rules.toml"),
            r#"
[[rule]]
name = "quotes"
match = { kind = ["quote", "callback"] }
remind = ["0s"]

[[rule]]
name = "orders"
match = { kind = "order-info" }
remind = ["0s"]

[[rule]]
name = "default"
remind = ["0s"]
"#,
        )
        .unwrap();
        let config: Config = crate::config::load(dir.path(), false).unwrap();
        config.rules
    }

    #[test]
    fn edit_distance_counts_a_swap_as_one_edit() {
        assert_eq!(edit_distance("qoute", "quote"), 1);
        assert_eq!(edit_distance("quote", "quote"), 0);
        assert_eq!(edit_distance("qute", "quote"), 1);
        assert_eq!(edit_distance("Quotes", "quote"), 2);
        assert_eq!(edit_distance("order", "order-info"), 5);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn a_kind_two_edits_from_a_named_one_is_a_typo_that_says_which() {
        let rules = rules();
        assert_eq!(check_kind(&rules, Some("quote")), None);
        assert_eq!(check_kind(&rules, None), None);
        let Some(KindDoubt::Typo(doubt)) = check_kind(&rules, Some("qoute")) else {
            panic!("qoute is a typo of quote");
        };
        assert!(doubt.contains("did you mean 'quote'?"), "{doubt}");
        let Some(KindDoubt::Typo(doubt)) = check_kind(&rules, Some("calback")) else {
            panic!("calback is a typo of callback");
        };
        assert!(doubt.contains("did you mean 'callback'?"), "{doubt}");
    }

    #[test]
    fn a_kind_far_from_every_named_one_is_a_warning_naming_its_rule() {
        let Some(KindDoubt::Unnamed(doubt)) = check_kind(&rules(), Some("boiler")) else {
            panic!("boiler is no typo");
        };
        assert!(
            doubt.contains("rules name quote, callback, order-info"),
            "{doubt}"
        );
        assert!(doubt.contains("it gets the rule 'default'"), "{doubt}");
    }
}
