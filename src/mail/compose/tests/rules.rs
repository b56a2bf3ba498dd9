//! The emails of the steps newer rule keys plan: each after-done entry as written, and
//! the on-open email to everyone listed.

use super::*;
use crate::rule::OnOpen;

fn compose_step(rule: &Rule, kind: StepKind, key: &str) -> Vec<Email> {
    let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
    let templates = Templates::builtin();
    let c = commitment();
    let step = StepInfo {
        kind,
        key: key.into(),
        label: "x".into(),
        rule: rule.name.clone(),
        planned_at: ts("2026-11-25T16:00:00Z"),
        late: false,
    };
    Situation {
        commitment: &c,
        rule,
        step: &step,
        customer: &crate::customer::Standing::default(),
        business: &crate::config::Business::default(),
        calendar: &calendar,
        templates: &templates,
        command: "followup",
        update: None,
        failure: None,
        update_at: None,
        links: None,
        now: ts("2026-11-25T16:00:00Z"),
    }
    .emails()
    .unwrap()
}

#[test]
fn each_after_done_entry_goes_to_whom_it_names_with_its_template() {
    let mut r = rule(CheckInTo::Owner);
    r.after_done.push(AfterDone {
        after: "5 business days".parse().unwrap(),
        to: CheckInTo::Customer,
        template: "check_in_customer".into(),
    });
    let first = compose_step(&r, StepKind::CheckIn, "check_in");
    assert_eq!(first[0].audience, Audience::Owner);
    assert_eq!(first[0].template, "check_in_owner");
    let second = compose_step(&r, StepKind::CheckIn, "after_done#2");
    assert_eq!(second[0].audience, Audience::Customer);
    assert_eq!(second[0].template, "check_in_customer");
    assert!(!writes_to_customer(StepKind::CheckIn, "check_in", &r));
    assert!(writes_to_customer(StepKind::CheckIn, "after_done#2", &r));
}

#[test]
fn the_on_open_email_goes_to_everyone_listed_with_the_commitments_facts() {
    let mut r = rule(CheckInTo::Owner);
    r.on_open = Some(OnOpen {
        to: vec![
            parse_mailbox("service-team@example.com").unwrap(),
            parse_mailbox("desk@example.com").unwrap(),
        ],
        template: "service_failure".into(),
    });
    let mails = compose_step(&r, StepKind::OnOpen, "on_open");
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().all(|m| m.audience == Audience::Team));
    assert_eq!(mails[1].to.email.to_string(), "desk@example.com");
    let text = &mails[0].rendered.text;
    assert!(
        text.contains("Customer:  Joe Mensah <joe@example.org>"),
        "{text}"
    );
    assert!(mails[0].rendered.subject.contains("Joe Mensah"));
}
