//! The commitment: one promise to one customer with a due time, and how a row that any
//! program may have written becomes one.
//!
//! Rows come from other programs as well as from `followup add`, so every field is
//! checked here and every problem is named; nothing in this module panics on bad data.
//! Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lettre::Address;
use lettre::message::Mailbox;
use serde::Serialize;

use crate::calendar::parse_zone;
use crate::when::parse_stored;

/// Where a commitment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Still to be kept: steps before and after the due time apply.
    Open,
    /// Kept: later reminders stop.
    Done,
    /// Withdrawn: every later step stops.
    Cancelled,
}

impl Status {
    /// The word stored in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Done => "done",
            Status::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "open" => Ok(Status::Open),
            "done" => Ok(Status::Done),
            "cancelled" | "canceled" => Ok(Status::Cancelled),
            other => Err(format!(
                "status '{other}' is not one of open, done, cancelled"
            )),
        }
    }
}

/// How a commitment that is done ended, once it is closed (`followup close --outcome`):
/// a quote won or lost, a complaint resolved, a customer who never answered. A closed
/// commitment counts as kept; its follow-ups after the work stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The customer took the offer.
    Won,
    /// The customer declined it.
    Lost,
    /// The matter was put right.
    Resolved,
    /// The customer never answered.
    NoAnswer,
}

impl Outcome {
    /// Every outcome, in the order help texts list them.
    pub const ALL: [Outcome; 4] = [
        Outcome::Won,
        Outcome::Lost,
        Outcome::Resolved,
        Outcome::NoAnswer,
    ];

    /// The word stored in the `outcome` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Won => "won",
            Outcome::Lost => "lost",
            Outcome::Resolved => "resolved",
            Outcome::NoAnswer => "no-answer",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Outcome::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("outcome '{s}' is not one of won, lost, resolved, no-answer"))
    }
}

/// One promise, checked and ready to plan.
#[derive(Clone, Debug)]
pub struct Commitment {
    /// Row id in `commitments`.
    pub id: i64,
    /// What was promised, on one line.
    pub title: String,
    /// Who made the promise and gets the reminders.
    pub owner: Mailbox,
    /// Who the promise was made to.
    pub customer: Mailbox,
    /// The commitment's own zone (the customer's), if it has one.
    pub timezone: Option<TimeZone>,
    /// When the promise falls due.
    pub due_at: Timestamp,
    /// Kind used to choose a rule (`quote`, `callback`, ...), if any.
    pub kind: Option<String>,
    /// Open, done or cancelled.
    pub status: Status,
    /// Free text from the owner; may span lines.
    pub note: String,
    /// An id in another system (a CRM), if any.
    pub external_ref: Option<String>,
    /// Why it may be late, in words for the customer, if the owner gave one.
    pub reason: Option<String>,
    /// When the row was written.
    pub created_at: Timestamp,
    /// When it was marked done, if it was.
    pub done_at: Option<Timestamp>,
    /// What the customer was promised, in their words, if it was given; customer mail
    /// says it instead of the internal title.
    pub promise: Option<String>,
    /// How it ended, once closed after the work was done (its follow-ups stop then).
    pub outcome: Option<Outcome>,
    /// When it was closed, if it was.
    pub closed_at: Option<Timestamp>,
    /// Since when it waits on the customer, if it does: its clock is paused.
    pub waiting_since: Option<Timestamp>,
}

impl Commitment {
    /// The zone the customer reads times in, and the one the row's local times were
    /// written in: the commitment's own, else `default` (the calendar's). The one
    /// place that choice is made, so that planning, firing, composing and every page
    /// agree on it.
    pub fn zone<'a>(&'a self, default: &'a TimeZone) -> &'a TimeZone {
        self.timezone.as_ref().unwrap_or(default)
    }
}

/// A recorded move of a commitment's due time, its times read in the commitment's
/// zone: what composing an update needs of the commitment's history, in no store's
/// terms.
#[derive(Clone, Debug, PartialEq)]
pub struct DueMove {
    /// The revision that recorded it, which a delay notice's step names.
    pub revision: i64,
    /// The due time before, or why its stored text does not read.
    pub from: Result<Timestamp, String>,
    /// The due time after, or why its stored text does not read.
    pub to: Result<Timestamp, String>,
    /// Why, in words for the customer.
    pub reason: Option<String>,
    /// Made by the daemon's automatic update.
    pub automatic: bool,
}

/// A `commitments` row as stored, before any checking: every column may be missing or
/// malformed when another program wrote it.
#[derive(Clone, Debug, Default)]
pub struct StoredCommitment {
    /// Row id.
    pub id: i64,
    /// `title` column.
    pub title: Option<String>,
    /// `owner` column.
    pub owner: Option<String>,
    /// `customer` column.
    pub customer: Option<String>,
    /// `timezone` column.
    pub timezone: Option<String>,
    /// `due_at` column, as text (integers are read as Unix seconds by the store).
    pub due_at: Option<String>,
    /// `kind` column.
    pub kind: Option<String>,
    /// `status` column.
    pub status: Option<String>,
    /// `note` column.
    pub note: Option<String>,
    /// `external_ref` column.
    pub external_ref: Option<String>,
    /// `created_at` column.
    pub created_at: Option<String>,
    /// `done_at` column.
    pub done_at: Option<String>,
    /// `reason` column.
    pub reason: Option<String>,
    /// `promise` column.
    pub promise: Option<String>,
    /// `outcome` column.
    pub outcome: Option<String>,
    /// `closed_at` column.
    pub closed_at: Option<String>,
    /// `waiting_since` column.
    pub waiting_since: Option<String>,
}

impl StoredCommitment {
    /// Checks every column and returns the commitment, or every problem found, each
    /// naming its column. Local times are read in the row's zone, else `default_zone`.
    pub fn check(&self, default_zone: &TimeZone) -> Result<Commitment, Vec<String>> {
        let mut problems = Vec::new();
        let title = match non_empty(&self.title) {
            Some(t) => one_line(t),
            None => {
                problems.push("title is empty".to_string());
                String::new()
            }
        };
        let owner = required_mailbox("owner", &self.owner, &mut problems);
        let customer = required_mailbox("customer", &self.customer, &mut problems);
        let timezone = match non_empty(&self.timezone) {
            None => None,
            Some(name) => match parse_zone(name) {
                Ok(zone) => Some(zone),
                Err(e) => {
                    problems.push(format!("timezone: {e}"));
                    None
                }
            },
        };
        let zone = timezone.clone().unwrap_or_else(|| default_zone.clone());
        let due_at = match non_empty(&self.due_at) {
            None => {
                problems.push("due_at is empty".to_string());
                None
            }
            Some(text) => match parse_stored(text, &zone) {
                Ok(at) => Some(at),
                Err(e) => {
                    problems.push(format!("due_at: {e}"));
                    None
                }
            },
        };
        let status = match non_empty(&self.status) {
            None => {
                problems.push("status is empty".to_string());
                None
            }
            Some(text) => match text.parse::<Status>() {
                Ok(s) => Some(s),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        let created_at = optional_time("created_at", &self.created_at, &zone, &mut problems);
        let done_at = optional_time("done_at", &self.done_at, &zone, &mut problems);
        let closed_at = optional_time("closed_at", &self.closed_at, &zone, &mut problems);
        let waiting_since =
            optional_time("waiting_since", &self.waiting_since, &zone, &mut problems);
        let outcome = match non_empty(&self.outcome) {
            None => None,
            Some(text) => match text.parse::<Outcome>() {
                Ok(o) => Some(o),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        match (owner, customer, due_at, status) {
            (Some(owner), Some(customer), Some(due_at), Some(status)) if problems.is_empty() => {
                Ok(Commitment {
                    id: self.id,
                    title,
                    owner,
                    customer,
                    timezone,
                    due_at,
                    kind: non_empty(&self.kind).map(one_line),
                    status,
                    note: self.note.clone().unwrap_or_default(),
                    external_ref: non_empty(&self.external_ref).map(one_line),
                    reason: non_empty(&self.reason).map(str::to_string),
                    created_at: created_at.unwrap_or(due_at),
                    done_at,
                    promise: non_empty(&self.promise).map(one_line),
                    outcome,
                    closed_at,
                    waiting_since,
                })
            }
            _ => Err(problems),
        }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn required_mailbox(
    column: &str,
    value: &Option<String>,
    problems: &mut Vec<String>,
) -> Option<Mailbox> {
    match non_empty(value) {
        None => {
            problems.push(format!("{column} is empty"));
            None
        }
        Some(text) => match parse_mailbox(text) {
            Ok(mailbox) => Some(mailbox),
            Err(e) => {
                problems.push(format!("{column}: {e}"));
                None
            }
        },
    }
}

fn optional_time(
    column: &str,
    value: &Option<String>,
    zone: &TimeZone,
    problems: &mut Vec<String>,
) -> Option<Timestamp> {
    let text = non_empty(value)?;
    match parse_stored(text, zone) {
        Ok(at) => Some(at),
        Err(e) => {
            problems.push(format!("{column}: {e}"));
            None
        }
    }
}

/// Text for one line of a header or a table: every control character (CR, LF, tab,
/// ...) becomes a space and runs of spaces collapse, so no data can start a new header.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads `Name <address>` or a bare `address`. The name may hold any text: quotes
/// around it are dropped and control characters become spaces, so a name can never
/// carry a header of its own. The address must be a valid email address whose domain
/// can be reached from elsewhere (see [`crate::address::check_domain`]).
pub fn parse_mailbox(text: &str) -> Result<Mailbox, String> {
    let text = text.trim();
    let (name, address) = match (text.rfind('<'), text.ends_with('>')) {
        (Some(open), true) => (&text[..open], &text[open + 1..text.len() - 1]),
        _ => ("", text),
    };
    let address = address.trim();
    let address: Address = address
        .parse()
        .map_err(|_| format!("'{address}' is not an email address"))?;
    crate::address::check_domain(&address).map_err(|e| e.to_string())?;
    let name = one_line(name);
    let name = name.trim_matches('"').trim().to_string();
    Ok(Mailbox::new((!name.is_empty()).then_some(name), address))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn london() -> TimeZone {
        TimeZone::get("Europe/London").unwrap()
    }

    fn good_row() -> StoredCommitment {
        StoredCommitment {
            id: 7,
            title: Some("Send quote".into()),
            owner: Some("Ana Ruiz <ana@example.com>".into()),
            customer: Some("joe@example.org".into()),
            due_at: Some("2026-11-24 17:00".into()),
            status: Some("open".into()),
            created_at: Some("2026-11-23T10:00:00.000Z".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_row_becomes_a_commitment() {
        let c = good_row().check(&london()).unwrap();
        assert_eq!(c.owner.email.to_string(), "ana@example.com");
        assert_eq!(c.owner.name.as_deref(), Some("Ana Ruiz"));
        assert_eq!(c.customer.name, None);
        assert_eq!(
            c.due_at,
            "2026-11-24T17:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert_eq!(c.status, Status::Open);
    }

    #[test]
    fn local_due_times_use_the_row_zone_first() {
        let mut row = good_row();
        row.timezone = Some("America/New_York".into());
        let c = row.check(&london()).unwrap();
        assert_eq!(
            c.due_at,
            "2026-11-24T22:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn the_customer_reads_times_in_the_commitments_zone_else_the_calendars() {
        let mut row = good_row();
        assert_eq!(row.check(&london()).unwrap().zone(&london()), &london());
        row.timezone = Some("America/New_York".into());
        let c = row.check(&london()).unwrap();
        assert_eq!(c.zone(&london()).iana_name(), Some("America/New_York"));
    }

    #[test]
    fn every_problem_in_a_bad_row_is_named() {
        let row = StoredCommitment {
            id: 9,
            owner: Some("not an address".into()),
            due_at: Some("tomorrow-ish".into()),
            status: Some("pending".into()),
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        };
        let problems = row.check(&london()).unwrap_err();
        let all = problems.join("\n");
        for needle in ["title", "owner", "customer", "due_at", "status", "timezone"] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
    }

    #[test]
    fn an_address_whose_domain_has_no_dot_is_refused_but_localhost() {
        for text in ["joan.patel@example", "Team <team@hughes>"] {
            let err = parse_mailbox(text).unwrap_err();
            assert!(err.contains("has no dot in its domain"), "{err}");
        }
        let err = parse_mailbox("team@hughes").unwrap_err();
        assert!(err.starts_with("'team@hughes' "), "{err}");
        assert!(err.contains("hughes.com"), "{err}");
        assert!(parse_mailbox("root@localhost").is_ok());
        assert!(parse_mailbox("Root <root@LocalHost>").is_ok());
        assert!(parse_mailbox("joan.patel@example.com").is_ok());
    }

    #[test]
    fn a_row_with_a_dotless_domain_names_the_column() {
        let mut row = good_row();
        row.customer = Some("team@hughes".into());
        let problems = row.check(&london()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("customer: 'team@hughes'"),
            "{problems:?}"
        );
    }

    #[test]
    fn names_cannot_smuggle_headers() {
        let mb = parse_mailbox("Zoë Ångström\r\nBcc: evil@example.net <zoe@example.org>").unwrap();
        assert_eq!(
            mb.name.as_deref(),
            Some("Zoë Ångström Bcc: evil@example.net")
        );
        assert_eq!(mb.email.to_string(), "zoe@example.org");
        assert!(parse_mailbox("Joe <joe@@example.org>").is_err());
        assert_eq!(one_line("a\r\nb\tc  d"), "a b c d");
    }
}
