//! Where the daemon reads the time.
//!
//! The scheduler, the sender and the calendar jobs ask a [`Clock`] instead of the
//! system, so a test can drive a whole timeline without waiting for it. A daemon in
//! production runs on [`Clock::system`].

use std::sync::Arc;

use jiff::Timestamp;

use crate::scheduler::MAX_SLEEP;

/// The time as the daemon sees it. Cheap to clone; every clone reads the same source.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    /// The host's wall clock.
    System,
}

impl Clock {
    /// The host's wall clock.
    pub fn system() -> Clock {
        Clock {
            source: Arc::new(Source::System),
        }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        match &*self.source {
            Source::System => Timestamp::now(),
        }
    }

    /// Returns once this clock reads `at` or later. On the host's clock the wait is
    /// measured again at least every [`MAX_SLEEP`], so a wall-clock step or a suspend
    /// costs at most that much lateness.
    pub async fn sleep_until(&self, at: Timestamp) {
        loop {
            let wait = self.now().duration_until(at);
            if wait.is_negative() || wait.is_zero() {
                return;
            }
            let wait = std::time::Duration::try_from(wait).unwrap_or(MAX_SLEEP);
            tokio::time::sleep(wait.min(MAX_SLEEP)).await;
        }
    }

    /// True on the host's wall clock, whose changes the kernel reports (see
    /// [`crate::scheduler::alarm`]).
    pub fn is_system(&self) -> bool {
        matches!(&*self.source, Source::System)
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::system()
    }
}
