//! What each step's emails say and to whom; the links in the business's own emails.

use super::*;
use crate::commitment::{Status, parse_mailbox};
use crate::config::Business;
use crate::mail::context::Failure;
use crate::rule::{AfterDone, Alert, CatchUp, Escalate};
use crate::web::link::{Action, Claim, KEY_LEN, Signer};

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
        promise: None,
        outcome: None,
        closed_at: None,
        waiting_since: None,
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
            ask_owner: None,
        }),
        alert: Some(Alert {
            at: "0s".parse().unwrap(),
            to: vec![
                parse_mailbox("team@example.com").unwrap(),
                parse_mailbox("desk@example.com").unwrap(),
            ],
            owner_hours: false,
        }),
        escalate: Some(Escalate {
            after: "+4h".parse().unwrap(),
            to: vec![parse_mailbox("lead@example.com").unwrap()],
        }),
        after_done: vec![AfterDone {
            after: "3 business days".parse().unwrap(),
            to: check_in_to,
            template: match check_in_to {
                CheckInTo::Owner => "check_in_owner".into(),
                CheckInTo::Customer => "check_in_customer".into(),
            },
        }],
        digest_only: false,
        due_in: None,
        on_open: None,
        owner_hours: false,
    }
}

fn emails(kind: StepKind, to: CheckInTo, update: Option<&Update>) -> Vec<Email> {
    compose(&Case {
        kind,
        to,
        update: update.cloned(),
        ..Case::default()
    })
}

/// One step to compose, with what the defaults leave out.
struct Case {
    kind: StepKind,
    to: CheckInTo,
    update: Option<Update>,
    failure: Option<Failure>,
    update_at: Option<Timestamp>,
    links: Option<Links>,
    status: Status,
}

impl Default for Case {
    fn default() -> Case {
        Case {
            kind: StepKind::Remind,
            to: CheckInTo::Owner,
            update: None,
            failure: None,
            update_at: None,
            links: None,
            status: Status::Open,
        }
    }
}

fn compose(case: &Case) -> Vec<Email> {
    let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
    let templates = Templates::builtin();
    let rule = rule(case.to);
    let mut c = commitment();
    c.status = case.status;
    let step = StepInfo {
        kind: case.kind,
        key: "check_in".into(),
        label: "x".into(),
        rule: "quotes".into(),
        planned_at: ts("2026-11-25T16:00:00Z"),
        late: false,
    };
    Situation {
        commitment: &c,
        rule: &rule,
        step: &step,
        customer: &crate::customer::Standing::default(),
        calendar: &calendar,
        templates: &templates,
        business: &Business::default(),
        command: "followup",
        update: case.update.as_ref(),
        failure: case.failure.as_ref(),
        update_at: case.update_at,
        links: case.links.as_ref(),
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
    // The customer reads New York times in words, from the moment of composing
    // (Wed 25 Nov, 11:00 in New York): 17:00 London is 12:00 EST.
    assert!(
        customer.rendered.text.contains("by today, 12:00,"),
        "{}",
        customer.rendered.text
    );
    assert!(
        customer
            .rendered
            .subject
            .ends_with("now expected Fri 27 Nov, 12:00"),
        "{}",
        customer.rendered.subject
    );
    assert!(
        customer
            .rendered
            .text
            .contains("\n\nOur supplier is late.\n\n")
    );
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

const PAGES: &str = "https://followup.example.com/a/";

fn links() -> Links {
    Links::new(
        Signer::new(&[7; KEY_LEN]),
        "https://followup.example.com",
        jiff::SignedDuration::from_hours(24 * 30),
    )
}

/// Every link in `text`, checked: the claims they carry, in order.
fn claims_in(text: &str) -> Vec<Claim> {
    let signer = Signer::new(&[7; KEY_LEN]);
    text.split(PAGES)
        .skip(1)
        .map(|rest| {
            let token = rest.split_whitespace().next().unwrap();
            signer
                .verify(token, ts("2026-11-25T16:00:00Z"))
                .unwrap_or_else(|_| panic!("a link that does not verify: {token}"))
        })
        .collect()
}

fn the_update() -> Update {
    let r = rule(CheckInTo::Owner);
    next_update(
        &commitment(),
        r.customer_update.as_ref().unwrap(),
        &Calendar::new(TimeZone::get("Europe/London").unwrap()),
        0,
        ts("2026-11-25T17:00:00Z"),
        ts("2026-11-25T18:00:00Z"),
    )
}

fn failure() -> Failure {
    Failure {
        recipient: "joe@example.org".into(),
        audience: "customer".into(),
        subject: "Update on the quote".into(),
        error: "550 no such mailbox".into(),
        attempts: 1,
        update: None,
    }
}

/// Every step kind with emails to the business's own people, composed with links.
fn every_internal_email(links: Option<Links>) -> Vec<Email> {
    let cases = [
        Case {
            kind: StepKind::Remind,
            ..Case::default()
        },
        Case {
            kind: StepKind::Overdue,
            ..Case::default()
        },
        Case {
            kind: StepKind::CustomerUpdate,
            update: Some(the_update()),
            ..Case::default()
        },
        Case {
            kind: StepKind::Alert,
            ..Case::default()
        },
        Case {
            kind: StepKind::Escalate,
            ..Case::default()
        },
        Case {
            kind: StepKind::CheckIn,
            status: Status::Done,
            ..Case::default()
        },
        Case {
            kind: StepKind::DeliveryFailed,
            failure: Some(failure()),
            ..Case::default()
        },
        Case {
            kind: StepKind::AskOwner,
            update: Some(the_update()),
            update_at: Some(ts("2026-11-25T18:00:00Z")),
            ..Case::default()
        },
    ];
    cases
        .into_iter()
        .flat_map(|case| {
            compose(&Case {
                links: links.clone(),
                ..case
            })
        })
        .filter(|email| email.audience.is_internal())
        .collect()
}

#[test]
fn every_email_to_the_business_carries_links_for_its_own_recipient() {
    let mails = every_internal_email(Some(links()));
    let templates: Vec<&str> = mails.iter().map(|m| m.template.as_str()).collect();
    assert_eq!(
        templates,
        [
            "owner_reminder",
            "owner_reminder",
            "update_sent",
            "alert",
            "alert",
            "escalation",
            "check_in_owner",
            "delivery_failed",
            "ask_owner"
        ]
    );
    for mail in &mails {
        let text = &mail.rendered.text;
        let claims = claims_in(text);
        assert!(!claims.is_empty(), "{}: no links\n{text}", mail.template);
        let to = mail.to.email.to_string();
        for claim in &claims {
            assert_eq!(claim.commitment, 12);
            assert_eq!(claim.recipient, to, "{}", mail.template);
            assert_eq!(claim.expires, ts("2026-12-25T16:00:00Z"));
        }
        let mut actions: Vec<Action> = claims.iter().map(|c| c.action).collect();
        let count = actions.len();
        actions.dedup();
        assert_eq!(actions.len(), count, "one URL per action: {text}");
        assert!(
            !text.contains("followup done") && !text.contains("followup show"),
            "{}: links instead of commands\n{text}",
            mail.template
        );
    }
    let reminder: Vec<Action> = claims_in(&mails[0].rendered.text)
        .iter()
        .map(|c| c.action)
        .collect();
    assert_eq!(
        reminder,
        [
            Action::Done,
            Action::Delay,
            Action::Snooze,
            Action::Cancel,
            Action::Wait,
            Action::Close,
            Action::Open
        ]
    );
    assert!(
        mails[0]
            .rendered
            .text
            .contains(&format!("Done:    {PAGES}")),
        "short labelled lines:\n{}",
        mails[0].rendered.text
    );
    // The check-in comes after done: closing it and its page are left.
    let check_in: Vec<Action> = claims_in(&mails[6].rendered.text)
        .iter()
        .map(|c| c.action)
        .collect();
    assert_eq!(check_in, [Action::Close, Action::Open]);
    // So does a failure notice about a commitment already closed.
    let closed = compose(&Case {
        kind: StepKind::DeliveryFailed,
        failure: Some(failure()),
        status: Status::Done,
        links: Some(links()),
        ..Case::default()
    });
    let actions: Vec<Action> = claims_in(&closed[0].rendered.text)
        .iter()
        .map(|c| c.action)
        .collect();
    assert_eq!(actions, [Action::Open]);
}

#[test]
fn customer_emails_never_carry_links() {
    let update = the_update();
    let mut customers = compose(&Case {
        kind: StepKind::CustomerUpdate,
        update: Some(update.clone()),
        links: Some(links()),
        ..Case::default()
    });
    customers.extend(compose(&Case {
        kind: StepKind::DelayNotice,
        update: Some(update),
        links: Some(links()),
        ..Case::default()
    }));
    customers.extend(compose(&Case {
        kind: StepKind::CheckIn,
        to: CheckInTo::Customer,
        status: Status::Done,
        links: Some(links()),
        ..Case::default()
    }));
    customers.retain(|m| m.audience == Audience::Customer);
    assert_eq!(customers.len(), 3);
    for mail in customers {
        assert!(
            !mail.rendered.text.contains("followup.example.com"),
            "{}",
            mail.rendered.text
        );
    }
}

#[test]
fn without_pages_the_emails_quote_commands_as_before() {
    for mail in every_internal_email(None) {
        let text = &mail.rendered.text;
        assert!(!text.contains("/a/"), "{}: {text}", mail.template);
        assert!(
            text.contains("followup show 12")
                || text.contains("followup done 12")
                || text.contains("followup delay 12"),
            "{}: no command\n{text}",
            mail.template
        );
    }
}

#[test]
fn the_owners_say_shows_the_customers_update_verbatim_and_when_it_goes() {
    let update = the_update();
    let goes_at = ts("2026-11-25T18:00:00Z");
    let customer = compose(&Case {
        kind: StepKind::CustomerUpdate,
        update: Some(update.clone()),
        ..Case::default()
    })
    .remove(0);
    let mails = compose(&Case {
        kind: StepKind::AskOwner,
        update: Some(update),
        update_at: Some(goes_at),
        links: Some(links()),
        ..Case::default()
    });
    assert_eq!(mails.len(), 1, "to the owner alone");
    let ask = &mails[0];
    assert_eq!(ask.audience, Audience::Owner);
    assert_eq!(ask.to.email.to_string(), "ana@example.com");
    assert_eq!(
        ask.rendered.subject,
        "In 2 hours Joe Mensah will be told: Send quote for the boiler service is late"
    );
    let text = &ask.rendered.text;
    assert!(
        text.starts_with("In 2 hours Joe Mensah will be told:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  Subject: {}", customer.rendered.subject)),
        "{text}"
    );
    let indented: String = customer
        .rendered
        .text
        .lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("  {l}\n")
            }
        })
        .collect();
    assert!(text.contains(&indented), "verbatim, indented:\n{text}");
    assert!(text.contains("Wed 25 Nov 2026 18:00 GMT"), "{text}");
    let actions: Vec<Action> = claims_in(text).iter().map(|c| c.action).collect();
    assert_eq!(
        actions,
        [Action::SendNow, Action::Hold, Action::Delay, Action::Done]
    );
    assert!(text.contains(&format!("Send it now:  {PAGES}")), "{text}");
    assert!(text.contains(&format!("Hold it:      {PAGES}")), "{text}");

    let without = compose(&Case {
        kind: StepKind::AskOwner,
        update: Some(the_update()),
        update_at: Some(goes_at),
        ..Case::default()
    })
    .remove(0);
    assert!(
        without
            .rendered
            .text
            .contains("followup hold 12 --update 1 --reason TEXT"),
        "{}",
        without.rendered.text
    );
}

mod customer_words;
mod rules;
