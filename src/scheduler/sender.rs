//! The sender task: delivers the outbox.
//!
//! It takes pending deliveries whose attempt is due, in the order their steps fell due,
//! and sends up to the transport's connection count at once (and, with
//! `[mail] max_per_minute`, no faster: excess waits, nothing is dropped). Each outcome
//! is recorded after the server answered: sent; failed for good (5xx, invalid address),
//! which asks for its commitment to be planned again so that the owner's notice is
//! planned; or a retry with exponential backoff and jitter, persisted in the row so a
//! restart continues the schedule. After `[mail] retry_for` of transient failures a
//! delivery fails with the reason recorded. While the relay is unreachable every
//! pending delivery waits for the next attempt; when a send succeeds after that, every
//! delivery waiting for a retry goes out at once. An email that waited for one just
//! recorded as sent (the owner's copy of a customer update) is due from that record
//! on, and read at once.
//!
//! It reads the outbox a batch at a time ([`READ_BATCH`]) into a queue of its own.
//! Each send takes a permit from a gate of `connections` permits just before its data
//! goes out and gives it back only once the store answered its record request: at most
//! `connections` emails can have reached the server without being recorded as sent,
//! and those are all a crash can repeat. The store commits the records that arrive
//! together in one transaction ([`super::owner`]), so no send waits for others.
//!
//! On shutdown it takes nothing new and gives in-flight sends [`SHUTDOWN_GRACE`] to
//! finish; a send cut off there stays pending and is sent again after the restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lettre::address::Envelope;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Shared;
use super::owner::{Taken, Written};
use crate::config::TransportSettings;
use crate::mail::{Mailer, SendError};
use crate::store::{DeliveryOutcome, PendingDelivery};

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

/// How many pending deliveries one read of the outbox takes. The sender reads again
/// when fewer than half of them are left to send.
pub const READ_BATCH: usize = 256;

/// How long the transport has been failing, counted in attempts.
#[derive(Debug, Default)]
struct Outage {
    failures: u32,
}

/// What one finished delivery means for the store and for the sender's queue.
#[derive(Default)]
struct Decided {
    records: Vec<DeliveryOutcome>,
    /// It failed for good: its commitment is planned again for the owner's notice.
    failed: bool,
    /// The transport is down: everything pending waits.
    held: bool,
    /// The transport is back: deliveries waiting for a retry go now.
    released: bool,
}

/// Turns the result of an attempt of `delivery` into records. A success after an
/// outage means the transport is back: every delivery waiting for a retry goes now.
fn decide(
    shared: &Shared,
    delivery: &PendingDelivery,
    result: Result<(), SendError>,
    outage: &mut Outage,
) -> Decided {
    let now = shared.now();
    let retry = shared.config().mail.retry;
    let (id, attempts, created_at) = (delivery.id, delivery.attempts + 1, delivery.created_at);
    let mut decided = Decided::default();
    match result {
        Ok(()) => {
            tracing::info!(delivery = id, "sent");
            decided.records.push(DeliveryOutcome::Sent { id, at: now });
            if std::mem::take(&mut outage.failures) > 0 {
                decided.released = true;
                decided.records.push(DeliveryOutcome::ReleaseAll { now });
            }
        }
        Err(SendError::Unreachable(error))
            if now.duration_since(created_at) < retry.give_up_after =>
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
            if now.duration_since(created_at) < retry.give_up_after =>
        {
            let retry_at = now + retry.backoff(attempts, fastrand::f64());
            tracing::warn!(delivery = id, attempt = attempts, retry_at = %retry_at, cause = %error, "delivery will be retried");
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
                    "gave up after {attempts} attempts over {} (retry_for): {error}",
                    crate::calendar::humanize(created_at, now)
                ),
            };
            tracing::error!(delivery = id, cause = %error, "delivery failed for good; the owner is told by email, or of their own email by `followup status` and their next digest");
            shared.note_error(format!("delivery {id} failed: {error}"));
            decided.failed = true;
            decided
                .records
                .push(DeliveryOutcome::Failed { id, error, at: now });
            decided.records.push(DeliveryOutcome::PlanAgain {
                delivery: id,
                at: now,
            });
        }
    }
    decided
}

/// What became of one delivery, for the sender's queue.
struct Done {
    /// The outbox changed so that a read may find more: a retry time, a release, an
    /// email that waited for this one.
    more: bool,
    /// The transport is down: what is queued waits too.
    held: bool,
}

/// Sends `delivery`, records what became of it and, only once that record is
/// answered, gives back the permit its data went out under.
///
/// `slot` is its place among the `connections` sends: given back as soon as a send
/// succeeded, so that the next send prepares on the connection it parked (MAIL,
/// RCPT, DATA) while this one waits for its record, and its data goes out the moment
/// the permit comes back. A failed send keeps its slot until its outcome is recorded:
/// the next one then starts knowing whether the relay is down.
async fn deliver(
    shared: Arc<Shared>,
    mailer: Arc<Mailer>,
    delivery: PendingDelivery,
    gate: Arc<Semaphore>,
    slot: (OwnedSemaphorePermit, Arc<Notify>),
    outage: Arc<Mutex<Outage>>,
) -> Done {
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
    let slot = match result {
        Ok(()) => {
            let (slot, freed) = slot;
            drop(slot);
            freed.notify_one();
            None
        }
        Err(_) => Some(slot),
    };
    let decided = {
        let mut outage = outage.lock().unwrap_or_else(|p| p.into_inner());
        decide(&shared, &delivery, result, &mut outage)
    };
    let retried = decided
        .records
        .iter()
        .any(|r| matches!(r, DeliveryOutcome::Retry { .. }));
    let written = record(&shared, delivery.id, decided.records).await;
    drop(permit);
    drop(slot);
    let followers = match written {
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
            tracing::error!(delivery = delivery.id, cause = %e, "cannot record a delivery outcome; it stays pending and may be sent again");
            shared.note_error(format!("cannot record delivery outcomes: {e}"));
            false
        }
    };
    Done {
        more: decided.held || decided.released || retried || followers,
        held: decided.held,
    }
}

/// How long a record that could not be written waits before it is tried again, at
/// most.
const RECORD_AGAIN_AT_MOST: Duration = Duration::from_secs(5);

/// Writes the outcomes of the attempt at email `id`. While the store cannot be
/// reached (a database restarting, a network cut), the same records are tried again
/// until they are written (or, when the daemon stops, until its in-flight sends are
/// given up): the email went, and a record given up would send it again. The send's permit is held meanwhile, so a store that stays
/// away stops the sending after `connections` emails instead of repeating them all.
async fn record(shared: &Shared, id: i64, outcomes: Vec<DeliveryOutcome>) -> Written {
    let mut wait = Duration::from_millis(100);
    let mut warned = false;
    loop {
        match shared.store.record(outcomes.clone()).await {
            Err(e) if e.again => {
                if !warned {
                    tracing::warn!(delivery = id, cause = %e, "cannot record a delivery outcome; trying again until the store answers");
                    warned = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECORD_AGAIN_AT_MOST);
            }
            written => {
                if warned && written.is_ok() {
                    tracing::info!(delivery = id, "the delivery outcome is recorded after all");
                }
                return written;
            }
        }
    }
}

/// The gate: `connections` permits for data out and not yet recorded, and as many
/// slots for sends under way (see [`deliver`]); replaced when a reload changes the
/// number.
struct Gate {
    size: usize,
    permits: Arc<Semaphore>,
    slots: Arc<Semaphore>,
}

impl Gate {
    fn new(size: usize) -> Gate {
        Gate {
            size,
            permits: Arc::new(Semaphore::new(size)),
            slots: Arc::new(Semaphore::new(size)),
        }
    }

    fn resize(&mut self, size: usize) {
        if size != self.size {
            *self = Gate::new(size);
        }
    }
}

/// A read of the outbox: how many were asked for, and what came.
type Reading = Pin<Box<dyn Future<Output = (usize, Result<Taken, String>)> + Send>>;

/// The sender task. Returns when `shutdown` turns true and in-flight sends are done
/// or [`SHUTDOWN_GRACE`] has passed.
pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut sends: JoinSet<Done> = JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
    // Taken from the outbox and not yet recorded: queued or sending.
    let mut busy: HashSet<i64> = HashSet::new();
    let mut queue: VecDeque<PendingDelivery> = VecDeque::new();
    let mut reading: Option<Reading> = None;
    // The transport went down while a read was out: what it brings is not sent.
    let mut stale = false;
    // The outbox may hold due deliveries not read yet.
    let mut more = true;
    // When the earliest delivery not yet due is due.
    let mut next_due: Option<Timestamp> = None;
    let mut gate = Gate::new(concurrency(&shared));
    let mut limit = RateLimit::default();
    let outage = Arc::new(Mutex::new(Outage::default()));
    // Rung when a send gives its slot back before it ends.
    let freed = Arc::new(Notify::new());
    loop {
        if *shutdown.borrow() {
            break;
        }
        let connections = concurrency(&shared);
        gate.resize(connections);
        let per_minute = shared.config().mail.max_per_minute;
        let room = limit.room(per_minute, Instant::now());
        if reading.is_none() && more && queue.len() < READ_BATCH / 2 && room > queue.len() {
            more = false;
            let (store, skip, clock) = (shared.store.clone(), busy.clone(), shared.clock.clone());
            let asked = READ_BATCH.min(room - queue.len());
            reading = Some(Box::pin(async move {
                (asked, store.take_due(asked, skip, clock).await)
            }));
        }
        let mut limited: Option<Instant> = None;
        let mailer = shared.mailer();
        while !queue.is_empty() {
            let Ok(slot) = gate.slots.clone().try_acquire_owned() else {
                break;
            };
            if let Err(until) = limit.take(per_minute, Instant::now()) {
                limited = Some(until);
                break;
            }
            let delivery = queue.pop_front().expect("a delivery is queued");
            let id = delivery.id;
            let task = sends.spawn(deliver(
                shared.clone(),
                mailer.clone(),
                delivery,
                gate.permits.clone(),
                (slot, freed.clone()),
                outage.clone(),
            ));
            tasks.insert(task.id(), id);
        }
        tokio::select! {
            Some(done) = sends.join_next_with_id(), if !sends.is_empty() => {
                let task = match &done {
                    Ok((task, _)) => *task,
                    Err(e) => e.id(),
                };
                if let Some(id) = tasks.remove(&task) {
                    busy.remove(&id);
                }
                match done {
                    Ok((_, done)) => {
                        more |= done.more;
                        if done.held {
                            // Every pending delivery now waits for the retry time.
                            for delivery in queue.drain(..) {
                                busy.remove(&delivery.id);
                            }
                            stale = reading.is_some();
                        }
                    }
                    Err(e) => tracing::error!(cause = %e, "a send task ended abnormally; its delivery stays pending"),
                }
            }
            (asked, taken) = async { reading.as_mut().expect("a read").await }, if reading.is_some() => {
                reading = None;
                match taken {
                    Ok(_) if std::mem::take(&mut stale) => more = true,
                    Ok((batch, next)) => {
                        more |= batch.len() == asked;
                        next_due = next;
                        for delivery in batch {
                            busy.insert(delivery.id);
                            queue.push_back(delivery);
                        }
                    }
                    Err(e) => {
                        tracing::error!(cause = %e, "cannot read the outbox; trying again in 5 seconds");
                        next_due = Some(shared.now() + jiff::SignedDuration::from_secs(5));
                    }
                }
            }
            _ = shared.outbox.notified() => more = true,
            _ = freed.notified() => {}
            // Nothing to wait for but the bell: no timer at all.
            _ = shared.clock.sleep_until(next_due.unwrap_or_default()), if next_due.is_some() => {
                more = true;
                next_due = None;
            }
            _ = tokio::time::sleep_until(limited.unwrap_or_else(Instant::now)), if limited.is_some() => {}
            _ = shutdown.changed() => {}
        }
    }
    // Each send records its own outcome before it ends.
    let drain = async { while sends.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!(
            "in-flight sends did not finish in time; they stay pending and are sent after the restart"
        );
    }
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
