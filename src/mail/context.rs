//! The values templates see. One documented set for every template
//! ([`super::templates::VARIABLES`]); times are shown in the calendar's zone.

use jiff::Timestamp;
use serde::Serialize;

use crate::calendar::{Calendar, humanize};
use crate::commitment::Commitment;
use crate::planner::StepKind;

/// The whole template context.
#[derive(Debug, Serialize)]
pub struct Context {
    /// "Due in 2 hours", "Due now", "Overdue by 1 day".
    pub headline: String,
    /// The commitment.
    pub commitment: CommitmentView,
    /// The step being sent.
    pub step: StepView,
    /// Commands that act on the commitment, ready to paste.
    pub commands: Commands,
}

/// A commitment as templates see it.
#[derive(Debug, Serialize)]
pub struct CommitmentView {
    /// Row id.
    pub id: i64,
    /// What was promised.
    pub title: String,
    /// Owner as `Name <address>`.
    pub owner: String,
    /// Owner's name, or the address when there is none.
    pub owner_name: String,
    /// Owner's address.
    pub owner_email: String,
    /// Customer as `Name <address>`.
    pub customer: String,
    /// Customer's name, or the address when there is none.
    pub customer_name: String,
    /// Customer's address.
    pub customer_email: String,
    /// Kind, if any.
    pub kind: Option<String>,
    /// Notes (may span lines; empty when none).
    pub note: String,
    /// External reference, if any.
    pub r#ref: Option<String>,
    /// Due time in the calendar's zone, e.g. `Tue 24 Nov 2026 17:00 GMT`.
    pub due: String,
    /// Due time as RFC 3339.
    pub due_iso: String,
    /// Distance between now and the due time, e.g. `2 hours`.
    pub due_in: String,
    /// The zone times are shown in.
    pub timezone: String,
    /// open, done or cancelled.
    pub status: String,
}

/// The step as templates see it.
#[derive(Debug, Serialize)]
pub struct StepView {
    /// remind, overdue, ...
    pub kind: String,
    /// `-2h`, `overdue 1 of 3`.
    pub label: String,
    /// The rule that planned it.
    pub rule: String,
    /// When it was planned for, in the calendar's zone.
    pub planned: String,
    /// True when it goes out after its time because the daemon was not running.
    pub late: bool,
}

/// Commands quoted in mail.
#[derive(Debug, Serialize)]
pub struct Commands {
    /// Mark it done.
    pub done: String,
    /// See it.
    pub show: String,
    /// Cancel it.
    pub cancel: String,
}

/// Which step is being sent, for the context.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// What the step does.
    pub kind: StepKind,
    /// Its label.
    pub label: String,
    /// Its rule.
    pub rule: String,
    /// When it was planned for.
    pub planned_at: Timestamp,
    /// Whether it goes out late.
    pub late: bool,
}

fn name_or_address(mailbox: &lettre::message::Mailbox) -> String {
    mailbox
        .name
        .clone()
        .unwrap_or_else(|| mailbox.email.to_string())
}

/// "Due in 2 hours" / "Due now" / "Overdue by 1 day", as seen at `now`.
pub fn headline(due: Timestamp, now: Timestamp) -> String {
    let slack = jiff::SignedDuration::from_secs(1);
    let until = now.duration_until(due);
    if until > slack {
        format!("Due in {}", humanize(now, due))
    } else if until < -slack {
        format!("Overdue by {}", humanize(due, now))
    } else {
        "Due now".to_string()
    }
}

/// The context for `step` of `commitment`, composed at `now`.
pub fn context(
    commitment: &Commitment,
    step: &StepInfo,
    calendar: &Calendar,
    command: &str,
    now: Timestamp,
) -> Context {
    let id = commitment.id;
    Context {
        headline: headline(commitment.due_at, now),
        commitment: CommitmentView {
            id,
            title: commitment.title.clone(),
            owner: commitment.owner.to_string(),
            owner_name: name_or_address(&commitment.owner),
            owner_email: commitment.owner.email.to_string(),
            customer: commitment.customer.to_string(),
            customer_name: name_or_address(&commitment.customer),
            customer_email: commitment.customer.email.to_string(),
            kind: commitment.kind.clone(),
            note: commitment.note.clone(),
            r#ref: commitment.external_ref.clone(),
            due: calendar.display(commitment.due_at),
            due_iso: crate::when::format_stored(commitment.due_at, calendar.zone()),
            due_in: humanize(now, commitment.due_at),
            timezone: calendar.zone_name().to_string(),
            status: commitment.status.to_string(),
        },
        step: StepView {
            kind: step.kind.to_string(),
            label: step.label.clone(),
            rule: step.rule.clone(),
            planned: calendar.display(step.planned_at),
            late: step.late,
        },
        commands: Commands {
            done: format!("{command} done {id}"),
            show: format!("{command} show {id}"),
            cancel: format!("{command} cancel {id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn headlines_say_how_far_the_due_time_is() {
        let due = ts("2026-11-24T17:00:00Z");
        assert_eq!(headline(due, ts("2026-11-24T15:00:00Z")), "Due in 2 hours");
        assert_eq!(headline(due, ts("2026-11-24T17:00:01Z")), "Due now");
        assert_eq!(
            headline(due, ts("2026-11-25T17:00:00Z")),
            "Overdue by 1 day"
        );
    }
}
