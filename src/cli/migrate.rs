//! `migrate`: copies the configured SQLite store into an empty PostgreSQL database,
//! every table with its ids, and checks each table's count before the copy commits.
//! The daemon must be stopped: a store that changes while it is copied would lose
//! what changed.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::config::{Backend, Config, PasswordSource};
use crate::store::postgres::{PostgresStore, redacted};

/// `followup migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy the store into: `postgres://user@host/database`.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The file whose first line is the database password.
    #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
    pub password_file: Option<PathBuf>,
    /// The environment variable that holds the database password.
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
}

/// Copies the SQLite store of `config` into the database `args.to`.
pub fn migrate(config: &Config, args: MigrateArgs) -> anyhow::Result<()> {
    if config.store.backend != Backend::Sqlite {
        bail!(
            "the config's store is already {}; migrate copies a SQLite store",
            config.store.describe()
        );
    }
    let path = &config.store.path;
    if !path.exists() {
        bail!("there is no SQLite store at {}", path.display());
    }
    if let Some(holder) = crate::store::running_daemon(path)? {
        bail!(
            "a daemon serves {} ({holder}): stop it first, or what it writes during the copy is lost",
            path.display()
        );
    }
    super::identity::adopt_store_owner(path)?;
    // Brings the file to the current schema, which the copy expects.
    crate::store::open(&crate::store::Location::Sqlite(path.clone()))
        .with_context(|| format!("opening the store {}", path.display()))?;
    let password = match (&args.password_file, &args.password_env) {
        (Some(file), _) => PasswordSource::File(file.clone()),
        (None, Some(var)) => PasswordSource::Env(var.clone()),
        (None, None) => PasswordSource::None,
    }
    .read_for("store")?;
    let shown = redacted(&args.to);
    let target = PostgresStore::connect(&args.to, password.as_deref())
        .with_context(|| format!("connecting to {shown}"))?;
    let copied = target.copy_from_sqlite(path).with_context(|| {
        format!(
            "copying {} into {shown}; nothing was written",
            path.display()
        )
    })?;
    let width = copied
        .iter()
        .map(|c| c.table.len())
        .max()
        .unwrap_or(5)
        .max(5);
    println!("{:<width$}  {:>9}  {:>10}", "TABLE", "SQLITE", "POSTGRES");
    for c in &copied {
        println!("{:<width$}  {:>9}  {:>10}", c.table, c.from, c.to);
    }
    println!();
    println!(
        "copied {} into {shown}; every table's count matches.",
        path.display()
    );
    println!("To serve it, set in the config's [store] table:");
    println!("  backend = \"postgres\"");
    println!("  url = \"{shown}\"");
    println!(
        "  password_file = \"...\"   # or password_env / password_credential, if it needs one"
    );
    Ok(())
}
