//! Logging: `tracing` events on stderr, one line each, with structured fields
//! (`delivery=12 cause="..."`).
//!
//! Under systemd (stderr is the journal stream that `JOURNAL_STREAM` names) each line
//! starts with its syslog priority, `<3>` error, `<4>` warning, `<6>` info, `<7>` debug
//! and trace, which journald takes as the entry's priority, so `journalctl -p warning -u
//! followup` shows exactly the warnings and errors. The journal stamps the time itself,
//! so lines carry no timestamp there, and never colours. Elsewhere lines carry a
//! timestamp, coloured only on a terminal.
//!
//! The level is `RUST_LOG` when set. Otherwise it is what the command asks for, and the
//! daemon switches to `[log] level` once its config is read and again on each reload.
//! The level applies to followup's own events; the libraries below it speak at warning
//! and above.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing::Level;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{self as tracing_fmt, FmtContext};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::config::LogLevel;

/// The handle that changes the level of the running subscriber; set once by [`init`].
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Starts logging at `level`, or at `RUST_LOG` if that is set.
pub fn init(level: LogLevel) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter_for(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let installed = if stderr_is_journal() {
        let format = SyslogPriority(
            format::format()
                .without_time()
                .with_target(false)
                .with_level(false),
        );
        registry
            .with(layer.with_ansi(false).event_format(format))
            .try_init()
    } else {
        registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .try_init()
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// Switches to `level`, unless `RUST_LOG` chose the level.
pub fn apply(level: LogLevel) {
    if std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty()) {
        return;
    }
    if let Some(handle) = FILTER.get()
        && let Err(e) = handle.reload(filter_for(level))
    {
        tracing::warn!(cause = %e, "cannot change the log level");
    }
}

/// followup's events at `level`; everything else at warning or quieter.
fn filter_for(level: LogLevel) -> EnvFilter {
    let others = match level {
        LogLevel::Error => "error",
        _ => "warn",
    };
    EnvFilter::new(format!("{others},followup={}", level.as_str()))
}

/// The syslog priority journald should give an event of `level`.
pub fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// True when stderr is the journal stream systemd connected (`JOURNAL_STREAM` is
/// `DEVICE:INODE` of it). The variable alone is not enough: a program started from a
/// service inherits it with a different stderr.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>()) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|m| m.dev() == device && m.ino() == inode)
}

/// Starts each line with `<N>`, the event's syslog priority, and the level's name
/// (`<4>WARN ...`), then the inner format without a level.
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = *event.metadata().level();
        write!(writer, "<{}>{level} ", priority(level))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_syslog_priorities_journald_understands() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
        assert_eq!(priority(Level::TRACE), 7);
    }
}
