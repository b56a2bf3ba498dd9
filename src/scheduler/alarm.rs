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
//! `ECANCELED`. Nothing wakes the process in between, however far away the next step
//! is.
//!
//! Not every change is worth a look: some hosts set a virtual machine's clock to their
//! own several times a second, a few milliseconds each time (42 changes in 5 s were
//! seen, then none for minutes). On `ECANCELED` the alarm compares how far the wall
//! clock runs ahead of the monotonic clock with what it was when the alarm was armed
//! (`judge`): a change under [`NOTICEABLE`] that leaves the armed time ahead sets the
//! timer again and waits on, logged at debug level only; a bigger one (or several small
//! ones adding up), or one that reaches the armed time, ends the wait with
//! [`Wake::ClockChanged`] and the caller works out its next wake-up again.
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

use std::future::{self, Future};
use std::io;
use std::os::fd::{AsFd as _, AsRawFd, RawFd};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::sleep_for;
use crate::clock::Clock;

#[cfg(test)]
mod tests;

/// The smallest change of the wall clock that makes the alarm report
/// [`Wake::ClockChanged`]. Smaller ones move the caller's monotonic waits by less than
/// the lateness it tolerates anyway, and come by the dozen on some hosts.
pub const NOTICEABLE: Duration = Duration::from_secs(1);

/// Why [`Alarm::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The armed time came (or, in the fallback, the guard's limit was reached).
    Time,
    /// The wall clock was stepped by [`NOTICEABLE`] or more, or to the armed time, or
    /// the machine resumed from suspend: the armed time may now be nearer or further
    /// away than when it was set.
    ClockChanged,
}

/// A one-shot alarm at a wall-clock instant. Arm it with [`Alarm::arm`], then await
/// [`Alarm::wait`], typically in a `select!` (waiting is cancel-safe).
pub struct Alarm {
    inner: Inner,
}

/// What an [`Alarm`] follows.
enum Inner {
    /// The host's wall clock.
    Host(AlarmOn<RealTimer>),
    /// A test clock: the armed time and the clock's writes.
    Test(TestAlarm),
}

impl Alarm {
    /// A wall-clock alarm, or the fallback sleep if the kernel refuses a timerfd. Must
    /// be called inside a tokio runtime with I/O enabled.
    pub fn new() -> Alarm {
        Alarm {
            inner: Inner::Host(AlarmOn::on(
                Timer::new(ClockId::CLOCK_REALTIME).map(RealTimer),
            )),
        }
    }

    /// An alarm on `clock`: [`Alarm::new`] on the host's clock; on a test clock, one
    /// that fires when the clock reaches the armed time and reports every other write
    /// of the clock as [`Wake::ClockChanged`].
    pub fn on(clock: &Clock) -> Alarm {
        match clock.changes() {
            None => Alarm::new(),
            Some(changes) => Alarm {
                inner: Inner::Test(TestAlarm {
                    clock: clock.clone(),
                    changes,
                    armed: None,
                }),
            },
        }
    }

    /// The fallback alarm: a monotonic sleep of at most [`MAX_SLEEP`](super::MAX_SLEEP).
    pub fn fallback() -> Alarm {
        Alarm {
            inner: Inner::Host(AlarmOn::fallback()),
        }
    }

    /// Whether the alarm follows the wall clock (a timerfd), rather than the fallback.
    pub fn follows_wall_clock(&self) -> bool {
        match &self.inner {
            Inner::Host(alarm) => alarm.follows_wall_clock(),
            Inner::Test(_) => false,
        }
    }

    /// Sets the alarm for `at`, replacing any earlier time; a time already past fires at
    /// once. `None` clears it: with nothing to wait for, [`Alarm::wait`] then waits
    /// forever (the fallback until its guard).
    pub fn arm(&mut self, at: Option<Timestamp>) {
        match &mut self.inner {
            Inner::Host(alarm) => alarm.arm(at),
            Inner::Test(alarm) => alarm.arm(at),
        }
    }

    /// Waits until the armed time comes or the wall clock changes noticeably. Without
    /// an armed time (and a timerfd) it waits forever and costs no wake-up. After
    /// [`Wake::Time`] the alarm is spent until armed again.
    pub async fn wait(&mut self) -> Wake {
        match &mut self.inner {
            Inner::Host(alarm) => alarm.wait().await,
            Inner::Test(alarm) => alarm.wait().await,
        }
    }
}

/// An alarm on a test clock, which moves only when a test writes it.
struct TestAlarm {
    clock: Clock,
    changes: tokio::sync::watch::Receiver<Timestamp>,
    armed: Option<Timestamp>,
}

impl TestAlarm {
    fn arm(&mut self, at: Option<Timestamp>) {
        // Writes before arming are the caller's to have read already.
        self.changes.mark_unchanged();
        self.armed = at;
    }

    async fn wait(&mut self) -> Wake {
        if let Some(at) = self.armed
            && self.clock.now() >= at
        {
            self.armed = None;
            return Wake::Time;
        }
        if self.changes.changed().await.is_err() {
            return future::pending().await;
        }
        self.changes.mark_unchanged();
        if self.armed.is_some_and(|at| self.clock.now() >= at) {
            self.armed = None;
        }
        // Whether or not the armed time came: the sender's waits must look again too.
        Wake::ClockChanged
    }
}

impl Default for Alarm {
    fn default() -> Self {
        Alarm::new()
    }
}

/// The wall clock and how far it runs ahead of the monotonic clock, read together.
/// Time passing leaves the offset as it is; a step of the wall clock moves it by the
/// step, and so does a suspend, during which the monotonic clock stands still.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    now: Timestamp,
    /// `None` if the monotonic clock cannot be read: every change then counts.
    offset: Option<SignedDuration>,
}

impl Reading {
    fn host() -> Reading {
        let now = Timestamp::now();
        let offset = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .ok()
            .and_then(|mono| {
                let mono = SignedDuration::new(mono.tv_sec(), i32::try_from(mono.tv_nsec()).ok()?);
                now.as_duration().checked_sub(mono)
            });
        Reading { now, offset }
    }
}

/// What a change of the wall clock means for an armed alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Less than [`NOTICEABLE`] since the alarm was armed, and the armed time still
    /// ahead: nothing to look at again.
    Slight,
    /// [`NOTICEABLE`] or more, or the armed time reached: the caller must look again.
    Jump,
}

/// How far the wall clock moved against the monotonic clock between two offsets, if
/// both are known.
fn moved(before: Option<SignedDuration>, after: Option<SignedDuration>) -> Option<Duration> {
    Some(after?.saturating_sub(before?).unsigned_abs())
}

/// Judges a change of the wall clock from the offset when the alarm was armed (so
/// slight changes that add up count as the jump they make), the offset and the wall
/// clock after the change, and the armed time. A change that reaches the armed time
/// is a jump however small: the kernel drops an expiry that comes with a change, so
/// only the caller's look again catches that step.
fn judge(
    before: Option<SignedDuration>,
    after: Option<SignedDuration>,
    at: Timestamp,
    now: Timestamp,
) -> Change {
    match moved(before, after) {
        Some(moved) if moved < NOTICEABLE && now < at => Change::Slight,
        _ => Change::Jump,
    }
}

/// What an alarm waits on: the kernel's timerfd on `CLOCK_REALTIME`, or in tests a
/// script of expiries and clock changes.
trait WallTimer {
    /// Sets the timer to fire when the wall clock reaches `at` and to fail with
    /// `ECANCELED` when the wall clock changes.
    fn set(&self, at: Timestamp) -> nix::Result<()>;
    /// Clears the timer.
    fn unset(&self) -> nix::Result<()>;
    /// Waits until the timer fires (`ECANCELED`: the wall clock changed instead).
    fn expired(&self) -> impl Future<Output = Result<u64, Errno>> + Send;
    /// The clocks as they are now.
    fn read(&self) -> Reading;
}

/// The armed time, and the clocks' offset when it was armed.
#[derive(Debug, Clone, Copy)]
struct Armed {
    at: Timestamp,
    offset: Option<SignedDuration>,
}

/// How the alarm waits.
enum Mode<T> {
    /// A wall-clock timer; `armed` is `None` while no time is set.
    WallClock { timer: T, armed: Option<Armed> },
    /// A monotonic tokio sleep, capped by the guard; `None` while no time is set.
    Fallback { deadline: Option<Instant> },
}

/// [`Alarm`] on any [`WallTimer`], so that tests can feed it clock changes.
struct AlarmOn<T> {
    mode: Mode<T>,
}

impl<T: WallTimer> AlarmOn<T> {
    /// On `timer`, or on the fallback sleep if the kernel refused one.
    fn on(timer: io::Result<T>) -> Self {
        match timer {
            Ok(timer) => AlarmOn {
                mode: Mode::WallClock { timer, armed: None },
            },
            Err(e) => {
                tracing::warn!(cause = %e, "no wall-clock timer; the scheduler looks at the clock every minute instead");
                AlarmOn::fallback()
            }
        }
    }

    fn fallback() -> Self {
        AlarmOn {
            mode: Mode::Fallback { deadline: None },
        }
    }

    fn follows_wall_clock(&self) -> bool {
        matches!(self.mode, Mode::WallClock { .. })
    }

    fn arm(&mut self, at: Option<Timestamp>) {
        match &mut self.mode {
            Mode::WallClock { timer, armed } => {
                // Read before setting: a change in between is then part of the next
                // one the kernel reports, rather than lost.
                let offset = timer.read().offset;
                let result = match at {
                    Some(at) => timer.set(at),
                    None => timer.unset(),
                };
                match result {
                    Ok(()) => *armed = at.map(|at| Armed { at, offset }),
                    Err(e) => self.give_up_timer(e, at),
                }
            }
            Mode::Fallback { deadline } => {
                *deadline = Some(Instant::now() + sleep_for(at, Timestamp::now()));
            }
        }
    }

    /// Switches to the fallback after the timer failed, armed for `at`.
    fn give_up_timer(&mut self, cause: Errno, at: Option<Timestamp>) {
        tracing::warn!(cause = %cause, "the wall-clock timer failed; the scheduler looks at the clock every minute instead");
        *self = AlarmOn::fallback();
        self.arm(at);
    }

    async fn wait(&mut self) -> Wake {
        loop {
            match &mut self.mode {
                Mode::WallClock { timer, armed } => {
                    let Some(current) = *armed else {
                        return future::pending().await;
                    };
                    match timer.expired().await {
                        Ok(_) => {
                            *armed = None;
                            return Wake::Time;
                        }
                        Err(Errno::ECANCELED) => {
                            let reading = timer.read();
                            let by = moved(current.offset, reading.offset);
                            match judge(current.offset, reading.offset, current.at, reading.now) {
                                Change::Jump => {
                                    tracing::debug!(by = ?by, "the wall clock changed");
                                    *armed = Some(Armed {
                                        offset: reading.offset,
                                        ..current
                                    });
                                    return Wake::ClockChanged;
                                }
                                Change::Slight => {
                                    tracing::debug!(by = ?by, "the wall clock changed slightly; waiting on");
                                    // Set again: the kernel drops an expiry that comes
                                    // with a change, and a clock set back needs one.
                                    if let Err(e) = timer.set(current.at) {
                                        self.give_up_timer(e, Some(current.at));
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            self.give_up_timer(e, Some(current.at));
                            return Wake::ClockChanged;
                        }
                    }
                }
                Mode::Fallback { deadline: None } => return future::pending().await,
                Mode::Fallback { deadline: Some(at) } => {
                    tokio::time::sleep_until(*at).await;
                    self.mode = Mode::Fallback { deadline: None };
                    return Wake::Time;
                }
            }
        }
    }
}

/// A timerfd on `CLOCK_REALTIME`.
struct RealTimer(Timer);

impl WallTimer for RealTimer {
    fn set(&self, at: Timestamp) -> nix::Result<()> {
        self.0.set(
            Expiration::OneShot(timespec(at)),
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
        )
    }

    fn unset(&self) -> nix::Result<()> {
        self.0.unset()
    }

    fn expired(&self) -> impl Future<Output = Result<u64, Errno>> + Send {
        self.0.expired()
    }

    fn read(&self) -> Reading {
        Reading::host()
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
        Ticker::on(period, Timer::periodic(period))
    }

    /// A ticker on `timer`, or on tokio's interval if the kernel refused one.
    fn on(period: Duration, timer: io::Result<Timer>) -> Ticker {
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

    /// Waits for the next tick (cancel-safe) and returns how many periods it stands for:
    /// more than one when ticks were missed (always one on tokio's interval).
    pub async fn tick(&mut self) -> u64 {
        match &mut self.mode {
            TickMode::Timer(timer) => match timer.expired().await {
                Ok(count) => count,
                Err(e) => {
                    tracing::warn!(cause = %e, "the ticker's timer failed; using tokio's interval");
                    let period = timer.period().unwrap_or(Duration::from_secs(1));
                    self.mode = TickMode::Interval(Ticker::interval(period));
                    1
                }
            },
            TickMode::Interval(interval) => {
                interval.tick().await;
                1
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

    /// A timer on the monotonic clock that expires at once, then every `period`.
    fn periodic(period: Duration) -> io::Result<Timer> {
        let timer = Timer::new(ClockId::CLOCK_MONOTONIC)?;
        timer.set(
            Expiration::IntervalDelayed(TimeSpec::new(0, 1), TimeSpec::from_duration(period)),
            TimerSetTimeFlags::empty(),
        )?;
        Ok(timer)
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
