//! The owner's say before a customer update (`ask_owner#N`, about `customer_update#N`):
//! composed ahead like a reminder, with the update as it would go, and dropped once
//! there is nothing left to ask.

use super::*;
use crate::planner::{PlannedStep, StepChange, StepKind};
use crate::web::link::{Action, KEY_LEN, Links, Signer};

const KEY: [u8; KEY_LEN] = [9; KEY_LEN];

impl Fixture {
    /// Plans the say about the first update `before` seconds ahead of the due time, as
    /// the planner does for `customer_update = { ..., ask_owner = ... }`.
    fn ask_at(&self, before: i64) -> String {
        let at = self.due - secs(before);
        let step = PlannedStep {
            key: "ask_owner#1".into(),
            kind: StepKind::AskOwner,
            rule: "ahead".into(),
            label: "ask the owner".into(),
            planned_at: at,
            fire_at: at,
            skip: None,
        };
        let add = StepChange::Add { step, skip: None };
        self.store
            .apply_step_changes(self.id, &[add], self.due - secs(60))
            .unwrap();
        "ask_owner#1".into()
    }

    fn with_links(mut self) -> Fixture {
        self.links = Some(Links::new(
            Signer::new(&KEY),
            "https://followup.example.com",
            SignedDuration::from_hours(24),
        ));
        self
    }
}

#[test]
fn the_owner_is_asked_ahead_of_the_update_with_what_the_customer_would_get() {
    let f = Fixture::new("").with_links();
    let ask = f.ask_at(20);
    let (_, update, _) = keys(&f);
    let due_before = f.store.commitment(f.id).unwrap().due_at;

    assert_eq!(
        f.queue(f.due - secs(25)),
        1,
        "composed ahead, like a reminder"
    );
    assert_eq!(f.step(&ask).state, "queued");
    let mail = f.store.deliveries_of(f.id).unwrap().remove(0);
    assert_eq!(mail.audience, "owner");
    assert_eq!(mail.recipient, "ana@example.com");
    assert_eq!(mail.next_attempt_at, f.due - secs(20), "due at its time");
    assert_eq!(
        mail.subject,
        "In less than a minute joe@example.org will be told: Quote is late"
    );
    let body = text(&mail, &f);
    assert!(body.contains("  Subject: Quote: now expected"), "{body}");
    assert!(body.contains("  Dear joe@example.org,"), "{body}");

    // Asking changes nothing: the update is still to come, nothing is recorded.
    assert_eq!(f.step(&update).state, "planned");
    assert!(f.store.revisions_of(f.id).unwrap().is_empty());
    assert_eq!(f.store.commitment(f.id).unwrap().due_at, due_before);

    let signer = Signer::new(&KEY);
    let actions: Vec<Action> = body
        .split("https://followup.example.com/a/")
        .skip(1)
        .map(|rest| {
            let token = rest.split_whitespace().next().unwrap();
            let claim = signer.verify(token, f.due).unwrap();
            assert_eq!(
                (claim.commitment, claim.recipient.as_str()),
                (f.id, "ana@example.com")
            );
            claim.action
        })
        .collect();
    assert_eq!(
        actions,
        [Action::SendNow, Action::Hold, Action::Delay, Action::Done]
    );

    // Unanswered, the update goes at its time, exactly as the owner was shown.
    f.queue(f.due - secs(3));
    assert_eq!(f.step(&update).state, "queued");
    let sent = f
        .store
        .deliveries_of(f.id)
        .unwrap()
        .into_iter()
        .find(|d| d.audience == "customer")
        .unwrap();
    assert!(
        body.lines()
            .any(|l| l == format!("  Subject: {}", sent.subject)),
        "{}\n{body}",
        sent.subject
    );
    for line in text(&sent, &f).lines().filter(|l| !l.is_empty()) {
        assert!(
            body.contains(&format!("  {line}")),
            "{line:?} not in\n{body}"
        );
    }
}

#[test]
fn nothing_is_asked_about_an_update_that_is_no_longer_planned() {
    let f = Fixture::new("");
    let ask = f.ask_at(20);
    let (_, update, _) = keys(&f);
    let held = f.step(&update).id;
    f.store
        .skip_step(
            held,
            SkipCode::Held,
            "held by ana@example.com",
            f.due - secs(30),
        )
        .unwrap();
    assert_eq!(f.queue(f.due - secs(20)), 0);
    let step = f.step(&ask);
    assert_eq!(step.state, "skipped");
    assert_eq!(
        step.reason.as_deref(),
        Some("the customer update it asks about is skipped")
    );
    assert!(f.store.deliveries_of(f.id).unwrap().is_empty());
}

#[test]
fn a_say_whose_update_is_due_already_is_dropped_and_the_update_goes() {
    // The daemon was down through both: at the update's time there is nothing to ask.
    let f = Fixture::new("");
    let ask = f.ask_at(20);
    let (early, update, _) = keys(&f);
    f.queue(f.due - secs(3));
    let step = f.step(&ask);
    assert_eq!(step.state, "skipped");
    assert!(
        step.reason.as_deref().unwrap().contains("too late to ask"),
        "{step:?}"
    );
    assert_eq!(f.step(&update).state, "queued");
    assert_eq!(f.step(&early).state, "queued");
}

#[test]
fn a_closed_commitment_asks_nothing() {
    let f = Fixture::new("");
    let ask = f.ask_at(20);
    f.store.set_status(f.id, Status::Done).unwrap();
    assert_eq!(f.queue(f.due - secs(20)), 0);
    let step = f.step(&ask);
    assert_eq!(step.state, "skipped");
    assert!(step.reason.unwrap().contains("marked done"));
}
