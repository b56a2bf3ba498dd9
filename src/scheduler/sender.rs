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
//! retry goes out at once.
//!
//! On shutdown it takes nothing new and gives in-flight sends [`SHUTDOWN_GRACE`] to
//! finish; a send cut off there stays pending and is sent again after the restart.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use lettre::address::Envelope;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Shared, sleep_for};
use crate::config::TransportSettings;
use crate::mail::{Mailer, SendError};
use crate::store::{PendingDelivery, StoreError};

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

    /// The oldest send still in the window.
    fn oldest(&self) -> Option<Instant> {
        self.recent.front().copied()
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

struct Outcome {
    id: i64,
    attempts: u32,
    created_at: Timestamp,
    result: Result<(), SendError>,
}

async fn attempt(mailer: Arc<Mailer>, delivery: PendingDelivery) -> Outcome {
    let envelope = match (delivery.sender.parse(), delivery.recipient.parse()) {
        (Ok(from), Ok(to)) => Envelope::new(Some(from), vec![to])
            .map_err(|e| SendError::Permanent(format!("invalid envelope: {e}"))),
        _ => Err(SendError::Permanent(format!(
            "invalid address in the envelope ({} -> {})",
            delivery.sender, delivery.recipient
        ))),
    };
    let result = match envelope {
        Ok(envelope) => {
            let name = format!("followup-{:08}", delivery.id);
            mailer.send(&envelope, &delivery.message, &name).await
        }
        Err(e) => Err(e),
    };
    Outcome {
        id: delivery.id,
        attempts: delivery.attempts + 1,
        created_at: delivery.created_at,
        result,
    }
}

/// How long the transport has been failing, counted in attempts.
#[derive(Debug, Default)]
struct Outage {
    failures: u32,
}

/// Records one outcome. A success after an outage means the transport is back: every
/// delivery waiting for a retry goes now.
async fn record(shared: &Shared, outcome: Outcome, outage: &mut Outage) {
    let now = Timestamp::now();
    let id = outcome.id;
    let retry = shared.config().mail.retry;
    let result: Result<(), StoreError> = match outcome.result {
        Ok(()) => {
            tracing::info!(delivery = id, "sent");
            let recovered = std::mem::take(&mut outage.failures) > 0;
            shared
                .store
                .call(move |s| {
                    s.delivery_sent(id, now)?;
                    if recovered {
                        let released = s.retry_now(now)?;
                        if released > 0 {
                            tracing::info!(
                                deliveries = released,
                                "mail goes out again; deliveries waiting for a retry are sent now"
                            );
                        }
                    }
                    Ok(())
                })
                .await
        }
        Err(SendError::Unreachable(error))
            if now.duration_since(outcome.created_at) < retry.give_up_after =>
        {
            outage.failures += 1;
            let retry_at = now + retry.backoff(outage.failures, fastrand::f64());
            tracing::warn!(delivery = id, retry_at = %retry_at, cause = %error, "mail cannot go out; every pending delivery waits until the next attempt");
            shared.note_error(format!("mail cannot go out: {error}"));
            shared
                .store
                .call(move |s| {
                    s.transaction(|s| {
                        s.delivery_retry(id, &error, retry_at)?;
                        s.postpone_pending(retry_at, &format!("waiting: {error}"))
                            .map(|_| ())
                    })
                })
                .await
        }
        Err(SendError::Transient(error))
            if now.duration_since(outcome.created_at) < retry.give_up_after =>
        {
            let retry_at = now + retry.backoff(outcome.attempts, fastrand::f64());
            tracing::warn!(delivery = id, attempt = outcome.attempts, retry_at = %retry_at, cause = %error, "delivery will be retried");
            shared.note_error(format!("delivery {id}: {error}"));
            shared
                .store
                .call(move |s| s.delivery_retry(id, &error, retry_at))
                .await
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
            tracing::warn!(delivery = id, cause = %error, "delivery failed for good; the owner will be told");
            shared.note_error(format!("delivery {id} failed: {error}"));
            let result = shared
                .store
                .call(move |s| s.delivery_failed(id, &error, now))
                .await;
            shared.plan_now.notify_one();
            result
        }
    };
    if let Err(e) = result {
        tracing::error!(delivery = id, cause = %e, "cannot record a delivery outcome; it stays pending and may be sent again");
    }
}

/// The sender task. Returns when `shutdown` turns true and in-flight sends are done
/// or [`SHUTDOWN_GRACE`] has passed.
pub async fn run(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut in_flight: JoinSet<Outcome> = JoinSet::new();
    let mut busy: HashSet<i64> = HashSet::new();
    let mut tasks: HashMap<tokio::task::Id, i64> = HashMap::new();
    let mut limit = RateLimit::default();
    let mut outage = Outage::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let per_minute = shared.config().mail.max_per_minute;
        let free = concurrency(&shared)
            .saturating_sub(busy.len())
            .min(limit.room(per_minute, Instant::now()));
        let now = Timestamp::now();
        let mut wake_at: Option<Instant> = None;
        if free > 0 {
            let exclude = busy.clone();
            let picked = shared
                .store
                .call(move |s| {
                    let batch = s.pending_deliveries(now, free, &exclude)?;
                    let next = if batch.len() < free {
                        s.next_attempt_at_after(now)?
                    } else {
                        None
                    };
                    Ok::<_, StoreError>((batch, next))
                })
                .await;
            match picked {
                Ok((batch, next)) => {
                    wake_at = next.map(|at| Instant::now() + sleep_for(Some(at), Timestamp::now()));
                    let mailer = shared.mailer();
                    for delivery in batch {
                        if let Err(until) = limit.take(per_minute, Instant::now()) {
                            wake_at = Some(until);
                            break;
                        }
                        busy.insert(delivery.id);
                        let id = delivery.id;
                        let task = in_flight.spawn(attempt(mailer.clone(), delivery));
                        tasks.insert(task.id(), id);
                    }
                }
                Err(e) => {
                    tracing::error!(cause = %e, "cannot read the outbox; trying again in 5 seconds");
                    wake_at = Some(Instant::now() + Duration::from_secs(5));
                }
            }
        } else if busy.len() < concurrency(&shared) {
            // Held back by max_per_minute: wake when the window has room again.
            wake_at = limit.oldest().map(|t| t + RateLimit::WINDOW);
        }
        tokio::select! {
            Some(done) = in_flight.join_next_with_id(), if !in_flight.is_empty() => {
                let task = match &done {
                    Ok((task, _)) => *task,
                    Err(e) => e.id(),
                };
                if let Some(id) = tasks.remove(&task) {
                    busy.remove(&id);
                }
                match done {
                    Ok((_, outcome)) => record(&shared, outcome, &mut outage).await,
                    Err(e) => tracing::error!(cause = %e, "a send task ended abnormally; its delivery stays pending"),
                }
            }
            _ = shared.outbox.notified() => {}
            // Nothing to wait for but the bell: no timer at all.
            _ = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {}
            _ = shutdown.changed() => {}
        }
    }
    let drain = async {
        while let Some(done) = in_flight.join_next().await {
            if let Ok(outcome) = done {
                record(&shared, outcome, &mut outage).await;
            }
        }
    };
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
