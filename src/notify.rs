//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once config, store
//! and scheduler are up; RELOADING=1 and READY=1 around a reload; STOPPING=1 on the way
//! out; STATUS= lines for `systemctl status`; WATCHDOG=1 from the scheduler's loop
//! ([`Watchdog`]). Without `NOTIFY_SOCKET` every call is a no-op, so the daemon runs the
//! same outside systemd.

use sd_notify::NotifyState;

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
/// loop that hangs stops pinging and systemd restarts the service. Without a watchdog
/// the tick never completes and costs no wake-up.
pub struct Watchdog {
    interval: Option<tokio::time::Interval>,
}

impl Watchdog {
    /// A timer for the watchdog systemd asked for (`WATCHDOG_USEC`), if any.
    pub fn from_env() -> Self {
        let interval = watchdog_interval().map(|every| {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        Watchdog { interval }
    }

    /// Waits for the next ping time and pings; pending forever without a watchdog.
    pub async fn tick(&mut self) {
        match &mut self.interval {
            Some(interval) => {
                interval.tick().await;
                watchdog();
            }
            None => std::future::pending().await,
        }
    }
}
