//! `snooze`, `hold`, `send-now`: the owner's say over what happens next, the same
//! actions the links in the emails take ([`crate::actions`]).

use clap::Args;

use super::commitments::{acted, open, say, until_for};
use super::target::Target;
use crate::actions;
use crate::config::Config;

/// `followup snooze`.
#[derive(Debug, Args)]
pub struct SnoozeArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// Until when: "tomorrow 09:00", "+2h", local "YYYY-MM-DD HH:MM", RFC 3339.
    #[arg(long, value_name = "WHEN")]
    pub until: String,
}

/// `followup hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// Which automatic customer update: N of `customer_update#N` in `show`'s timeline.
    #[arg(long, value_name = "N")]
    pub update: u32,
    /// Why it is held, for the record ("I called him").
    #[arg(long)]
    pub reason: String,
}

/// `followup send-now`.
#[derive(Debug, Args)]
pub struct SendNowArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// Which automatic customer update: N of `customer_update#N` in `show`'s timeline.
    #[arg(long, value_name = "N")]
    pub update: u32,
}

/// The step key of update `n`.
fn update_key(n: u32) -> String {
    format!("{}#{n}", crate::planner::StepKind::CustomerUpdate.as_str())
}

/// Stops the owner's reminders until `--until`.
pub fn snooze(config: &Config, args: SnoozeArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let now = super::now();
    let until = until_for(&*store, config, id, &args.until, now)?;
    let outcome = actions::snooze(&*store, config, id, until, &actions::cli_actor(), now);
    say(config, id, acted(outcome)?);
    Ok(())
}

/// Holds back a customer update.
pub fn hold(config: &Config, args: HoldArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let outcome = actions::hold(
        &*store,
        config,
        id,
        &update_key(args.update),
        &args.reason,
        &actions::cli_actor(),
        super::now(),
    );
    say(config, id, acted(outcome)?);
    Ok(())
}

/// Sends a customer update now.
pub fn send_now(config: &Config, args: SendNowArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let outcome = actions::send_now(
        &*store,
        config,
        id,
        &update_key(args.update),
        &actions::cli_actor(),
        super::now(),
    );
    say(config, id, acted(outcome)?);
    Ok(())
}
