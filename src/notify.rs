//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once config, store
//! and scheduler are up; RELOADING=1 and READY=1 around a reload; STOPPING=1 on the way
//! out; STATUS= lines for `systemctl status`; WATCHDOG=1 from the scheduler's loop
//! ([`Watchdog`]). Without `NOTIFY_SOCKET` every call is a no-op, so the daemon runs the
//! same outside systemd.

use sd_notify::NotifyState;

use crate::scheduler::alarm::Ticker;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(cause = %e, "cannot notify the service manager");
    }
}

/// The daemon is serving.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has started.
pub fn reloading() {
    let now = sd_notify::NotifyState::monotonic_usec_now().ok();
    match now {
        Some(now) => send(&[NotifyState::Reloading, now]),
        None => send(&[NotifyState::Reloading]),
    }
}

/// The daemon is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// A status line for `systemctl status`.
pub fn status(text: &str) {
    send(&[NotifyState::Status(text)]);
}

/// The scheduler's loop is alive.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often the scheduler must ping, if systemd's watchdog is on: half the timeout.
pub fn watchdog_interval() -> Option<std::time::Duration> {
    sd_notify::watchdog_enabled().map(|d| d / 2)
}

/// Whether a service manager listens; callers skip work that only feeds it.
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty())
}

/// The watchdog's timer, owned by the loop whose liveness it proves: awaiting
/// [`Watchdog::tick`] in that loop's `select!` pings every [`watchdog_interval`], so a
/// loop that hangs stops pinging and systemd restarts the service. The timer wakes the
/// process once per ping ([`Ticker`]); without a watchdog there is no timer at all, and
/// the tick never completes.
pub struct Watchdog {
    ticker: Option<Ticker>,
}

impl Watchdog {
    /// A timer for the watchdog systemd asked for (`WATCHDOG_USEC`), if any. Must be
    /// called inside the runtime when a watchdog is on.
    pub fn from_env() -> Self {
        Watchdog {
            ticker: watchdog_interval().map(Ticker::new),
        }
    }

    /// Waits for the next ping time and pings; pending forever without a watchdog.
    pub async fn tick(&mut self) {
        match &mut self.ticker {
            Some(ticker) => {
                ticker.tick().await;
                watchdog();
            }
            None => std::future::pending().await,
        }
    }
}
