//! The alarm and the ticker on the host's timers, and the alarm's judgement of clock
//! changes on a script, where the changes can be chosen.
//!
//! Positive waits have deadlines of seconds, so a loaded machine only makes them slower;
//! a negative wait ("does not fire") can only pass wrongly under load, never fail.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::*;

/// Long enough for any wait that must end, on any machine.
const DEADLINE: Duration = Duration::from_secs(10);

fn in_ms(ms: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_millis(ms)
}

fn ms(ms: i64) -> SignedDuration {
    SignedDuration::from_millis(ms)
}

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .expect("woke within the deadline")
}

#[test]
fn a_change_of_a_few_ms_is_slight_and_one_of_an_hour_a_jump() {
    let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let at = now + SignedDuration::from_hours(72);
    let offset = Some(SignedDuration::from_secs(1_700_000_000));
    let after = |by: SignedDuration| offset.map(|o| o + by);
    assert_eq!(judge(offset, after(ms(3)), at, now), Change::Slight);
    assert_eq!(judge(offset, after(ms(-7)), at, now), Change::Slight);
    assert_eq!(judge(offset, after(ms(999)), at, now), Change::Slight);
    assert_eq!(judge(offset, after(ms(1000)), at, now), Change::Jump);
    assert_eq!(judge(offset, after(ms(-1000)), at, now), Change::Jump);
    let hour = SignedDuration::from_hours(1);
    assert_eq!(judge(offset, after(hour), at, now + hour), Change::Jump);
    assert_eq!(judge(offset, after(-hour), at, now - hour), Change::Jump);
}

#[test]
fn a_slight_change_that_reaches_the_armed_time_is_a_jump() {
    let at: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let offset = Some(SignedDuration::from_secs(1_700_000_000));
    let after = offset.map(|o| o + ms(5));
    assert_eq!(judge(offset, after, at, at + ms(3)), Change::Jump);
    assert_eq!(judge(offset, after, at, at), Change::Jump);
    assert_eq!(judge(offset, after, at, at - ms(1)), Change::Slight);
}

#[test]
fn a_change_the_monotonic_clock_cannot_measure_is_a_jump() {
    let now: Timestamp = "2026-12-01T12:00:00Z".parse().unwrap();
    let at = now + SignedDuration::from_hours(1);
    let offset = Some(SignedDuration::from_secs(1_700_000_000));
    assert_eq!(judge(None, offset, at, now), Change::Jump);
    assert_eq!(judge(offset, None, at, now), Change::Jump);
}

/// A wall-clock timer that plays a script: each event moves the clocks by its step,
/// then ends the wait with its result. With the script played, it waits forever.
#[derive(Clone)]
struct Script {
    state: Arc<Mutex<Played>>,
}

struct Played {
    events: VecDeque<(SignedDuration, Result<u64, Errno>)>,
    clocks: Reading,
    /// Every time the timer was set for.
    sets: Vec<Timestamp>,
}

impl Script {
    fn new(now: Timestamp, events: &[(SignedDuration, Result<u64, Errno>)]) -> Script {
        Script {
            state: Arc::new(Mutex::new(Played {
                events: events.iter().copied().collect(),
                clocks: Reading {
                    now,
                    offset: Some(SignedDuration::from_secs(1_700_000_000)),
                },
                sets: Vec::new(),
            })),
        }
    }

    fn played(&self) -> std::sync::MutexGuard<'_, Played> {
        self.state.lock().unwrap()
    }
}

impl WallTimer for Script {
    fn set(&self, at: Timestamp) -> nix::Result<()> {
        self.played().sets.push(at);
        Ok(())
    }

    fn unset(&self) -> nix::Result<()> {
        Ok(())
    }

    async fn expired(&self) -> Result<u64, Errno> {
        let next = {
            let mut played = self.played();
            let next = played.events.pop_front();
            if let Some((step, _)) = next {
                let clocks = &mut played.clocks;
                clocks.now += step;
                clocks.offset = clocks.offset.map(|o| o + step);
            }
            next
        };
        match next {
            Some((_, result)) => result,
            None => future::pending().await,
        }
    }

    fn read(&self) -> Reading {
        self.played().clocks
    }
}

const CHANGED: Result<u64, Errno> = Err(Errno::ECANCELED);
const FIRED: Result<u64, Errno> = Ok(1);

fn noon() -> Timestamp {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

#[tokio::test]
async fn clock_changes_of_a_few_ms_pass_unreported_until_the_time_comes() {
    let at = noon() + SignedDuration::from_hours(72);
    let script = Script::new(
        noon(),
        &[
            (ms(3), CHANGED),
            (ms(-4), CHANGED),
            (ms(2), CHANGED),
            (ms(0), FIRED),
        ],
    );
    let mut alarm = AlarmOn::on(Ok(script.clone()));
    alarm.arm(Some(at));
    assert_eq!(within(alarm.wait()).await, Wake::Time);
    let played = script.played();
    assert!(played.events.is_empty(), "the alarm woke before its time");
    // Set again after each slight change, for the same time.
    assert_eq!(played.sets, vec![at; 4]);
}

#[tokio::test]
async fn a_clock_change_of_an_hour_is_reported_at_once() {
    let at = noon() + SignedDuration::from_hours(72);
    let hour = SignedDuration::from_hours(1);
    let script = Script::new(noon(), &[(hour, CHANGED), (ms(0), FIRED)]);
    let mut alarm = AlarmOn::on(Ok(script.clone()));
    alarm.arm(Some(at));
    assert_eq!(within(alarm.wait()).await, Wake::ClockChanged);
    assert_eq!(
        script.played().events.len(),
        1,
        "the change was not reported at once"
    );
    // Waiting on without arming again, the armed time still counts.
    assert_eq!(within(alarm.wait()).await, Wake::Time);
}

#[tokio::test]
async fn slight_clock_changes_that_add_up_to_a_second_are_reported_once() {
    let at = noon() + SignedDuration::from_hours(72);
    let script = Script::new(
        noon(),
        &[
            (ms(600), CHANGED),
            (ms(600), CHANGED),
            (ms(5), CHANGED),
            (ms(0), FIRED),
        ],
    );
    let mut alarm = AlarmOn::on(Ok(script.clone()));
    alarm.arm(Some(at));
    assert_eq!(within(alarm.wait()).await, Wake::ClockChanged);
    assert_eq!(script.played().events.len(), 2);
    // Measured from the reported change on, the next slight one passes.
    assert_eq!(within(alarm.wait()).await, Wake::Time);
}

#[tokio::test]
async fn a_slight_clock_change_past_the_armed_time_is_reported() {
    let at = noon() + ms(2);
    let script = Script::new(noon(), &[(ms(5), CHANGED)]);
    let mut alarm = AlarmOn::on(Ok(script.clone()));
    alarm.arm(Some(at));
    assert_eq!(within(alarm.wait()).await, Wake::ClockChanged);
}

#[tokio::test]
async fn an_alarm_in_the_past_fires_at_once() {
    let mut alarm = Alarm::new();
    assert!(alarm.follows_wall_clock());
    alarm.arm(Some(in_ms(-5_000)));
    assert_eq!(within(alarm.wait()).await, Wake::Time);
    alarm.arm(Some(Timestamp::UNIX_EPOCH));
    assert_eq!(within(alarm.wait()).await, Wake::Time);
}

#[tokio::test]
async fn an_alarm_fires_when_the_wall_clock_reaches_its_time() {
    let mut alarm = Alarm::new();
    let at = in_ms(50);
    alarm.arm(Some(at));
    assert_eq!(within(alarm.wait()).await, Wake::Time);
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
    assert_eq!(within(alarm.wait()).await, Wake::Time);

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
    assert_eq!(within(alarm.wait()).await, Wake::Time);
}

#[tokio::test]
async fn without_a_timerfd_the_alarm_still_wakes_at_the_armed_time() {
    // What `Alarm::new` does when `timerfd_create` fails.
    let refused = Err(io::Error::from(Errno::EPERM));
    let mut alarm = AlarmOn::<RealTimer>::on(refused);
    assert!(!alarm.follows_wall_clock());
    let armed = Instant::now();
    let wait = Duration::from_millis(200);
    alarm.arm(Some(Timestamp::now() + wait));
    assert_eq!(within(alarm.wait()).await, Wake::Time);
    // A monotonic sleep: not before its time, whatever the wall clock did meanwhile
    // (the slack is for the moment between the two clock readings in `arm`).
    assert!(
        armed.elapsed() >= wait - Duration::from_millis(50),
        "woke before its time"
    );
    let spent = tokio::time::timeout(Duration::from_millis(100), alarm.wait()).await;
    assert!(spent.is_err(), "a spent fallback alarm fired again");
}

#[tokio::test]
async fn a_ticker_ticks_at_once_then_once_per_period() {
    let period = Duration::from_millis(100);
    let started = std::time::Instant::now();
    let mut ticker = Ticker::new(period);
    assert!(matches!(ticker.mode, TickMode::Timer(_)));
    // The kernel counts every period since the timer was set, once: never more ticks
    // than periods passed plus the first one.
    let most = |started: std::time::Instant| started.elapsed().as_millis() as u64 / 100 + 1;
    let mut ticks = within(ticker.tick()).await;
    ticks += within(ticker.tick()).await;
    assert!(ticks >= 2 && ticks <= most(started), "{ticks} ticks");
    // Ticks missed while nobody waited make one.
    std::thread::sleep(period * 3);
    let missed = within(ticker.tick()).await;
    assert!(missed >= 2, "missed ticks came one by one ({missed})");
    ticks += missed;
    ticks += within(ticker.tick()).await;
    assert!(ticks <= most(started), "{ticks} ticks");
}

#[tokio::test]
async fn without_a_timerfd_the_ticker_ticks_on_tokio_s_interval() {
    let mut ticker = Ticker::on(
        Duration::from_millis(20),
        Err(io::Error::from(Errno::EPERM)),
    );
    assert!(matches!(ticker.mode, TickMode::Interval(_)));
    assert_eq!(within(ticker.tick()).await, 1);
    assert_eq!(within(ticker.tick()).await, 1);
}

#[tokio::test]
async fn on_a_test_clock_the_alarm_fires_when_the_clock_is_written_to_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock");
    let write = |at: &str| std::fs::write(&path, at).unwrap();
    write("2026-12-01T09:00:00Z");
    let clock = Clock::test(&path).unwrap();
    clock.watch().unwrap();
    let at: Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
    let mut alarm = Alarm::on(&clock);
    assert!(!alarm.follows_wall_clock());
    alarm.arm(Some(at));
    // A write short of the time is a clock change: the caller looks again.
    write("2026-12-01T09:59:59Z");
    assert_eq!(within(alarm.wait()).await, Wake::ClockChanged);
    // Once the clock reads the armed time, the alarm fires.
    write("2026-12-01T10:00:00Z");
    let mut changes = clock.changes().unwrap();
    within(changes.wait_for(|now| *now == at)).await.unwrap();
    assert_eq!(within(alarm.wait()).await, Wake::Time);
    // Spent: the next write is a clock change again.
    write("2026-12-01T10:00:01Z");
    assert_eq!(within(alarm.wait()).await, Wake::ClockChanged);
}
