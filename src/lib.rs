//! `followup` keeps a service business's promises.
//!
//! A **commitment** (one promise to one customer, with a due time) lives in a SQLite
//! file that other programs may write to. The daemon plans a **timeline** of **steps**
//! for each commitment from the **rules** in `config/*.toml` and the **calendar**, and
//! turns each step into **deliveries** (emails) when its time comes.
//!
//! The modules follow those words:
//!
//! - [`address`]: checks every address must pass beyond its syntax (a dot in the domain).
//! - [`commitment`]: the promise itself and how a stored row becomes one (pure).
//! - [`customer`]: a customer's profile gathered from their commitments (pure).
//! - [`when`]: reading the times users type (`+2h`, `2026-11-24 17:00`, RFC 3339).
//! - [`calendar`]: time zone and offsets such as `-1d` (pure).
//! - [`clock`]: where the daemon reads the time, so tests can drive it.
//! - [`rule`]: which commitments a rule is for, and its catch-up policy (pure).
//! - [`planner`]: `(commitment, rule, calendar) -> steps`, and how a new plan meets the
//!   steps already stored (pure; no clock, no I/O).
//! - [`config`]: every `*.toml` in the config directory, merged and validated, with
//!   errors that name file, line and column.
//! - [`store`]: the SQLite file: schema, migrations, commitments, steps, deliveries, and
//!   the watcher that notices other programs' writes.
//! - [`mail`]: templates, message building (headers, threading, line endings) and the
//!   transports (SMTP, sendmail, `.eml` files).
//! - [`scheduler`]: the task that plans changed commitments and queues due steps, and
//!   the sender task that delivers the outbox.
//! - [`jobs`]: calendar jobs from `[[schedule]]`: digests, the report, pruning.
//! - [`daemon`]: wires the tasks together, handles signals and tells systemd
//!   ([`notify`]).
//! - [`logging`]: structured log lines on stderr, with journald priorities under systemd.
//! - [`cli`]: the command line: one file per group of verbs.
//! - [`actions`]: the verbs a person takes on a commitment (done, delay, snooze, hold
//!   an update...), which the command line and the web pages both call.

pub mod actions;
pub mod address;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod commitment;
pub mod config;
pub mod customer;
pub mod daemon;
pub mod jobs;
pub mod logging;
pub mod mail;
pub mod notify;
pub mod planner;
pub mod rule;
pub mod scheduler;
pub mod store;
pub mod web;
pub mod when;
