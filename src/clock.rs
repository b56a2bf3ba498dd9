//! Where the daemon reads the time.
//!
//! The scheduler, the sender and the calendar jobs ask a [`Clock`] instead of the
//! system, so a test can drive a whole timeline without waiting for it. A daemon in
//! production runs on [`Clock::system`].

use std::sync::Arc;

use jiff::Timestamp;

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
