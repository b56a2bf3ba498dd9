//! Where the daemon reads the time.
//!
//! The scheduler, the sender, the calendar jobs, the web pages and the CLI ask a
//! [`Clock`] instead of the system, so a test can drive a whole timeline without
//! waiting for it. A daemon in production runs on [`Clock::system`].
//!
//! For tests only, [`Clock::from_env`] reads the environment variable
//! [`TEST_CLOCK_VAR`]: when it names a file, the process's time is the RFC 3339 time in
//! that file, and it stands still between writes (deterministic: nothing falls due
//! while a test looks). The daemon notices a rewrite through an inotify watch on the
//! file's directory ([`Clock::watch`]), so an idle daemon still wakes for nothing, and
//! every wait for a time ([`Clock::sleep_until`], the planning task's alarm) looks
//! again after each write.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::scheduler::MAX_SLEEP;

/// The environment variable naming a test clock's file. For tests; unset in production.
pub const TEST_CLOCK_VAR: &str = "FOLLOWUP_TEST_CLOCK";

/// The time as the daemon sees it. Cheap to clone; every clone reads the same source.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    /// The host's wall clock.
    System,
    /// A file a test writes; the time moves only when the file is rewritten.
    Test {
        path: PathBuf,
        now: watch::Sender<Timestamp>,
    },
}

/// Why a test clock could not be read or watched.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The file cannot be read.
    #[error("cannot read the test clock {path} ({TEST_CLOCK_VAR}): {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The file does not hold an RFC 3339 time.
    #[error(
        "the test clock {path} ({TEST_CLOCK_VAR}) holds {value:?}, not an RFC 3339 time such as \"2026-12-01T09:00:00Z\""
    )]
    Value { path: String, value: String },
    /// The file's directory cannot be watched.
    #[error("cannot watch the test clock {path} for changes: {source}")]
    Watch {
        path: String,
        source: std::io::Error,
    },
}

impl Clock {
    /// The host's wall clock.
    pub fn system() -> Clock {
        Clock {
            source: Arc::new(Source::System),
        }
    }

    /// The clock this process runs on: the test clock in the file named by
    /// [`TEST_CLOCK_VAR`] if it is set and not empty, else the host's wall clock.
    pub fn from_env() -> Result<Clock, ClockError> {
        match std::env::var_os(TEST_CLOCK_VAR) {
            Some(path) if !path.is_empty() => Clock::test(Path::new(&path)),
            _ => Ok(Clock::system()),
        }
    }

    /// [`Clock::from_env`], and on a test clock [`Clock::watch`]ed: for the daemon,
    /// which must follow the test's writes.
    pub fn from_env_watched() -> Result<Clock, ClockError> {
        let clock = Clock::from_env()?;
        clock.watch()?;
        Ok(clock)
    }

    /// A test clock reading the time from `path`; see [`Clock::watch`] to follow
    /// rewrites.
    pub fn test(path: &Path) -> Result<Clock, ClockError> {
        let now = read(path)?;
        Ok(Clock {
            source: Arc::new(Source::Test {
                path: path.to_path_buf(),
                now: watch::Sender::new(now),
            }),
        })
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &*self.source {
            Source::System => Timestamp::now(),
            Source::Test { now, .. } => *now.borrow(),
        }
    }

    /// Returns once this clock reads `at` or later. On the host's clock the wait is
    /// measured again at least every [`MAX_SLEEP`], so a wall-clock step or a suspend
    /// costs at most that much lateness. On a test clock it looks again after each
    /// write of the file.
    pub async fn sleep_until(&self, at: Timestamp) {
        match &*self.source {
            Source::System => loop {
                let wait = self.now().duration_until(at);
                if wait.is_negative() || wait.is_zero() {
                    return;
                }
                let wait = std::time::Duration::try_from(wait).unwrap_or(MAX_SLEEP);
                tokio::time::sleep(wait.min(MAX_SLEEP)).await;
            },
            Source::Test { now, .. } => {
                let mut changes = now.subscribe();
                // `wait_for` looks at the current value first: no write is missed.
                let _ = changes.wait_for(|now| *now >= at).await;
            }
        }
    }

    /// True on the host's wall clock, whose changes the kernel reports (see
    /// [`crate::scheduler::alarm`]).
    pub fn is_system(&self) -> bool {
        matches!(&*self.source, Source::System)
    }

    /// On a test clock, every write of its file from now on; `None` on the host's clock.
    /// The receiver has seen the current time.
    pub fn changes(&self) -> Option<watch::Receiver<Timestamp>> {
        match &*self.source {
            Source::System => None,
            Source::Test { now, .. } => Some(now.subscribe()),
        }
    }

    /// On a test clock, starts a thread that reads the file again whenever it is
    /// written (inotify on its directory: no polling) and moves the clock to what it
    /// holds. A value that cannot be read is logged and leaves the clock where it was.
    /// Does nothing on the host's clock.
    pub fn watch(&self) -> Result<(), ClockError> {
        let Source::Test { path, now } = &*self.source else {
            return Ok(());
        };
        let fail = |source| ClockError::Watch {
            path: path.display().to_string(),
            source,
        };
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let mut inotify = inotify::Inotify::init().map_err(fail)?;
        inotify
            .watches()
            .add(
                dir,
                inotify::WatchMask::CLOSE_WRITE | inotify::WatchMask::MOVED_TO,
            )
            .map_err(fail)?;
        let name = path.file_name().map(OsString::from).unwrap_or_default();
        let (path, now) = (path.clone(), now.clone());
        let update = move || match read(&path) {
            Ok(at) => {
                tracing::debug!(now = %at, "the test clock moved");
                now.send_replace(at);
            }
            Err(e) => tracing::warn!(cause = %e, "the test clock stays where it was"),
        };
        // A write between the first read and the watch is not lost.
        update();
        std::thread::Builder::new()
            .name("followup-clock".into())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match inotify.read_events_blocking(&mut buffer) {
                        Ok(events) => {
                            if events.filter(|e| e.name == Some(name.as_os_str())).count() > 0 {
                                update();
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            tracing::error!(cause = %e, "the test clock's watch failed; the clock stands still");
                            return;
                        }
                    }
                }
            })
            .map_err(fail)?;
        Ok(())
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}

/// The time in a test clock's file.
fn read(path: &Path) -> Result<Timestamp, ClockError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClockError::Read {
        path: path.display().to_string(),
        source,
    })?;
    text.trim().parse().map_err(|_| ClockError::Value {
        path: path.display().to_string(),
        value: text.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_bad_test_clock_names_the_file_and_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        std::fs::write(&path, "next tuesday\n").unwrap();
        let e = Clock::test(&path).unwrap_err().to_string();
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains("\"next tuesday\""), "{e}");
        let e = Clock::test(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing") && e.contains(TEST_CLOCK_VAR), "{e}");
    }

    #[tokio::test]
    async fn a_test_clock_stands_still_until_its_file_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clock");
        std::fs::write(&path, "2026-12-01T09:00:00Z").unwrap();
        let clock = Clock::test(&path).unwrap();
        clock.watch().unwrap();
        assert!(!clock.is_system());
        assert_eq!(clock.now(), ts("2026-12-01T09:00:00Z"));
        let at = ts("2026-12-01T10:00:00Z");
        let waiting = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(at).await }
        });
        std::fs::write(&path, "2026-12-01T09:30:00Z").unwrap();
        let mut changes = clock.changes().unwrap();
        changes
            .wait_for(|now| *now == ts("2026-12-01T09:30:00Z"))
            .await
            .unwrap();
        assert!(!waiting.is_finished());
        std::fs::write(&path, "2026-12-01T10:00:00Z").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .expect("the wait ends once the clock reaches its time")
            .unwrap();
        assert_eq!(clock.now(), at);
    }
}
