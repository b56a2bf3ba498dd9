//! The rule keys for playbooks: due_in, on_open, after_done (and check_in as its one
//! entry), owner_hours.

use super::*;
use crate::rule::CheckInTo;

fn rule_of(text: &str) -> crate::rule::Rule {
    let dir = dir_with(&[("rules.toml", text)]);
    let config = load(dir.path(), false).unwrap();
    config.rules[0].clone()
}

#[test]
fn after_done_takes_any_number_of_entries_in_order() {
    let rule = rule_of(
        r#"
[[rule]]
name = "complaint"
after_done = [
  { after = "1h", to = "owner" },
  { after = "5 business days", to = "customer", template = "check_in_customer" },
]
"#,
    );
    assert_eq!(rule.after_done.len(), 2);
    assert_eq!(rule.after_done[0].to, CheckInTo::Owner);
    assert_eq!(rule.after_done[0].template, "check_in_owner");
    assert_eq!(rule.after_done[1].to, CheckInTo::Customer);
    assert!(rule.after_done[1].after.is_business());
    assert!(rule.mails_customer());
}

#[test]
fn a_check_in_is_a_one_entry_after_done_and_both_together_are_refused() {
    let rule = rule_of("[[rule]]\nname = \"r\"\ncheck_in = { after = \"2h\" }\n");
    assert_eq!(rule.after_done.len(), 1);
    assert_eq!(rule.after_done_entry("check_in"), Some(&rule.after_done[0]));
    assert!(!rule.mails_customer());

    let dir = dir_with(&[(
        "rules.toml",
        "[[rule]]\nname = \"r\"\ncheck_in = { after = \"2h\" }\nafter_done = [{ after = \"1h\" }]\n",
    )]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("rules.toml:4"), "{}", errors[0]);
    assert!(
        errors[0].contains("after_done and check_in are both set (check_in is at line 3)"),
        "{}",
        errors[0]
    );
}

#[test]
fn after_done_entries_are_checked_each_with_its_line() {
    let dir = dir_with(&[(
        "rules.toml",
        "[[rule]]\nname = \"r\"\nafter_done = [\n  { after = \"1h\" },\n  { after = \"-1h\" },\n  { after = \"1h\", template = \"nope\" },\n]\n",
    )]);
    let errors = errors_of(dir.path()).join("\n");
    assert!(errors.contains("rules.toml:5"), "{errors}");
    assert!(
        errors.contains("after '-1h' must not be negative"),
        "{errors}"
    );
    assert!(errors.contains("nope"), "{errors}");
}

#[test]
fn on_open_due_in_and_owner_hours_are_read() {
    let rule = rule_of(
        r#"
[[rule]]
name = "callback"
due_in = "2 business hours"
owner_hours = true
on_open = { to = ["service-team@example.com", "desk@example.com"] }
alert = { to = "team@example.com", owner_hours = false }
escalate = { after = "1h", to = "lead@example.com" }
"#,
    );
    assert!(rule.due_in.as_ref().unwrap().is_business());
    assert!(rule.owner_hours);
    let on_open = rule.on_open.as_ref().unwrap();
    assert_eq!(on_open.to.len(), 2);
    assert_eq!(on_open.template, "service_failure");
    assert!(!rule.alert.as_ref().unwrap().owner_hours);

    let rule =
        rule_of("[[rule]]\nname = \"r\"\nowner_hours = true\nalert = { to = \"t@example.com\" }\n");
    assert!(
        rule.alert.unwrap().owner_hours,
        "the alert follows the rule"
    );
}

#[test]
fn bad_due_in_and_on_open_are_errors_with_their_place() {
    let dir = dir_with(&[(
        "rules.toml",
        "[[rule]]\nname = \"r\"\ndue_in = \"-2h\"\non_open = { to = [] }\n",
    )]);
    let errors = errors_of(dir.path()).join("\n");
    assert!(errors.contains("rules.toml:3"), "{errors}");
    assert!(
        errors.contains("due_in '-2h' must be a positive time"),
        "{errors}"
    );
    assert!(errors.contains("rules.toml:4"), "{errors}");
    assert!(errors.contains("on_open: to lists nobody"), "{errors}");
}
