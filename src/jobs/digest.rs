//! The digest: for each owner with open work, one email listing what is overdue (and by
//! how much), what is due today, what is due in the next 7 days, and the updates sent to
//! their customers since the last digest. It also lists the owner's own emails that
//! failed for good since then: no other email can tell them. Owners with neither get
//! nothing. Pure: the caller passes the commitments, the updates, the failures and the
//! time.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use lettre::message::Mailbox;
use serde::Serialize;

use crate::calendar::{Calendar, humanize};
use crate::commitment::Commitment;
use crate::mail::context::{LinksView, name_or_address};
use crate::web::link::Links;

/// One commitment in a digest.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Item {
    /// Commitment id.
    pub id: i64,
    /// What was promised.
    pub title: String,
    /// To whom, `Name <address>`.
    pub customer: String,
    /// Due time in the calendar's zone.
    pub due: String,
    /// `2 hours late` or `in 3 hours`.
    pub when: String,
    /// The command that marks it done.
    pub done: String,
    /// Links that act on it, made for the digest's recipient; null without pages.
    pub links: Option<LinksView>,
}

/// An update sent to a customer since the last digest.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UpdateItem {
    /// Commitment id.
    pub id: i64,
    /// What was promised.
    pub title: String,
    /// To whom.
    pub customer: String,
    /// When it was sent, in the calendar's zone.
    pub sent: String,
    /// Its subject.
    pub subject: String,
}

/// An email to the owner that failed for good since the last digest.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FailedItem {
    /// Commitment id.
    pub id: i64,
    /// What was promised.
    pub title: String,
    /// When it failed, in the calendar's zone.
    pub failed: String,
    /// Its subject.
    pub subject: String,
    /// Why it failed.
    pub error: String,
}

/// One owner's digest.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnerDigest {
    /// The owner.
    pub owner: Mailbox,
    /// Past due, most overdue first.
    pub overdue: Vec<Item>,
    /// Due later today (in the calendar's zone).
    pub today: Vec<Item>,
    /// Due after today and within 7 days.
    pub week: Vec<Item>,
    /// Open and due later than that.
    pub later: usize,
    /// Updates sent to their customers since the last digest.
    pub updates: Vec<UpdateItem>,
    /// Their own emails that failed for good since the last digest.
    pub failed: Vec<FailedItem>,
}

/// An update sent to a customer: the commitment, when, and its subject.
pub type SentUpdate = (Commitment, Timestamp, String);

/// An owner's own email that failed for good: the commitment, when, its subject and
/// the error.
pub type FailedMail = (Commitment, Timestamp, String, String);

/// One digest per owner of an open commitment in `open` or of an email in `failed`, in
/// order of the owner's address. `updates` are the updates sent since the last digest,
/// of any commitment; `failed` the owners' own emails that failed for good since then.
pub fn build(
    open: &[Commitment],
    updates: &[SentUpdate],
    failed: &[FailedMail],
    calendar: &Calendar,
    command: &str,
    now: Timestamp,
) -> Vec<OwnerDigest> {
    let zone = calendar.zone();
    let today = now.to_zoned(zone.clone()).date();
    let week_end = now + SignedDuration::from_hours(7 * 24);
    let mut digests: BTreeMap<String, OwnerDigest> = BTreeMap::new();
    let mut sorted: Vec<&Commitment> = open.iter().collect();
    sorted.sort_by_key(|c| (c.due_at, c.id));
    for c in sorted {
        let digest = of_owner(&mut digests, &c.owner);
        let item = |when: String| Item {
            id: c.id,
            title: c.title.clone(),
            customer: c.customer.to_string(),
            due: calendar.display(c.due_at),
            when,
            done: format!("{command} done {}", c.id),
            links: None,
        };
        if c.due_at <= now {
            digest
                .overdue
                .push(item(format!("{} late", humanize(c.due_at, now))));
        } else if c.due_at.to_zoned(zone.clone()).date() == today {
            digest
                .today
                .push(item(format!("in {}", humanize(now, c.due_at))));
        } else if c.due_at <= week_end {
            digest
                .week
                .push(item(format!("in {}", humanize(now, c.due_at))));
        } else {
            digest.later += 1;
        }
    }
    for (c, sent, subject) in updates {
        if let Some(digest) = digests.get_mut(&c.owner.email.to_string().to_lowercase()) {
            digest.updates.push(UpdateItem {
                id: c.id,
                title: c.title.clone(),
                customer: c.customer.to_string(),
                sent: calendar.display(*sent),
                subject: subject.clone(),
            });
        }
    }
    for (c, at, subject, error) in failed {
        of_owner(&mut digests, &c.owner).failed.push(FailedItem {
            id: c.id,
            title: c.title.clone(),
            failed: calendar.display(*at),
            subject: subject.clone(),
            error: error.clone(),
        });
    }
    digests.into_values().collect()
}

/// The digest of `owner`, started empty if there is none yet.
fn of_owner<'a>(
    digests: &'a mut BTreeMap<String, OwnerDigest>,
    owner: &Mailbox,
) -> &'a mut OwnerDigest {
    digests
        .entry(owner.email.to_string().to_lowercase())
        .or_insert_with(|| OwnerDigest {
            owner: owner.clone(),
            overdue: Vec::new(),
            today: Vec::new(),
            week: Vec::new(),
            later: 0,
            updates: Vec::new(),
            failed: Vec::new(),
        })
}

/// The template context of one digest.
#[derive(Debug, Serialize)]
pub struct DigestContext {
    /// The owner.
    pub owner: Person,
    /// Today's date in the calendar's zone, e.g. `Mon 30 Nov 2026`.
    pub date: String,
    /// Past due.
    pub overdue: Vec<Item>,
    /// Due later today.
    pub today: Vec<Item>,
    /// Due within 7 days.
    pub week: Vec<Item>,
    /// Open and due later.
    pub later: usize,
    /// Updates sent since the last digest.
    pub updates: Vec<UpdateItem>,
    /// The owner's own emails that failed for good since the last digest.
    pub failed: Vec<FailedItem>,
    /// Commands for the whole list.
    pub commands: DigestCommands,
}

/// A person in a job's email.
#[derive(Debug, Serialize)]
pub struct Person {
    /// Name, or the address when there is none.
    pub name: String,
    /// Address.
    pub email: String,
}

/// Commands quoted in a digest.
#[derive(Debug, Serialize)]
pub struct DigestCommands {
    /// List open commitments.
    pub list: String,
}

impl OwnerDigest {
    /// The template context for this digest; with `links`, each item carries links for
    /// the digest's recipient.
    pub fn context(
        &self,
        calendar: &Calendar,
        command: &str,
        links: Option<&Links>,
        now: Timestamp,
    ) -> DigestContext {
        let recipient = self.owner.email.to_string();
        let with_links = |items: &[Item]| -> Vec<Item> {
            items
                .iter()
                .map(|item| Item {
                    links: links.map(|l| LinksView::new(l, item.id, &recipient, now)),
                    ..item.clone()
                })
                .collect()
        };
        DigestContext {
            owner: Person {
                name: name_or_address(&self.owner),
                email: self.owner.email.to_string(),
            },
            date: now
                .to_zoned(calendar.zone().clone())
                .strftime("%a %-d %b %Y")
                .to_string(),
            overdue: with_links(&self.overdue),
            today: with_links(&self.today),
            week: with_links(&self.week),
            later: self.later,
            updates: self.updates.clone(),
            failed: self.failed.clone(),
            commands: DigestCommands {
                list: format!("{command} list"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::{Status, parse_mailbox};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn open(id: i64, owner: &str, due: &str) -> Commitment {
        Commitment {
            id,
            title: format!("Promise {id}"),
            owner: parse_mailbox(owner).unwrap(),
            customer: parse_mailbox("Joe <joe@example.org>").unwrap(),
            timezone: None,
            due_at: ts(due),
            kind: None,
            status: Status::Open,
            note: String::new(),
            external_ref: None,
            reason: None,
            created_at: ts("2026-11-01T00:00:00Z"),
            done_at: None,
            promise: None,
            outcome: None,
            closed_at: None,
            waiting_since: None,
        }
    }

    #[test]
    fn each_owner_gets_their_work_in_sections() {
        let cal = Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap());
        let now = ts("2026-11-30T08:00:00Z");
        let commitments = [
            open(1, "Ana <ana@example.com>", "2026-11-29T10:00:00Z"),
            open(2, "ana@example.com", "2026-11-30T15:00:00Z"),
            open(3, "ana@example.com", "2026-12-03T12:00:00Z"),
            open(4, "ana@example.com", "2026-12-20T12:00:00Z"),
            open(5, "bob@example.com", "2026-11-30T07:00:00Z"),
        ];
        let updates = [(
            commitments[0].clone(),
            ts("2026-11-29T09:00:00Z"),
            "Update on Promise 1".to_string(),
        )];
        let digests = build(&commitments, &updates, &[], &cal, "followup", now);
        assert_eq!(digests.len(), 2);
        let ana = &digests[0];
        assert_eq!(ana.owner.email.to_string(), "ana@example.com");
        assert_eq!(ana.overdue.iter().map(|i| i.id).collect::<Vec<_>>(), [1]);
        assert_eq!(ana.overdue[0].when, "22 hours late");
        assert_eq!(ana.today.iter().map(|i| i.id).collect::<Vec<_>>(), [2]);
        assert_eq!(ana.week.iter().map(|i| i.id).collect::<Vec<_>>(), [3]);
        assert_eq!(ana.later, 1);
        assert_eq!(ana.updates.len(), 1);
        let bob = &digests[1];
        assert_eq!(bob.overdue.len(), 1);
        assert!(bob.updates.is_empty());
    }

    #[test]
    fn an_owner_with_nothing_open_gets_no_digest() {
        let cal = Calendar::new(jiff::tz::TimeZone::UTC);
        assert!(build(&[], &[], &[], &cal, "followup", ts("2026-11-30T08:00:00Z")).is_empty());
    }

    #[test]
    fn an_owners_own_failed_email_is_listed_even_with_nothing_open() {
        let cal = Calendar::new(jiff::tz::TimeZone::UTC);
        let now = ts("2026-11-30T08:00:00Z");
        let mut done = open(7, "Ana <ana@example.com>", "2026-11-29T10:00:00Z");
        done.status = Status::Done;
        let failed = [(
            done,
            ts("2026-11-29T10:00:05Z"),
            "Due now: the quote".to_string(),
            "500 Line too long".to_string(),
        )];
        let digests = build(&[], &[], &failed, &cal, "followup", now);
        assert_eq!(digests.len(), 1);
        assert_eq!(digests[0].owner.email.to_string(), "ana@example.com");
        assert_eq!(digests[0].failed.len(), 1);
        assert_eq!(digests[0].failed[0].id, 7);
        assert_eq!(digests[0].failed[0].error, "500 Line too long");
    }

    #[test]
    fn with_pages_each_item_carries_links_for_the_digests_recipient() {
        let cal = Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap());
        let now = ts("2026-11-30T08:00:00Z");
        let commitments = [
            open(1, "Ana <Ana@Example.com>", "2026-11-29T10:00:00Z"),
            open(2, "ana@example.com", "2026-11-30T15:00:00Z"),
            open(3, "ana@example.com", "2026-12-03T12:00:00Z"),
        ];
        let digests = build(&commitments, &[], &[], &cal, "followup", now);
        let key = [3; crate::web::link::KEY_LEN];
        let links = Links::new(
            crate::web::link::Signer::new(&key),
            "https://followup.example.com",
            SignedDuration::from_hours(24),
        );
        let templates = crate::mail::Templates::builtin();
        let ctx = digests[0].context(&cal, "followup", Some(&links), now);
        let text = templates.render("digest", &ctx).unwrap().text;
        let signer = crate::web::link::Signer::new(&key);
        let claims: Vec<_> = text
            .split("https://followup.example.com/a/")
            .skip(1)
            .map(|rest| {
                let token = rest.split_whitespace().next().unwrap();
                signer.verify(token, now).unwrap()
            })
            .collect();
        let of = |id: i64| -> Vec<&str> {
            claims
                .iter()
                .filter(|c| c.commitment == id)
                .map(|c| c.action.as_str())
                .collect()
        };
        assert_eq!(of(1), ["done", "delay", "snooze", "open"], "{text}");
        assert_eq!(of(2), ["done", "delay", "open"], "{text}");
        assert_eq!(of(3), ["open"], "{text}");
        assert!(claims.iter().all(|c| c.recipient == "ana@example.com"));
        assert!(!text.contains("done? followup done 1"), "{text}");

        let ctx = digests[0].context(&cal, "followup", None, now);
        let text = templates.render("digest", &ctx).unwrap().text;
        assert!(text.contains("done? followup done 1"), "{text}");
        assert!(!text.contains("/a/"), "{text}");
    }
}
