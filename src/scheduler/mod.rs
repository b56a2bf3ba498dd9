//! The scheduler: two tasks that share the store.
//!
//! - The **planning task** ([`run_planning`]) sleeps until the earliest planned step
//!   (or [`work::LEAD`] before the earliest one composed ahead), or until the store
//!   watcher reports a write by another program, or a reload asks for a re-plan. Each
//!   time it wakes it plans the commitments in the change queue, then turns every due
//!   step into deliveries in the outbox ([`work`]). It never polls:
//!   the earliest step's time is a wall-clock [`alarm`], which also fires after a
//!   suspend and tells of a clock step, so an idle daemon is not woken at all.
//! - The **sender task** ([`sender::run`]) delivers the outbox with bounded concurrency,
//!   records each outcome and schedules retries.
//!
//! All SQLite work runs on the store's own thread through [`StoreHandle`] ([`owner`]),
//! never on the runtime's thread.
//!
//! Under systemd the planning task also pings the watchdog from its `select!`, so a
//! stuck loop stops the pings, and refreshes the `STATUS=` line after each pass
//! ([`health`]).

pub mod alarm;
pub mod health;
pub mod jobs;
pub mod owner;
pub mod sender;
pub mod work;

pub use owner::StoreHandle;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Config;
use crate::mail::Mailer;
use crate::store::{Claim, Store};
use crate::web::link::Links;

/// The longest a monotonic sleep lasts before the time it waits for is looked at
/// again, so a wall-clock step or a suspend costs at most this much lateness: the
/// sender's retry waits, and the planning task's when the [`alarm`] has no wall-clock
/// timer to use.
pub const MAX_SLEEP: Duration = Duration::from_secs(60);

/// What the tasks share: the store, the running config and transport, and the bells
/// that wake them.
pub struct Shared {
    /// The store.
    pub store: StoreHandle,
    /// The daemon's claim on the store's work, which every operation that takes or
    /// finishes work carries.
    pub claim: Claim,
    config: RwLock<Arc<Config>>,
    mailer: RwLock<Arc<Mailer>>,
    /// Rung by the store watcher when the database files change.
    pub store_changed: Arc<Notify>,
    /// Rung when the config changed and every open commitment must be planned again.
    pub replan: Notify,
    /// Rung by the planning task when deliveries entered the outbox.
    pub outbox: Notify,
    /// Rung when the daemon itself queued changes to plan (a delivery failed).
    pub plan_now: Notify,
    /// Where every task reads the time.
    pub clock: Clock,
    /// When the daemon started: calendar jobs make up runs missed before it only when
    /// their schedule says `catch_up = true`.
    pub started: Timestamp,
    /// The last error worth showing in `systemctl status`.
    pub last_error: Mutex<Option<String>>,
    /// The links put in the business's own emails, once the pages listen; none
    /// without `[web]`, and those emails quote commands instead.
    links: RwLock<Option<Arc<Links>>>,
}

impl Shared {
    /// Shared state for a daemon on `config` with `mailer`.
    pub fn new(
        store: Box<dyn Store>,
        store_changed: Arc<Notify>,
        claim: Claim,
        config: Config,
        mailer: Mailer,
        clock: Clock,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            started: clock.now(),
            clock,
            store: StoreHandle::new(store, claim.clone()),
            claim,
            config: RwLock::new(Arc::new(config)),
            mailer: RwLock::new(Arc::new(mailer)),
            store_changed,
            replan: Notify::new(),
            outbox: Notify::new(),
            plan_now: Notify::new(),
            last_error: Mutex::new(None),
            links: RwLock::new(None),
        })
    }

    /// The current time on the daemon's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sets the links the emails carry, at start: the address they point at is known
    /// only once the pages listen. `None` leaves the emails quoting commands. Emails
    /// composed from the next pass on carry what the last call set.
    pub fn set_links(&self, links: Option<Links>) {
        *self.links.write().unwrap_or_else(|p| p.into_inner()) = links.map(Arc::new);
    }

    /// The links the emails carry, if the pages are served.
    pub fn links(&self) -> Option<Arc<Links>> {
        self.links.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The running config.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The running transport.
    pub fn mailer(&self) -> Arc<Mailer> {
        self.mailer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Switches to a new config and transport, and asks for a re-plan.
    pub fn swap(&self, config: Config, mailer: Mailer) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        *self.mailer.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(mailer);
        self.replan.notify_one();
        self.outbox.notify_one();
    }

    fn note_error(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
    }
}

/// How long to sleep until `next`, at most [`MAX_SLEEP`].
fn sleep_for(next: Option<Timestamp>, now: Timestamp) -> Duration {
    match next {
        None => MAX_SLEEP,
        Some(at) => {
            let wait = now.duration_until(at);
            if wait.is_negative() {
                Duration::ZERO
            } else {
                Duration::try_from(wait).unwrap_or(MAX_SLEEP).min(MAX_SLEEP)
            }
        }
    }
}

/// The planning task. Returns when `shutdown` turns true; a store failure is logged
/// and retried after a pause, never fatal.
pub async fn run_planning(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut watchdog = crate::notify::Watchdog::from_env();
    let mut status = health::StatusReport::default();
    let mut alarm = alarm::Alarm::on(&shared.clock);
    let mut replan_all = false;
    'work: loop {
        if *shutdown.borrow() {
            return;
        }
        let all = std::mem::take(&mut replan_all);
        let result = work::pass_in_batches(&shared, all).await;
        let (next, mark) = match result {
            Ok(pass) => {
                if pass.queued > 0 {
                    shared.outbox.notify_one();
                }
                (pass.next_fire_at, Some(pass.mark))
            }
            Err(e) => {
                tracing::error!(cause = %e, "planning failed; trying again in 5 seconds");
                shared.note_error(format!("planning failed: {e}"));
                (
                    Some(shared.now() + jiff::SignedDuration::from_secs(5)),
                    None,
                )
            }
        };
        status.refresh(&shared).await;
        alarm.arm(next);
        let mut rechecks = Rechecks::default();
        loop {
            tokio::select! {
                wake = alarm.wait() => {
                    if wake == alarm::Wake::ClockChanged {
                        tracing::info!("the wall clock changed; looking again for what is due");
                        // The sender waits for emails composed ahead on the monotonic
                        // clock: it must measure again too.
                        shared.outbox.notify_one();
                    }
                    continue 'work;
                }
                _ = shared.replan.notified() => {
                    replan_all = true;
                    continue 'work;
                }
                _ = shared.plan_now.notified() => continue 'work,
                _ = shared.store_changed.notified() => rechecks.arm(Instant::now()),
                _ = tokio::time::sleep_until(rechecks.next().unwrap_or_else(Instant::now)), if rechecks.next().is_some() => {
                    rechecks.pop();
                    // Our own commits ring the bell too; only another program's
                    // commit moves the store's write mark.
                    let others = match mark {
                        Some(mark) => shared.store.call(move |s| s.others_wrote_since(mark).unwrap_or(true)).await,
                        None => true,
                    };
                    if others {
                        continue 'work;
                    }
                }
                _ = watchdog.tick() => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// When to look at the store's write mark after its files changed.
///
/// A writer's files change just before its commit becomes visible to readers (after
/// an fsync, for writers that sync every commit), so the first look may come too
/// early. The looks follow at growing intervals up to a second
/// after the last write; a burst of writes never delays the first look by more than
/// [`FIRST_LOOK`].
#[derive(Default)]
struct Rechecks {
    at: std::collections::VecDeque<Instant>,
}

/// Delay of the first look after a write.
const FIRST_LOOK: Duration = Duration::from_millis(2);
/// Later looks, counted from the last write.
const LATER_LOOKS: [Duration; 4] = [
    Duration::from_millis(20),
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1500),
];

impl Rechecks {
    fn arm(&mut self, now: Instant) {
        let first = self.at.front().copied().filter(|f| *f <= now + FIRST_LOOK);
        self.at.clear();
        self.at.push_back(first.unwrap_or(now + FIRST_LOOK));
        self.at.extend(LATER_LOOKS.iter().map(|d| now + *d));
    }

    fn next(&self) -> Option<Instant> {
        self.at.front().copied()
    }

    fn pop(&mut self) {
        self.at.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_end_at_the_next_step_and_never_exceed_the_guard() {
        let now: Timestamp = "2026-11-24T10:00:00Z".parse().unwrap();
        assert_eq!(sleep_for(None, now), MAX_SLEEP);
        assert_eq!(
            sleep_for(Some(now + jiff::SignedDuration::from_secs(5)), now),
            Duration::from_secs(5)
        );
        assert_eq!(
            sleep_for(Some(now - jiff::SignedDuration::from_secs(5)), now),
            Duration::ZERO
        );
        assert_eq!(
            sleep_for(Some(now + jiff::SignedDuration::from_hours(5)), now),
            MAX_SLEEP
        );
    }

    #[test]
    fn a_burst_of_writes_does_not_push_the_first_look_away() {
        let start = Instant::now();
        let mut rechecks = Rechecks::default();
        rechecks.arm(start);
        rechecks.arm(start + Duration::from_millis(1));
        assert_eq!(rechecks.next(), Some(start + FIRST_LOOK));
        assert_eq!(
            rechecks.at.back().copied(),
            Some(start + Duration::from_millis(1) + LATER_LOOKS[3])
        );
        // A look still pending stays, even when later writes keep coming.
        rechecks.arm(start + Duration::from_millis(10));
        assert_eq!(rechecks.next(), Some(start + FIRST_LOOK));
        rechecks.pop();
        rechecks.pop();
        rechecks.arm(start + Duration::from_millis(30));
        assert_eq!(
            rechecks.next(),
            Some(start + Duration::from_millis(30) + FIRST_LOOK)
        );
    }
}
