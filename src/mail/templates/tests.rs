//! Loading and checking templates.

use super::*;

#[test]
fn built_in_templates_load() {
    Templates::builtin();
}

#[test]
fn a_typo_in_an_override_is_found_at_load_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ headline }}\n\nHello {{ commitment.titel }}\n",
    )
    .unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert_eq!(errors.len(), 1);
    let text = errors[0].to_string();
    assert!(text.contains("owner_reminder.txt:3:"), "{text}");
    assert!(text.contains("commitment.titel"), "{text}");
}

#[test]
fn a_template_without_a_subject_line_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("owner_reminder.txt"), "Hello\n").unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert!(errors[0].message.contains("Subject:"));
}

#[test]
fn an_unknown_template_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("owner_remider.txt"), "Subject: x\n\ny\n").unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("unknown template 'owner_remider'")
    );
}

#[test]
fn a_template_may_use_only_the_variables_of_its_kind() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ headline }}\n\nNow due {{ update.new_due }}\n",
    )
    .unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert!(
        errors[0].message.contains("update.new_due"),
        "{}",
        errors[0]
    );
    std::fs::remove_file(dir.path().join("owner_reminder.txt")).unwrap();
    std::fs::write(
        dir.path().join("delay_notice.txt"),
        "Subject: {{ commitment.title }}\n\nNow due {{ update.new_due }}\n",
    )
    .unwrap();
    let wanted = [("delay_notice".to_string(), TemplateKind::CustomerUpdate)];
    let templates = Templates::load(dir.path(), &wanted).unwrap();
    let ctx = serde_json::json!({"commitment": {"title": "Quote"}, "update": {"new_due": "Fri"}});
    assert_eq!(
        templates.render("delay_notice", &ctx).unwrap().text,
        "Now due Fri\n"
    );
}

#[test]
fn a_template_a_rule_names_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let wanted = [("sorry".to_string(), TemplateKind::CustomerUpdate)];
    let errors = Templates::load(dir.path(), &wanted).unwrap_err();
    assert!(errors[0].message.contains("'sorry'"), "{}", errors[0]);
}

#[test]
fn syntax_errors_carry_a_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: x\n\nline one\n{% if %}\n",
    )
    .unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert_eq!(errors[0].line, Some(4), "{}", errors[0]);
}

#[test]
fn overrides_render_with_an_html_part() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ headline }}\n\nText {{ commitment.title }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.html"),
        "<p>{{ commitment.title }}</p>\n",
    )
    .unwrap();
    let t = Templates::load(dir.path(), &[]).unwrap();
    let ctx = serde_json::json!({
        "headline": "Due now",
        "commitment": { "title": "<Quote> & co" },
    });
    let r = t.render("owner_reminder", &ctx).unwrap();
    assert_eq!(r.subject, "Due now");
    assert_eq!(r.text, "Text <Quote> & co\n");
    assert_eq!(r.html.as_deref(), Some("<p>&lt;Quote&gt; &amp; co</p>\n"));
}

#[test]
fn links_are_for_the_business_own_templates_and_never_a_customers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ headline }}\n\n{% if links %}Done: {{ links.done }}{% else %}{{ commands.done }}{% endif %}\n",
    )
    .unwrap();
    let t = Templates::load(dir.path(), &[]).unwrap();
    let ctx = serde_json::json!({
        "headline": "Due now",
        "commands": { "done": "followup done 1" },
        "links": { "done": "https://f.example/a/T" },
    });
    assert_eq!(
        t.render("owner_reminder", &ctx).unwrap().text,
        "Done: https://f.example/a/T"
    );
    let ctx = serde_json::json!({
        "headline": "Due now",
        "commands": { "done": "followup done 1" },
        "links": null,
    });
    assert_eq!(
        t.render("owner_reminder", &ctx).unwrap().text,
        "followup done 1"
    );

    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: x\n\n{{ links.hold }}\n",
    )
    .unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert!(errors[0].message.contains("links.hold"), "{}", errors[0]);
    std::fs::remove_file(dir.path().join("owner_reminder.txt")).unwrap();

    std::fs::write(
        dir.path().join("no_news_yet.txt"),
        "Subject: x\n\n{{ links.done }}\n",
    )
    .unwrap();
    let errors = Templates::load(dir.path(), &[]).unwrap_err();
    assert!(errors[0].message.contains("links.done"), "{}", errors[0]);
}

#[test]
fn only_a_template_that_says_something_of_the_customer_makes_every_step_read_their_history() {
    // The built-in on-open email uses customer.*, which only its own step reads.
    assert!(!Templates::builtin().customer_everywhere());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ commitment.title }}\n\nA customer since {{ customer.since }}.\n",
    )
    .unwrap();
    assert!(
        Templates::load(dir.path(), &[])
            .unwrap()
            .customer_everywhere()
    );
    std::fs::write(
        dir.path().join("owner_reminder.txt"),
        "Subject: {{ commitment.title }}\n\nDue {{ commitment.due }}.\n",
    )
    .unwrap();
    assert!(
        !Templates::load(dir.path(), &[])
            .unwrap()
            .customer_everywhere()
    );
}
