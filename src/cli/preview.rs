//! `preview`: the future timeline of one commitment, each step with its local time and
//! rule, and every email it would send, composed as the daemon composes it when the
//! step goes ([`Firing`]).

use anyhow::bail;
use jiff::Timestamp;

use super::commitments::{checked, open};
use crate::commitment::{Commitment, Status};
use crate::config::Config;
use crate::customer::Standing;
use crate::mail::compose::{Email, Firing, asked_update_key};
use crate::mail::context::StepInfo;
use crate::planner::{PAST_GRACE, PlannedStep, StepKind, StepState, plan};
use crate::rule::{Rule, rule_for};
use crate::store::{PlanView, Store, StoreError};
use crate::web::link::Links;

/// A step still ahead, with the emails it would send, or why they cannot be composed.
pub(crate) struct Ahead {
    /// The step as planned now.
    pub step: PlannedStep,
    /// Its emails, as they would go at its time.
    pub emails: Result<Vec<Email>, String>,
}

/// Prints what is ahead for commitment `id`.
pub fn preview(config: &Config, target: &super::target::Target) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = target.resolve(&*store)?;
    let (_, commitment) = checked(&*store, config, id)?;
    let Some(rule) = rule_for(&config.rules, &commitment) else {
        bail!(
            "no rule matches commitment {id} (kind '{}')",
            commitment.kind.as_deref().unwrap_or("")
        );
    };
    // The business's own emails carry the links the daemon puts in them, made with
    // the same key; without the key they show the commands instead, and say so.
    let links = match &config.web {
        Some(web) => match crate::web::links_for(config, web.listen) {
            Ok(links) => links,
            Err(e) => {
                println!("(the emails show commands, not links: {e})");
                None
            }
        },
        None => None,
    };
    let now = super::now();
    let ahead = steps_ahead(&*store, config, &commitment, rule, links.as_ref(), now)?;
    println!(
        "Commitment {id}: {} ({}, rule \"{}\")",
        commitment.title, commitment.status, rule.name
    );
    if ahead.is_empty() {
        let why = match commitment.status {
            Status::Open => "every step of its timeline has happened",
            Status::Done => "it is done and has no check-in ahead",
            Status::Cancelled => "it is cancelled",
        };
        println!("Nothing ahead: {why}.");
        return Ok(());
    }
    println!("Ahead, times in {}:", config.calendar.zone_name());
    for Ahead { step, emails } in &ahead {
        println!();
        let held = if step.fire_at > step.planned_at {
            format!(
                " (held from {} for business hours)",
                config.calendar.display(step.planned_at)
            )
        } else {
            String::new()
        };
        println!(
            "{}  {}  {}  rule \"{}\"{held}",
            config.calendar.display(step.fire_at),
            step.kind,
            step.label,
            step.rule
        );
        match emails {
            Err(e) => println!("  cannot render: {e}"),
            Ok(emails) => {
                for email in emails {
                    println!(
                        "  To: {} ({}, template {})",
                        email.to,
                        email.audience.as_str(),
                        email.template
                    );
                    println!("  From: {}", email.from(&config.mail.from));
                    if let Some(reply_to) = &email.reply_to {
                        println!("  Reply-To: {reply_to}");
                    }
                    println!("  Subject: {}", email.rendered.subject);
                    for line in email.rendered.text.lines() {
                        println!("  | {line}");
                    }
                    if email.rendered.html.is_some() {
                        println!("  (with an HTML part)");
                    }
                }
            }
        }
    }
    if config.mail.dry_run {
        println!();
        println!("[mail] dry_run is on: these are recorded, not sent.");
    }
    Ok(())
}

/// The steps of `commitment` still ahead at `now` under `rule`, each with the emails it
/// would send at its time: the plan the daemon would make, less the steps already
/// decided, composed through the daemon's own path ([`Firing`]) with `links`.
pub(crate) fn steps_ahead(
    store: &dyn Store,
    config: &Config,
    commitment: &Commitment,
    rule: &Rule,
    links: Option<&Links>,
    now: Timestamp,
) -> Result<Vec<Ahead>, StoreError> {
    let id = commitment.id;
    let PlanView {
        history,
        revisions,
        steps: stored,
        customer_rows,
    } = store.plan_view(id, commitment.customer.email.as_ref())?;
    let zone = commitment.zone(config.calendar.zone());
    let moves: Vec<_> = revisions.iter().map(|r| r.due_move(zone)).collect();
    let planned: Vec<_> = plan(commitment, rule, &config.calendar, &history)
        .into_iter()
        .filter(|step| {
            let done = stored
                .iter()
                .any(|s| s.key == step.key && s.state != StepState::Planned);
            !done && step.fire_at >= now - PAST_GRACE
        })
        .collect();
    let ahead = planned
        .iter()
        .map(|step| {
            let info = StepInfo {
                kind: step.kind,
                key: step.key.clone(),
                label: step.label.clone(),
                rule: step.rule.clone(),
                planned_at: step.planned_at,
                late: false,
            };
            // The owner's say shows the update it asks about as that update will go.
            let asked = (step.kind == StepKind::AskOwner)
                .then(|| asked_update_key(&step.key))
                .flatten()
                .and_then(|key| planned.iter().find(|s| s.key == key))
                .map(|s| (s.key.as_str(), s.fire_at));
            let rows = match config.templates.reads_customer(step.kind) {
                true => customer_rows.clone(),
                false => Vec::new(),
            };
            let zone = config.calendar.zone();
            let standing = Standing::from_rows(commitment, rows, zone, step.fire_at);
            let firing = Firing {
                commitment,
                rule,
                step: &info,
                asked,
                moves: &moves,
                customer: &standing,
                failure: None,
                links,
                at: step.fire_at,
            };
            Ahead {
                step: step.clone(),
                emails: firing.compose(config).map(|composed| composed.emails),
            }
        })
        .collect();
    Ok(ahead)
}
