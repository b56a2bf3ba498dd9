//! The planner: `(commitment, rule, calendar) -> steps`, and how a fresh plan meets the
//! steps already stored.
//!
//! Pure: no clock reads, no I/O. The caller passes the time the commitment was written
//! (`since`), so the same inputs always give the same plan.
//!
//! Each step has a key that is unique per commitment (kind and planned time, or kind
//! and sequence number). Storing steps under that key makes planning idempotent: a
//! re-plan finds the steps it planned before, keeps the ones already sent and never
//! plans the same email twice.
//!
//! **Steps already past when planned.** A commitment added at 16:55 with a due time of
//! 17:00 and a `-1d` reminder cannot have that reminder on time. Such a step is recorded
//! as `skipped` with the reason, not sent late as if it were on time. A step counts as
//! past when its time is more than [`PAST_GRACE`] before the moment the commitment was
//! written. Steps that fell due *after* the commitment was written but while the daemon
//! was stopped are not past in this sense: they were missed, and the rule's `catch_up`
//! policy decides them when they fire.
//!
//! **Promises recorded already late** (`add --overdue`) are the exception: their
//! [`History::late_from`] moves the steps after the due time (overdue repeats, alert,
//! escalation) to count from that moment, so they are planned instead of skipped.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::calendar::Calendar;
use crate::commitment::{Commitment, Status};
use crate::rule::Rule;

mod after;
mod pause;
mod reconcile;
mod step;

pub use reconcile::{StepChange, reconcile};
pub use step::Step;

/// How far before the writing of a commitment a step may be planned and still be sent:
/// covers the moment between a writer's commit and the daemon reading it.
pub const PAST_GRACE: SignedDuration = SignedDuration::from_secs(60);

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Owner reminder at an offset from the due time.
    Remind,
    /// Owner reminder repeated after the due time while still open.
    Overdue,
    /// Automatic "no news yet" update to the customer; moves the due time.
    CustomerUpdate,
    /// The customer is told of a delay the owner recorded by hand.
    DelayNotice,
    /// Internal alert: the due time passed with the commitment open.
    Alert,
    /// Escalation: still open long after the due time.
    Escalate,
    /// A follow-up after the commitment was done: the check-in, each `after_done` entry.
    CheckIn,
    /// The owner hears that an email to someone else failed for good.
    DeliveryFailed,
    /// The owner is asked, before an automatic customer update goes, whether to send it
    /// now, hold it or change it (`customer_update.ask_owner`).
    AskOwner,
    /// The internal email the moment the commitment is recorded (`on_open`).
    OnOpen,
}

const STEP_KINDS: [StepKind; 10] = [
    StepKind::Remind,
    StepKind::Overdue,
    StepKind::CustomerUpdate,
    StepKind::DelayNotice,
    StepKind::Alert,
    StepKind::Escalate,
    StepKind::CheckIn,
    StepKind::DeliveryFailed,
    StepKind::AskOwner,
    StepKind::OnOpen,
];

impl StepKind {
    /// The word stored in `steps.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Remind => "remind",
            StepKind::Overdue => "overdue",
            StepKind::CustomerUpdate => "customer_update",
            StepKind::DelayNotice => "delay_notice",
            StepKind::Alert => "alert",
            StepKind::Escalate => "escalate",
            StepKind::CheckIn => "check_in",
            StepKind::DeliveryFailed => "delivery_failed",
            StepKind::AskOwner => "ask_owner",
            StepKind::OnOpen => "on_open",
        }
    }

    /// True for steps that happen only while the commitment is open.
    pub fn needs_open(self) -> bool {
        !matches!(
            self,
            StepKind::CheckIn | StepKind::DeliveryFailed | StepKind::OnOpen
        )
    }

    /// True for steps that run the clock towards the due time, which waiting on the
    /// customer pauses.
    pub fn runs_the_clock(self) -> bool {
        matches!(
            self,
            StepKind::Remind
                | StepKind::Overdue
                | StepKind::CustomerUpdate
                | StepKind::AskOwner
                | StepKind::Alert
                | StepKind::Escalate
        )
    }

    /// The kinds whose emails may be composed a little before their time, so that they
    /// leave at it: emails to the owner or the team only, whose queueing changes nothing
    /// else. A customer's email waits for their business hours and an automatic update
    /// moves the due time, so both are composed when their time has come.
    pub const AHEAD: [StepKind; 6] = [
        StepKind::Remind,
        StepKind::Overdue,
        StepKind::Alert,
        StepKind::Escalate,
        StepKind::AskOwner,
        StepKind::OnOpen,
    ];

    /// The owner's own reminders, which a snooze holds back.
    pub fn is_reminder(self) -> bool {
        matches!(self, StepKind::Remind | StepKind::Overdue)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind is equal to the word stored for it.
impl PartialEq<&str> for StepKind {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

impl FromStr for StepKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        STEP_KINDS
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown step kind '{s}'"))
    }
}

/// Where a step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its time.
    Planned,
    /// Its time came and its emails are in the outbox.
    Queued,
    /// Every email of the step was accepted.
    Sent,
    /// An email of the step failed for good.
    Failed,
    /// Not sent, with a reason recorded.
    Skipped,
}

impl StepState {
    /// The word stored in `steps.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Planned => "planned",
            StepState::Queued => "queued",
            StepState::Sent => "sent",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state is equal to the word stored for it.
impl PartialEq<&str> for StepState {
    fn eq(&self, word: &&str) -> bool {
        self.as_str() == *word
    }
}

impl FromStr for StepState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "planned" => Ok(StepState::Planned),
            "queued" => Ok(StepState::Queued),
            "sent" => Ok(StepState::Sent),
            "failed" => Ok(StepState::Failed),
            "skipped" => Ok(StepState::Skipped),
            other => Err(format!("unknown step state '{other}'")),
        }
    }
}

/// Why a step was skipped; steps skipped because the plan changed may come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipCode {
    /// Its time was already past when the commitment was written.
    Past,
    /// A re-plan (new due time, new rules) no longer has it.
    Replanned,
    /// The commitment was done or cancelled first, or closed with an outcome before an
    /// after-done follow-up went.
    Closed,
    /// Missed during downtime and dropped by the rule's catch-up policy.
    CatchUp,
    /// `[mail] dry_run` is on: rendered and recorded, not sent.
    DryRun,
    /// An owner reminder whose time fell while the owner had snoozed reminders.
    Snoozed,
    /// A customer update the owner held back.
    Held,
    /// The clock was paused: the business is waiting on the customer.
    Waiting,
}

impl SkipCode {
    /// The word stored in `steps.skip_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipCode::Past => "past",
            SkipCode::Replanned => "replanned",
            SkipCode::Closed => "closed",
            SkipCode::CatchUp => "catch_up",
            SkipCode::DryRun => "dry_run",
            SkipCode::Snoozed => "snoozed",
            SkipCode::Held => "held",
            SkipCode::Waiting => "waiting",
        }
    }

    /// Steps skipped because the plan changed (or because their time had passed at an
    /// earlier plan) come back if a later plan has them again in time.
    pub fn may_revive(code: Option<&str>) -> bool {
        matches!(
            code,
            Some("replanned") | Some("closed") | Some("past") | Some("snoozed") | Some("waiting")
        )
    }
}

/// One step of a fresh plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedStep {
    /// Unique per commitment; the same step always gets the same key.
    pub key: String,
    /// What the step does.
    pub kind: StepKind,
    /// The rule that planned it.
    pub rule: String,
    /// How a person reads where it sits, e.g. `-2h` or `overdue 2 of 3`.
    pub label: String,
    /// The time the rule asks for.
    pub planned_at: Timestamp,
    /// The time it fires: the planned time, or later when held for business hours.
    pub fire_at: Timestamp,
    /// Set when the plan has the step but it is not to be sent: a reminder inside a
    /// snooze, an update the owner held. It is recorded skipped with these words.
    pub skip: Option<(SkipCode, String)>,
}

/// The owner's snooze of a commitment's reminders.
#[derive(Clone, Debug, PartialEq)]
pub struct Snooze {
    /// When it was asked for.
    pub from: Timestamp,
    /// Reminders before this time are skipped.
    pub until: Timestamp,
    /// Who snoozed and how, for people: `snoozed until Wed 2 Dec 09:00 by
    /// ana@example.com (by email link)`.
    pub words: String,
}

/// An email of a commitment's step that failed for good, as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedEmail {
    /// Its delivery id.
    pub delivery: i64,
    /// When it failed.
    pub at: Timestamp,
    /// Whom it was for, as stored (`owner`, `customer`, ...).
    pub audience: String,
    /// The kind of the step that sent it; `None` if this program does not know it.
    pub kind: Option<StepKind>,
}

/// The failed emails the owner is to hear of (delivery id and when it failed): all but
/// the owner's own mail, and but the notices of failures themselves, which would
/// otherwise report each other.
pub fn failures_to_report(failed: &[FailedEmail]) -> Vec<(i64, Timestamp)> {
    failed
        .iter()
        .filter(|f| f.audience != crate::mail::Audience::Owner.as_str())
        .filter(|f| f.kind != Some(StepKind::DeliveryFailed))
        .map(|f| (f.delivery, f.at))
        .collect()
}

/// What happened to a commitment so far that its plan depends on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Automatic customer updates already made.
    pub auto_updates: u32,
    /// Delays recorded by hand that the customer is to hear of: revision id and when
    /// the delay was recorded.
    pub notices: Vec<(i64, Timestamp)>,
    /// Every email of the commitment that failed for good; the owner hears of those
    /// [`failures_to_report`] picks.
    pub failed: Vec<FailedEmail>,
    /// When the commitment was recorded as already late (`add --overdue`): the steps
    /// after the due time count from here rather than being skipped as past.
    pub late_from: Option<Timestamp>,
    /// The owner's latest snooze of the reminders, if any.
    pub snoozed: Option<Snooze>,
    /// Customer updates (by step key, `customer_update#N`) the owner held back, each
    /// with the words for people (who, when, why).
    pub held: Vec<(String, String)>,
    /// Customer updates (by step key) the owner asked to send at once, and when.
    pub send_now: Vec<(String, Timestamp)>,
    /// Why the business waits on the customer, as the latest `wait` recorded it; the
    /// waiting itself is the commitment's `waiting_since`.
    pub waiting_reason: Option<String>,
}

/// The timeline of `commitment` under `rule`, given its `history`:
///
/// - while open: owner reminders at each offset from the due time, overdue repeats, the
///   next automatic customer update (until the rule's `max`), a notice for each delay
///   recorded by hand, the alert and the escalation;
/// - from the moment it is recorded: the `on_open` email (until cancelled);
/// - once done: the after-done follow-ups, skipped once it is closed with an outcome;
/// - once cancelled: nothing more;
/// - whatever the status: one notice to the owner for each email to someone else that
///   failed for good.
///
/// Steps for the customer fire inside business hours, read in the commitment's zone;
/// with the rule's `owner_hours`, owner and team mail inside the calendar's. While the
/// commitment waits on the customer, the steps that run the clock are skipped.
pub fn plan(
    commitment: &Commitment,
    rule: &Rule,
    calendar: &Calendar,
    history: &History,
) -> Vec<PlannedStep> {
    let mut steps = Vec::new();
    let customer_zone = commitment.zone(calendar.zone());
    let for_customer = |at: Timestamp| calendar.next_open_in(at, customer_zone);
    let step =
        |kind: StepKind, key: String, label: String, planned_at: Timestamp, fire_at: Timestamp| {
            PlannedStep {
                key,
                kind,
                rule: rule.name.clone(),
                label,
                planned_at,
                fire_at,
                skip: None,
            }
        };
    for (delivery, at) in &failures_to_report(&history.failed) {
        steps.push(step(
            StepKind::DeliveryFailed,
            format!("delivery_failed#{delivery}"),
            "delivery failed".into(),
            *at,
            *at,
        ));
    }
    match commitment.status {
        Status::Cancelled => return steps,
        Status::Done => {
            steps.extend(after::on_open(commitment, rule));
            steps.extend(after::after_done(commitment, rule, calendar));
            pause::owner_hours(&mut steps, rule, calendar);
            return steps;
        }
        Status::Open => steps.extend(after::on_open(commitment, rule)),
    }
    let due = commitment.due_at;
    let due_ms = due.as_millisecond();
    // The overdue repeats, the alert and the escalation follow the due time, or the
    // moment a promise already late was recorded, whichever is later.
    let late = history.late_from.map_or(due, |from| from.max(due));
    if let Some(update) = &rule.customer_update
        && history.auto_updates < update.max
        && let Ok(at) = calendar.shift(due, &update.at)
    {
        let n = history.auto_updates + 1;
        let key = format!("customer_update#{n}");
        let held = history.held.iter().find(|(k, _)| *k == key);
        let sent_now = history.send_now.iter().find(|(k, _)| *k == key);
        let fire_at = match sent_now {
            // Now, within the customer's business hours as every customer email.
            Some((_, asked)) if held.is_none() => for_customer(*asked),
            _ => for_customer(at),
        };
        let mut planned = step(
            StepKind::CustomerUpdate,
            key,
            format!("update {n} of {} ({})", update.max, update.at),
            at,
            fire_at,
        );
        planned.skip = held.map(|(_, words)| (SkipCode::Held, words.clone()));
        if let Some(window) = update.ask_owner {
            let mut ask = step(
                StepKind::AskOwner,
                format!("ask_owner#{n}"),
                format!("owner's say on update {n} ({window:#} before)"),
                planned.fire_at - window,
                planned.fire_at - window,
            );
            ask.skip = match (held, sent_now) {
                (Some((_, words)), _) => Some((SkipCode::Held, format!("the update was {words}"))),
                (None, Some(_)) => Some((
                    SkipCode::Replanned,
                    "the owner had the update sent at once".to_string(),
                )),
                (None, None) => None,
            };
            steps.push(ask);
        }
        steps.push(planned);
    }
    for (revision, at) in &history.notices {
        steps.push(step(
            StepKind::DelayNotice,
            format!("delay_notice#{revision}"),
            "delay notice".into(),
            *at,
            for_customer(*at),
        ));
    }
    if let Some(alert) = &rule.alert
        && let Ok(at) = calendar.shift(late, &alert.at)
    {
        steps.push(step(
            StepKind::Alert,
            format!("alert@{due_ms}"),
            format!("missed ({})", alert.at),
            at,
            at,
        ));
    }
    if let Some(escalate) = &rule.escalate
        && let Ok(at) = calendar.shift(late, &escalate.after)
    {
        steps.push(step(
            StepKind::Escalate,
            format!("escalate@{due_ms}"),
            format!("escalate ({})", escalate.after),
            at,
            at,
        ));
    }
    // With digest_only, the owner hears of this commitment through the digest alone.
    let reminders = if rule.digest_only {
        &[][..]
    } else {
        &rule.remind[..]
    };
    for offset in reminders {
        if let Ok(at) = calendar.shift(due, offset) {
            let key = format!("remind@{}", at.as_millisecond());
            steps.push(step(
                StepKind::Remind,
                key,
                offset.text().to_string(),
                at,
                at,
            ));
        }
    }
    if let Some(overdue) = rule.overdue.as_ref().filter(|_| !rule.digest_only) {
        let mut at = late;
        for n in 1..=overdue.max {
            match calendar.shift(at, &overdue.every) {
                Ok(next) if next > at => at = next,
                _ => break,
            }
            let key = format!("overdue#{n}@{}", at.as_millisecond());
            steps.push(step(
                StepKind::Overdue,
                key,
                format!("overdue {n} of {}", overdue.max),
                at,
                at,
            ));
        }
    }
    if let Some(snooze) = &history.snoozed {
        snooze_reminders(&mut steps, snooze, rule, step);
    }
    pause::waiting(
        &mut steps,
        commitment,
        calendar,
        history.waiting_reason.as_deref(),
    );
    pause::owner_hours(&mut steps, rule, calendar);
    steps.sort_by(|a, b| a.fire_at.cmp(&b.fire_at).then(a.key.cmp(&b.key)));
    steps.dedup_by(|a, b| a.key == b.key);
    steps
}

/// Skips the owner's reminders before the snooze's end, and plans one reminder at the
/// end if the snooze swallowed any: "snooze for two hours" means "remind me in two".
fn snooze_reminders(
    steps: &mut Vec<PlannedStep>,
    snooze: &Snooze,
    rule: &Rule,
    step: impl Fn(StepKind, String, String, Timestamp, Timestamp) -> PlannedStep,
) {
    let mut swallowed = false;
    for s in steps.iter_mut().filter(|s| s.kind.is_reminder()) {
        if s.fire_at < snooze.until {
            swallowed |= s.fire_at >= snooze.from;
            s.skip = Some((SkipCode::Snoozed, format!("reminders {}", snooze.words)));
        }
    }
    if swallowed && !rule.digest_only {
        steps.push(step(
            StepKind::Remind,
            format!("snooze@{}", snooze.until.as_millisecond()),
            "after snooze".into(),
            snooze.until,
            snooze.until,
        ));
    }
}

#[cfg(test)]
mod tests;
