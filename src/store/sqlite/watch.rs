//! Noticing writes by other programs without polling.
//!
//! Every commit to a WAL-mode SQLite file writes its `-wal` file, so an inotify watch on
//! the store's directory hears each commit by any process the moment it happens. The
//! watcher only wakes the scheduler; the scheduler then asks the store whether another
//! program wrote ([`Marks::others_wrote_since`](crate::store::Marks::others_wrote_since), SQLite's `data_version`), and reads
//! the change queue, never the whole table.
//!
//! The watch also checkpoints the WAL into the database file while writes go on, on a
//! connection of its own, so that copying pages back does not hold up the store's
//! thread, which the sender waits on to record what was sent. The daemon's own
//! connection then checkpoints only if the watch falls far behind
//! ([`SqliteStore::open_for_daemon`](super::SqliteStore::open_for_daemon)).

use std::ffi::OsString;
use std::path::Path;
use std::sync::Arc;

use inotify::{Inotify, WatchMask};
use tokio::sync::Notify;

/// After ringing, the watch waits this long before reading again, so a burst of writes
/// (thousands a second while the daemon sends) rings a few hundred times a second at
/// most. The first write after a quiet spell still rings at once.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);

/// How often at most the watch checkpoints while writes go on: often enough that the
/// WAL stays a few MiB during a burst (SQLite's own default is every 1,000 pages).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Why the watch could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {dir} for changes: {source}")]
pub struct WatchError {
    dir: String,
    source: std::io::Error,
}

/// Starts watching the directory of `db` and calls `wake.notify_one()` whenever the
/// database or its WAL is written, checkpointing at most every `CHECKPOINT_EVERY`
/// meanwhile. The watch runs on a thread of its own that blocks in `read(2)` on the
/// inotify descriptor, so it costs nothing while nothing happens.
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
    let checkpoints = rusqlite::Connection::open(db).map_err(|e| fail(std::io::Error::other(e)))?;
    let file = db.file_name().map(OsString::from).unwrap_or_default();
    let mut wal = file.clone();
    wal.push("-wal");
    std::thread::Builder::new()
        .name("followup-watch".into())
        .spawn(move || {
            let mut buffer = [0u8; 4096];
            let mut checkpointed = std::time::Instant::now();
            let mut failing = false;
            loop {
                match inotify.read_events_blocking(&mut buffer) {
                    Ok(events) => {
                        let ours = events
                            .filter(|e| e.name.is_some_and(|n| n == file.as_os_str() || n == wal.as_os_str()))
                            .count();
                        if ours > 0 {
                            wake.notify_one();
                            if checkpointed.elapsed() >= CHECKPOINT_EVERY {
                                checkpointed = std::time::Instant::now();
                                // PASSIVE: copies what no reader needs, never waits.
                                match checkpoints.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                                    Ok(()) => failing = false,
                                    Err(e) if !failing => {
                                        failing = true;
                                        tracing::warn!(cause = %e, "cannot checkpoint the store; the daemon's own connection will once the WAL is large");
                                    }
                                    Err(_) => {}
                                }
                            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;
    use crate::store::{NewCommitment, SqliteStore};

    #[test]
    fn the_watch_rings_for_writes_and_checkpoints_them_off_the_writers_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("followup.db");
        let store = SqliteStore::open_for_daemon(&path).unwrap();
        let wake = Arc::new(Notify::new());
        let _watch = spawn(&path, wake.clone()).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        // In WAL mode the database file itself is written only by checkpoints, and this
        // connection leaves them to the watch until the WAL is far larger than this.
        let started = std::time::Instant::now();
        while started.elapsed() < CHECKPOINT_EVERY * 3 {
            store
                .insert_commitment(&NewCommitment::sample("2026-11-24T17:00:00Z"))
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::metadata(&path).unwrap().len() == before {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into the database file"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let rang = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(1), wake.notified()).await
            });
        assert!(rang.is_ok(), "the writes rang the bell");
    }
}
