//! `report`: how the commitments due in a period went, per owner, kind or customer. The
//! definitions are in [`crate::jobs::report`] and the README.

use anyhow::bail;
use clap::{Args, ValueEnum};

use super::commitments::open;
use crate::config::Config;
use crate::jobs::report::{self, GroupBy};
use crate::scheduler::jobs::facts;

/// Formats of `report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
    /// CSV for spreadsheets.
    Csv,
}

/// `followup report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The period, ending now: commitments first promised for a time in it count
    /// (30d, 2w, 12h; a week is 7 days).
    #[arg(long, default_value = "30d", value_name = "PERIOD")]
    pub since: String,
    /// How to group.
    #[arg(long, value_enum, default_value = "owner")]
    pub by: GroupBy,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
}

/// Prints the report.
pub fn report(config: &Config, args: ReportArgs) -> anyhow::Result<()> {
    let Some(since) = report::parse_period(&args.since) else {
        bail!(
            "--since '{}' is not a positive period such as 30d, 2w or 12h",
            args.since
        );
    };
    let now = super::now();
    let from = now - since;
    let store = open(config)?;
    let rows = report::compute(
        &facts(store.report_rows()?, config.calendar.zone()),
        from,
        now,
        args.by,
    );
    match args.format {
        ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        ReportFormat::Csv => print!("{}", report::csv(&rows, args.by)?),
        ReportFormat::Table => {
            println!(
                "Commitments first promised between {} and {}:",
                config.calendar.display(from),
                config.calendar.display(now)
            );
            println!();
            print!("{}", report::table(&rows, args.by));
        }
    }
    Ok(())
}
