//! Rules: which commitments a `[[rule]]` block is for, and which steps it plans.
//!
//! The first rule (in file-name order, then order in the file) whose `match` keys all
//! hold wins; a rule without `match` keys matches every commitment.

use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};

use crate::calendar::Offset;
use crate::commitment::Commitment;
use crate::planner::StepKind;

/// One validated `[[rule]]` block.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Unique name, recorded on every step the rule plans.
    pub name: String,
    /// Kinds this rule is for; `None` means any kind, including none.
    pub kinds: Option<Vec<String>>,
    /// Owner reminders relative to the due time (`-1d`, `-2h`, `0s`, `+1h`).
    pub remind: Vec<Offset>,
    /// Repeated reminders after the due time while the commitment stays open.
    pub overdue: Option<Overdue>,
    /// What to do with steps whose time passed while the daemon was not running.
    pub catch_up: CatchUp,
    /// Automatic "no news yet" updates to the customer.
    pub customer_update: Option<CustomerUpdate>,
    /// Internal alert when the due time passes with the commitment open.
    pub alert: Option<Alert>,
    /// Escalation when the commitment is still open long after its due time.
    pub escalate: Option<Escalate>,
    /// The follow-ups after the commitment is done (`after_done`, or the one
    /// `check_in`), in the order written; the ones not yet sent stop once it is closed.
    pub after_done: Vec<AfterDone>,
    /// Owner reminders only through the digest: no individual reminder emails.
    pub digest_only: bool,
    /// The default due time of `followup add` without `--due`, from the moment of adding:
    /// a response-time promise ("within 2 business hours").
    pub due_in: Option<Offset>,
    /// The internal email the moment the commitment is recorded.
    pub on_open: Option<OnOpen>,
    /// Owner and team mail of this rule waits for the calendar's business hours.
    pub owner_hours: bool,
}

/// `on_open`: the people who deal with the customer next hear of the commitment at once.
#[derive(Clone, Debug, PartialEq)]
pub struct OnOpen {
    /// Who hears it.
    pub to: Vec<Mailbox>,
    /// The template used.
    pub template: String,
}

/// `customer_update`: tell the customer before the due time that it cannot be met.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerUpdate {
    /// When, relative to the due time (usually negative: `-1h`).
    pub at: Offset,
    /// How far the due time moves with each update (usually business time).
    pub extend_by: Offset,
    /// At most this many automatic updates per commitment.
    pub max: u32,
    /// The template the customer gets.
    pub template: String,
    /// How long before the update goes the owner is asked whether to send it, hold it
    /// or change it (`ask_owner = "2h"`); `None`: the update goes unasked.
    pub ask_owner: Option<jiff::SignedDuration>,
}

/// `alert`: the team hears that a promise was missed.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// When, relative to the due time (`+0s`: the moment it passes).
    pub at: Offset,
    /// Who hears it.
    pub to: Vec<Mailbox>,
    /// Whether it waits for business hours: the rule's `owner_hours` unless the alert
    /// says otherwise.
    pub owner_hours: bool,
}

/// `escalate`: someone senior hears that the owner has been silent.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalate {
    /// How long after the due time.
    pub after: Offset,
    /// Who hears it.
    pub to: Vec<Mailbox>,
}

/// One entry of `after_done` (or the `check_in`): close the loop after the work is done.
#[derive(Clone, Debug, PartialEq)]
pub struct AfterDone {
    /// How long after the commitment was marked done.
    pub after: Offset,
    /// The owner is prompted to check in, or the customer is asked directly.
    pub to: CheckInTo,
    /// The template used.
    pub template: String,
}

/// Who a check-in goes to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckInTo {
    /// A prompt to the owner: "check that it worked for the customer".
    #[default]
    Owner,
    /// A templated check-in to the customer, in business hours.
    Customer,
}

/// `overdue_every` and `overdue_max` together.
#[derive(Clone, Debug, PartialEq)]
pub struct Overdue {
    /// Distance between repeats, and from the due time to the first one.
    pub every: Offset,
    /// How many repeats at most.
    pub max: u32,
}

/// The step key of the first after-done entry: `check_in`, the key a single check-in
/// always had, so stores planned before `after_done` existed keep their step.
pub const FIRST_AFTER_DONE_KEY: &str = "check_in";

impl Rule {
    /// The step key of after-done entry `index` (from 0): `check_in`, then
    /// `after_done#2`, `after_done#3`...
    pub fn after_done_key(index: usize) -> String {
        match index {
            0 => FIRST_AFTER_DONE_KEY.to_string(),
            n => format!("after_done#{}", n + 1),
        }
    }

    /// The after-done entry a step with `key` was planned from.
    pub fn after_done_entry(&self, key: &str) -> Option<&AfterDone> {
        let index = match key {
            FIRST_AFTER_DONE_KEY => 0,
            other => other
                .strip_prefix("after_done#")?
                .parse::<usize>()
                .ok()?
                .checked_sub(1)?,
        };
        self.after_done.get(index)
    }

    /// True if the step of `kind` with `key` is owner or team mail that this rule's
    /// `owner_hours` keeps inside business hours (the alert as its own key says).
    pub fn keeps_owner_hours(&self, kind: StepKind, key: &str) -> bool {
        match kind {
            StepKind::CustomerUpdate | StepKind::DelayNotice => false,
            StepKind::Alert => self.alert.as_ref().is_some_and(|a| a.owner_hours),
            StepKind::CheckIn => {
                self.owner_hours
                    && self
                        .after_done_entry(key)
                        .is_some_and(|entry| entry.to == CheckInTo::Owner)
            }
            StepKind::Remind
            | StepKind::Overdue
            | StepKind::Escalate
            | StepKind::AskOwner
            | StepKind::DeliveryFailed
            | StepKind::OnOpen => self.owner_hours,
        }
    }

    /// True if some step this rule plans writes to the customer (a customer update or
    /// an after-done entry to the customer): such commitments want a promise.
    pub fn mails_customer(&self) -> bool {
        self.customer_update.is_some()
            || self.after_done.iter().any(|a| a.to == CheckInTo::Customer)
    }

    /// True if every `match` key of the rule holds for `commitment`.
    pub fn matches(&self, commitment: &Commitment) -> bool {
        self.matches_kind(commitment.kind.as_deref())
    }

    /// True if the rule's `match` keys hold for a commitment of `kind`: what `add`
    /// asks before the commitment exists, to take the rule's `due_in`.
    pub fn matches_kind(&self, kind: Option<&str>) -> bool {
        match &self.kinds {
            None => true,
            Some(kinds) => kind.is_some_and(|k| kinds.iter().any(|want| want == k)),
        }
    }
}

/// The first rule that matches `commitment`, if any.
pub fn rule_for<'a>(rules: &'a [Rule], commitment: &Commitment) -> Option<&'a Rule> {
    rule_for_kind(rules, commitment.kind.as_deref())
}

/// The first rule that matches a commitment of `kind`, if any.
pub fn rule_for_kind<'a>(rules: &'a [Rule], kind: Option<&str>) -> Option<&'a Rule> {
    rules.iter().find(|r| r.matches_kind(kind))
}

/// A rule's `catch_up` policy: what happens to steps whose time passed while the
/// daemon was stopped (or busy for longer than a minute).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum CatchUp {
    /// Send each missed step once, late, marked as late.
    #[default]
    Send,
    /// Send only the newest missed step of each commitment; skip the older ones.
    Latest,
    /// Send missed steps up to this old; skip older ones with the reason recorded.
    SkipOlderThan(SignedDuration),
}

/// What to do with one step whose time has come.
#[derive(Clone, Debug, PartialEq)]
pub enum FireDecision {
    /// Send it; `late` marks a step sent after its time had passed by more than the
    /// daemon's `late_after`.
    Send {
        /// Whether the mail says it comes late.
        late: bool,
    },
    /// Record it as skipped with this reason.
    Skip(String),
}

impl CatchUp {
    /// Decides one due step: `fire_at` is when it should have fired, `late_after` how
    /// late it may be and still count as on time, and `newer_due_exists` whether a later
    /// step of the same commitment is also due.
    pub fn decide(
        self,
        fire_at: Timestamp,
        now: Timestamp,
        late_after: SignedDuration,
        newer_due_exists: bool,
    ) -> FireDecision {
        let lateness = now.duration_since(fire_at);
        if lateness <= late_after {
            return FireDecision::Send { late: false };
        }
        match self {
            CatchUp::Send => FireDecision::Send { late: true },
            CatchUp::Latest if newer_due_exists => FireDecision::Skip(
                "missed while the daemon was down; catch_up = \"latest\" sends only the newest missed step".into(),
            ),
            CatchUp::Latest => FireDecision::Send { late: true },
            CatchUp::SkipOlderThan(limit) => {
                if lateness > limit {
                    FireDecision::Skip(format!(
                        "missed while the daemon was down, by more than catch_up = \"skip_older_than:{}\"",
                        crate::calendar::humanize(Timestamp::UNIX_EPOCH, Timestamp::UNIX_EPOCH + limit)
                    ))
                } else {
                    FireDecision::Send { late: true }
                }
            }
        }
    }
}

impl FromStr for CatchUp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "send" => Ok(CatchUp::Send),
            "latest" => Ok(CatchUp::Latest),
            other => {
                let age = other.strip_prefix("skip_older_than:").ok_or_else(|| {
                    format!("catch_up '{other}' is not one of \"send\", \"latest\", \"skip_older_than:6h\"")
                })?;
                let offset: Offset = age.parse().map_err(|e| format!("catch_up: {e}"))?;
                match offset.exact() {
                    Some(age) if age.is_positive() => Ok(CatchUp::SkipOlderThan(age)),
                    _ => Err(format!(
                        "catch_up: '{age}' must be a positive age in wall-clock time such as 6h"
                    )),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for CatchUp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: SignedDuration = SignedDuration::from_secs(60);

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_step_on_time_is_sent_whatever_the_policy() {
        let at = ts("2026-11-24T10:00:00Z");
        for policy in [
            CatchUp::Send,
            CatchUp::Latest,
            "skip_older_than:1m".parse().unwrap(),
        ] {
            assert_eq!(
                policy.decide(at, ts("2026-11-24T10:00:30Z"), MINUTE, true),
                FireDecision::Send { late: false }
            );
        }
    }

    #[test]
    fn each_policy_handles_a_missed_step_as_it_says() {
        let at = ts("2026-11-24T10:00:00Z");
        let now = ts("2026-11-24T14:00:00Z");
        assert_eq!(
            CatchUp::Send.decide(at, now, MINUTE, true),
            FireDecision::Send { late: true }
        );
        assert!(matches!(
            CatchUp::Latest.decide(at, now, MINUTE, true),
            FireDecision::Skip(_)
        ));
        assert_eq!(
            CatchUp::Latest.decide(at, now, MINUTE, false),
            FireDecision::Send { late: true }
        );
        let six: CatchUp = "skip_older_than:6h".parse().unwrap();
        assert_eq!(
            six.decide(at, now, MINUTE, false),
            FireDecision::Send { late: true }
        );
        let two: CatchUp = "skip_older_than:2h".parse().unwrap();
        assert!(matches!(
            two.decide(at, now, MINUTE, false),
            FireDecision::Skip(_)
        ));
    }

    #[test]
    fn policies_are_read_from_their_config_words() {
        assert_eq!("send".parse::<CatchUp>(), Ok(CatchUp::Send));
        assert_eq!("latest".parse::<CatchUp>(), Ok(CatchUp::Latest));
        assert!("skip_older_than:soon".parse::<CatchUp>().is_err());
        assert!("skip_older_than:-1h".parse::<CatchUp>().is_err());
        assert!("sometimes".parse::<CatchUp>().is_err());
    }
}
