//! Firing on a real store with fixed times: what the daemon sends is what `preview`
//! showed, and a step this program cannot read fails alone, named.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::cli::preview::{Ahead, steps_ahead};
use crate::clock::Clock;
use crate::planner::StepState;
use crate::rule::rule_for;
use crate::store::prelude::*;
use crate::store::{Claim, DueAsk, NewCommitment, SqliteStore};

const RULES: &str = r#"
[calendar]
timezone = "Europe/London"

[[rule]]
name = "quotes"
remind = ["-1h", "0s"]
customer_update = { at = "-30m", extend_by = "1d", max = 1, ask_owner = "10m" }
alert = { at = "+2h", to = ["team@example.com"] }
match = { kind = "quote" }

[[rule]]
name = "others"
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    claim: Claim,
    config: Config,
    id: i64,
    due: Timestamp,
    /// The links the daemon with pages puts in the business's own emails.
    links: Option<Links>,
}

impl Fixture {
    /// A commitment in New York's zone due at `due`, with a delay recorded by hand
    /// that the customer is to hear of, planned as of two hours before; and another
    /// of the same customer's, with no steps, missed a week before.
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config_dir = dir.path().join("config");
        std::fs::create_dir(&config_dir).unwrap();
        std::fs::write(config_dir.join("rules.toml"), RULES).unwrap();
        // The owner's reminder says how the customer's promises stand at its time.
        std::fs::create_dir(config_dir.join("templates")).unwrap();
        let reminder = include_str!("../../../mail/templates/owner_reminder.txt");
        let reminder = format!("{reminder}\nKept: {{{{ customer.kept_percent }}}}\n");
        std::fs::write(config_dir.join("templates/owner_reminder.txt"), reminder).unwrap();
        let config = crate::config::load(&config_dir, false).unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let first_due: Timestamp = "2030-01-07T15:00:00Z".parse().unwrap();
        let due = first_due + SignedDuration::from_hours(1);
        let mut new = NewCommitment::sample("2030-01-07 10:00");
        new.timezone = Some("America/New_York".into());
        new.kind = Some("quote".into());
        let id = store.insert_commitment(&new).unwrap();
        store
            .insert_commitment(&NewCommitment::sample("2029-12-31T15:00:00Z"))
            .unwrap();
        let delay = NewRevision {
            commitment_id: id,
            old_due: "2030-01-07 10:00".into(),
            new_due: "2030-01-07 11:00".into(),
            reason: Some("the parts come a day late".into()),
            source: "followup delay".into(),
            automatic: false,
            notify: true,
        };
        store.revise_due(&delay, first_due).unwrap();
        let claim = store
            .claim_work("test:1", SignedDuration::from_secs(15), first_due)
            .unwrap();
        let fixture = Fixture {
            _dir: dir,
            store,
            claim,
            config,
            id,
            due,
            links: None,
        };
        fixture.plan(due - SignedDuration::from_hours(2));
        fixture
    }

    fn plan(&self, now: Timestamp) {
        let clock = Clock::system();
        while super::super::plan_batch(&self.store, &self.config, now, &clock).unwrap() > 0 {}
    }

    /// Fires what is due at `now` as the planning task does, a batch at a time.
    fn fire(&self, now: Timestamp) {
        let composing = Composing {
            config: &self.config,
            links: self.links.as_ref(),
        };
        let busy = HashSet::new();
        let wants = |step: &DueStep| wants(&self.config.templates, step);
        let ask = DueAsk {
            now,
            ahead: now,
            after: None,
            busy: &busy,
            limit: 32,
            wants: &wants,
        };
        let redecide = |batch| decide_all(&composing, batch, now);
        let mut next = self.store.take_due_steps(&self.claim, &ask).unwrap();
        while let Some(batch) = next {
            let decided = decide_all(&composing, batch, now);
            let queued = self
                .store
                .queue_decided(&self.claim, &decided, &ask, &redecide);
            next = queued.unwrap().next;
        }
    }

    /// What `preview` shows at `now`.
    fn preview(&self, now: Timestamp) -> Vec<Ahead> {
        let row = self.store.commitment(self.id).unwrap();
        let commitment = row.check(self.config.calendar.zone()).unwrap();
        let rule = rule_for(&self.config.rules, &commitment).unwrap();
        let links = self.links.as_ref();
        steps_ahead(&self.store, &self.config, &commitment, rule, links, now).unwrap()
    }

    fn step(&self, key: &str) -> crate::planner::Step {
        let steps = self.store.steps_of(self.id).unwrap();
        steps.into_iter().find(|s| s.key == key).unwrap()
    }

    /// The emails the daemon put in the outbox for the step with `key`: recipient,
    /// subject and text, as the messages carry them.
    fn sent(&self, key: &str) -> Vec<(String, String, String)> {
        let step = self.step(key);
        let deliveries = self.store.deliveries_of(self.id).unwrap();
        deliveries
            .iter()
            .filter(|d| d.step_id == Some(step.id))
            .map(|d| {
                let raw = self.store.message_of(self.id, d.id).unwrap().unwrap();
                let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
                let to = parsed.to().and_then(|to| to.first()).unwrap();
                (
                    to.address().unwrap().to_string(),
                    parsed.subject().unwrap().to_string(),
                    parsed
                        .body_text(0)
                        .unwrap()
                        .trim_end()
                        .replace("\r\n", "\n"),
                )
            })
            .collect()
    }
}

/// The emails `preview` shows for a step: recipient, subject and text.
fn shown(ahead: &Ahead) -> Vec<(String, String, String)> {
    let emails = ahead.emails.as_ref().unwrap();
    emails
        .iter()
        .map(|e| {
            let text = crate::mail::message::normalize_body(&e.rendered.text);
            (
                e.to.email.to_string(),
                e.rendered.subject.clone(),
                text.trim_end().replace("\r\n", "\n"),
            )
        })
        .collect()
}

#[test]
fn the_daemon_sends_each_step_as_preview_showed_it_just_before() {
    the_daemon_sends_what_preview_showed(Fixture::new());
}

#[test]
fn with_pages_preview_shows_the_links_the_daemon_sends() {
    let mut f = Fixture::new();
    let signer = crate::web::link::Signer::new(&[3; crate::web::link::KEY_LEN]);
    let day = SignedDuration::from_hours(24);
    f.links = Some(Links::new(signer, "https://followup.example.com", day));
    the_daemon_sends_what_preview_showed(f);
}

fn the_daemon_sends_what_preview_showed(f: Fixture) {
    let mut now = f.due - SignedDuration::from_hours(2);
    let mut kinds = Vec::new();
    loop {
        let ahead = f.preview(now);
        let Some(first) = ahead.first() else { break };
        now = first.step.fire_at;
        f.fire(now);
        for next in ahead.iter().filter(|a| a.step.fire_at == now) {
            let key = &next.step.key;
            assert_eq!(f.step(key).state, StepState::Queued, "{key}");
            assert_eq!(f.sent(key), shown(next), "{key} at {now}");
            kinds.push(next.step.kind);
        }
        f.plan(now);
    }
    for kind in [
        StepKind::DelayNotice,
        StepKind::Remind,
        StepKind::AskOwner,
        StepKind::CustomerUpdate,
        StepKind::Alert,
    ] {
        assert!(kinds.contains(&kind), "no {kind} among {kinds:?}");
    }
}

#[test]
fn a_step_of_a_kind_this_program_does_not_know_fails_alone_and_names_itself() {
    let f = Fixture::new();
    let steps = f.store.steps_of(f.id).unwrap();
    let remind = steps.iter().find(|s| s.kind == StepKind::Remind).unwrap();
    let conn = rusqlite::Connection::open(f._dir.path().join("followup.db")).unwrap();
    conn.execute(
        "UPDATE steps SET kind = 'telegram' WHERE id = ?1",
        [remind.id],
    )
    .unwrap();
    drop(conn);
    let err = f.store.steps_of(f.id).unwrap_err().to_string();
    let named = format!("step {} of commitment {}", remind.id, f.id);
    assert!(err.contains(&named), "{err}");
    assert!(err.contains("unknown step kind 'telegram'"), "{err}");

    f.fire(f.due);
    let conn = rusqlite::Connection::open(f._dir.path().join("followup.db")).unwrap();
    let (state, reason): (String, String) = conn
        .query_row(
            "SELECT state, reason FROM steps WHERE id = ?1",
            [remind.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(state, "failed");
    assert!(reason.contains(&named), "{reason}");
    let queued: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM steps WHERE commitment_id = ?1 AND state = 'queued'",
            [f.id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(queued > 0, "the other due steps went on");
}
