//! [`DueSteps`] on PostgreSQL, where several daemons fire the steps of one database.
//!
//! A daemon takes due steps by writing its claim's token into them (`claimed_by`),
//! choosing among those no other daemon holds with `FOR UPDATE SKIP LOCKED`, so two
//! daemons never decide one step. It writes a decision only for a step that is still
//! planned and still its own, after locking the batch's commitments in id order as
//! planning does:
//!
//! - planning a commitment locks it first, and clears the claim of every step it
//!   rewrites, so a decision made on a step that planning moved, revived or retired
//!   meanwhile finds the step no longer its own and is dropped (the step is read
//!   again, as planned now);
//! - a write of the commitment itself moves the write mark, and the batch is decided
//!   again inside the writing transaction, as on SQLite;
//! - a daemon taken over finds its claim refused and writes nothing; its steps were
//!   freed for the others.
//!
//! Writing a decision frees its step. A step taken but left out of a batch (a second
//! step of a commitment already in it) is not claimed at all.

use std::collections::HashSet;

use jiff::Timestamp;

use super::commitments::{columns_of, stored_from_row};
use super::steps::STEP_COLUMNS;
use super::{PostgresStore, in_words, to_ms};
use crate::planner::SkipCode;
use crate::store::*;

/// Why a batch of decisions was not written.
enum Queueing {
    Store(StoreError),
    /// A step failed outside a savepoint: the batch must run again with them.
    StepFailed,
}

impl From<StoreError> for Queueing {
    fn from(e: StoreError) -> Self {
        Queueing::Store(e)
    }
}

/// The facts every due step's email needs, read for a whole batch.
struct Common {
    revisions: Vec<RevisionRecord>,
    threads: Threads,
}

/// Plain sends of a batch not written yet: their emails, and their steps to queue.
#[derive(Default)]
struct PlainSends<'a> {
    emails: Vec<(&'a NewDelivery, Option<Timestamp>)>,
    steps: Vec<(i64, bool)>,
}

impl<'a> PlainSends<'a> {
    /// Takes `decided` if it only sends emails; false if it does more, or other.
    fn add(&mut self, decided: &'a StepDecision) -> bool {
        let Decision::Send {
            deliveries,
            waiting,
            revision: None,
            undo: None,
            late,
            at,
        } = &decided.decision
        else {
            return false;
        };
        self.emails
            .extend(deliveries.iter().map(|d| (d, Some(*at))));
        self.emails.extend(waiting.iter().map(|d| (d, None)));
        self.steps.push((decided.step_id, *late));
        true
    }

    /// Writes them, in a statement for the emails and one for the steps. A failure
    /// is a step's: the batch runs again, each step on its own.
    fn write(
        &mut self,
        store: &PostgresStore,
        now: Timestamp,
    ) -> std::result::Result<(), Queueing> {
        if self.steps.is_empty() {
            return Ok(());
        }
        let written = (|| {
            if !self.emails.is_empty() {
                store.add_deliveries(&self.emails, now)?;
            }
            store.queue_steps(&self.steps, now)
        })();
        self.emails.clear();
        self.steps.clear();
        written.map_err(|_| Queueing::StepFailed)
    }
}

impl PostgresStore {
    /// Reads and claims the batch of due steps `ask` describes for the daemon of
    /// `token`, in the caller's transaction; `None` when nothing is due.
    fn read_due(&self, token: i64, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        let mark = self.write_mark()?;
        let mut commitments = HashSet::new();
        let mut due_steps = Vec::new();
        let mut unreadable = Vec::new();
        for due in self.due_steps(token, ask)? {
            let step = match due {
                Ok(step) => step,
                Err(bad) => {
                    unreadable.push(bad);
                    continue;
                }
            };
            if ask.busy.contains(&step.row.id) || !commitments.insert(step.row.id) {
                break;
            }
            due_steps.push(step);
        }
        // What every step's email needs, read for the whole batch at once.
        let ids: Vec<i64> = due_steps.iter().map(|step| step.row.id).collect();
        let mut revisions = self.revisions_of_all(&ids)?;
        let mut threads = self.threads_of_all(&ids)?;
        let mut steps = Vec::with_capacity(due_steps.len());
        for step in due_steps {
            let id = step.row.id;
            let wanted = (ask.wants)(&step);
            let common = Common {
                revisions: revisions.remove(&id).unwrap_or_default(),
                threads: threads.remove(&id).unwrap_or_else(|| self.no_threads()),
            };
            let facts = self
                .step_facts(&step, &wanted, common)
                .map_err(|e| format!("cannot be queued: {}", in_words(&e)));
            steps.push(DueWork { step, facts });
        }
        let taken: Vec<i64> = steps
            .iter()
            .map(|due| due.step.step.id)
            .chain(unreadable.iter().map(|bad| bad.id))
            .collect();
        if taken.is_empty() {
            return Ok(None);
        }
        self.execute(
            "UPDATE steps SET claimed_by = $1 WHERE id = ANY($2)",
            &[&token, &taken],
        )?;
        Ok(Some(DueBatch {
            mark,
            steps,
            unreadable,
        }))
    }

    /// Up to `ask.limit` planned steps due as `ask` says, in firing order, that no
    /// other daemon holds; each stays locked until the transaction ends.
    fn due_steps(
        &self,
        token: i64,
        ask: &DueAsk<'_>,
    ) -> Result<Vec<std::result::Result<DueStep, UnreadableStep>>> {
        let (after_at, after_id) = ask
            .after
            .map_or((i64::MIN, i64::MIN), |(at, id)| (to_ms(at), id));
        let limit = i64::try_from(ask.limit).unwrap_or(i64::MAX);
        self.in_queue_order()?;
        let rows = self.query(
            &format!(
                // The batch is chosen and locked on the steps alone, and only then
                // joined: a plan that joins before it sorts and limits would read every
                // due step's commitment for each batch. The steps' columns come from
                // the locked rows, as the last writer left them.
                "WITH s AS (
                     SELECT {STEP_COLUMNS} FROM steps s
                     WHERE s.state = 'planned' AND s.fire_at <= $2 AND (s.fire_at, s.id) > ($3, $4)
                       AND (s.fire_at <= $1 OR s.kind IN ({kinds}))
                       AND (s.claimed_by IS NULL OR s.claimed_by = $5)
                     ORDER BY s.fire_at, s.id LIMIT $6
                     FOR UPDATE SKIP LOCKED)
                 SELECT EXISTS (SELECT 1 FROM steps n WHERE n.commitment_id = s.commitment_id
                                AND n.state = 'planned' AND n.fire_at <= $1 AND n.fire_at > s.fire_at),
                        {STEP_COLUMNS}, {columns}
                 FROM s JOIN commitments c ON c.id = s.commitment_id
                 ORDER BY s.fire_at, s.id",
                columns = columns_of("c"),
                kinds = super::steps::ahead_kinds(),
            ),
            &[
                &to_ms(ask.now),
                &to_ms(ask.ahead),
                &after_at,
                &after_id,
                &token,
                &limit,
            ],
        )?;
        rows.iter()
            .map(|r| match super::steps::step_at(r, 1) {
                Ok(step) => Ok(Ok(DueStep {
                    step,
                    newer_due_exists: r.try_get(0)?,
                    row: stored_from_row(r, 14)?,
                })),
                Err(StoreError::Step(bad)) => Ok(Err(bad)),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// The facts of `step`: `common`, read for its batch, and what `wanted` asks.
    fn step_facts(&self, step: &DueStep, wanted: &Wanted, common: Common) -> Result<StepFacts> {
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
            revisions: common.revisions,
            delivery,
            threads: common.threads,
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

    /// Locks commitments `ids` in id order, as planning locks them.
    fn lock_commitments(&self, mut ids: Vec<i64>) -> Result<()> {
        ids.sort_unstable();
        ids.dedup();
        self.query(
            "SELECT id FROM commitments WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            &[&ids],
        )?;
        Ok(())
    }

    /// Writes the decisions whose steps the daemon of `token` still holds, their
    /// commitments locked; how many steps put mail in the outbox. With `isolate`, each
    /// in a savepoint of its own, so one that cannot be written fails alone; without,
    /// the emails of consecutive plain sends (no move of the due time) and their
    /// steps are written together, a statement each.
    fn apply_all(
        &self,
        token: i64,
        decisions: &Decisions,
        now: Timestamp,
        isolate: bool,
    ) -> std::result::Result<usize, Queueing> {
        let ids: Vec<i64> = decisions.decided.iter().map(|d| d.step_id).collect();
        let held = self.still_held(token, &ids)?;
        let mut sent = 0;
        let mut plain = PlainSends::default();
        for decided in &decisions.decided {
            if !held.contains(&decided.step_id) {
                tracing::debug!(
                    step = decided.step_id,
                    "the step changed or was taken over while it was decided; it is read again"
                );
                continue;
            }
            if !isolate {
                if plain.add(decided) {
                    sent += 1;
                    continue;
                }
                // In order: the emails written so far come first.
                plain.write(self, now)?;
            }
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
                    let e = in_words(&e);
                    tracing::error!(step = decided.step_id, cause = %e, "cannot queue a step");
                    self.fail_step(decided.step_id, &format!("cannot be queued: {e}"), now)?;
                }
            }
        }
        plain.write(self, now)?;
        Ok(sent)
    }

    /// Which of steps `ids` are still planned and held by the daemon of `token`;
    /// locks them.
    fn still_held(&self, token: i64, ids: &[i64]) -> Result<HashSet<i64>> {
        self.query(
            "SELECT id FROM steps WHERE id = ANY($1) AND state = 'planned' AND claimed_by = $2
             FOR UPDATE",
            &[&ids, &token],
        )?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
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

    /// One try at [`DueSteps::queue_decided`], with or without a savepoint per step.
    fn queue_once(
        &self,
        token: i64,
        claim: &Claim,
        decisions: &Decisions,
        ask: &DueAsk<'_>,
        redecide: &dyn Fn(DueBatch) -> Decisions,
        isolate: bool,
    ) -> std::result::Result<Queued, Queueing> {
        self.transaction(|s| {
            s.check_claim(claim)?;
            // The locks taken for a batch decided on a store that changed meanwhile go
            // with this savepoint, so the batch read again is locked in id order alone.
            s.batch("SAVEPOINT decided")?;
            s.lock_commitments(decisions.decided.iter().map(|d| d.commitment_id).collect())?;
            if !s.others_wrote_since(decisions.mark)? {
                let sent = s.apply_all(token, decisions, ask.now, isolate)?;
                s.batch("RELEASE SAVEPOINT decided")?;
                let next = s.read_due(token, ask)?;
                return Ok(Queued {
                    sent,
                    next,
                    stale: false,
                });
            }
            s.batch("ROLLBACK TO SAVEPOINT decided; RELEASE SAVEPOINT decided")?;
            tracing::debug!("the store changed while steps were composed; composing them again");
            let from_first = HashSet::new();
            let again = DueAsk {
                after: None,
                busy: &from_first,
                ..*ask
            };
            let sent = match s.read_due(token, &again)? {
                Some(batch) => {
                    let ids = batch.commitments().into_iter().collect();
                    s.lock_commitments(ids)?;
                    s.apply_all(token, &redecide(batch), ask.now, isolate)?
                }
                None => 0,
            };
            Ok(Queued {
                sent,
                next: s.read_due(token, &again)?,
                stale: true,
            })
        })
    }
}

impl DueSteps for PostgresStore {
    fn take_due_steps(&self, claim: &Claim, ask: &DueAsk<'_>) -> Result<Option<DueBatch>> {
        self.transaction(|s| {
            s.check_claim(claim)?;
            s.read_due(claim.token as i64, ask)
        })
    }

    fn queue_decided(
        &self,
        claim: &Claim,
        decisions: &Decisions,
        ask: &DueAsk<'_>,
        redecide: &dyn Fn(DueBatch) -> Decisions,
    ) -> Result<Queued> {
        let token = claim.token as i64;
        // Savepoints cost a round trip each, and steps almost never fail: the batch
        // runs without them first, and only if a step fails runs again with them.
        let run = |isolate| self.queue_once(token, claim, decisions, ask, redecide, isolate);
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
