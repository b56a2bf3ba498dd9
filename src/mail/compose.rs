//! What each step says, and to whom: the one place that maps a step to its emails. The
//! daemon sends what this returns; `followup preview` prints it. Pure: no clock, no I/O.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lettre::message::Mailbox;

use super::Audience;
use super::context::{Failure, Scene, StepInfo, Update};
use super::templates::{RenderError, Rendered, Templates};
use crate::calendar::Calendar;
use crate::commitment::Commitment;
use crate::planner::StepKind;
use crate::rule::{CheckInTo, CustomerUpdate, Rule};
use crate::store::RevisionRecord;
use crate::when::parse_stored;

/// The template a delay notice uses when the rule has no customer update of its own.
pub const DEFAULT_NOTICE_TEMPLATE: &str = "no_news_yet";

/// One email of a step, rendered.
#[derive(Debug, Clone)]
pub struct Email {
    /// Who it is for; each audience has its own thread.
    pub audience: Audience,
    /// The recipient.
    pub to: Mailbox,
    /// The template it came from.
    pub template: String,
    /// Subject and bodies.
    pub rendered: Rendered,
}

/// Everything a step's emails are made from.
pub struct Situation<'a> {
    /// The commitment.
    pub commitment: &'a Commitment,
    /// The rule that planned the step.
    pub rule: &'a Rule,
    /// The step.
    pub step: &'a StepInfo,
    /// The calendar (zone for owner and team mail).
    pub calendar: &'a Calendar,
    /// The templates.
    pub templates: &'a Templates,
    /// How to call the program, for commands in mail.
    pub command: &'a str,
    /// For customer updates and delay notices: the move of the due time.
    pub update: Option<&'a Update>,
    /// For failure notices: the email that failed.
    pub failure: Option<&'a Failure>,
    /// The moment of composing.
    pub now: Timestamp,
}

impl Situation<'_> {
    /// The zone the customer reads times in: the commitment's own, else the calendar's.
    pub fn customer_zone(&self) -> &TimeZone {
        self.commitment
            .timezone
            .as_ref()
            .unwrap_or(self.calendar.zone())
    }

    fn scene<'b>(&'b self, recipient: &'b Mailbox, zone: &'b TimeZone) -> Scene<'b> {
        Scene {
            commitment: self.commitment,
            step: self.step,
            recipient,
            zone,
            command: self.command,
            now: self.now,
        }
    }

    fn email(&self, audience: Audience, to: &Mailbox, template: &str, rendered: Rendered) -> Email {
        Email {
            audience,
            to: to.clone(),
            template: template.to_string(),
            rendered,
        }
    }

    /// Renders every email of the step.
    pub fn emails(&self) -> Result<Vec<Email>, RenderError> {
        let owner = &self.commitment.owner;
        let customer = &self.commitment.customer;
        let calendar_zone = self.calendar.zone();
        let customer_zone = self.customer_zone();
        match self.step.kind {
            StepKind::Remind | StepKind::Overdue => {
                let ctx = self.scene(owner, calendar_zone).context();
                let rendered = self.templates.render("owner_reminder", &ctx)?;
                Ok(vec![self.email(
                    Audience::Owner,
                    owner,
                    "owner_reminder",
                    rendered,
                )])
            }
            StepKind::CustomerUpdate | StepKind::DelayNotice => {
                let update = self
                    .update
                    .ok_or_else(|| RenderError::Missing("the update".into()))?;
                let template = match (&self.rule.customer_update, self.step.kind) {
                    (Some(CustomerUpdate { template, .. }), _) => template.as_str(),
                    (None, _) => DEFAULT_NOTICE_TEMPLATE,
                };
                let scene = self.scene(customer, customer_zone);
                let mut ctx = scene.context();
                ctx.update = Some(scene.update_view(update));
                let to_customer = self.templates.render(template, &ctx)?;
                let mut emails = Vec::new();
                if self.step.kind == StepKind::CustomerUpdate {
                    let scene = self.scene(owner, calendar_zone);
                    let mut ctx = scene.context();
                    let mut view = scene.update_view(update);
                    view.customer_subject = Some(to_customer.subject.clone());
                    view.customer_text = Some(to_customer.text.clone());
                    ctx.update = Some(view);
                    let rendered = self.templates.render("update_sent", &ctx)?;
                    emails.push(self.email(Audience::Owner, owner, "update_sent", rendered));
                }
                emails.insert(
                    0,
                    self.email(Audience::Customer, customer, template, to_customer),
                );
                Ok(emails)
            }
            StepKind::Alert | StepKind::Escalate => {
                let (audience, template, to) = match self.step.kind {
                    StepKind::Alert => (
                        Audience::Team,
                        "alert",
                        self.rule.alert.as_ref().map(|a| &a.to),
                    ),
                    _ => (
                        Audience::Escalation,
                        "escalation",
                        self.rule.escalate.as_ref().map(|e| &e.to),
                    ),
                };
                let to = to.ok_or_else(|| {
                    RenderError::Missing(format!("the rule's {template} recipients"))
                })?;
                to.iter()
                    .map(|recipient| {
                        let scene = self.scene(recipient, calendar_zone);
                        let mut ctx = scene.context();
                        ctx.missed = Some(scene.missed_view());
                        let rendered = self.templates.render(template, &ctx)?;
                        Ok(self.email(audience, recipient, template, rendered))
                    })
                    .collect()
            }
            StepKind::AskOwner => Err(RenderError::Missing("the owner's say".into())),
            StepKind::DeliveryFailed => {
                let failure = self
                    .failure
                    .ok_or_else(|| RenderError::Missing("the failed email".into()))?;
                let mut ctx = self.scene(owner, calendar_zone).context();
                ctx.failure = Some(failure.clone());
                let rendered = self.templates.render("delivery_failed", &ctx)?;
                Ok(vec![self.email(
                    Audience::Owner,
                    owner,
                    "delivery_failed",
                    rendered,
                )])
            }
            StepKind::CheckIn => {
                let check_in = self
                    .rule
                    .check_in
                    .as_ref()
                    .ok_or_else(|| RenderError::Missing("the rule's check_in".into()))?;
                let (audience, to, zone) = match check_in.to {
                    CheckInTo::Owner => (Audience::Owner, owner, calendar_zone),
                    CheckInTo::Customer => (Audience::Customer, customer, customer_zone),
                };
                let ctx = self.scene(to, zone).context();
                let rendered = self.templates.render(&check_in.template, &ctx)?;
                Ok(vec![self.email(audience, to, &check_in.template, rendered)])
            }
        }
    }
}

/// True if a step of `kind` under `rule` writes to the customer, so it must wait for
/// business hours.
pub fn writes_to_customer(kind: StepKind, rule: &Rule) -> bool {
    match kind {
        StepKind::CustomerUpdate | StepKind::DelayNotice => true,
        StepKind::CheckIn => rule
            .check_in
            .as_ref()
            .is_some_and(|c| c.to == CheckInTo::Customer),
        StepKind::Remind
        | StepKind::Overdue
        | StepKind::Alert
        | StepKind::Escalate
        | StepKind::AskOwner
        | StepKind::DeliveryFailed => false,
    }
}

/// The next automatic update of `commitment`: the due time moves by the rule's
/// `extend_by`, counted from the due time, or from `now` if that has passed already, so
/// the customer is never given a time that is already over.
pub fn next_update(
    commitment: &Commitment,
    rule: &CustomerUpdate,
    calendar: &Calendar,
    done_so_far: u32,
    original_due: Timestamp,
    now: Timestamp,
) -> Update {
    let base = commitment.due_at.max(now);
    let new_due = calendar.shift(base, &rule.extend_by).unwrap_or(base);
    Update {
        number: done_so_far + 1,
        max: rule.max,
        original_due,
        previous_due: commitment.due_at,
        new_due,
        reason: commitment.reason.clone(),
    }
}

/// For customer updates and delay notices, the move of the due time the customer hears
/// of; `None` for other steps. `key` is the step's key (a delay notice names its
/// revision), `revisions` the commitment's history, oldest first.
pub fn update_for(
    kind: StepKind,
    key: &str,
    commitment: &Commitment,
    rule: &Rule,
    calendar: &Calendar,
    revisions: &[RevisionRecord],
    now: Timestamp,
) -> Result<Option<Update>, String> {
    if !matches!(kind, StepKind::CustomerUpdate | StepKind::DelayNotice) {
        return Ok(None);
    }
    let zone = commitment.timezone.as_ref().unwrap_or(calendar.zone());
    let original_due = revisions
        .first()
        .and_then(|r| parse_stored(&r.old_due, zone).ok())
        .unwrap_or(commitment.due_at);
    if kind == StepKind::CustomerUpdate {
        let rule_update = rule
            .customer_update
            .as_ref()
            .ok_or_else(|| format!("rule \"{}\" no longer has a customer_update", rule.name))?;
        let done = revisions.iter().filter(|r| r.automatic).count() as u32;
        return Ok(Some(next_update(
            commitment,
            rule_update,
            calendar,
            done,
            original_due,
            now,
        )));
    }
    let revision_id: Option<i64> = key
        .strip_prefix("delay_notice#")
        .and_then(|id| id.parse().ok());
    let revision = revisions
        .iter()
        .find(|r| Some(r.id) == revision_id)
        .ok_or_else(|| format!("the delay this notice is about ({key}) is not recorded"))?;
    let previous_due = parse_stored(&revision.old_due, zone).map_err(|e| e.to_string())?;
    let new_due = parse_stored(&revision.new_due, zone).map_err(|e| e.to_string())?;
    Ok(Some(Update {
        number: 0,
        max: rule.customer_update.as_ref().map_or(0, |u| u.max),
        original_due,
        previous_due,
        new_due,
        reason: revision
            .reason
            .clone()
            .or_else(|| commitment.reason.clone()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitment::{Status, parse_mailbox};
    use crate::rule::{Alert, CatchUp, CheckIn, Escalate};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn commitment() -> Commitment {
        Commitment {
            id: 12,
            title: "Send quote for the boiler service".into(),
            owner: parse_mailbox("Ana Ruiz <ana@example.com>").unwrap(),
            customer: parse_mailbox("Joe Mensah <joe@example.org>").unwrap(),
            timezone: Some(TimeZone::get("America/New_York").unwrap()),
            due_at: ts("2026-11-25T17:00:00Z"),
            kind: Some("quote".into()),
            status: Status::Open,
            note: "asked for two options".into(),
            external_ref: Some("CRM-7".into()),
            reason: Some("our supplier is late".into()),
            created_at: ts("2026-11-20T10:00:00Z"),
            done_at: Some(ts("2026-11-26T12:00:00Z")),
        }
    }

    fn rule(check_in_to: CheckInTo) -> Rule {
        Rule {
            name: "quotes".into(),
            kinds: None,
            remind: vec![],
            overdue: None,
            catch_up: CatchUp::Send,
            customer_update: Some(CustomerUpdate {
                at: "-1h".parse().unwrap(),
                extend_by: "2 business days".parse().unwrap(),
                max: 2,
                template: "no_news_yet".into(),
                ask_owner: None,
            }),
            alert: Some(Alert {
                at: "0s".parse().unwrap(),
                to: vec![
                    parse_mailbox("team@example.com").unwrap(),
                    parse_mailbox("desk@example.com").unwrap(),
                ],
            }),
            escalate: Some(Escalate {
                after: "+4h".parse().unwrap(),
                to: vec![parse_mailbox("lead@example.com").unwrap()],
            }),
            check_in: Some(CheckIn {
                after: "3 business days".parse().unwrap(),
                to: check_in_to,
                template: match check_in_to {
                    CheckInTo::Owner => "check_in_owner".into(),
                    CheckInTo::Customer => "check_in_customer".into(),
                },
            }),
            digest_only: false,
        }
    }

    fn emails(kind: StepKind, to: CheckInTo, update: Option<&Update>) -> Vec<Email> {
        let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
        let templates = Templates::builtin();
        let rule = rule(to);
        let c = commitment();
        let step = StepInfo {
            kind,
            label: "x".into(),
            rule: "quotes".into(),
            planned_at: ts("2026-11-25T16:00:00Z"),
            late: false,
        };
        Situation {
            commitment: &c,
            rule: &rule,
            step: &step,
            calendar: &calendar,
            templates: &templates,
            command: "followup",
            update,
            failure: None,
            now: ts("2026-11-25T16:00:00Z"),
        }
        .emails()
        .unwrap()
    }

    #[test]
    fn a_customer_update_tells_the_customer_in_their_zone_and_the_owner_what_was_sent() {
        let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
        let r = rule(CheckInTo::Owner);
        let update = next_update(
            &commitment(),
            r.customer_update.as_ref().unwrap(),
            &calendar,
            0,
            ts("2026-11-25T17:00:00Z"),
            ts("2026-11-25T16:00:00Z"),
        );
        // Wednesday 17:00 London + 2 business days (default 09-17) = Friday 17:00.
        assert_eq!(update.new_due, ts("2026-11-27T17:00:00Z"));
        assert_eq!(update.number, 1);
        let mails = emails(StepKind::CustomerUpdate, CheckInTo::Owner, Some(&update));
        assert_eq!(mails.len(), 2);
        let customer = &mails[0];
        assert_eq!(customer.audience, Audience::Customer);
        assert_eq!(customer.to.email.to_string(), "joe@example.org");
        // The customer reads New York times: 17:00 London is 12:00 EST.
        assert!(
            customer.rendered.text.contains("Wed 25 Nov 2026 12:00 EST"),
            "{}",
            customer.rendered.text
        );
        assert!(
            customer
                .rendered
                .subject
                .contains("Fri 27 Nov 2026 12:00 EST"),
            "{}",
            customer.rendered.subject
        );
        assert!(customer.rendered.text.contains("our supplier is late"));
        assert!(customer.rendered.text.contains("Dear Joe Mensah"));
        assert!(
            !customer.rendered.text.contains("followup"),
            "no internal commands to the customer"
        );
        let owner = &mails[1];
        assert_eq!(owner.audience, Audience::Owner);
        assert!(
            owner.rendered.text.contains("Fri 27 Nov 2026 17:00 GMT"),
            "{}",
            owner.rendered.text
        );
        assert!(owner.rendered.text.contains(&customer.rendered.subject));
        assert!(
            owner.rendered.text.contains("  Dear Joe Mensah"),
            "the customer's text, indented"
        );
    }

    #[test]
    fn alerts_go_to_each_team_address_and_say_how_late() {
        let mails = emails(StepKind::Alert, CheckInTo::Owner, None);
        let to: Vec<String> = mails.iter().map(|m| m.to.email.to_string()).collect();
        assert_eq!(to, ["team@example.com", "desk@example.com"]);
        assert!(mails.iter().all(|m| m.audience == Audience::Team));
        // Composed at 16:00 for a 17:00 due, so "1 hour" either way.
        assert!(
            mails[0]
                .rendered
                .subject
                .contains("Promise missed by 1 hour"),
            "{}",
            mails[0].rendered.subject
        );
        assert!(
            mails[0]
                .rendered
                .text
                .contains("Joe Mensah <joe@example.org>")
        );
        let escalation = emails(StepKind::Escalate, CheckInTo::Owner, None);
        assert_eq!(escalation[0].to.email.to_string(), "lead@example.com");
        assert_eq!(escalation[0].audience, Audience::Escalation);
    }

    #[test]
    fn check_ins_go_to_the_owner_or_the_customer() {
        let owner = emails(StepKind::CheckIn, CheckInTo::Owner, None);
        assert_eq!(owner[0].to.email.to_string(), "ana@example.com");
        assert!(
            owner[0]
                .rendered
                .subject
                .starts_with("Check in with Joe Mensah")
        );
        let customer = emails(StepKind::CheckIn, CheckInTo::Customer, None);
        assert_eq!(customer[0].to.email.to_string(), "joe@example.org");
        assert_eq!(customer[0].audience, Audience::Customer);
    }

    #[test]
    fn reminders_go_to_the_owner() {
        let mails = emails(StepKind::Remind, CheckInTo::Owner, None);
        assert_eq!(mails.len(), 1);
        assert_eq!(
            mails[0].rendered.subject,
            "Due in 1 hour: Send quote for the boiler service"
        );
    }
}
