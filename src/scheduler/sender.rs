//! The sender task: delivers the outbox.
//!
//! It takes pending deliveries whose attempt is due, in the order their steps fell due,
//! and sends up to the transport's connection count at once (and, with
//! `[mail] max_per_minute`, no faster: excess waits, nothing is dropped). Each outcome
//! is recorded after the server answered: sent; failed for good (5xx, invalid address),
//! which plans a notice to the owner; or a retry with exponential backoff and jitter,
//! persisted in the row so a restart continues the schedule. After `[mail] retry_for`
//! of transient failures a delivery fails with the reason recorded. When a send
//! succeeds after failures, the transport works again, and every delivery waiting for a
//! retry goes out at once. An email that waited for one just recorded as sent (the
//! owner's copy of a customer update) is due from that record on, and read at once.
//!
//! It reads the outbox a batch at a time ([`READ_BATCH`]) into a queue of its own. The
//! outcomes that finished together are left for the next transaction to commit
//! ([`super::records`]): the sender's own trip to the store, or the planning task's
//! batch that holds the store during a burst; while it runs, the other connections go
//! on sending. A finished outcome waits up to `GATHER_OUTCOMES` for sends whose data
//! is out, so that one transaction records them all. A delivery counts as sent only
//! once its record is committed. Each send takes a permit from a gate of `connections`
//! permits just before its data goes out and gives it back only when its outcome is
//! committed, so however the work overlaps, at most `connections` emails can have
//! reached the server without being recorded as sent: those are all a crash can
//! repeat.
//!
//! On shutdown it takes nothing new and gives in-flight sends [`SHUTDOWN_GRACE`] to
//! finish; a send cut off there stays pending and is sent again after the restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lettre::address::Envelope;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::records::{Deposit, Taken, Written};
use super::{Shared, sleep_for};
use crate::config::TransportSettings;
use crate::mail::{Mailer, SendError};
use crate::store::{DeliveryOutcome, PendingDelivery, StoreError};

/// How long in-flight sends may take to finish after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

fn concurrency(shared: &Shared) -> usize {
    match &shared.config().mail.transport {
        TransportSettings::Smtp(smtp) => smtp.connections as usize,
        _ => 4,
    }
}

/// At most `per_minute` sends in any 60 seconds.
#[derive(Debug, Default)]
struct RateLimit {
    recent: VecDeque<Instant>,
}

impl RateLimit {
    const WINDOW: Duration = Duration::from_secs(60);

    /// Records a send at `now` if `per_minute` allows one; otherwise returns when the
    /// next one is allowed.
    fn take(&mut self, per_minute: Option<u32>, now: Instant) -> Result<(), Instant> {
        let Some(limit) = per_minute else {
            return Ok(());
        };
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Self::WINDOW)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= limit as usize {
            return Err(self.recent[0] + Self::WINDOW);
        }
        self.recent.push_back(now);
        Ok(())
    }

    /// How many more sends `per_minute` allows at `now`.
    fn room(&mut self, per_minute: Option<u32>, now: Instant) -> usize {
        let Some(limit) = per_minute else {
            return usize::MAX;
        };
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Self::WINDOW)
        {
            self.recent.pop_front();
        }
        (limit as usize).saturating_sub(self.recent.len())
    }
}

/// Longest a finished send's outcome waits for others to be recorded with it. Each
/// record is a transaction; while sends to a fast relay finish every few hundred
/// microseconds, gathering them saves most of those transactions.
const GATHER_OUTCOMES: Duration = Duration::from_millis(1);

/// How many pending deliveries one read of the outbox takes. The sender reads again
/// when fewer than half of them are left to send.
pub const READ_BATCH: usize = 256;

struct Outcome {
    id: i64,
    attempts: u32,
    created_at: Timestamp,
    result: Result<(), SendError>,
    /// Held from just before the data went out until the outcome is recorded.
    permit: Option<OwnedSemaphorePermit>,
    /// When the send ended.
    finished_at: Instant,
}

async fn attempt(mailer: Arc<Mailer>, delivery: PendingDelivery, gate: Arc<Semaphore>) -> Outcome {
    let envelope = match (delivery.sender.parse(), delivery.recipient.parse()) {
        (Ok(from), Ok(to)) => Envelope::new(Some(from), vec![to])
            .map_err(|e| SendError::Permanent(format!("invalid envelope: {e}"))),
        _ => Err(SendError::Permanent(format!(
            "invalid address in the envelope ({} -> {})",
            delivery.sender, delivery.recipient
        ))),
    };
    let (result, permit) = match envelope {
        Ok(envelope) => {
            let name = format!("followup-{:08}", delivery.id);
            mailer
                .send_gated(&envelope, &delivery.message, &name, Some(&gate))
                .await
        }
        Err(e) => (Err(e), None),
    };
    Outcome {
        id: delivery.id,
        attempts: delivery.attempts + 1,
        created_at: delivery.created_at,
        result,
        permit,
        finished_at: Instant::now(),
    }
}

/// How long the transport has been failing, counted in attempts.
#[derive(Debug, Default)]
struct Outage {
    failures: u32,
}

/// What finished outcomes mean for the store, decided in the order they finished.
#[derive(Default)]
struct Decided {
    records: Vec<DeliveryOutcome>,
    ids: Vec<i64>,
    permits: Vec<OwnedSemaphorePermit>,
    /// Some delivery failed for good: its owner's notice must be planned.
    failed: bool,
    /// The transport is down: everything pending waits.
    held: bool,
    /// The transport is back: deliveries waiting for a retry go now.
    released: bool,
}

/// Turns outcomes into records. A success after an outage means the transport is back:
/// every delivery waiting for a retry goes now.
fn decide(shared: &Shared, outcomes: Vec<Outcome>, outage: &mut Outage) -> Decided {
    let now = shared.now();
    let retry = shared.config().mail.retry;
    let mut decided = Decided::default();
    for outcome in outcomes {
        let id = outcome.id;
        decided.ids.push(id);
        decided.permits.extend(outcome.permit);
        match outcome.result {
            Ok(()) => {
                tracing::info!(delivery = id, "sent");
                decided.records.push(DeliveryOutcome::Sent { id, at: now });
                if std::mem::take(&mut outage.failures) > 0 {
                    decided.released = true;
                    decided.records.push(DeliveryOutcome::ReleaseAll { now });
                }
            }
            Err(SendError::Unreachable(error))
                if now.duration_since(outcome.created_at) < retry.give_up_after =>
            {
                outage.failures += 1;
                let retry_at = now + retry.backoff(outage.failures, fastrand::f64());
                tracing::warn!(delivery = id, retry_at = %retry_at, cause = %error, "mail cannot go out; every pending delivery waits until the next attempt");
                shared.note_error(format!("mail cannot go out: {error}"));
                decided.held = true;
                decided.records.push(DeliveryOutcome::HoldAll {
                    until: retry_at,
                    why: format!("waiting: {error}"),
                });
                decided.records.push(DeliveryOutcome::Retry {
                    id,
                    error,
                    retry_at,
                });
            }
            Err(SendError::Transient(error))
                if now.duration_since(outcome.created_at) < retry.give_up_after =>
            {
                let retry_at = now + retry.backoff(outcome.attempts, fastrand::f64());
                tracing::warn!(delivery = id, attempt = outcome.attempts, retry_at = %retry_at, cause = %error, "delivery will be retried");
                shared.note_error(format!("delivery {id}: {error}"));
                decided.records.push(DeliveryOutcome::Retry {
                    id,
                    error,
                    retry_at,
                });
            }
            Err(failure) => {
                let error = match failure {
                    SendError::Permanent(error) => error,
                    SendError::Transient(error) | SendError::Unreachable(error) => format!(
                        "gave up after {} attempts over {} (retry_for): {error}",
                        outcome.attempts,
                        crate::calendar::humanize(outcome.created_at, now)
                    ),
                };
                tracing::error!(delivery = id, cause = %error, "delivery failed for good; the owner is told by email, or of their own email by `followup status` and their next digest");
                shared.note_error(format!("delivery {id} failed: {error}"));
                decided.failed = true;
                decided
                    .records
                    .push(DeliveryOutcome::Failed { id, error, at: now });
            }
        }
    }
    decided
}

/// Deliveries read from the outbox, and when the next one not yet due is due.
type Read = (Vec<PendingDelivery>, Option<Timestamp>);

/// What one trip to the store brought back.
struct Round {
    /// The deliveries read, if asked for.
    result: Result<Option<Read>, StoreError>,
    /// How many deliveries were asked for.
    asked: usize,
}

type RoundFuture = Pin<Box<dyn Future<Output = Round> + Send>>;

/// One trip to the store, one transaction: writes the records waiting for a
/// transaction (see [`super::records`]), then, if `read` is non-zero, reads up to that
/// many due deliveries not in `skip`.
fn round(shared: &Shared, read: usize, skip: HashSet<i64>) -> RoundFuture {
    let store = shared.store.clone();
    let records = shared.records.clone();
    let clock = shared.clock.clone();
    Box::pin(async move {
        store
            .call(move |s| {
                let asked = read;
                let mut taken = Taken::default();
                let result = s.transaction(|s| {
                    records.write(s, &mut taken);
                    if asked == 0 {
                        return Ok(None);
                    }
                    let now = clock.now();
                    let batch = s.pending_deliveries(now, asked, &skip)?;
                    let next = if batch.len() < asked {
                        s.next_attempt_at_after(now)?
                    } else {
                        None
                    };
                    Ok::<_, StoreError>(Some((batch, next)))
                });
                records.settle(taken, &result);
                Round { result, asked }
            })
            .await
    })
}

/// Applies what became of a deposit: logs, frees the deliveries, wakes the planning
/// task for failures. True if emails fell due that waited for one just sent.
fn recorded(shared: &Shared, decided: Decided, result: Written, busy: &mut HashSet<i64>) -> bool {
    for id in &decided.ids {
        busy.remove(id);
    }
    match result {
        Ok(recorded) => {
            if recorded.released > 0 {
                tracing::info!(
                    deliveries = recorded.released,
                    "mail goes out again; deliveries waiting for a retry are sent now"
                );
            }
            if decided.failed {
                shared.plan_now.notify_one();
            }
            recorded.followers > 0
        }
        Err(e) => {
            tracing::error!(deliveries = ?decided.ids, cause = %e, "cannot record delivery outcomes; they stay pending and may be sent again");
            shared.note_error(format!("cannot record delivery outcomes: {e}"));
            false
        }
    }
}

/// The gate: `connections` permits, replaced when a reload changes the number.
struct Gate {
    size: usize,
    permits: Arc<Semaphore>,
}

impl Gate {
    fn new(size: usize) -> Gate {
        Gate {
            size,
            permits: Arc::new(Semaphore::new(size)),
        }
    }

    fn resize(&mut self, size: usize) {
        if size != self.size {
            *self = Gate::new(size);
        }
    }

    /// Until when to hold back recording `finished`, if at all: while other sends
    /// whose data is out may answer within [`GATHER_OUTCOMES`], waiting lets one
    /// transaction record them all. Once every permit is held by a finished send,
    /// nothing more can go out before a record, so there is no waiting.
    fn hold_outcomes_until(&self, finished: &[Outcome], now: Instant) -> Option<Instant> {
        let oldest = finished.iter().map(|o| o.finished_at).min()?;
        let taken = self.size.saturating_sub(self.permits.available_permits());
        let answered = finished.iter().filter(|o| o.permit.is_some()).count();
        let until = oldest + GATHER_OUTCOMES;
        (taken > answered && until > now).then_some(until)
    }
}

/// The sender task. Returns when `shutdown` turns true and in-flight sends are done
/// or [`SHUTDOWN_GRACE`] has passed.
pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    // Taken from the outbox and not yet recorded: queued, sending, or finished.
    let mut busy: HashSet<i64> = HashSet::new();
    let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
    let mut queue: VecDeque<PendingDelivery> = VecDeque::new();
    let mut finished: Vec<Outcome> = Vec::new();
    // Deposited records not yet settled, by ticket.
    let mut recording: HashMap<u64, Decided> = HashMap::new();
    let mut tickets = 0u64;
    let mut results = shared.records.subscribe();
    let mut store_trip: Option<RoundFuture> = None;
    // A read in flight when everything was held back: what it brings is not sent.
    let mut stale_read = false;
    // The outbox may hold due deliveries not read yet.
    let mut more = true;
    let mut retry_at: Option<Instant> = None;
    let mut gate = Gate::new(concurrency(&shared));
    let mut limit = RateLimit::default();
    let mut outage = Outage::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let connections = concurrency(&shared);
        gate.resize(connections);
        let per_minute = shared.config().mail.max_per_minute;
        let mut wake_at: Option<Instant> = retry_at;
        if !finished.is_empty() {
            match gate.hold_outcomes_until(&finished, Instant::now()) {
                Some(until) => wake_at = Some(wake_at.map_or(until, |w| w.min(until))),
                None => {
                    let decided = decide(&shared, std::mem::take(&mut finished), &mut outage);
                    if decided.held {
                        // Every pending delivery now waits for the retry time.
                        for delivery in queue.drain(..) {
                            busy.remove(&delivery.id);
                        }
                        stale_read = store_trip.is_some();
                    }
                    more |= decided.held
                        || decided.released
                        || decided
                            .records
                            .iter()
                            .any(|r| matches!(r, DeliveryOutcome::Retry { .. }));
                    deposit(&shared, decided, &mut tickets, &mut recording);
                }
            }
        }
        if store_trip.is_none() {
            let room = limit.room(per_minute, Instant::now());
            let read = if more && queue.len() < READ_BATCH / 2 && room > queue.len() {
                READ_BATCH.min(room - queue.len())
            } else {
                0
            };
            if read > 0 || shared.records.any() {
                if read > 0 {
                    more = false;
                }
                store_trip = Some(round(&shared, read, busy.clone()));
            }
        }
        if !queue.is_empty() {
            let mailer = shared.mailer();
            while in_flight.len() < connections
                && let Some(delivery) = queue.front()
            {
                if let Err(until) = limit.take(per_minute, Instant::now()) {
                    wake_at = Some(wake_at.map_or(until, |w| w.min(until)));
                    break;
                }
                let id = delivery.id;
                let delivery = queue.pop_front().expect("a delivery is queued");
                let task = in_flight.spawn(attempt(mailer.clone(), delivery, gate.permits.clone()));
                tasks.insert(task.id(), id);
            }
        }
        tokio::select! {
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let task = match &done {
                    Ok((task, _)) => *task,
                    Err(e) => e.id(),
                };
                let id = tasks.remove(&task);
                match done {
                    Ok((_, outcome)) => finished.push(outcome),
                    Err(e) => {
                        if let Some(id) = id {
                            busy.remove(&id);
                        }
                        tracing::error!(cause = %e, "a send task ended abnormally; its delivery stays pending");
                    }
                }
            }
            Some((ticket, written)) = results.recv() => {
                if let Some(decided) = recording.remove(&ticket) {
                    more |= recorded(&shared, decided, written, &mut busy);
                }
            }
            trip = async { store_trip.as_mut().expect("a trip to the store").await }, if store_trip.is_some() => {
                store_trip = None;
                more |= take_results(&shared, &mut results, &mut recording, &mut busy);
                let Round { result, asked } = trip;
                let stale = std::mem::take(&mut stale_read);
                match result {
                    Ok(Some(_)) if stale => more = true,
                    Ok(Some((batch, next))) => {
                        if batch.len() == asked {
                            more = true;
                        }
                        retry_at = next.map(|at| Instant::now() + sleep_for(Some(at), shared.now()));
                        for delivery in batch {
                            busy.insert(delivery.id);
                            queue.push_back(delivery);
                        }
                    }
                    Err(e) if asked > 0 => {
                        tracing::error!(cause = %e, "cannot read the outbox; trying again in 5 seconds");
                        retry_at = Some(Instant::now() + Duration::from_secs(5));
                    }
                    _ => {}
                }
            }
            _ = shared.outbox.notified() => more = true,
            // Nothing to wait for but the bell: no timer at all.
            _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                more = true;
                retry_at = None;
            }
            _ = shutdown.changed() => {}
        }
    }
    // Sends waiting at the gate need the permits of finished ones back, so outcomes
    // are recorded as they come in.
    let mut record_now = async |finished: &mut Vec<Outcome>, busy: &mut HashSet<i64>| {
        if !finished.is_empty() {
            let decided = decide(&shared, std::mem::take(finished), &mut outage);
            deposit(&shared, decided, &mut tickets, &mut recording);
        }
        // A planning batch may have written them meanwhile: no empty transaction then.
        if shared.records.any() {
            let _ = round(&shared, 0, HashSet::new()).await;
        }
        take_results(&shared, &mut results, &mut recording, busy);
    };
    let drain = async {
        if let Some(trip) = store_trip.take() {
            trip.await;
        }
        loop {
            record_now(&mut finished, &mut busy).await;
            match in_flight.join_next().await {
                Some(Ok(outcome)) => finished.push(outcome),
                Some(Err(_)) => {}
                None => break,
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "in-flight sends did not finish in time; they stay pending and are sent after the restart"
        );
    }
    if !finished.is_empty() || shared.records.any() {
        record_now(&mut finished, &mut busy).await;
    }
}

/// Leaves `decided`'s records for the next transaction under a new ticket, and keeps
/// `decided` in `recording` until what became of them arrives with that ticket.
fn deposit(
    shared: &Shared,
    mut decided: Decided,
    tickets: &mut u64,
    recording: &mut HashMap<u64, Decided>,
) {
    *tickets += 1;
    shared.records.deposit(Deposit {
        ticket: *tickets,
        outcomes: std::mem::take(&mut decided.records),
        permits: std::mem::take(&mut decided.permits),
    });
    recording.insert(*tickets, decided);
}

/// Applies the results that have arrived; true if emails fell due that waited for one
/// of them.
fn take_results(
    shared: &Shared,
    results: &mut UnboundedReceiver<(u64, Written)>,
    recording: &mut HashMap<u64, Decided>,
    busy: &mut HashSet<i64>,
) -> bool {
    let mut followers = false;
    while let Ok((ticket, written)) = results.try_recv() {
        if let Some(decided) = recording.remove(&ticket) {
            followers |= recorded(shared, decided, written, busy);
        }
    }
    followers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mail::RetryPolicy;

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        let policy = RetryPolicy::default();
        for attempts in 1..30 {
            for jitter in [0.0, 0.5, 0.999] {
                let wait = policy.backoff(attempts, jitter).as_secs_f64();
                let exp = (attempts - 1).min(20);
                let base = (30.0 * f64::from(1u32 << exp)).min(1800.0);
                assert!(
                    wait >= base * 0.75 - 0.001 && wait <= base * 1.25 + 0.001,
                    "{attempts}: {wait}"
                );
            }
        }
    }

    #[test]
    fn an_outcome_waits_for_sends_still_answering_but_not_once_every_permit_is_done() {
        let gate = Gate::new(2);
        let now = Instant::now();
        let outcome = |permit| Outcome {
            id: 1,
            attempts: 1,
            created_at: Timestamp::UNIX_EPOCH,
            result: Ok(()),
            permit,
            finished_at: now,
        };
        let first = gate.permits.clone().try_acquire_owned().unwrap();
        let second = gate.permits.clone().try_acquire_owned().unwrap();
        // One of two sends with their data out has answered: wait a little for the other.
        let mut finished = vec![outcome(Some(first))];
        assert_eq!(
            gate.hold_outcomes_until(&finished, now),
            Some(now + GATHER_OUTCOMES)
        );
        assert_eq!(
            gate.hold_outcomes_until(&finished, now + GATHER_OUTCOMES),
            None
        );
        // Both answered: nothing can go out before they are recorded.
        finished.push(outcome(Some(second)));
        assert_eq!(gate.hold_outcomes_until(&finished, now), None);
        // Recorded: the permits are back, and an outcome without one waits for nobody.
        drop(finished);
        assert_eq!(gate.hold_outcomes_until(&[outcome(None)], now), None);
        assert_eq!(gate.hold_outcomes_until(&[], now), None);
    }

    #[test]
    fn the_rate_limit_lets_through_n_a_minute_and_says_when_the_next_may_go() {
        let mut limit = RateLimit::default();
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(limit.take(Some(3), start + Duration::from_secs(i)), Ok(()));
        }
        assert_eq!(limit.room(Some(3), start + Duration::from_secs(3)), 0);
        assert_eq!(
            limit.take(Some(3), start + Duration::from_secs(3)),
            Err(start + Duration::from_secs(60))
        );
        assert_eq!(limit.take(Some(3), start + Duration::from_secs(60)), Ok(()));
        assert_eq!(limit.take(None, start), Ok(()));
        assert_eq!(limit.room(None, start), usize::MAX);
    }
}
