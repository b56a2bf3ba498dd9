//! The Open page: one commitment as `followup show` prints it (its facts, the moves of
//! its due time and its edits with who and how, its timeline, its emails), read-only.

use jiff::Timestamp;

use super::forms::paragraph;
use super::html::{escape, facts, table};
use crate::actions::{self, CommitmentState, how};
use crate::calendar::{Calendar, humanize};
use crate::config::Config;
use crate::store::{CommitmentView, RevisionRecord};

/// The body of the Open page for `state`, read with `view` (title: the commitment's).
pub fn body(
    config: &Config,
    state: &CommitmentState,
    view: &CommitmentView,
    now: Timestamp,
) -> String {
    let cal = &config.calendar;
    let c = &state.commitment;
    let id = c.id;
    let due = if c.due_at > now {
        format!("{} (in {})", cal.display(c.due_at), humanize(now, c.due_at))
    } else {
        format!(
            "{} ({} ago)",
            cal.display(c.due_at),
            humanize(c.due_at, now)
        )
    };
    let mut out = facts(&[
        ("Status", c.status.to_string()),
        ("Due", due),
        ("Customer", c.customer.to_string()),
        ("Owner", c.owner.to_string()),
        ("Kind", c.kind.clone().unwrap_or_default()),
        ("Ref", c.external_ref.clone().unwrap_or_default()),
        ("Rule", state.rule.clone().unwrap_or_default()),
        (
            "Snoozed until",
            state
                .snoozed_until
                .map(|at| cal.display(at))
                .unwrap_or_default(),
        ),
        ("Reason", c.reason.clone().unwrap_or_default()),
        ("Note", c.note.trim().to_string()),
        ("Number", id.to_string()),
    ]);
    if let Some(closed) = &state.closed {
        out.push_str(&paragraph(&sentence(&closed.describe(cal)), Some("done")));
    }

    let revisions = &view.revisions;
    let zone = c.zone(cal.zone()).clone();
    let due_text = |stored: &str| match crate::when::parse_stored(stored, &zone) {
        Ok(at) => cal.display(at),
        Err(_) => stored.to_string(),
    };
    if !revisions.is_empty() {
        out.push_str("<h2>What was done</h2>\n");
        let rows: Vec<Vec<String>> = revisions
            .iter()
            .map(|r| {
                vec![
                    cal.display(r.created_at),
                    what(r, cal, &due_text),
                    who(r),
                    r.undone
                        .clone()
                        .or_else(|| r.reason.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(&["When", "What", "Who", "Why"], &rows));
    }

    out.push_str(&format!(
        "<h2>Timeline ({})</h2>\n",
        escape(cal.zone_name())
    ));
    let steps = &view.steps;
    if steps.is_empty() {
        out.push_str(&paragraph("No steps.", Some("note")));
    } else {
        let rows: Vec<Vec<String>> = steps
            .iter()
            .map(|s| {
                vec![
                    cal.display(s.fire_at),
                    format!("{}: {}", s.kind.as_str().replace('_', " "), s.label),
                    s.state_shown(),
                    s.reason.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(&["When", "Step", "State", "Why"], &rows));
    }

    out.push_str("<h2>Emails</h2>\n");
    let emails = &view.deliveries;
    if emails.is_empty() {
        out.push_str(&paragraph("None yet.", Some("note")));
    } else {
        let rows: Vec<Vec<String>> = emails
            .iter()
            .map(|d| {
                let detail = match &d.last_error {
                    Some(e) => format!("{} [{e}]", d.subject),
                    None => d.subject.clone(),
                };
                vec![
                    cal.display(d.sent_at.unwrap_or(d.created_at)),
                    d.recipient.clone(),
                    d.state.clone(),
                    detail,
                ]
            })
            .collect();
        out.push_str(&table(&["When", "To", "State", "Subject"], &rows));
    }
    out
}

/// What a revision did, in a few words.
fn what(r: &RevisionRecord, cal: &Calendar, due_text: &dyn Fn(&str) -> String) -> String {
    if !r.changes.is_empty() {
        let changes: Vec<String> = r.changes.iter().map(actions::describe).collect();
        return format!("edited {}", changes.join("; "));
    }
    let action = r.action.as_deref().unwrap_or("delay");
    if r.old_due != r.new_due {
        let told = if r.undone.is_some() {
            ", undone: customer not told"
        } else if r.notify || r.automatic {
            ", customer told"
        } else {
            ", customer not told"
        };
        return format!(
            "{action}: due {} -> {}{told}",
            due_text(&r.old_due),
            due_text(&r.new_due)
        );
    }
    match (action, &r.step_key, r.until_at) {
        ("snooze", _, Some(until)) => format!("snoozed reminders until {}", cal.display(until)),
        (action, Some(key), _) => format!("{action} {key}"),
        (action, None, _) => action.to_string(),
    }
}

/// Who took a revision's action and how: `ana@example.com (by email link)`.
fn who(r: &RevisionRecord) -> String {
    match (&r.actor, &r.via) {
        (Some(actor), Some(via)) => format!("{actor} ({})", how(via)),
        (Some(actor), None) => actor.clone(),
        (None, Some(via)) => how(via),
        (None, None) => r.source.clone(),
    }
}

/// `text` with its first letter in capitals, as a sentence starts.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}
