//! One daemon per store: an advisory lock (`flock`) on a file beside the database.
//!
//! Two daemons on one store would both send the same due steps, and with the file
//! transport collide on the files they write. The daemon holds an exclusive lock on
//! `<store>.lock` for its whole life and writes its pid into the file, so a second one
//! refuses to start and names the first. The kernel drops the lock when the process
//! ends, also on `kill -9`: a stale file with an old pid never blocks a new daemon.
//!
//! The CLI only asks whether a daemon holds the lock (a shared lock tried without
//! waiting and dropped at once); it never creates the file, so a command run as root
//! leaves nothing owned by root. A daemon starting during such a probe waits the
//! probe out instead of mistaking it for another daemon.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a starting daemon waits out the CLI's probes of the lock at most.
const PROBES_WAITED: Duration = Duration::from_secs(2);

/// Why the daemon cannot have the store to itself.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another daemon holds the lock.
    #[error(
        "another followup daemon ({holder}) is already running on the store {store}: \
         stop it first, or give this one a store of its own ([store] path)"
    )]
    Held {
        /// The database file.
        store: PathBuf,
        /// Who holds it.
        holder: Holder,
    },
    /// The lock file could not be opened, locked or written.
    #[error("cannot lock {path} for the daemon: {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The daemon that holds a store's lock, as its lock file names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its process id; `None` in the instant between locking and writing it.
    pub pid: Option<u32>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid {pid}"),
            None => f.write_str("pid not yet written"),
        }
    }
}

/// The exclusive lock of a running daemon on its store; released when dropped, or by
/// the kernel when the process dies.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

/// The lock file of the store at `db`: `followup.db.lock` beside `followup.db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

impl DaemonLock {
    /// Takes the store at `db` for this process, or says which daemon has it. Creates
    /// the store's directory if needed.
    pub fn acquire(db: &Path) -> Result<DaemonLock, LockError> {
        DaemonLock::acquire_within(db, PROBES_WAITED)
    }

    fn acquire_within(db: &Path, probes_waited: Duration) -> Result<DaemonLock, LockError> {
        let path = lock_path(db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let deadline = std::time::Instant::now() + probes_waited;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::Error(e)) => return Err(io(e)),
                Err(TryLockError::WouldBlock) => {}
            }
            // A shared lock is granted unless someone holds the exclusive one: then
            // only probes were in the way, and they last microseconds.
            match file.try_lock_shared() {
                Err(TryLockError::WouldBlock) => {
                    return Err(LockError::Held {
                        store: db.to_path_buf(),
                        holder: read_holder(&mut file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
                Ok(()) => file.unlock().map_err(io)?,
            }
            if std::time::Instant::now() >= deadline {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("other processes kept probing the lock for {probes_waited:?}"),
                )));
            }
            std::thread::sleep(Duration::from_millis(fastrand::u64(1..10)));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(DaemonLock { _file: file })
    }
}

/// The daemon holding the lock of the store at `db`, if one runs. Creates nothing and
/// never makes the daemon wait.
pub fn running_daemon(db: &Path) -> Result<Option<Holder>, LockError> {
    let path = lock_path(db);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock().map_err(io)?;
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => Ok(Some(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let pid = file
        .rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .ok()
        .and_then(|_| text.trim().parse().ok());
    Holder { pid }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_store_is_refused_naming_the_first_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("followup.db");
        assert_eq!(running_daemon(&db).unwrap(), None, "no lock file yet");
        assert!(!lock_path(&db).exists(), "probing creates nothing");
        let first = DaemonLock::acquire(&db).unwrap();
        let me = Holder {
            pid: Some(std::process::id()),
        };
        assert_eq!(running_daemon(&db).unwrap(), Some(me));
        match DaemonLock::acquire(&db) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, me),
            other => panic!("a second lock was not refused: {other:?}"),
        }
        drop(first);
        assert_eq!(running_daemon(&db).unwrap(), None);
        let _again = DaemonLock::acquire(&db).unwrap();
    }

    #[test]
    fn a_probe_in_progress_is_not_taken_for_a_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("followup.db");
        drop(DaemonLock::acquire(&db).unwrap());
        let probe = File::open(lock_path(&db)).unwrap();
        probe.try_lock_shared().unwrap();
        match DaemonLock::acquire_within(&db, Duration::ZERO) {
            Err(LockError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::WouldBlock)
            }
            other => panic!("a probe was taken for a daemon: {other:?}"),
        }
        drop(probe);
        DaemonLock::acquire_within(&db, Duration::ZERO).unwrap();
    }
}
