//! The command line. `followup run` is the daemon; the other verbs read and write the
//! store directly, which the daemon notices through its watcher. One file per group of
//! verbs; [`main`] dispatches.
//!
//! Exit codes: 0 success, 1 a failed command (unknown id, bad value), 2 a usage error,
//! 78 (EX_CONFIG) an invalid config.

// First: its `println!` and `print!` serve every module declared after it.
#[macro_use]
mod output;
mod commitments;
mod config;
mod customer;
mod edit;
mod followups;
mod generate;
mod identity;
mod migrate;
mod owner_say;
pub(crate) mod preview;
mod report;
mod retry;
mod revisions;
mod show;
mod status;
mod target;
mod test_email;
mod transfer;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, ConfigErrors, LogLevel};

/// Exit code for an invalid config (sysexits EX_CONFIG).
pub const EX_CONFIG: u8 = 78;

/// followup: keeps a service business's promises by email.
#[derive(Debug, Parser)]
#[command(name = "followup", version, about, long_about = None)]
pub struct Cli {
    /// Config directory [default: $FOLLOWUP_CONFIG, else /etc/followup if it exists, else ./config]
    #[arg(long, global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: plan timelines and send the emails.
    Run,
    /// Record a new commitment; prints its id.
    Add(commitments::AddArgs),
    /// List commitments.
    List(show::ListArgs),
    /// Show one commitment, its timeline and what was sent.
    Show(show::ShowArgs),
    /// Mark a commitment done: later reminders stop.
    Done(target::Target),
    /// Cancel a commitment: every later step stops.
    Cancel(target::Target),
    /// Close a commitment that is done (or marks it done) with how it ended; its
    /// follow-ups after the work stop.
    Close(followups::CloseArgs),
    /// Pause a commitment's clock while waiting on the customer.
    Wait(followups::WaitArgs),
    /// Restart a waiting commitment's clock; the due time moves by the time waited.
    Resume(target::Target),
    /// Correct a commitment's fields; recorded as a revision, and the timeline re-planned.
    Edit(edit::EditArgs),
    /// Move a commitment's due time, record why, and tell the customer.
    Delay(commitments::DelayArgs),
    /// Add a note to a commitment, or (with --reason) the reason the customer is given.
    Note(commitments::NoteArgs),
    /// Stop a commitment's reminders to its owner until a time; the due time stays.
    Snooze(owner_say::SnoozeArgs),
    /// Hold back an automatic customer update, with the reason.
    Hold(owner_say::HoldArgs),
    /// Send an automatic customer update now instead of at its time.
    SendNow(owner_say::SendNowArgs),
    /// A customer's profile: notes, since when, every commitment, promises kept, emails.
    Customer(customer::CustomerArgs),
    /// Print a commitment's future timeline and render every email it would send.
    Preview(target::Target),
    /// How the commitments due in a period went: kept on time, after notice, missed.
    Report(report::ReportArgs),
    /// Import commitments from a CSV file (all or nothing, or --skip-bad).
    Import(transfer::ImportArgs),
    /// Export every commitment as CSV or JSON to standard output.
    Export(transfer::ExportArgs),
    /// Copy the SQLite store into an empty PostgreSQL database, and check the counts.
    Migrate(migrate::MigrateArgs),
    /// Check the config directory; prints every error as FILE:LINE:COL: message.
    CheckConfig,
    /// Summarise the store: open, quarantined, planned, pending, failed, last sent.
    Status(status::StatusArgs),
    /// Try held emails now instead of at their retry time (all, or one commitment's).
    Retry(retry::RetryArgs),
    /// Send a test email through the configured transport, proving the mail settings.
    TestEmail(test_email::TestEmailArgs),
    /// Print the completion script for a shell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page, or write every page into a directory.
    Man(generate::ManArgs),
}

/// Output formats of the listing verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for programs.
    Json,
}

/// The config directory from `--config`, and whether a missing default may fall back
/// to the built-in defaults.
fn config_dir(given: Option<&Path>) -> (PathBuf, bool) {
    match given {
        Some(dir) => (dir.to_path_buf(), false),
        None => {
            let dir = crate::config::default_dir();
            let implicit = dir == std::path::Path::new("config");
            (dir, implicit)
        }
    }
}

/// Loads the config, or prints every error and returns the exit code for it.
fn load_config(given: Option<&Path>) -> Result<Config, ExitCode> {
    let (dir, allow_missing) = config_dir(given);
    crate::config::load(&dir, allow_missing).map_err(|errors: ConfigErrors| {
        eprintln!("{errors}");
        eprintln!("followup: the config in {} is invalid", dir.display());
        ExitCode::from(EX_CONFIG)
    })
}

/// The clock the verbs read: the host's, or a test's ([`crate::clock::Clock::from_env`]).
static CLOCK: std::sync::OnceLock<crate::clock::Clock> = std::sync::OnceLock::new();

/// The time as this process sees it: every verb counts from it (`add --due +2h`).
fn now() -> jiff::Timestamp {
    CLOCK.get_or_init(crate::clock::Clock::system).now()
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match crate::clock::Clock::from_env() {
        Ok(clock) => {
            let _ = CLOCK.set(clock);
        }
        Err(e) => {
            eprintln!("followup: {e}");
            return ExitCode::FAILURE;
        }
    }
    // The daemon reports what it does; the other verbs speak only when something is wrong.
    crate::logging::init(if matches!(cli.command, Command::Run) {
        LogLevel::Info
    } else {
        LogLevel::Warn
    });
    let result = match cli.command {
        Command::CheckConfig => {
            let (dir, allow_missing) = config_dir(cli.config.as_deref());
            return config::check(&dir, allow_missing);
        }
        Command::Completions { shell } => generate::completions(shell),
        Command::Man(args) => generate::man(args),
        command => match load_config(cli.config.as_deref()) {
            Ok(config) => run_verb(command, config),
            Err(code) => return code,
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("followup: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a verb that needs the config.
fn run_verb(command: Command, config: Config) -> anyhow::Result<()> {
    // Daemons on a shared store hold no lock to look for.
    let written =
        (writes_commitments(&command) && !config.store.shared()).then(|| config.store.path.clone());
    let result = match command {
        Command::Run => {
            // Before the runtime starts any thread; the other verbs do it in `open`.
            identity::adopt_store_owner(&config.store.path)?;
            crate::logging::apply(config.log_level);
            run(config)
        }
        Command::Add(args) => commitments::add(&config, args),
        Command::List(args) => show::list(&config, args),
        Command::Show(args) => show::show(&config, args),
        Command::Done(target) => {
            commitments::close(&config, &target, crate::commitment::Status::Done)
        }
        Command::Cancel(target) => {
            commitments::close(&config, &target, crate::commitment::Status::Cancelled)
        }
        Command::Close(args) => followups::close(&config, args),
        Command::Wait(args) => followups::wait(&config, args),
        Command::Resume(target) => followups::resume(&config, target),
        Command::Edit(args) => edit::edit(&config, args),
        Command::Delay(args) => commitments::delay(&config, args),
        Command::Note(args) => commitments::note(&config, args),
        Command::Snooze(args) => owner_say::snooze(&config, args),
        Command::Hold(args) => owner_say::hold(&config, args),
        Command::SendNow(args) => owner_say::send_now(&config, args),
        Command::Customer(args) => customer::customer(&config, args),
        Command::Preview(target) => preview::preview(&config, &target),
        Command::Report(args) => report::report(&config, args),
        Command::Import(args) => transfer::import(&config, args),
        Command::Export(args) => transfer::export(&config, args),
        Command::Migrate(args) => migrate::migrate(&config, args),
        Command::Status(args) => status::status(&config, args),
        Command::TestEmail(args) => test_email::send(&config, args),
        Command::Retry(args) => retry::retry(&config, args),
        Command::CheckConfig | Command::Completions { .. } | Command::Man(_) => {
            unreachable!("handled without a config")
        }
    };
    if let (Ok(()), Some(store)) = (&result, written) {
        warn_without_daemon(&store);
    }
    result
}

/// Whether `command` writes commitments, which only a running daemon acts on.
fn writes_commitments(command: &Command) -> bool {
    matches!(
        command,
        Command::Add(_)
            | Command::Edit(_)
            | Command::Done { .. }
            | Command::Cancel { .. }
            | Command::Close(_)
            | Command::Wait(_)
            | Command::Resume(_)
            | Command::Delay(_)
            | Command::Note(_)
            | Command::Snooze(_)
            | Command::Hold(_)
            | Command::SendNow(_)
            | Command::Import(_)
            | Command::Retry(_)
    )
}

/// Says on stderr that what was just written waits, when no daemon holds the lock of
/// `store` ([`crate::store::running_daemon`]).
fn warn_without_daemon(store: &Path) {
    match crate::store::running_daemon(store) {
        Ok(Some(_)) => {}
        Ok(None) => eprintln!(
            "followup: warning: no daemon is running on {}; nothing will be sent until \
             `followup run` starts",
            store.display()
        ),
        Err(e) => tracing::warn!(cause = %e, "cannot tell whether a daemon is running"),
    }
}

/// The daemon runs on one thread (plus the store's own thread, blocking threads for
/// composing, and the store watch): its tasks mostly wait, and during a burst one
/// thread spares the hand-offs between worker threads.
fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("followup")
        .build()?;
    let dir = config.dir.clone();
    runtime.block_on(crate::daemon::run(dir, config))
}
