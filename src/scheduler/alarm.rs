//! A wall-clock alarm: wakes the planning task when the wall clock reaches the next
//! step's time, and at no other moment.
//!
//! Steps fall due at wall-clock instants ("17:00 in London"), but tokio's timers run on
//! the monotonic clock, which stands still while the machine is suspended and does not
//! follow when the wall clock is stepped (NTP correcting a bad boot time, an admin, a
//! virtual machine restored from a snapshot). A tokio sleep of one hour armed at 16:00
//! can therefore end long after 17:00. Guarding against that by waking at least once a
//! minute to look again costs an idle daemon a wake-up a minute.
//!
//! [`Alarm`] arms a `timerfd` on `CLOCK_REALTIME` at the absolute instant
//! (`TFD_TIMER_ABSTIME`), polled through tokio's reactor ([`AsyncFd`]). The kernel
//! fires it when the wall clock reaches that instant, also at once after a resume from
//! suspend if the instant passed meanwhile. With `TFD_TIMER_CANCEL_ON_SET`, a
//! discontinuous change of the wall clock (including a resume) makes the read fail with
//! `ECANCELED`: the alarm reports [`Wake::ClockChanged`] and the caller works out its
//! next wake-up again. Nothing wakes the process in between, however far away the next
//! step is.
//!
//! Where the kernel refuses a timerfd (a system-call filter, an emulated kernel), the
//! alarm falls back to a tokio sleep of at most [`MAX_SLEEP`](super::MAX_SLEEP): late
//! by at most that much after a clock step or a suspend, at the cost of a wake-up per
//! [`MAX_SLEEP`](super::MAX_SLEEP).
//!
//! [`Ticker`] is the same kind of timer on the monotonic clock, repeating: the systemd
//! watchdog's pings. A tokio interval of 15 seconds wakes the process about three
//! times per period, as its timer wheel moves the deadline down its levels; a periodic
//! timerfd wakes it once.

use std::future;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd, RawFd};
use std::time::Duration;

use jiff::Timestamp;
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::sleep_for;

/// Why [`Alarm::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The armed time came (or, in the fallback, the guard's limit was reached).
    Time,
    /// The wall clock was stepped or the machine resumed from suspend: the armed time
    /// may now be nearer or further away than when it was set.
    ClockChanged,
}

/// How the alarm waits.
enum Mode {
    /// A timerfd on `CLOCK_REALTIME`; `armed` is false while no time is set.
    WallClock { timer: Timer, armed: bool },
    /// A monotonic tokio sleep, capped by the guard; `None` while no time is set.
    Fallback { deadline: Option<Instant> },
}

/// A one-shot alarm at a wall-clock instant. Arm it with [`Alarm::arm`], then await
/// [`Alarm::wait`], typically in a `select!` (waiting is cancel-safe).
pub struct Alarm {
    mode: Mode,
}

impl Alarm {
    /// A wall-clock alarm, or the fallback sleep if the kernel refuses a timerfd. Must
    /// be called inside a tokio runtime with I/O enabled.
    pub fn new() -> Alarm {
        match Timer::new(ClockId::CLOCK_REALTIME) {
            Ok(timer) => Alarm {
                mode: Mode::WallClock {
                    timer,
                    armed: false,
                },
            },
            Err(e) => {
                tracing::warn!(cause = %e, "no wall-clock timer; the scheduler looks at the clock every minute instead");
                Alarm::fallback()
            }
        }
    }

    /// The fallback alarm: a monotonic sleep of at most [`MAX_SLEEP`](super::MAX_SLEEP).
    pub fn fallback() -> Alarm {
        Alarm {
            mode: Mode::Fallback { deadline: None },
        }
    }

    /// Whether the alarm follows the wall clock (a timerfd), rather than the fallback.
    pub fn follows_wall_clock(&self) -> bool {
        matches!(self.mode, Mode::WallClock { .. })
    }

    /// Sets the alarm for `at`, replacing any earlier time; a time already past fires at
    /// once. `None` clears it: with nothing to wait for, [`Alarm::wait`] then waits
    /// forever (the fallback until its guard).
    pub fn arm(&mut self, at: Option<Timestamp>) {
        match &mut self.mode {
            Mode::WallClock { timer, armed } => {
                let result = match at {
                    Some(at) => timer.set(
                        Expiration::OneShot(timespec(at)),
                        TimerSetTimeFlags::TFD_TIMER_ABSTIME
                            | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
                    ),
                    None => timer.unset(),
                };
                match result {
                    Ok(()) => *armed = at.is_some(),
                    Err(e) => {
                        tracing::warn!(cause = %e, "cannot set the wall-clock timer; the scheduler looks at the clock every minute instead");
                        *self = Alarm::fallback();
                        self.arm(at);
                    }
                }
            }
            Mode::Fallback { deadline } => {
                *deadline = Some(Instant::now() + sleep_for(at, Timestamp::now()));
            }
        }
    }

    /// Waits until the armed time comes or the wall clock changes. Without an armed
    /// time (and a timerfd) it waits forever and costs no wake-up. After
    /// [`Wake::Time`] the alarm is spent until armed again.
    pub async fn wait(&mut self) -> Wake {
        loop {
            match &mut self.mode {
                Mode::WallClock { armed: false, .. } => future::pending::<()>().await,
                Mode::WallClock { timer, armed } => match timer.expired().await {
                    Ok(_) => {
                        *armed = false;
                        return Wake::Time;
                    }
                    Err(Errno::ECANCELED) => return Wake::ClockChanged,
                    Err(e) => {
                        tracing::warn!(cause = %e, "the wall-clock timer failed; the scheduler looks at the clock every minute instead");
                        *self = Alarm::fallback();
                        return Wake::ClockChanged;
                    }
                },
                Mode::Fallback { deadline: None } => future::pending::<()>().await,
                Mode::Fallback { deadline: Some(at) } => {
                    tokio::time::sleep_until(*at).await;
                    self.mode = Mode::Fallback { deadline: None };
                    return Wake::Time;
                }
            }
        }
    }
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm::new()
    }
}

/// A periodic timer on the monotonic clock: [`Ticker::tick`] completes at once, then
/// once per period. Ticks missed while nobody waited make one tick; the ticks keep
/// their phase.
pub struct Ticker {
    mode: TickMode,
}

enum TickMode {
    /// A timerfd on `CLOCK_MONOTONIC` with an interval.
    Timer(Timer),
    /// tokio's interval, if the kernel refuses a timerfd.
    Interval(tokio::time::Interval),
}

impl Ticker {
    /// A ticker every `period` (a zero period is taken as one millisecond). Must be
    /// called inside a tokio runtime with I/O and time enabled.
    pub fn new(period: Duration) -> Ticker {
        let period = period.max(Duration::from_millis(1));
        let timer = Timer::new(ClockId::CLOCK_MONOTONIC).and_then(|timer| {
            timer
                .set(
                    Expiration::IntervalDelayed(
                        TimeSpec::new(0, 1),
                        TimeSpec::from_duration(period),
                    ),
                    TimerSetTimeFlags::empty(),
                )
                .map_err(io::Error::from)?;
            Ok(timer)
        });
        let mode = match timer {
            Ok(timer) => TickMode::Timer(timer),
            Err(e) => {
                tracing::debug!(cause = %e, "no timerfd for the ticker; using tokio's interval");
                TickMode::Interval(Ticker::interval(period))
            }
        };
        Ticker { mode }
    }

    fn interval(period: Duration) -> tokio::time::Interval {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    }

    /// Waits for the next tick (cancel-safe).
    pub async fn tick(&mut self) {
        match &mut self.mode {
            TickMode::Timer(timer) => {
                if let Err(e) = timer.expired().await {
                    tracing::warn!(cause = %e, "the ticker's timer failed; using tokio's interval");
                    let period = timer.period().unwrap_or(Duration::from_secs(1));
                    self.mode = TickMode::Interval(Ticker::interval(period));
                }
            }
            TickMode::Interval(interval) => {
                interval.tick().await;
            }
        }
    }
}

/// A non-blocking timerfd registered with tokio's reactor.
struct Timer {
    fd: AsyncFd<RawTimer>,
}

/// The timerfd, as tokio's reactor takes it.
struct RawTimer(TimerFd);

impl AsRawFd for RawTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Timer {
    fn new(clock: ClockId) -> io::Result<Timer> {
        let timer = TimerFd::new(clock, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        // SAFETY: the `TimerFd` owns its descriptor and closes it only when dropped,
        // which happens when the `AsyncFd` that owns it is dropped; it always returns
        // that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(RawTimer(timer), Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Timer { fd })
    }

    fn set(&self, expiration: Expiration, flags: TimerSetTimeFlags) -> nix::Result<()> {
        self.fd.get_ref().0.set(expiration, flags)
    }

    fn unset(&self) -> nix::Result<()> {
        self.fd.get_ref().0.unset()
    }

    /// The interval of a periodic timer.
    fn period(&self) -> Option<Duration> {
        match self.fd.get_ref().0.get() {
            Ok(Some(Expiration::Interval(every) | Expiration::IntervalDelayed(_, every))) => {
                Some(Duration::from(every))
            }
            _ => None,
        }
    }

    /// Waits until the timer has expired and returns how many times it did since the
    /// last read; `ECANCELED` if the wall clock changed under a `CANCEL_ON_SET` timer.
    async fn expired(&self) -> Result<u64, Errno> {
        loop {
            let mut ready = self
                .fd
                .readable()
                .await
                .map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))?;
            let mut count = [0u8; 8];
            match ready.try_io(|fd| {
                nix::unistd::read(&fd.get_ref().0, &mut count).map_err(io::Error::from)
            }) {
                Err(_would_block) => continue,
                Ok(Ok(_)) => {
                    // A read timerfd is not readable until it expires again.
                    ready.clear_ready();
                    return Ok(u64::from_ne_bytes(count));
                }
                Ok(Err(e)) => match e.raw_os_error().map_or(Errno::EIO, Errno::from_raw) {
                    Errno::EINTR | Errno::EAGAIN => continue,
                    e => return Err(e),
                },
            }
        }
    }
}

/// `at` as an absolute `CLOCK_REALTIME` time. An all-zero time would disarm the timer,
/// so instants at or before the epoch become its first nanosecond (long past: fires).
fn timespec(at: Timestamp) -> TimeSpec {
    if at <= Timestamp::UNIX_EPOCH {
        return TimeSpec::new(0, 1);
    }
    TimeSpec::new(at.as_second() as _, at.subsec_nanosecond() as _)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn in_ms(ms: i64) -> Timestamp {
        Timestamp::now() + SignedDuration::from_millis(ms)
    }

    #[tokio::test]
    async fn an_alarm_in_the_past_fires_at_once() {
        let mut alarm = Alarm::new();
        assert!(alarm.follows_wall_clock());
        alarm.arm(Some(in_ms(-5_000)));
        let woke = tokio::time::timeout(Duration::from_millis(500), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));
        alarm.arm(Some(Timestamp::UNIX_EPOCH));
        let woke = tokio::time::timeout(Duration::from_millis(500), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));
    }

    #[tokio::test]
    async fn an_alarm_fires_when_the_wall_clock_reaches_its_time() {
        let mut alarm = Alarm::new();
        let at = in_ms(50);
        alarm.arm(Some(at));
        let woke = tokio::time::timeout(Duration::from_secs(2), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));
        assert!(Timestamp::now() >= at, "fired before its time");
        // Spent: it does not fire again until armed again.
        let again = tokio::time::timeout(Duration::from_millis(100), alarm.wait()).await;
        assert!(again.is_err(), "a spent alarm fired again");
    }

    #[tokio::test]
    async fn arming_again_replaces_the_time_and_none_clears_it() {
        let mut alarm = Alarm::new();
        alarm.arm(Some(in_ms(3_600_000)));
        alarm.arm(Some(in_ms(30)));
        let woke = tokio::time::timeout(Duration::from_secs(2), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));

        alarm.arm(Some(in_ms(30)));
        alarm.arm(Some(in_ms(3_600_000)));
        let early = tokio::time::timeout(Duration::from_millis(150), alarm.wait()).await;
        assert!(early.is_err(), "fired at the replaced time");

        alarm.arm(Some(in_ms(30)));
        alarm.arm(None);
        let cleared = tokio::time::timeout(Duration::from_millis(150), alarm.wait()).await;
        assert!(cleared.is_err(), "a cleared alarm fired");

        // A wait cut short by a timeout leaves the alarm usable.
        alarm.arm(Some(in_ms(20)));
        let woke = tokio::time::timeout(Duration::from_secs(2), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));
    }

    #[tokio::test]
    async fn the_fallback_sleeps_until_the_time_or_the_guard() {
        let mut alarm = Alarm::fallback();
        assert!(!alarm.follows_wall_clock());
        alarm.arm(Some(in_ms(30)));
        let woke = tokio::time::timeout(Duration::from_secs(2), alarm.wait()).await;
        assert_eq!(woke, Ok(Wake::Time));
        let spent = tokio::time::timeout(Duration::from_millis(100), alarm.wait()).await;
        assert!(spent.is_err(), "a spent fallback alarm fired again");
    }

    #[tokio::test]
    async fn a_ticker_ticks_at_once_then_once_per_period() {
        let period = Duration::from_millis(100);
        let mut ticker = Ticker::new(period);
        assert!(matches!(ticker.mode, TickMode::Timer(_)));
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_millis(50), ticker.tick())
            .await
            .expect("the first tick comes at once");
        tokio::time::timeout(Duration::from_secs(2), ticker.tick())
            .await
            .expect("a tick per period");
        assert!(started.elapsed() >= period);
        // Ticks missed while nobody waited (at 200 and 300 ms) make one, and the next
        // keeps the phase (400 ms).
        std::thread::sleep(period * 3 + period / 2 - started.elapsed());
        tokio::time::timeout(Duration::from_millis(20), ticker.tick())
            .await
            .expect("the missed ticks make one");
        let next = tokio::time::timeout(Duration::from_millis(25), ticker.tick()).await;
        assert!(next.is_err(), "missed ticks came one by one");
        tokio::time::timeout(Duration::from_secs(2), ticker.tick())
            .await
            .expect("ticking goes on");
    }
}
