//! `preview`: the future timeline of one commitment, each step with its local time and
//! rule, and every email it would send, rendered as it would go out.

use anyhow::bail;

use super::commitments::{checked, open};
use crate::commitment::Status;
use crate::config::Config;
use crate::customer::standing_of;
use crate::mail::compose::{Situation, asked_update_key, update_for};
use crate::mail::context::StepInfo;
use crate::planner::{StepKind, plan};
use crate::rule::rule_for;

/// Prints what is ahead for commitment `id`.
pub fn preview(config: &Config, target: &super::target::Target) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = target.resolve(&store)?;
    let (_, commitment) = checked(&store, config, id)?;
    let Some(rule) = rule_for(&config.rules, &commitment) else {
        bail!(
            "no rule matches commitment {id} (kind '{}')",
            commitment.kind.as_deref().unwrap_or("")
        );
    };
    let history = store.history(id)?;
    let revisions = store.revisions_of(id)?;
    let stored = store.steps_of(id)?;
    let now = super::now();
    let ahead: Vec<_> = plan(&commitment, rule, &config.calendar, &history)
        .into_iter()
        .filter(|step| {
            let done = stored
                .iter()
                .any(|s| s.key == step.key && s.state != "planned");
            !done && step.fire_at >= now - crate::planner::PAST_GRACE
        })
        .collect();
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
    let standing = standing_of(&store, &commitment, config.calendar.zone(), now)?;
    println!("Ahead, times in {}:", config.calendar.zone_name());
    for step in &ahead {
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
            .and_then(|key| ahead.iter().find(|s| s.key == key));
        let (kind, key, at) = match asked {
            Some(asked) => (StepKind::CustomerUpdate, &asked.key, asked.fire_at),
            None => (step.kind, &step.key, step.fire_at),
        };
        let update = match update_for(
            kind,
            key,
            &commitment,
            rule,
            &config.calendar,
            &revisions,
            at,
        ) {
            Ok(update) => update,
            Err(e) => {
                println!("  cannot render: {e}");
                continue;
            }
        };
        let situation = Situation {
            commitment: &commitment,
            rule,
            step: &info,
            customer: &standing,
            calendar: &config.calendar,
            templates: &config.templates,
            business: &config.business,
            command: &config.command,
            update: update.as_ref(),
            failure: None,
            update_at: asked.map(|s| s.fire_at),
            links: None,
            now: step.fire_at,
        };
        match situation.emails() {
            Err(e) => println!("  cannot render: {e}"),
            Ok(emails) => {
                for email in emails {
                    println!(
                        "  To: {} ({}, template {})",
                        email.to,
                        email.audience.as_str(),
                        email.template
                    );
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
