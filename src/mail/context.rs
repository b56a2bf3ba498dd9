//! The values templates see: one documented set for every template
//! ([`super::templates::VARIABLES`]) plus a group for customer updates (`update`) and
//! one for missed promises (`missed`). Times are shown in the zone of the reader: the
//! customer's own zone in customer mail, the calendar's zone otherwise.
//!
//! The business's own people also get `links`: one capability link per action, made
//! for the email's recipient. A customer's context never has them.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lettre::message::Mailbox;
use serde::Serialize;

use crate::calendar::{display_in, humanize};
use crate::commitment::{Commitment, one_line};
use crate::config::Business;
use crate::customer::{Promise, Standing};
use crate::planner::StepKind;
use crate::web::link::{Action, Links};
use crate::when::{day_in_words, time_in_words};

/// The whole template context.
#[derive(Debug, Serialize)]
pub struct Context {
    /// "Due in 2 hours", "Due now", "Overdue by 1 day".
    pub headline: String,
    /// Who this copy is for.
    pub recipient: RecipientView,
    /// The commitment.
    pub commitment: CommitmentView,
    /// The customer's standing with the business.
    pub customer: CustomerView,
    /// Who signs customer mail (`[business]`).
    pub business: BusinessView,
    /// The lines customer mail is signed with: the owner's name, then the business's
    /// name, phone, website and signature, each when set.
    pub sign_off: String,
    /// The step being sent.
    pub step: StepView,
    /// Commands that act on the commitment, ready to paste.
    pub commands: Commands,
    /// Links that act on the commitment from the email; `None` (null, so templates can
    /// test it) in customer mail and when the daemon serves no pages.
    pub links: Option<LinksView>,
    /// The owner's say before a customer update goes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ask: Option<AskView>,
    /// Customer updates and the owner's copy of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<UpdateView>,
    /// Alerts and escalations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<MissedView>,
    /// The notice that an email failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// `failure.*` in templates: an email that failed for good.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Its recipient.
    pub recipient: String,
    /// customer, team, escalation.
    pub audience: String,
    /// Its subject.
    pub subject: String,
    /// The last error.
    pub error: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// For a customer update that bounced: the move of the due time the customer never
    /// heard of.
    pub update: Option<BouncedUpdate>,
}

/// `failure.update.*`: a customer update that did not reach the customer, so its move
/// of the due time was undone.
#[derive(Debug, Clone, Serialize)]
pub struct BouncedUpdate {
    /// The promise the customer still holds: the due time before the update.
    pub promise: String,
    /// The due time the update would have given them.
    pub not_told: String,
    /// True if the due time went back to `promise`; false if it was moved again since
    /// (by hand, say), and stays where that put it.
    pub restored: bool,
    /// The due time now.
    pub due: String,
}

/// `business.*` in templates: `[business]` as configured; each null when left out.
#[derive(Debug, Serialize)]
pub struct BusinessView {
    /// The business's name.
    pub name: Option<String>,
    /// Its phone number.
    pub phone: Option<String>,
    /// Its website.
    pub website: Option<String>,
    /// The lines it signs with under its name and contacts.
    pub signature: Option<String>,
}

impl BusinessView {
    fn new(business: &Business) -> BusinessView {
        BusinessView {
            name: business.name.clone(),
            phone: business.phone.clone(),
            website: business.website.clone(),
            signature: business.signature.clone(),
        }
    }
}

/// The sign-off of customer mail: `owner_name`, then the business's name and contacts,
/// one a line.
pub fn sign_off(owner_name: &str, business: &Business) -> String {
    let mut lines = vec![owner_name];
    lines.extend(business.name.as_deref());
    lines.extend(business.phone.as_deref());
    lines.extend(business.website.as_deref());
    lines.extend(business.signature.as_deref());
    lines.join("\n")
}

/// The recipient of this copy.
#[derive(Debug, Serialize)]
pub struct RecipientView {
    /// Name, or the address when there is none.
    pub name: String,
    /// Address.
    pub email: String,
}

/// A commitment as templates see it.
#[derive(Debug, Serialize)]
pub struct CommitmentView {
    /// Row id.
    pub id: i64,
    /// What was promised, in the business's words.
    pub title: String,
    /// What the customer was promised, in their words: the promise, else the title.
    /// Customer mail uses this, never `title`.
    pub promise: String,
    /// True if a promise was recorded (`promise` is not the title).
    pub has_promise: bool,
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
    /// Why it may be late, in words for the customer, if given.
    pub reason: Option<String>,
    /// Due time in the reader's zone, e.g. `Tue 24 Nov 2026 17:00 GMT`; in customer
    /// mail in words, from now: `tomorrow, Wed 2 Dec, 10:00`.
    pub due: String,
    /// Due time as RFC 3339.
    pub due_iso: String,
    /// Distance between now and the due time, e.g. `2 hours`.
    pub due_in: String,
    /// When it was done, in the reader's zone, if it was.
    pub done: Option<String>,
    /// The day it was done, measured from now for the middle of a sentence: "earlier
    /// today", "yesterday", "on Mon 30 Nov"; none while not done.
    pub done_when: Option<String>,
    /// The zone times are shown in.
    pub timezone: String,
    /// open, done or cancelled.
    pub status: String,
}

/// `customer.*` in templates: the customer as this email sees them, so that a business
/// may thank a long-standing customer and the team take care with one let down lately.
#[derive(Debug, Serialize)]
pub struct CustomerView {
    /// Their name, or the address when there is none.
    pub name: String,
    /// The day their first commitment was recorded, in the reader's zone: `3 March 2019`.
    pub since: String,
    /// Percent of their settled promises kept (on time or after notice); none until
    /// one is settled.
    pub kept_percent: Option<u32>,
    /// How many of their promises besides this one are open.
    pub open: usize,
    /// Those promises.
    pub open_promises: Vec<PromiseView>,
    /// Their promises besides this one missed in the last 90 days.
    pub missed_recent: Vec<PromiseView>,
}

/// One of the customer's other promises, in `customer.open_promises` and
/// `customer.missed_recent`.
#[derive(Debug, Serialize)]
pub struct PromiseView {
    /// Its id.
    pub id: i64,
    /// The internal title.
    pub title: String,
    /// What the customer was promised, or the title when nothing was said.
    pub promise: String,
    /// Its due time now, in the reader's zone.
    pub due: String,
    /// When it was done, if it was.
    pub done: Option<String>,
    /// open, done or cancelled.
    pub status: String,
    /// kept on time, kept after notice, missed, open.
    pub how: String,
}

impl CustomerView {
    /// The view of `standing` for an email about `commitment`, times in `zone`.
    pub fn new(standing: &Standing, commitment: &Commitment, zone: &TimeZone) -> CustomerView {
        let since = standing
            .since
            .map_or(commitment.created_at, |at| at.min(commitment.created_at));
        let promises = |list: &[Promise]| {
            list.iter()
                .map(|p| PromiseView {
                    id: p.id,
                    title: p.title.clone(),
                    promise: p.promise.clone().unwrap_or_else(|| p.title.clone()),
                    due: display_in(zone, p.due_at),
                    done: p.done_at.map(|at| display_in(zone, at)),
                    status: p.status.to_string(),
                    how: p.kept.as_str().to_string(),
                })
                .collect()
        };
        CustomerView {
            name: name_or_address(&commitment.customer),
            since: since
                .to_zoned(zone.clone())
                .strftime("%-d %B %Y")
                .to_string(),
            kept_percent: standing.kept_percent,
            open: standing.open_promises.len(),
            open_promises: promises(&standing.open_promises),
            missed_recent: promises(&standing.missed_recent),
        }
    }
}

/// The step as templates see it.
#[derive(Debug, Serialize)]
pub struct StepView {
    /// remind, overdue, customer_update, ...
    pub kind: String,
    /// `-2h`, `overdue 1 of 3`, ...
    pub label: String,
    /// The rule that planned it.
    pub rule: String,
    /// When it was planned for, in the reader's zone.
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
    /// Move the due time and tell the customer.
    pub delay: String,
    /// Record the reason the customer is given.
    pub reason: String,
}

/// `links.*` in templates: one URL per action, for one recipient. `send_now` and
/// `hold` only in the owner's say before a customer update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinksView {
    /// Mark it done.
    pub done: String,
    /// Move the due time and tell the customer.
    pub delay: String,
    /// Stop the reminders for a while.
    pub snooze: String,
    /// Cancel it.
    pub cancel: String,
    /// Its page: timeline, emails, revisions.
    pub open: String,
    /// Close it with how it ended.
    pub close: String,
    /// Pause its clock while waiting on the customer.
    pub wait: String,
    /// Restart its clock after waiting.
    pub resume: String,
    /// Send the customer update asked about now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_now: Option<String>,
    /// Hold that update back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

impl LinksView {
    /// The links letting `recipient` act on `commitment`, made at `now` (they expire
    /// the links' lifetime after it).
    pub fn new(links: &Links, commitment: i64, recipient: &str, now: Timestamp) -> LinksView {
        let url = |action| links.url(commitment, recipient, action, now);
        LinksView {
            done: url(Action::Done),
            delay: url(Action::Delay),
            snooze: url(Action::Snooze),
            cancel: url(Action::Cancel),
            open: url(Action::Open),
            close: url(Action::Close),
            wait: url(Action::Wait),
            resume: url(Action::Resume),
            send_now: None,
            hold: None,
        }
    }

    /// With the links that answer the owner's say: send the update now, or hold it.
    pub fn with_update_actions(
        mut self,
        links: &Links,
        commitment: i64,
        recipient: &str,
        now: Timestamp,
    ) -> LinksView {
        self.send_now = Some(links.url(commitment, recipient, Action::SendNow, now));
        self.hold = Some(links.url(commitment, recipient, Action::Hold, now));
        self
    }
}

/// `ask.*` in templates: the customer update the owner is asked about.
#[derive(Debug, Serialize)]
pub struct AskView {
    /// How long until it goes, e.g. `2 hours`.
    pub goes_in: String,
    /// When it goes, in the reader's zone.
    pub goes_at: String,
    /// Which automatic update it is (`N` of the step `customer_update#N`).
    pub update: u32,
    /// The command that sends it now.
    pub send_now: String,
    /// The command that holds it back.
    pub hold: String,
}

/// A move of the due time the customer is told of.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// Which automatic update this is (0 for a delay recorded by hand).
    pub number: u32,
    /// At most this many automatic updates.
    pub max: u32,
    /// The first due time ever promised.
    pub original_due: Timestamp,
    /// The due time being given up.
    pub previous_due: Timestamp,
    /// The new expected time.
    pub new_due: Timestamp,
    /// Why, if the owner said.
    pub reason: Option<String>,
}

/// `update.*` in templates.
#[derive(Debug, Serialize)]
pub struct UpdateView {
    /// Which automatic update this is (0 for a delay recorded by hand).
    pub number: u32,
    /// At most this many automatic updates.
    pub max: u32,
    /// The first due time promised.
    pub original_due: String,
    /// The due time given up.
    pub previous_due: String,
    /// The new expected time.
    pub new_due: String,
    /// Why, if the owner said.
    pub reason: Option<String>,
    /// What the customer got (owner's copy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_subject: Option<String>,
    /// What the customer got (owner's copy only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_text: Option<String>,
}

/// `missed.*` in templates.
#[derive(Debug, Serialize)]
pub struct MissedView {
    /// How late, e.g. `4 hours`.
    pub by: String,
    /// The due time that passed.
    pub due: String,
}

/// Which step is being sent, for the context.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// What the step does.
    pub kind: StepKind,
    /// Its key, which tells the rule's after-done entries apart.
    pub key: String,
    /// Its label.
    pub label: String,
    /// Its rule.
    pub rule: String,
    /// When it was planned for.
    pub planned_at: Timestamp,
    /// Whether it goes out late.
    pub late: bool,
}

/// A name to address a person by: the name, or the address when there is none.
pub fn name_or_address(mailbox: &Mailbox) -> String {
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

/// Everything a context is made from.
pub struct Scene<'a> {
    /// The commitment.
    pub commitment: &'a Commitment,
    /// The step.
    pub step: &'a StepInfo,
    /// What the email says of the customer's other promises.
    pub customer: &'a Standing,
    /// Who this copy is for.
    pub recipient: &'a Mailbox,
    /// The zone the reader reads times in.
    pub zone: &'a TimeZone,
    /// Who signs customer mail.
    pub business: &'a Business,
    /// True in customer mail: times are said in words, relative to now
    /// ([`crate::when::time_in_words`]), as a person writes them.
    pub for_customer: bool,
    /// How to call the program, for commands.
    pub command: &'a str,
    /// The links to put in the email; `None` for a customer, or without pages.
    pub links: Option<&'a Links>,
    /// The moment of composing.
    pub now: Timestamp,
}

impl Scene<'_> {
    /// `at` as this reader reads it.
    fn time(&self, at: Timestamp) -> String {
        if self.for_customer {
            time_in_words(at, self.now, self.zone)
        } else {
            display_in(self.zone, at)
        }
    }

    /// The base context: everything but `update` and `missed`.
    pub fn context(&self) -> Context {
        let c = self.commitment;
        let zone = self.zone;
        let id = c.id;
        let command = self.command;
        let owner_name = name_or_address(&c.owner);
        let promise = c
            .promise
            .as_deref()
            .map(|p| one_line(p).trim_end_matches(['.', ' ']).to_string())
            .filter(|p| !p.is_empty());
        Context {
            headline: headline(c.due_at, self.now),
            recipient: RecipientView {
                name: name_or_address(self.recipient),
                email: self.recipient.email.to_string(),
            },
            commitment: CommitmentView {
                id,
                title: c.title.clone(),
                has_promise: promise.is_some(),
                promise: promise.unwrap_or_else(|| c.title.clone()),
                owner: c.owner.to_string(),
                owner_name: owner_name.clone(),
                owner_email: c.owner.email.to_string(),
                customer: c.customer.to_string(),
                customer_name: name_or_address(&c.customer),
                customer_email: c.customer.email.to_string(),
                kind: c.kind.clone(),
                note: c.note.clone(),
                r#ref: c.external_ref.clone(),
                reason: c.reason.clone(),
                due: self.time(c.due_at),
                due_iso: crate::when::format_stored(c.due_at, zone),
                due_in: humanize(self.now, c.due_at),
                done: c.done_at.map(|at| self.time(at)),
                done_when: c.done_at.map(|at| day_in_words(at, self.now, zone)),
                timezone: zone.iana_name().unwrap_or("UTC").to_string(),
                status: c.status.to_string(),
            },
            customer: CustomerView::new(self.customer, c, zone),
            business: BusinessView::new(self.business),
            sign_off: sign_off(&owner_name, self.business),
            step: StepView {
                kind: self.step.kind.to_string(),
                label: self.step.label.clone(),
                rule: self.step.rule.clone(),
                planned: display_in(zone, self.step.planned_at),
                late: self.step.late,
            },
            commands: Commands {
                done: format!("{command} done {id}"),
                show: format!("{command} show {id}"),
                cancel: format!("{command} cancel {id}"),
                delay: format!("{command} delay {id} --until WHEN --reason TEXT"),
                reason: format!("{command} note {id} --reason TEXT"),
            },
            links: self
                .links
                .map(|links| LinksView::new(links, id, self.recipient.email.as_ref(), self.now)),
            ask: None,
            update: None,
            missed: None,
            failure: None,
        }
    }

    /// `update.*` for this reader.
    pub fn update_view(&self, update: &Update) -> UpdateView {
        UpdateView {
            number: update.number,
            max: update.max,
            original_due: self.time(update.original_due),
            previous_due: self.time(update.previous_due),
            new_due: self.time(update.new_due),
            reason: update.reason.clone(),
            customer_subject: None,
            customer_text: None,
        }
    }

    /// `ask.*` for this reader: the update numbered `update` goes at `goes_at`.
    pub fn ask_view(&self, update: u32, goes_at: Timestamp) -> AskView {
        let (command, id) = (self.command, self.commitment.id);
        AskView {
            goes_in: humanize(self.now, goes_at),
            goes_at: display_in(self.zone, goes_at),
            update,
            send_now: format!("{command} send-now {id} --update {update}"),
            hold: format!("{command} hold {id} --update {update} --reason TEXT"),
        }
    }

    /// `missed.*` for this reader.
    pub fn missed_view(&self) -> MissedView {
        MissedView {
            by: humanize(self.commitment.due_at, self.now),
            due: display_in(self.zone, self.commitment.due_at),
        }
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
        assert_eq!(headline(due, ts("2026-11-24T17:00:00.500Z")), "Due now");
        assert_eq!(
            headline(due, ts("2026-11-25T17:00:00Z")),
            "Overdue by 1 day"
        );
    }
}
