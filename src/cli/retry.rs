//! `retry`: held mail goes now instead of at its retry time, once the fault that held it
//! is fixed (what `postqueue -f` is to Postfix). It writes the store only; a running
//! daemon notices the write and sends at once.

use clap::Args;

use super::commitments::{found, open};
use crate::config::Config;

/// `followup retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Only the emails of this commitment; without it, every held email (digests and
    /// reports too).
    pub id: Option<i64>,
}

/// Makes the held emails (all, or those of one commitment) due now.
pub fn retry(config: &Config, args: RetryArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let now = super::now();
    let made_due = found(store.retry(args.id, now))?;
    let whose = args
        .id
        .map_or(String::new(), |id| format!(" of commitment {id}"));
    match made_due {
        0 => println!("no email{whose} is waiting for a retry"),
        1 => println!("1 email{whose} is tried now"),
        n => println!("{n} emails{whose} are tried now"),
    }
    Ok(())
}
