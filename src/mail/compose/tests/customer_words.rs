//! What the customer reads: the promise, sentences, times and days in words.

use super::*;

/// A customer update and a check-in to the customer for `c`, composed at `now`.
fn customer_words(c: &Commitment, now: Timestamp) -> (Rendered, Rendered) {
    let calendar = Calendar::new(TimeZone::get("Europe/London").unwrap());
    let templates = Templates::builtin();
    let rule = rule(CheckInTo::Customer);
    let update = next_update(
        c,
        rule.customer_update.as_ref().unwrap(),
        &calendar,
        0,
        c.due_at,
        now,
    );
    let compose = |kind| {
        let step = StepInfo {
            kind,
            key: match kind {
                StepKind::CheckIn => "check_in".into(),
                _ => "customer_update#1".into(),
            },
            label: "x".into(),
            rule: "quotes".into(),
            planned_at: now,
            late: false,
        };
        Situation {
            commitment: c,
            rule: &rule,
            step: &step,
            calendar: &calendar,
            templates: &templates,
            business: &Business::default(),
            customer: &crate::customer::Standing::default(),
            command: "followup",
            update: Some(&update),
            failure: None,
            update_at: None,
            links: None,
            now,
        }
        .emails()
        .unwrap()
        .remove(0)
        .rendered
    };
    (
        compose(StepKind::CustomerUpdate),
        compose(StepKind::CheckIn),
    )
}

#[test]
fn customer_mail_says_the_promise_in_sentences_with_times_in_words() {
    let mut c = commitment();
    c.promise = Some("information on your order 1234.".into());
    c.reason = Some(" parts delayed ".into());
    c.timezone = Some(TimeZone::get("Europe/London").unwrap());
    c.due_at = ts("2026-12-01T17:00:00Z"); // Tue 1 Dec
    c.done_at = Some(ts("2026-12-01T09:58:00Z"));
    let (update, check_in) = customer_words(&c, ts("2026-12-01T10:00:00Z"));
    for rendered in [&update, &check_in] {
        assert!(!rendered.subject.contains(&c.title), "{}", rendered.subject);
        assert!(!rendered.text.contains(&c.title), "{}", rendered.text);
    }
    assert_eq!(
        update.subject,
        "Information on your order 1234: now expected Thu 3 Dec, 17:00"
    );
    assert!(
        update.text.contains(
            "We promised you information on your order 1234 by today, 17:00, and we will not \
             make that time. We would rather tell you now than have you wait without news.\n"
        ),
        "one line per paragraph: {}",
        update.text
    );
    assert!(
        update.text.contains("\n\nParts delayed.\n\n"),
        "{}",
        update.text
    );
    assert!(
        update
            .text
            .contains("We now expect to have it for you by Thu 3 Dec, 17:00.\n"),
        "{}",
        update.text
    );
    assert!(
        check_in
            .text
            .contains("We took care of information on your order 1234 earlier today, and"),
        "{}",
        check_in.text
    );
    // The check-in sent days later says the day it was done, never "a few days ago".
    let (_, later) = customer_words(&c, ts("2026-12-02T10:00:00Z"));
    assert!(
        later.text.contains(" 1234 yesterday, and"),
        "{}",
        later.text
    );
    let (_, later) = customer_words(&c, ts("2026-12-07T10:00:00Z"));
    assert!(
        later.text.contains(" 1234 on Tue 1 Dec, and"),
        "{}",
        later.text
    );
}

#[test]
fn the_sentence_filter_punctuates_whatever_was_typed() {
    use crate::mail::templates::{sentence, upper_first};
    assert_eq!(sentence("parts delayed"), "Parts delayed.");
    assert_eq!(sentence(" the van broke down, "), "The van broke down.");
    assert_eq!(sentence("Is it late?"), "Is it late?");
    assert_eq!(sentence("we said \"soon.\""), "We said \"soon.\"");
    assert_eq!(sentence(""), "");
    assert_eq!(upper_first("Grundfos pump"), "Grundfos pump");
    assert_eq!(upper_first("élan"), "Élan");
}
