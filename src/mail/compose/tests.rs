//! What each step's emails say and to whom.

use super::*;
use crate::commitment::{Status, parse_mailbox};
use crate::rule::{Alert, CatchUp, CheckIn, Escalate};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn commitment() -> Commitment {
    Commitment {
        id: 12,
        title: "Send quote for the boiler service".into(),
        owner: parse_mailbox("Ana Ruiz <ana@example.com>").unwrap(),
        customer: parse_mailbox("Joe Mensah <joe@example.org>").unwrap(),
        timezone: Some(TimeZone::get("America/New_York").unwrap()),
        due_at: ts("2026-11-25T17:00:00Z"),
        kind: Some("quote".into()),
        status: Status::Open,
        note: "asked for two options".into(),
        external_ref: Some("CRM-7".into()),
        reason: Some("our supplier is late".into()),
        created_at: ts("2026-11-20T10:00:00Z"),
        done_at: Some(ts("2026-11-26T12:00:00Z")),
    }
}

fn rule(check_in_to: CheckInTo) -> Rule {
    Rule {
        name: "quotes".into(),
        kinds: None,
        remind: vec![],
        overdue: None,
        catch_up: CatchUp::Send,
        customer_update: Some(CustomerUpdate {
            at: "-1h".parse().unwrap(),
            extend_by: "2 business days".parse().unwrap(),
            max: 2,
            template: "no_news_yet".into(),
        }),
        alert: Some(Alert {
            at: "0s".parse().unwrap(),
            to: vec![
                parse_mailbox("team@example.com").unwrap(),
                parse_mailbox("desk@example.com").unwrap(),
            ],
        }),
        escalate: Some(Escalate {
            after: "+4h".parse().unwrap(),
            to: vec![parse_mailbox("lead@example.com").unwrap()],
        }),
        check_in: Some(CheckIn {
            after: "3 business days".parse().unwrap(),
            to: check_in_to,
            template: match check_in_to {
                CheckInTo::Owner => "check_in_owner".into(),
                CheckInTo::Customer => "check_in_customer".into(),
            },
        }),
        digest_only: false,
    }
}

fn emails(kind: StepKind, to: CheckInTo, update: Option<&Update>) -> Vec<Email> {
    let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
    let templates = Templates::builtin();
    let rule = rule(to);
    let c = commitment();
    let step = StepInfo {
        kind,
        label: "x".into(),
        rule: "quotes".into(),
        planned_at: ts("2026-11-25T16:00:00Z"),
        late: false,
    };
    Situation {
        commitment: &c,
        rule: &rule,
        step: &step,
        calendar: &calendar,
        templates: &templates,
        command: "followup",
        update,
        failure: None,
        now: ts("2026-11-25T16:00:00Z"),
    }
    .emails()
    .unwrap()
}

#[test]
fn a_customer_update_tells_the_customer_in_their_zone_and_the_owner_what_was_sent() {
    let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
    let r = rule(CheckInTo::Owner);
    let update = next_update(
        &commitment(),
        r.customer_update.as_ref().unwrap(),
        &calendar,
        0,
        ts("2026-11-25T17:00:00Z"),
        ts("2026-11-25T16:00:00Z"),
    );
    // Wednesday 17:00 London + 2 business days (default 09-17) = Friday 17:00.
    assert_eq!(update.new_due, ts("2026-11-27T17:00:00Z"));
    assert_eq!(update.number, 1);
    let mails = emails(StepKind::CustomerUpdate, CheckInTo::Owner, Some(&update));
    assert_eq!(mails.len(), 2);
    let customer = &mails[0];
    assert_eq!(customer.audience, Audience::Customer);
    assert_eq!(customer.to.email.to_string(), "joe@example.org");
    // The customer reads New York times: 17:00 London is 12:00 EST.
    assert!(
        customer.rendered.text.contains("Wed 25 Nov 2026 12:00 EST"),
        "{}",
        customer.rendered.text
    );
    assert!(
        customer
            .rendered
            .subject
            .contains("Fri 27 Nov 2026 12:00 EST"),
        "{}",
        customer.rendered.subject
    );
    assert!(customer.rendered.text.contains("our supplier is late"));
    assert!(customer.rendered.text.contains("Dear Joe Mensah"));
    assert!(
        !customer.rendered.text.contains("followup"),
        "no internal commands to the customer"
    );
    let owner = &mails[1];
    assert_eq!(owner.audience, Audience::Owner);
    assert!(
        owner.rendered.text.contains("Fri 27 Nov 2026 17:00 GMT"),
        "{}",
        owner.rendered.text
    );
    assert!(owner.rendered.text.contains(&customer.rendered.subject));
    assert!(
        owner.rendered.text.contains("  Dear Joe Mensah"),
        "the customer's text, indented"
    );
}

#[test]
fn alerts_go_to_each_team_address_and_say_how_late() {
    let mails = emails(StepKind::Alert, CheckInTo::Owner, None);
    let to: Vec<String> = mails.iter().map(|m| m.to.email.to_string()).collect();
    assert_eq!(to, ["team@example.com", "desk@example.com"]);
    assert!(mails.iter().all(|m| m.audience == Audience::Team));
    // Composed at 16:00 for a 17:00 due, so "1 hour" either way.
    assert!(
        mails[0]
            .rendered
            .subject
            .contains("Promise missed by 1 hour"),
        "{}",
        mails[0].rendered.subject
    );
    assert!(
        mails[0]
            .rendered
            .text
            .contains("Joe Mensah <joe@example.org>")
    );
    let escalation = emails(StepKind::Escalate, CheckInTo::Owner, None);
    assert_eq!(escalation[0].to.email.to_string(), "lead@example.com");
    assert_eq!(escalation[0].audience, Audience::Escalation);
}

#[test]
fn check_ins_go_to_the_owner_or_the_customer() {
    let owner = emails(StepKind::CheckIn, CheckInTo::Owner, None);
    assert_eq!(owner[0].to.email.to_string(), "ana@example.com");
    assert!(
        owner[0]
            .rendered
            .subject
            .starts_with("Check in with Joe Mensah")
    );
    let customer = emails(StepKind::CheckIn, CheckInTo::Customer, None);
    assert_eq!(customer[0].to.email.to_string(), "joe@example.org");
    assert_eq!(customer[0].audience, Audience::Customer);
}

#[test]
fn reminders_go_to_the_owner() {
    let mails = emails(StepKind::Remind, CheckInTo::Owner, None);
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].rendered.subject,
        "Due in 1 hour: Send quote for the boiler service"
    );
}
