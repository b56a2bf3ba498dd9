//! Noticing writes by other programs without polling.
//!
//! Every commit to a WAL-mode SQLite file writes its `-wal` file, so an inotify watch on
//! the store's directory hears each commit by any process the moment it happens. The
//! watcher only wakes the scheduler; the scheduler then compares SQLite's
//! `data_version` to tell other programs' writes from its own, and reads the change
//! queue, never the whole table.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use inotify::{Inotify, WatchMask};
use tokio::sync::Notify;

/// After ringing, the watch waits this long before reading again, so a burst of writes
/// (thousands a second while the daemon sends) rings a few hundred times a second at
/// most. The first write after a quiet spell still rings at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// Why the watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes: {source}")]
pub struct WatchError {
    dir: String,
    source: std::io::Error,
}

/// Starts watching the directory of `db` and calls `wake.notify_one()` whenever the
/// database or its WAL is written. The watch runs on a thread of its own that blocks in
/// `read(2)` on the inotify descriptor, so it costs nothing while nothing happens.
pub fn spawn(db: &Path, wake: Arc<Notify>) -> Result<std::thread::JoinHandle<()>, WatchError> {
    let dir = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    let fail = |source| WatchError {
        dir: dir.display().to_string(),
        source,
    };
    let mut inotify = Inotify::init().map_err(fail)?;
    inotify
        .watches()
        .add(
            &dir,
            WatchMask::MODIFY | WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::CREATE,
        )
        .map_err(fail)?;
    let file = db.file_name().map(OsString::from).unwrap_or_default();
    let mut wal = file.clone();
    wal.push("-wal");
    std::thread::Builder::new()
        .name("followup-watch".into())
        .spawn(move || {
            let mut buffer = [0u8; 4096];
            loop {
                match inotify.read_events_blocking(&mut buffer) {
                    Ok(events) => {
                        let ours = events
                            .filter(|e| e.name.is_some_and(|n| n == file.as_os_str() || n == wal.as_os_str()))
                            .count();
                        if ours > 0 {
                            wake.notify_one();
                            // Let a burst of writes gather into one read: each of the
                            // daemon's own commits writes the WAL several times.
                            std::thread::sleep(GATHER);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::error!(cause = %e, "the store watch failed; changes by other programs are noticed only when the daemon wakes for its own work");
                        return;
                    }
                }
            }
        })
        .map_err(fail)
}
