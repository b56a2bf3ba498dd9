//! A customer update and its owner's copy: the copy waits until the customer's email is
//! accepted, and an update that bounces takes its move of the due time back.

use super::*;
use crate::store::{DeliveryOutcome, DeliveryRecord, NewRevision};

impl Fixture {
    /// Fires the customer update (3 s before the due time); its emails.
    fn fire_update(&self) -> (DeliveryRecord, DeliveryRecord) {
        self.queue(self.due - secs(3));
        let update = self.step(&keys(self).1);
        assert_eq!(update.state, "queued");
        let of_step = |audience: &str| {
            self.store
                .deliveries_of(self.id)
                .unwrap()
                .into_iter()
                .find(|d| d.step_id == Some(update.id) && d.audience == audience)
                .unwrap_or_else(|| panic!("no {audience} email"))
        };
        (of_step("customer"), of_step("owner"))
    }

    fn record(&self, outcome: DeliveryOutcome) -> crate::store::Recorded {
        let (written, _) = self
            .store
            .record_and_take(&self.claim, &[&[outcome]], &[])
            .unwrap();
        written.into_iter().next().unwrap().unwrap()
    }

    fn email(&self, id: i64) -> DeliveryRecord {
        self.store.delivery(id).unwrap().unwrap()
    }

    fn due_at(&self) -> String {
        self.store.commitment(self.id).unwrap().due_at.unwrap()
    }

    /// Records the customer's email as failed for good, then plans and fires what
    /// follows; the emails about it (to the owner, since not starting with "Due").
    fn bounce(&self, customer: i64) -> Vec<DeliveryRecord> {
        let at = self.due - secs(2);
        self.record(DeliveryOutcome::Failed {
            id: customer,
            error: "550 5.1.1 no such mailbox".into(),
            at,
        });
        // As the sender does: the failure asks for its commitment to be planned again.
        self.record(DeliveryOutcome::PlanAgain {
            delivery: customer,
            at,
        });
        self.plan(at);
        self.queue(at);
        self.plan(at);
        self.store
            .deliveries_of(self.id)
            .unwrap()
            .into_iter()
            .filter(|d| d.created_at == at && !d.subject.starts_with("Due"))
            .collect()
    }
}

#[test]
fn the_owners_copy_of_an_update_waits_until_the_customers_email_is_accepted() {
    let f = Fixture::new("");
    let moved = f.due_at();
    let (customer, owner) = f.fire_update();
    assert_ne!(moved, f.due_at(), "the update moved the due time");
    assert_eq!(customer.state, "pending");
    assert_eq!(
        owner.state, "waiting",
        "not before the customer's is accepted"
    );
    let due = f
        .store
        .pending_deliveries(Timestamp::MAX, 100, &HashSet::new())
        .unwrap();
    assert!(
        due.iter().all(|d| d.id != owner.id),
        "the sender never sees it"
    );

    let at = f.due - secs(2);
    let recorded = f.record(DeliveryOutcome::Sent {
        id: customer.id,
        at,
    });
    assert_eq!(recorded.followers, 1);
    let owner = f.email(owner.id);
    assert_eq!(
        (owner.state.as_str(), owner.next_attempt_at),
        ("pending", at)
    );
    assert_eq!(
        f.step(&keys(&f).1).state,
        "queued",
        "until the copy is sent"
    );
    f.record(DeliveryOutcome::Sent { id: owner.id, at });
    assert_eq!(f.step(&keys(&f).1).state, "sent");
}

#[test]
fn an_update_that_bounces_is_undone_and_the_owner_gets_one_email_that_says_so() {
    let f = Fixture::new("");
    let promise = f.due_at();
    let (customer, owner) = f.fire_update();
    let notices = f.bounce(customer.id);

    assert_eq!(
        f.email(owner.id).state,
        "skipped",
        "no 'Customer told' copy"
    );
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(notice.audience, "owner");
    assert!(
        notice.subject.starts_with("Not delivered: ") && notice.subject.contains("still due"),
        "{}",
        notice.subject
    );
    let body = text(notice, &f);
    assert!(body.contains("was not told that it will be late"), "{body}");
    assert!(body.contains("550 5.1.1 no such mailbox"), "{body}");
    assert!(body.contains("The due time is back to"), "{body}");

    assert_eq!(
        f.due_at(),
        promise,
        "the customer still holds the old promise"
    );
    let revision = &f.store.revisions_of(f.id).unwrap()[0];
    assert!(
        revision.undone.as_deref().unwrap().contains("550 5.1.1"),
        "{revision:?}"
    );
    // The plan follows the old due time again, and no second update goes to the
    // address that refused the first.
    let steps = f.store.steps_of(f.id).unwrap();
    let updates: Vec<_> = steps
        .iter()
        .filter(|s| s.kind == "customer_update")
        .collect();
    assert_eq!(updates.len(), 1, "{steps:?}");
    assert_eq!(updates[0].state, "failed");
}

#[test]
fn an_update_that_bounces_after_a_delay_by_hand_leaves_that_delay_in_force() {
    let f = Fixture::new("");
    let (customer, _) = f.fire_update();
    let by_hand = (f.due + secs(86_400)).to_string();
    f.store
        .revise_due(
            &NewRevision {
                commitment_id: f.id,
                old_due: f.due_at(),
                new_due: by_hand.clone(),
                reason: Some("the part is late".into()),
                source: "followup delay".into(),
                automatic: false,
                notify: true,
            },
            f.due - secs(3),
        )
        .unwrap();
    let notices = f.bounce(customer.id);
    let notice = notices
        .iter()
        .find(|d| d.subject.starts_with("Not delivered"))
        .expect("the notice");
    assert!(notice.subject.contains("now due"), "{}", notice.subject);
    assert!(text(notice, &f).contains("was moved again since"));
    assert_eq!(f.due_at(), by_hand, "the delay by hand stays");
    let revisions = f.store.revisions_of(f.id).unwrap();
    assert!(revisions[0].undone.is_some(), "the update is marked undone");
    assert!(revisions[1].undone.is_none());
}

#[test]
fn an_update_that_bounces_after_the_commitment_was_done_still_restores_the_promise() {
    let f = Fixture::new("");
    let promise = f.due_at();
    let (customer, _) = f.fire_update();
    f.store
        .set_status(f.id, crate::commitment::Status::Done)
        .unwrap();
    f.plan(f.due - secs(3));
    let notices = f.bounce(customer.id);
    assert_eq!(notices.len(), 1, "the owner still hears of it: {notices:?}");
    assert!(notices[0].subject.contains("still due"));
    assert_eq!(
        f.due_at(),
        promise,
        "the promise the customer holds, for reports"
    );
}

#[test]
fn a_dry_run_records_the_update_and_its_copy_and_moves_nothing() {
    let f = Fixture::new("\n[mail]\nfrom = \"followup@example.com\"\ndry_run = true\n");
    let promise = f.due_at();
    f.queue(f.due - secs(3));
    let update = f.step(&keys(&f).1);
    assert_eq!(update.state, "skipped");
    let states: Vec<_> = f
        .store
        .deliveries_of(f.id)
        .unwrap()
        .into_iter()
        .filter(|d| d.step_id == Some(update.id))
        .map(|d| (d.audience, d.state))
        .collect();
    assert_eq!(
        states,
        [
            ("customer".to_string(), "skipped".to_string()),
            ("owner".to_string(), "skipped".to_string())
        ]
    );
    assert_eq!(f.due_at(), promise);
    assert!(f.store.revisions_of(f.id).unwrap().is_empty());
}
