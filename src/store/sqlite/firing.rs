//! [`DueSteps`] on SQLite.

use std::collections::HashSet;

use jiff::Timestamp;

use crate::planner::SkipCode;
use crate::store::sqlite::SqliteStore;
use crate::store::*;

/// Why a batch of decisions was not written.
enum Queueing {
    Store(StoreError),
    /// A step failed outside a savepoint: the batch must run again with them.
    StepFailed,
}

impl From<rusqlite::Error> for Queueing {
    fn from(e: rusqlite::Error) -> Self {
        Queueing::Store(e.into())
    }
}

impl From<StoreError> for Queueing {
    fn from(e: StoreError) -> Self {
        Queueing::Store(e)
    }
}

impl SqliteStore {
    fn read_due(&self, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        let mark = self.write_mark()?;
        let mut commitments = HashSet::new();
        let mut steps = Vec::new();
        let mut unreadable = Vec::new();
        for step in self.due_steps(ask.now, ask.ahead, ask.after, ask.limit)? {
            let step = match step {
                Ok(step) => step,
                Err(bad) => {
                    unreadable.push(bad);
                    continue;
                }
            };
            if ask.busy.contains(&step.row.id) || !commitments.insert(step.row.id) {
                break;
            }
            let wanted = (ask.wants)(&step);
            let facts = self
                .step_facts(&step, &wanted)
                .map_err(|e| format!("cannot be queued: {e}"));
            steps.push(DueWork { step, facts });
        }
        let batch = DueBatch {
            mark,
            steps,
            unreadable,
        };
        Ok((!batch.steps.is_empty() || !batch.unreadable.is_empty()).then_some(batch))
    }

    fn step_facts(&self, step: &DueStep, wanted: &Wanted) -> Result<StepFacts> {
        let id = step.row.id;
        let delivery = match wanted.delivery {
            Some(delivery) => match self.delivery(delivery)? {
                Some(d) => {
                    let bounced = match d.step_id {
                        Some(step_id) => self.revision_of_step(step_id)?,
                        None => None,
                    };
                    Some((d, bounced))
                }
                None => None,
            },
            None => None,
        };
        Ok(StepFacts {
            revisions: self.revisions_of(id)?,
            delivery,
            threads: self.threads_of(id)?,
            steps: if wanted.steps {
                self.steps_of(id)?
            } else {
                Vec::new()
            },
            customer_rows: match &wanted.customer {
                Some(address) => self.customer_rows(address)?,
                None => Vec::new(),
            },
        })
    }

    /// Writes the decisions; how many steps put mail in the outbox. With `isolate`,
    /// each step in a savepoint of its own, so one that cannot be written fails alone.
    fn apply_all(
        &self,
        decisions: &Decisions,
        now: Timestamp,
        isolate: bool,
    ) -> std::result::Result<usize, Queueing> {
        let mut sent = 0;
        for decided in &decisions.decided {
            let applied = if isolate {
                self.isolated(|s| s.apply(decided, now))
            } else {
                self.apply(decided, now)
            };
            match applied {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(_) if !isolate => return Err(Queueing::StepFailed),
                Err(e) => {
                    tracing::error!(step = decided.step_id, cause = %e, "cannot queue a step");
                    self.fail_step(decided.step_id, &format!("cannot be queued: {e}"), now)?;
                }
            }
        }
        Ok(sent)
    }

    /// Writes one decision; true if it put mail in the outbox.
    fn apply(&self, decided: &StepDecision, now: Timestamp) -> Result<bool> {
        let id = decided.step_id;
        match &decided.decision {
            Decision::Hold { until } => self.hold_step(id, *until, now)?,
            Decision::Skip { code, reason } => self.skip_step(id, *code, reason, now)?,
            Decision::Fail { reason } => {
                tracing::error!(commitment = decided.commitment_id, step = id, cause = %reason, "cannot compose the email for a step");
                self.fail_step(id, reason, now)?;
            }
            Decision::DryRun { deliveries } => {
                const DRY_RUN: &str = "dry run: rendered and recorded, not sent";
                for delivery in deliveries {
                    self.add_skipped_delivery(delivery, DRY_RUN, now)?;
                }
                self.skip_step(id, SkipCode::DryRun, DRY_RUN, now)?;
                return Ok(true);
            }
            Decision::Send {
                deliveries,
                waiting,
                revision,
                undo,
                late,
                at,
            } => {
                if let Some(revision) = revision {
                    self.revise_due_by_step(revision, id, now)?;
                }
                if let Some(undo) = undo {
                    let restored =
                        self.undo_revision(undo.revision_id, &undo.why, undo.restore, now)?;
                    tracing::warn!(
                        commitment = decided.commitment_id,
                        revision = undo.revision_id,
                        restored,
                        "a customer update bounced; its move of the due time is undone"
                    );
                }
                for delivery in deliveries {
                    self.add_delivery(delivery, now, *at)?;
                }
                for delivery in waiting {
                    self.add_waiting_delivery(delivery, now)?;
                }
                self.queue_step(id, *late, now)?;
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl DueSteps for SqliteStore {
    fn take_due_steps(&self, claim: &Claim, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        self.check_claim(claim)?;
        self.transaction(|s| s.read_due(ask))
    }

    fn queue_decided(
        &self,
        claim: &Claim,
        decisions: &Decisions,
        ask: &DueAsk<'_>,
        redecide: &dyn Fn(DueBatch) -> Decisions,
    ) -> Result<Queued> {
        self.check_claim(claim)?;
        // Savepoints cost a statement journal of every page a step touches, and steps
        // almost never fail: the batch runs without them first, and only if a step
        // fails runs again with them.
        let run = |isolate| {
            self.transaction(|s| {
                let from_first = HashSet::new();
                let again = DueAsk {
                    after: None,
                    busy: &from_first,
                    ..*ask
                };
                if !s.others_wrote_since(decisions.mark)? {
                    let sent = s.apply_all(decisions, ask.now, isolate)?;
                    let next = s.read_due(ask)?;
                    return Ok(Queued {
                        sent,
                        next,
                        stale: false,
                    });
                }
                tracing::debug!(
                    "the store changed while steps were composed; composing them again"
                );
                let sent = match s.read_due(&again)? {
                    Some(batch) => s.apply_all(&redecide(batch), ask.now, isolate)?,
                    None => 0,
                };
                Ok(Queued {
                    sent,
                    next: s.read_due(&again)?,
                    stale: true,
                })
            })
        };
        match run(false) {
            Err(Queueing::StepFailed) => run(true),
            result => result,
        }
        .map_err(|e| match e {
            Queueing::Store(e) => e,
            Queueing::StepFailed => unreachable!("steps in savepoints record their failures"),
        })
    }
}
