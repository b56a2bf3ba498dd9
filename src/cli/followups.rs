//! `close`, `wait`, `resume`: how a commitment ended, and the pause while the business
//! waits on the customer, the same actions the links in the emails take
//! ([`crate::actions`]).

use clap::Args;

use super::commitments::{acted, open, say};
use super::target::Target;
use crate::actions;
use crate::commitment::Outcome;
use crate::config::Config;

/// `followup close`.
#[derive(Debug, Args)]
pub struct CloseArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// How it ended: won, lost, resolved or no-answer.
    #[arg(long)]
    pub outcome: Outcome,
}

/// `followup wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The commitment.
    #[command(flatten)]
    pub target: Target,
    /// What the customer is to send or answer ("waiting for photos").
    #[arg(long)]
    pub reason: String,
}

/// Closes a commitment with its outcome.
pub fn close(config: &Config, args: CloseArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let outcome = actions::close(
        &*store,
        config,
        id,
        args.outcome,
        &actions::cli_actor(),
        super::now(),
    );
    say(config, id, acted(outcome)?);
    Ok(())
}

/// Pauses a commitment's clock while waiting on the customer.
pub fn wait(config: &Config, args: WaitArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = args.target.resolve(&*store)?;
    let outcome = actions::wait(
        &*store,
        config,
        id,
        &args.reason,
        &actions::cli_actor(),
        super::now(),
    );
    say(config, id, acted(outcome)?);
    Ok(())
}

/// Restarts a commitment's clock and prints the new due time.
pub fn resume(config: &Config, target: Target) -> anyhow::Result<()> {
    let store = open(config)?;
    let id = target.resolve(&*store)?;
    let outcome = actions::resume(&*store, config, id, &actions::cli_actor(), super::now());
    say(config, id, acted(outcome)?);
    Ok(())
}
