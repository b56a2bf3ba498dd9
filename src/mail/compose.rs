//! What each step says, and to whom: the one place that maps a step to its emails. The
//! daemon sends what this returns; `followup preview` prints it. Pure: no clock, no I/O.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use lettre::message::Mailbox;

use super::Audience;
use super::context::{Failure, Scene, StepInfo, Update};
use super::templates::{RenderError, Rendered, Templates};
use crate::calendar::Calendar;
use crate::commitment::{Commitment, DueMove};
use crate::config::{Business, Config};
use crate::customer::Standing;
use crate::planner::StepKind;
use crate::rule::{CheckInTo, CustomerUpdate, Rule};
use crate::web::link::Links;

/// The template a delay notice uses when the rule has no customer update of its own.
pub const DEFAULT_NOTICE_TEMPLATE: &str = "no_news_yet";

/// One email of a step, rendered.
#[derive(Debug, Clone)]
pub struct Email {
    /// Who it is for; each audience has its own thread.
    pub audience: Audience,
    /// The recipient.
    pub to: Mailbox,
    /// Where a reply goes: in customer mail the owner (or `[business] reply_to`), so
    /// that it reaches a person; `None` in the business's own mail.
    pub reply_to: Option<Mailbox>,
    /// The name `From:` shows instead of the configured one: in customer mail the
    /// business's name, when it has one.
    pub from_name: Option<String>,
    /// The template it came from.
    pub template: String,
    /// Subject and bodies.
    pub rendered: Rendered,
}

impl Email {
    /// Its `From:`: the configured sender's address, with the name this email shows.
    pub fn from(&self, sender: &Mailbox) -> Mailbox {
        let name = self.from_name.clone().or_else(|| sender.name.clone());
        Mailbox::new(name, sender.email.clone())
    }
}

/// Everything a step's emails are made from.
pub struct Situation<'a> {
    /// The commitment.
    pub commitment: &'a Commitment,
    /// The rule that planned the step.
    pub rule: &'a Rule,
    /// The step.
    pub step: &'a StepInfo,
    /// What the step's emails say of the customer's other promises.
    pub customer: &'a Standing,
    /// The calendar (zone for owner and team mail).
    pub calendar: &'a Calendar,
    /// The templates.
    pub templates: &'a Templates,
    /// Who signs customer mail and where replies go.
    pub business: &'a Business,
    /// How to call the program, for commands in mail.
    pub command: &'a str,
    /// For customer updates and delay notices: the move of the due time.
    pub update: Option<&'a Update>,
    /// For failure notices: the email that failed.
    pub failure: Option<&'a Failure>,
    /// For the owner's say before a customer update (with `update`, the update asked
    /// about): when that update goes.
    pub update_at: Option<Timestamp>,
    /// What links in the business's own emails start with; `None` without pages, and
    /// then those emails quote commands instead.
    pub links: Option<&'a Links>,
    /// The moment of composing.
    pub now: Timestamp,
}

impl Situation<'_> {
    /// The zone the customer reads times in: the commitment's own, else the calendar's.
    pub fn customer_zone(&self) -> &TimeZone {
        self.commitment.zone(self.calendar.zone())
    }

    /// What the context for `recipient` is made from; links only for the business's
    /// own people, never for the customer.
    fn scene<'b>(
        &'b self,
        audience: Audience,
        recipient: &'b Mailbox,
        zone: &'b TimeZone,
    ) -> Scene<'b> {
        Scene {
            commitment: self.commitment,
            step: self.step,
            customer: self.customer,
            recipient,
            zone,
            business: self.business,
            for_customer: audience == Audience::Customer,
            command: self.command,
            links: self.links.filter(|_| audience.is_internal()),
            now: self.now,
        }
    }

    /// The update the customer gets (or would get), rendered as it goes to them.
    /// The template of the customer's update: the rule's, else the default notice.
    fn customer_template(&self) -> &str {
        match &self.rule.customer_update {
            Some(CustomerUpdate { template, .. }) => template.as_str(),
            None => DEFAULT_NOTICE_TEMPLATE,
        }
    }

    fn to_customer(&self, update: &Update) -> Result<Rendered, RenderError> {
        let template = self.customer_template();
        let scene = self.scene(
            Audience::Customer,
            &self.commitment.customer,
            self.customer_zone(),
        );
        let mut ctx = scene.context();
        ctx.update = Some(scene.update_view(update));
        self.templates.render(template, &ctx)
    }

    /// The owner's view of `update`, with what the customer gets.
    fn owner_update_view(
        &self,
        scene: &Scene<'_>,
        update: &Update,
        to_customer: &Rendered,
    ) -> super::context::UpdateView {
        let mut view = scene.update_view(update);
        view.customer_subject = Some(to_customer.subject.clone());
        view.customer_text = Some(to_customer.text.clone());
        view
    }

    fn email(&self, audience: Audience, to: &Mailbox, template: &str, rendered: Rendered) -> Email {
        let customer = audience == Audience::Customer;
        Email {
            audience,
            to: to.clone(),
            reply_to: customer.then(|| self.business.reply_to_for(&self.commitment.owner)),
            from_name: self.business.name.clone().filter(|_| customer),
            template: template.to_string(),
            rendered,
        }
    }

    /// Renders every email of the step. Customer mail is multipart: the plain text
    /// and, unless its template has an HTML part of its own, the same text in the
    /// shipped layout.
    pub fn emails(&self) -> Result<Vec<Email>, RenderError> {
        let mut emails = self.plain_emails()?;
        for email in &mut emails {
            if email.audience == Audience::Customer && email.rendered.html.is_none() {
                email.rendered.html = Some(self.templates.layout(&email.rendered, self.business)?);
            }
        }
        Ok(emails)
    }

    fn plain_emails(&self) -> Result<Vec<Email>, RenderError> {
        let owner = &self.commitment.owner;
        let customer = &self.commitment.customer;
        let calendar_zone = self.calendar.zone();
        let customer_zone = self.customer_zone();
        match self.step.kind {
            StepKind::Remind | StepKind::Overdue => {
                let ctx = self.scene(Audience::Owner, owner, calendar_zone).context();
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
                let template = self.customer_template();
                let to_customer = self.to_customer(update)?;
                let mut emails = Vec::new();
                if self.step.kind == StepKind::CustomerUpdate {
                    let scene = self.scene(Audience::Owner, owner, calendar_zone);
                    let mut ctx = scene.context();
                    ctx.update = Some(self.owner_update_view(&scene, update, &to_customer));
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
                        let scene = self.scene(audience, recipient, calendar_zone);
                        let mut ctx = scene.context();
                        ctx.missed = Some(scene.missed_view());
                        let rendered = self.templates.render(template, &ctx)?;
                        Ok(self.email(audience, recipient, template, rendered))
                    })
                    .collect()
            }
            StepKind::AskOwner => {
                let (Some(update), Some(goes_at)) = (self.update, self.update_at) else {
                    return Err(RenderError::Missing(
                        "the customer update asked about".into(),
                    ));
                };
                let to_customer = self.to_customer(update)?;
                let scene = self.scene(Audience::Owner, owner, calendar_zone);
                let mut ctx = scene.context();
                ctx.update = Some(self.owner_update_view(&scene, update, &to_customer));
                ctx.ask = Some(scene.ask_view(update.number, goes_at));
                if let (Some(view), Some(links)) = (ctx.links.take(), scene.links) {
                    let email = owner.email.to_string();
                    ctx.links =
                        Some(view.with_update_actions(links, self.commitment.id, &email, self.now));
                }
                let rendered = self.templates.render("ask_owner", &ctx)?;
                Ok(vec![self.email(
                    Audience::Owner,
                    owner,
                    "ask_owner",
                    rendered,
                )])
            }
            StepKind::DeliveryFailed => {
                let failure = self
                    .failure
                    .ok_or_else(|| RenderError::Missing("the failed email".into()))?;
                let mut ctx = self.scene(Audience::Owner, owner, calendar_zone).context();
                ctx.failure = Some(failure.clone());
                let rendered = self.templates.render("delivery_failed", &ctx)?;
                Ok(vec![self.email(
                    Audience::Owner,
                    owner,
                    "delivery_failed",
                    rendered,
                )])
            }
            StepKind::OnOpen => {
                let on_open = self
                    .rule
                    .on_open
                    .as_ref()
                    .ok_or_else(|| RenderError::Missing("the rule's on_open".into()))?;
                on_open
                    .to
                    .iter()
                    .map(|recipient| {
                        let ctx = self
                            .scene(Audience::Team, recipient, calendar_zone)
                            .context();
                        let rendered = self.templates.render(&on_open.template, &ctx)?;
                        Ok(self.email(Audience::Team, recipient, &on_open.template, rendered))
                    })
                    .collect()
            }
            StepKind::CheckIn => {
                let check_in = self.rule.after_done_entry(&self.step.key).ok_or_else(|| {
                    RenderError::Missing(format!("the rule's after-done entry {}", self.step.key))
                })?;
                let (audience, to, zone) = match check_in.to {
                    CheckInTo::Owner => (Audience::Owner, owner, calendar_zone),
                    CheckInTo::Customer => (Audience::Customer, customer, customer_zone),
                };
                let ctx = self.scene(audience, to, zone).context();
                let rendered = self.templates.render(&check_in.template, &ctx)?;
                Ok(vec![self.email(audience, to, &check_in.template, rendered)])
            }
        }
    }
}

/// A step at the moment it goes, as the daemon fires it and `followup preview` shows
/// it: the one path from a step to its emails, so that preview shows what is sent.
pub struct Firing<'a> {
    /// The commitment, as it stands when the step goes.
    pub commitment: &'a Commitment,
    /// The rule that planned the step.
    pub rule: &'a Rule,
    /// The step.
    pub step: &'a StepInfo,
    /// For the owner's say before a customer update: that update's key and when it
    /// goes. The say shows the update as it will go then.
    pub asked: Option<(&'a str, Timestamp)>,
    /// The commitment's moves of its due time, oldest first.
    pub moves: &'a [DueMove],
    /// What the emails say of the customer's other promises.
    pub customer: &'a Standing,
    /// For a failure notice: the email that failed.
    pub failure: Option<&'a Failure>,
    /// What links in the business's own emails start with; `None` without pages.
    pub links: Option<&'a Links>,
    /// When it goes.
    pub at: Timestamp,
}

/// A step's emails, and the move of the due time they tell of, if any.
#[derive(Debug)]
pub struct Composed {
    /// Every email of the step, rendered.
    pub emails: Vec<Email>,
    /// For a customer update (and the owner's say before one) or a delay notice: the
    /// move the customer hears of.
    pub update: Option<Update>,
}

impl Firing<'_> {
    /// Composes the step's emails under `config`; an error says why they cannot be.
    pub fn compose(&self, config: &Config) -> Result<Composed, String> {
        let (kind, key, now) = match self.asked {
            Some((key, at)) => (StepKind::CustomerUpdate, key, at),
            None => (self.step.kind, self.step.key.as_str(), self.at),
        };
        let update = update_for(
            kind,
            key,
            self.commitment,
            self.rule,
            &config.calendar,
            self.moves,
            now,
        )?;
        let situation = Situation {
            commitment: self.commitment,
            rule: self.rule,
            step: self.step,
            customer: self.customer,
            calendar: &config.calendar,
            templates: &config.templates,
            business: &config.business,
            command: &config.command,
            update: update.as_ref(),
            failure: self.failure,
            update_at: self.asked.map(|(_, at)| at),
            links: self.links,
            now: self.at,
        };
        let emails = situation.emails().map_err(|e| e.to_string())?;
        Ok(Composed { emails, update })
    }
}

/// True if the step of `kind` with `key` under `rule` writes to the customer, so it
/// must wait for business hours. [`Rule::mails_customer`] says whether any step does.
pub fn writes_to_customer(kind: StepKind, key: &str, rule: &Rule) -> bool {
    match kind {
        StepKind::CustomerUpdate | StepKind::DelayNotice => true,
        StepKind::CheckIn => rule
            .after_done_entry(key)
            .is_some_and(|c| c.to == CheckInTo::Customer),
        StepKind::Remind
        | StepKind::Overdue
        | StepKind::Alert
        | StepKind::Escalate
        | StepKind::AskOwner
        | StepKind::DeliveryFailed
        | StepKind::OnOpen => false,
    }
}

/// The key of the customer update that the owner's say `ask_key` (`ask_owner#N`) asks
/// about: `customer_update#N`.
pub fn asked_update_key(ask_key: &str) -> Option<String> {
    let n = ask_key.strip_prefix("ask_owner#")?;
    Some(format!("customer_update#{n}"))
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
/// revision), `moves` the commitment's history, oldest first.
pub fn update_for(
    kind: StepKind,
    key: &str,
    commitment: &Commitment,
    rule: &Rule,
    calendar: &Calendar,
    moves: &[DueMove],
    now: Timestamp,
) -> Result<Option<Update>, String> {
    if !matches!(kind, StepKind::CustomerUpdate | StepKind::DelayNotice) {
        return Ok(None);
    }
    let original_due = moves
        .first()
        .and_then(|m| m.from.clone().ok())
        .unwrap_or(commitment.due_at);
    if kind == StepKind::CustomerUpdate {
        let rule_update = rule
            .customer_update
            .as_ref()
            .ok_or_else(|| format!("rule \"{}\" no longer has a customer_update", rule.name))?;
        let done = moves.iter().filter(|m| m.automatic).count() as u32;
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
    let revision = moves
        .iter()
        .find(|m| Some(m.revision) == revision_id)
        .ok_or_else(|| format!("the delay this notice is about ({key}) is not recorded"))?;
    let previous_due = revision.from.clone()?;
    let new_due = revision.to.clone()?;
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
mod tests;
