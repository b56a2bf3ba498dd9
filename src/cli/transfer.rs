//! `import` and `export`: commitments in and out as CSV (or JSON out).
//!
//! Columns are named like the `add` flags: `title`, `owner`, `customer`, `due`, `kind`,
//! `note`, `ref`, `tz`, `reason`, `promise`, and, to carry a commitment whole, `id`,
//! `status`, `created_at`, `done_at`. An import is all or nothing: every bad line is reported with
//! its line number and nothing is written, unless `--skip-bad` imports the good lines.
//! A kind that looks like a typo of one a rule names is a bad line (`--force` takes it);
//! one that no rule names is imported with a warning for its line, and so is a line
//! without a promise whose rule mails the customer.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::commitments::{Fields, KindDoubt, check_kind, check_new, missing_promise, open};
use crate::commitment::{Status, StoredCommitment};
use crate::config::Config;
use crate::store::{Imported, StatusFilter};

/// The columns of an export, in order; an import takes any subset that has the
/// required ones, in any order.
const COLUMNS: [&str; 14] = [
    "id",
    "title",
    "owner",
    "customer",
    "due",
    "kind",
    "note",
    "ref",
    "tz",
    "reason",
    "status",
    "created_at",
    "done_at",
    "promise",
];

/// Columns an import needs.
const REQUIRED: [&str; 4] = ["title", "owner", "customer", "due"];

/// `followup import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file, with a header row.
    pub file: PathBuf,
    /// Import the good lines and report the bad ones, instead of importing nothing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Import kinds that look like typos of a kind a rule names.
    #[arg(long)]
    pub force: bool,
}

/// Formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Comma-separated, with a header row; `import` reads it back.
    Csv,
    /// A JSON array of objects with the same fields.
    Json,
}

/// `followup export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "csv")]
    pub format: ExportFormat,
}

/// One commitment as exported.
#[derive(Debug, Serialize)]
struct Exported {
    id: i64,
    title: Option<String>,
    owner: Option<String>,
    customer: Option<String>,
    due: Option<String>,
    kind: Option<String>,
    note: Option<String>,
    r#ref: Option<String>,
    tz: Option<String>,
    reason: Option<String>,
    status: Option<String>,
    created_at: Option<String>,
    done_at: Option<String>,
    promise: Option<String>,
}

impl From<StoredCommitment> for Exported {
    fn from(r: StoredCommitment) -> Self {
        Exported {
            id: r.id,
            title: r.title,
            owner: r.owner,
            customer: r.customer,
            due: r.due_at,
            kind: r.kind,
            note: r.note,
            r#ref: r.external_ref,
            tz: r.timezone,
            reason: r.reason,
            status: r.status,
            created_at: r.created_at,
            done_at: r.done_at,
            promise: r.promise,
        }
    }
}

/// Writes every commitment to standard output.
pub fn export(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let store = open(config)?;
    let rows: Vec<Exported> = store
        .commitments(StatusFilter::All)?
        .into_iter()
        .map(Exported::from)
        .collect();
    let mut out = std::io::stdout().lock();
    match args.format {
        ExportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer.write_record(COLUMNS)?;
            for r in &rows {
                let cells = [
                    Some(r.id.to_string()),
                    r.title.clone(),
                    r.owner.clone(),
                    r.customer.clone(),
                    r.due.clone(),
                    r.kind.clone(),
                    r.note.clone(),
                    r.r#ref.clone(),
                    r.tz.clone(),
                    r.reason.clone(),
                    r.status.clone(),
                    r.created_at.clone(),
                    r.done_at.clone(),
                    r.promise.clone(),
                ];
                writer.write_record(cells.iter().map(|c| c.as_deref().unwrap_or("")))?;
            }
            writer.flush()?;
        }
    }
    Ok(())
}

/// Reads the file, checks every line, and imports all of it or (with `--skip-bad`)
/// its good lines.
pub fn import(config: &Config, args: ImportArgs) -> anyhow::Result<()> {
    let name = args.file.display().to_string();
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_path(&args.file)
        .with_context(|| format!("cannot read {name}"))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{name}:1: cannot read the header row"))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    for header in &headers {
        if !COLUMNS.contains(&header.as_str()) {
            bail!(
                "{name}:1: unknown column '{header}'; columns are: {}",
                COLUMNS.join(", ")
            );
        }
    }
    for required in REQUIRED {
        if !headers.iter().any(|h| h == required) {
            bail!(
                "{name}:1: the column '{required}' is missing; required are: {}",
                REQUIRED.join(", ")
            );
        }
    }
    let column = |name: &str| headers.iter().position(|h| h == name);
    let store = open(config)?;
    let now = super::now();
    let mut good: Vec<Imported> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut ids_seen: HashSet<i64> = HashSet::new();
    let mut lines = 0usize;
    for record in reader.records() {
        lines += 1;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(format!("{name}:{line}: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let get = |field: &str| {
            column(field)
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let fields = Fields {
            title: get("title").unwrap_or(""),
            owner: get("owner").unwrap_or(""),
            customer: get("customer").unwrap_or(""),
            due: get("due").unwrap_or(""),
            kind: get("kind"),
            note: column("note")
                .and_then(|i| record.get(i))
                .filter(|v| !v.trim().is_empty()),
            external_ref: get("ref"),
            timezone: get("tz"),
            reason: get("reason"),
            promise: get("promise"),
        };
        let mut problems = Vec::new();
        let status = match get("status").map(str::parse::<Status>) {
            None => Status::Open,
            Some(Ok(status)) => status,
            Some(Err(e)) => {
                problems.push(format!("status: {e}"));
                Status::Open
            }
        };
        let id = match get("id").map(str::parse::<i64>) {
            None => None,
            Some(Ok(id)) if id > 0 => {
                if !ids_seen.insert(id) {
                    problems.push(format!("id: {id} appears twice in the file"));
                } else if store.has_commitment(id)? {
                    problems.push(format!("id: a commitment with id {id} already exists"));
                }
                Some(id)
            }
            Some(_) => {
                problems.push("id: not a positive number".to_string());
                None
            }
        };
        match check_kind(&config.rules, fields.kind) {
            Some(KindDoubt::Typo(doubt)) if !args.force => problems.push(format!("kind: {doubt}")),
            Some(KindDoubt::Typo(doubt) | KindDoubt::Unnamed(doubt)) => {
                warnings.push(format!("{name}:{line}: warning: kind: {doubt}"));
            }
            None => {}
        }
        match check_new(config, &fields, now, "") {
            Err(found) => problems.extend(found),
            Ok((commitment, _)) if problems.is_empty() => {
                if let Some(warning) = missing_promise(config, &commitment, &format!("line {line}"))
                {
                    warnings.push(format!("{name}:{line}: warning: {warning}"));
                }
                good.push(Imported {
                    id,
                    commitment,
                    status,
                    created_at: get("created_at").map(str::to_string),
                    done_at: get("done_at").map(str::to_string),
                })
            }
            Ok(_) => {}
        }
        if !problems.is_empty() {
            errors.push(format!("{name}:{line}: {}", problems.join("; ")));
        }
    }
    for line in warnings.iter().chain(&errors) {
        eprintln!("{line}");
    }
    if !errors.is_empty() && !args.skip_bad {
        bail!(
            "{} of {lines} lines have problems; nothing was imported (fix them, or use --skip-bad to import the rest)",
            errors.len()
        );
    }
    let ids = store.import_commitments(&good)?;
    println!("imported {} commitments", ids.len());
    if !errors.is_empty() {
        println!("skipped {} lines with problems", errors.len());
    }
    Ok(())
}
