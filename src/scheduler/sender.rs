//! The sender task: delivers the outbox.
//!
//! It takes pending deliveries whose attempt is due, oldest first, and sends up to the
//! transport's connection count at once. Each outcome is recorded after the server
//! answered: sent; failed for good (5xx, bad address); or a retry with exponential
//! backoff and jitter, persisted in the row so a restart continues the schedule. After
//! [`RETRY_FOR`] of transient failures a delivery fails with the reason recorded.
//!
//! On shutdown it takes nothing new and gives in-flight sends [`SHUTDOWN_GRACE`] to
//! finish; a send cut off there stays pending and is sent again after the restart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lettre::address::Envelope;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Shared, sleep_for};
use crate::config::TransportSettings;
use crate::mail::{Mailer, SendError};
use crate::store::PendingDelivery;

/// How long transient failures are retried before a delivery fails.
pub const RETRY_FOR: SignedDuration = SignedDuration::from_hours(48);

/// How long in-flight sends may take to finish after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// First retry delay; it doubles per attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: SignedDuration = SignedDuration::from_secs(30);
const MAX_BACKOFF: SignedDuration = SignedDuration::from_secs(30 * 60);

/// The wait before the attempt after `attempts` failed ones, with ±25 % jitter so many
/// deliveries that failed together do not retry together.
pub fn backoff(attempts: u32) -> SignedDuration {
    let exp = attempts.saturating_sub(1).min(16);
    let base = FIRST_BACKOFF
        .checked_mul(1 << exp)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF);
    let jitter = 0.75 + fastrand::f64() * 0.5;
    SignedDuration::from_secs_f64(base.as_secs_f64() * jitter)
}

fn concurrency(shared: &Shared) -> usize {
    match &shared.config().mail.transport {
        TransportSettings::Smtp(smtp) => smtp.connections as usize,
        _ => 4,
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

async fn record(shared: &Shared, outcome: Outcome) {
    let now = Timestamp::now();
    let id = outcome.id;
    let gave_up = |error: String| {
        format!(
            "gave up after {} attempts over 2 days: {error}",
            outcome.attempts
        )
    };
    let failure = match outcome.result {
        Ok(()) => {
            tracing::info!(delivery = id, "sent");
            Ok(())
        }
        Err(SendError::Permanent(error)) => Err(error),
        Err(SendError::Transient(error)) if now.duration_since(outcome.created_at) >= RETRY_FOR => {
            Err(gave_up(error))
        }
        Err(SendError::Transient(error)) => {
            let retry_at = now + backoff(outcome.attempts);
            tracing::warn!(delivery = id, attempt = outcome.attempts, retry_at = %retry_at, cause = %error, "delivery will be retried");
            shared.note_error(format!("delivery {id}: {error}"));
            let result = shared
                .store
                .call(move |s| s.delivery_retry(id, &error, retry_at))
                .await;
            if let Err(e) = result {
                tracing::error!(delivery = id, cause = %e, "cannot record a delivery outcome; it stays pending and may be sent again");
            }
            return;
        }
    };
    let result = match failure {
        Ok(()) => shared.store.call(move |s| s.delivery_sent(id, now)).await,
        Err(error) => {
            tracing::warn!(delivery = id, cause = %error, "delivery failed for good");
            shared.note_error(format!("delivery {id} failed: {error}"));
            shared
                .store
                .call(move |s| s.delivery_failed(id, &error, now))
                .await
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
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = concurrency(&shared).saturating_sub(busy.len());
        let now = Timestamp::now();
        let mut next = None;
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
                    Ok::<_, crate::store::StoreError>((batch, next))
                })
                .await;
            match picked {
                Ok((batch, after)) => {
                    next = after;
                    let mailer = shared.mailer();
                    for delivery in batch {
                        busy.insert(delivery.id);
                        let id = delivery.id;
                        let task = in_flight.spawn(attempt(mailer.clone(), delivery));
                        tasks.insert(task.id(), id);
                    }
                }
                Err(e) => {
                    tracing::error!(cause = %e, "cannot read the outbox; trying again in 5 seconds");
                    next = Some(now + SignedDuration::from_secs(5));
                }
            }
        }
        let sleep = if busy.len() >= concurrency(&shared) {
            super::MAX_SLEEP
        } else {
            sleep_for(next, Timestamp::now())
        };
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
                    Ok((_, outcome)) => record(&shared, outcome).await,
                    Err(e) => tracing::error!(cause = %e, "a send task ended abnormally; its delivery stays pending"),
                }
            }
            _ = shared.outbox.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            _ = shutdown.changed() => {}
        }
    }
    let drain = async {
        while let Some(done) = in_flight.join_next().await {
            if let Ok(outcome) = done {
                record(&shared, outcome).await;
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

    #[test]
    fn backoff_doubles_with_jitter_up_to_a_cap() {
        for attempts in 1..30 {
            let wait = backoff(attempts).as_secs_f64();
            let exp = (attempts - 1).min(16);
            let base = (30.0 * f64::from(1u32 << exp)).min(1800.0);
            assert!(
                wait >= base * 0.75 - 0.001 && wait <= base * 1.25 + 0.001,
                "{attempts}: {wait}"
            );
        }
    }
}
