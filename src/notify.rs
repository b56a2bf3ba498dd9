//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once config, store
//! and scheduler are up; RELOADING=1 and READY=1 around a reload; STOPPING=1 on the way
//! out; STATUS= lines for `systemctl status`. Without `NOTIFY_SOCKET` every call is a
//! no-op, so the daemon runs the same outside systemd.

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
