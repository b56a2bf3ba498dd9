//! Loading config directories: merging, defaults and error locations.

use std::path::Path;

use super::*;

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn errors_of(dir: &Path) -> Vec<String> {
    load(dir, false)
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn the_shipped_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = load(&dir, false).unwrap();
    // The six playbooks, then the catch-all in followup.toml (file-name order).
    let names: Vec<&str> = config.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "quote",
            "callback",
            "email-reply",
            "order-info",
            "complaint",
            "employee-concern",
            "default"
        ]
    );
    assert_eq!(config.calendar.zone_name(), "Europe/London");
    assert!(config.store.path.ends_with("var/followup.db"));
    assert!(matches!(
        config.mail.transport,
        TransportSettings::File { .. }
    ));
}

#[test]
fn an_empty_directory_runs_on_the_built_in_defaults() {
    let dir = dir_with(&[]);
    let config = load(dir.path(), false).unwrap();
    assert_eq!(config.rules[0].name, "default");
    assert_eq!(
        config.store.path,
        dir.path().parent().unwrap().join("var/followup.db")
    );
}

#[test]
fn a_missing_directory_is_an_error_unless_defaults_are_allowed() {
    let missing = Path::new("/nonexistent/followup-config");
    assert!(errors_of(missing)[0].contains("does not exist"));
    assert!(load(missing, true).is_ok());
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let dir = dir_with(&[("a.toml", "[store]\npath = \"x.db\"\n\n[calendar\n")]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("a.toml:4:"), "{}", errors[0]);
}

#[test]
fn unknown_keys_and_bad_values_are_errors_with_their_place() {
    let dir = dir_with(&[
        ("a.toml", "[calendar]\ntimezone = \"Mars/Olympus\"\n"),
        (
            "b.toml",
            "[[rule]]\nname = \"x\"\nremind = [\"-1d\", \"soon\"]\n",
        ),
        ("c.toml", "[store]\npth = \"x.db\"\n"),
    ]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("a.toml:2:12") && errors[0].contains("unknown time zone"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("b.toml:3:") && errors[1].contains("'soon' is not an offset"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("c.toml:2:1") && errors[2].contains("pth"),
        "{}",
        errors[2]
    );
}

#[test]
fn a_table_defined_twice_names_both_places() {
    let dir = dir_with(&[
        ("a.toml", "[calendar]\ntimezone = \"UTC\"\n"),
        ("b.toml", "\n[calendar]\ntimezone = \"Europe/Paris\"\n"),
    ]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("b.toml:2:1"), "{}", errors[0]);
    assert!(errors[0].contains("a.toml:1"), "{}", errors[0]);
}

#[test]
fn rules_add_up_across_files_in_name_order() {
    let dir = dir_with(&[
        (
            "20-rules.toml",
            "[[rule]]\nname = \"rest\"\nremind = [\"0s\"]\n",
        ),
        (
            "10-rules.toml",
            "[[rule]]\nname = \"quotes\"\nmatch = { kind = \"quote\" }\nremind = [\"-2h\"]\n",
        ),
    ]);
    let config = load(dir.path(), false).unwrap();
    let names: Vec<_> = config.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["quotes", "rest"]);
    assert_eq!(
        config.rules[0].kinds.as_deref(),
        Some(&["quote".to_string()][..])
    );
}

#[test]
fn rule_mistakes_are_found_together() {
    let dir = dir_with(&[(
        "r.toml",
        "[[rule]]\nname = \"a\"\noverdue_every = \"-1d\"\n\n[[rule]]\nname = \"a\"\noverdue_max = 2\n",
    )]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].contains("r.toml:3:") && errors[0].contains("positive"));
    assert!(errors[1].contains("r.toml:6:") && errors[1].contains("already defined"));
    assert!(errors[2].contains("r.toml:7:") && errors[2].contains("overdue_every"));
}

#[test]
fn smtp_settings_are_checked_and_never_hold_the_password() {
    let dir = dir_with(&[(
        "m.toml",
        "[mail]\nfrom = \"f@example.com\"\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"relay\"\ntls = \"starttls\"\nusername = \"u\"\npassword_env = \"FOLLOWUP_TEST_PW\"\n",
    )]);
    let config = load(dir.path(), false).unwrap();
    let TransportSettings::Smtp(smtp) = &config.mail.transport else {
        panic!()
    };
    assert_eq!(smtp.port, 587);
    assert_eq!(
        smtp.password,
        PasswordSource::Env("FOLLOWUP_TEST_PW".into())
    );
    let bad = dir_with(&[(
        "m.toml",
        "[mail]\nfrom = \"f@example.com\"\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"relay\"\npassword = \"secret\"\n",
    )]);
    let errors = errors_of(bad.path());
    assert!(
        errors[0].contains("m.toml:6:1") && errors[0].contains("password"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_bad_sender_address_is_an_error_at_its_line() {
    let dir = dir_with(&[("m.toml", "[mail]\nfrom = \"Followup <nope>\"\n")]);
    let errors = errors_of(dir.path());
    assert!(
        errors[0].contains("m.toml:2:8") && errors[0].contains("not an email address"),
        "{}",
        errors[0]
    );
}

#[test]
fn timeline_keys_are_read_and_checked() {
    let dir = dir_with(&[(
        "r.toml",
        r#"
[[rule]]
name = "order-info"
match = { kind = "order-info" }
remind = ["-1d", "-2h"]
customer_update = { at = "-1h", extend_by = "2 business days", max = 2, template = "no_news_yet" }
alert = { at = "+0s", to = ["service-team@example.com"] }
escalate = { after = "+4h", to = ["lead@example.com", "Lead <lead@example.com>"] }
check_in = { after = "3 business days", to = "customer" }
"#,
    )]);
    let config = load(dir.path(), false).unwrap();
    let rule = &config.rules[0];
    let update = rule.customer_update.as_ref().unwrap();
    assert_eq!(update.max, 2);
    assert!(update.extend_by.is_business());
    assert_eq!(rule.alert.as_ref().unwrap().to.len(), 1);
    assert_eq!(
        rule.escalate.as_ref().unwrap().to.len(),
        1,
        "the same address twice is one recipient"
    );
    assert_eq!(rule.after_done[0].template, "check_in_customer");
}

#[test]
fn ask_owner_is_a_window_before_the_update_and_must_be_positive() {
    let dir = dir_with(&[(
        "r.toml",
        "[[rule]]\nname = \"a\"\ncustomer_update = { at = \"-1h\", extend_by = \"1d\", ask_owner = \"2h\" }\n",
    )]);
    let config = load(dir.path(), false).unwrap();
    let update = config.rules[0].customer_update.as_ref().unwrap();
    assert_eq!(update.ask_owner, Some(jiff::SignedDuration::from_hours(2)));

    let dir = dir_with(&[(
        "r.toml",
        "[[rule]]\nname = \"a\"\ncustomer_update = { at = \"-1h\", extend_by = \"1d\", ask_owner = \"-2h\" }\n",
    )]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!("{}:3:", dir.path().join("r.toml").display()))
            && errors[0].contains("ask_owner '-2h' must be a positive"),
        "{errors:#?}"
    );
}

#[test]
fn timeline_mistakes_name_their_place() {
    let dir = dir_with(&[(
        "r.toml",
        r#"[[rule]]
name = "a"
customer_update = { at = "-1h", extend_by = "-1d" }
alert = { at = "-5m", to = ["team@example.com"] }
escalate = { after = "4h", to = [] }
check_in = { after = "1d", to = "manager" }
"#,
    )]);
    let errors = errors_of(dir.path());
    assert_eq!(
        errors.len(),
        4,
        "a value serde refuses hides none of the others: {errors:#?}"
    );
    assert!(errors[0].contains("r.toml:3:") && errors[0].contains("extend_by"));
    assert!(errors[1].contains("r.toml:4:") && errors[1].contains("before the due time"));
    assert!(errors[2].contains("r.toml:5:") && errors[2].contains("nobody"));
    assert!(errors[3].contains("r.toml:6:") && errors[3].contains("manager"));
    std::fs::write(
        dir.path().join("r.toml"),
        "[[rule]]\nname = \"a\"\nalert = { to = [\"team@example.com\", \"not an address\"] }\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert!(
        errors[0].contains("r.toml:3:") && errors[0].contains("not an address"),
        "{}",
        errors[0]
    );
}

#[test]
fn business_hours_and_holidays_are_checked() {
    let dir = dir_with(&[(
        "c.toml",
        "[calendar]\ntimezone = \"UTC\"\nbusiness_hours = { mon = \"17:00-09:00\" }\n",
    )]);
    let errors = errors_of(dir.path());
    assert!(
        errors[0].contains("c.toml:3:") && errors[0].contains("before the closing"),
        "{}",
        errors[0]
    );
    std::fs::write(
        dir.path().join("c.toml"),
        "[calendar]\ntimezone = \"UTC\"\nbusiness_hours = {}\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert!(
        errors[0].contains("c.toml:3:") && errors[0].contains("no day"),
        "{}",
        errors[0]
    );
    std::fs::write(
        dir.path().join("c.toml"),
        "[calendar]\ntimezone = \"UTC\"\nholidays = [\"2026-12-25\", \"2026-13-01\"]\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert!(errors[0].contains("c.toml:3:"), "{}", errors[0]);
}

#[test]
fn schedules_are_read_and_a_bad_cron_names_its_place() {
    let dir = dir_with(&[(
        "s.toml",
        r#"[[schedule]]
name = "morning digest"
cron = "0 0 8 * * Mon-Fri"
timezone = "Europe/London"
job = "digest"

[[schedule]]
name = "broken"
cron = "0 8 * * *"
job = "prune"

[[schedule]]
name = "report"
cron = "0 0 9 * * Mon"
timezone = "Mars/Base"
job = "report"
"#,
    )]);
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("s.toml:9:8") && errors[0].contains("seconds first"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("s.toml:12:") && errors[1].contains("[report] to names nobody"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].contains("s.toml:15:12") && errors[2].contains("unknown time zone"),
        "{}",
        errors[2]
    );
    std::fs::write(
        dir.path().join("s.toml"),
        "[[schedule]]\nname = \"d\"\ncron = \"0 0 8 * * *\"\njob = \"digest\"\ncatch_up = true\n\n[store]\npath = \"x.db\"\nkeep = \"30d\"\n",
    )
    .unwrap();
    let config = load(dir.path(), false).unwrap();
    assert_eq!(config.schedules.len(), 1);
    assert!(config.schedules[0].catch_up);
    assert_eq!(
        config.schedules[0].zone.name(),
        "Europe/London",
        "the calendar's zone by default"
    );
    assert_eq!(config.store.keep, jiff::SignedDuration::from_hours(30 * 24));
}

#[test]
fn a_systemd_credential_names_the_password_and_falls_back_to_the_config_dir() {
    let smtp = "[mail]\nfrom = \"f@example.com\"\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"relay\"\ntls = \"tls\"\nusername = \"u\"\n";
    let dir = dir_with(&[(
        "m.toml",
        &format!("{smtp}password_credential = \"smtp-password\"\n"),
    )]);
    let config = load(dir.path(), false).unwrap();
    let TransportSettings::Smtp(settings) = &config.mail.transport else {
        panic!()
    };
    assert_eq!(
        settings.password,
        PasswordSource::Credential {
            name: "smtp-password".into(),
            fallback: dir.path().join("smtp-password"),
        }
    );

    let path = dir_with(&[(
        "m.toml",
        &format!("{smtp}password_credential = \"/etc/followup/pw\"\n"),
    )]);
    let errors = errors_of(path.path());
    assert!(
        errors[0].contains("m.toml:8:") && errors[0].contains("not a path"),
        "{errors:?}"
    );
    let both = dir_with(&[(
        "m.toml",
        &format!("{smtp}password_env = \"PW\"\npassword_credential = \"pw\"\n"),
    )]);
    let errors = errors_of(both.path());
    assert!(
        errors[0].contains("m.toml:9:") && errors[0].contains("not several"),
        "{errors:?}"
    );
}

#[test]
fn the_log_level_is_read_strictly() {
    let dir = dir_with(&[("l.toml", "[log]\nlevel = \"debug\"\n")]);
    assert_eq!(load(dir.path(), false).unwrap().log_level, LogLevel::Debug);
    let default = dir_with(&[]);
    assert_eq!(
        load(default.path(), false).unwrap().log_level,
        LogLevel::Info
    );
    let bad = dir_with(&[("l.toml", "[log]\nlevel = \"verbose\"\n")]);
    let errors = errors_of(bad.path());
    assert!(
        errors[0].contains("l.toml:2:") && errors[0].contains("verbose"),
        "{errors:?}"
    );
}

#[test]
fn an_address_without_a_dot_in_its_domain_is_refused_wherever_config_names_one() {
    let dir = dir_with(&[
        ("a.toml", "[mail]\nfrom = \"Followup <followup@hughes>\"\n"),
        (
            "b.toml",
            "[[rule]]\nname = \"a\"\nalert = { to = [\"ok@example.com\", \"team@hughes\"] }\n",
        ),
        (
            "c.toml",
            "[[rule]]\nname = \"b\"\nescalate = { after = \"4h\", to = \"joan.patel@example\" }\n",
        ),
        (
            "d.toml",
            "[report]\nto = [\"boss@example.com\", \"boss@firm\"]\n",
        ),
        (
            "e.toml",
            "[[rule]]\nname = \"c\"\nalert = { to = \"root@localhost\" }\n",
        ),
    ]);
    let errors = errors_of(dir.path());
    let expected = [
        ("a.toml:2:8", "followup@hughes"),
        ("b.toml:3:35", "team@hughes"),
        ("c.toml:3:33", "joan.patel@example"),
        ("d.toml:2:27", "boss@firm"),
    ];
    for (place, address) in expected {
        assert!(
            errors.iter().any(|e| e.contains(place)
                && e.contains(&format!("'{address}'"))
                && e.contains("no dot in its domain")),
            "no error at {place} for {address}: {errors:#?}"
        );
    }
    assert!(
        !errors
            .iter()
            .any(|e| e.contains("e.toml") && e.contains("localhost")),
        "localhost is allowed: {errors:#?}"
    );
}

#[test]
fn a_table_with_its_keys_left_out_takes_the_readme_defaults() {
    let dir = dir_with(&[(
        "a.toml",
        "[store]\n[calendar]\n[mail]\n[mail.file]\n[mail.smtp]\n[mail.sendmail]\n[log]\n[daemon]\n[report]\n",
    )]);
    let config = load(dir.path(), false).unwrap();
    let parent = dir.path().parent().unwrap();
    assert_eq!(config.store.path, parent.join("var/followup.db"));
    assert_eq!(
        config.store.keep,
        jiff::SignedDuration::from_hours(400 * 24)
    );
    assert_eq!(config.calendar.zone_name(), "Europe/London");
    assert_eq!(
        config.mail.from.to_string(),
        "Followup <followup@example.com>"
    );
    assert!(!config.mail.dry_run);
    assert_eq!(config.mail.retry, mail::RetryPolicy::default());
    assert_eq!(config.mail.max_per_minute, None);
    let TransportSettings::File { dir: outbox } = &config.mail.transport else {
        panic!("file is the default transport")
    };
    assert_eq!(outbox, &parent.join("var/outbox"));
    assert_eq!(config.log_level, LogLevel::Info);
    assert_eq!(config.daemon.late_after, jiff::SignedDuration::from_mins(1));
    assert!(config.report.to.is_empty());

    let smtp = dir_with(&[("a.toml", "[mail]\ntransport = \"smtp\"\n[mail.smtp]\n")]);
    let TransportSettings::Smtp(smtp) = load(smtp.path(), false).unwrap().mail.transport else {
        panic!("smtp")
    };
    assert_eq!((smtp.host.as_str(), smtp.port), ("127.0.0.1", 25));
    assert_eq!((smtp.tls, smtp.username), (TlsMode::None, None));
    assert_eq!(smtp.password, PasswordSource::None);
    assert_eq!(smtp.timeout, std::time::Duration::from_secs(30));
    assert_eq!(smtp.connections, 4);
    assert!(!smtp.accept_invalid_certs && smtp.hello_name.is_none());
    let no_table = dir_with(&[("a.toml", "[mail]\ntransport = \"smtp\"\n")]);
    assert!(matches!(
        load(no_table.path(), false).unwrap().mail.transport,
        TransportSettings::Smtp(SmtpSettings { ref host, .. }) if host == "127.0.0.1"
    ));

    let sendmail = dir_with(&[(
        "a.toml",
        "[mail]\ntransport = \"sendmail\"\n[mail.sendmail]\n",
    )]);
    let TransportSettings::Sendmail { command } =
        load(sendmail.path(), false).unwrap().mail.transport
    else {
        panic!("sendmail")
    };
    assert_eq!(command, Path::new("/usr/sbin/sendmail"));
}

#[test]
fn the_readme_defaults_are_the_shipped_values() {
    let empty = dir_with(&[("a.toml", "[store]\n[calendar]\n[mail]\n[mail.file]\n")]);
    let defaults = dir_with(&[]);
    let (empty, defaults) = (
        load(empty.path(), false).unwrap(),
        load(defaults.path(), false).unwrap(),
    );
    assert_eq!(empty.store.path, defaults.store.path);
    assert_eq!(empty.calendar.zone_name(), defaults.calendar.zone_name());
    assert_eq!(empty.mail.from, defaults.mail.from);
    assert_eq!(
        format!("{:?}", empty.mail.transport),
        format!("{:?}", defaults.mail.transport)
    );
}

#[test]
fn a_username_over_plain_text_to_another_host_is_an_error_naming_the_fix() {
    let smtp = |host: &str, tls: &str| {
        format!(
            "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"{host}\"\n{tls}username = \"u\"\npassword_env = \"PW\"\n"
        )
    };
    for (host, tls) in [
        ("smtp.example.com", ""),
        ("192.0.2.7", "tls = \"none\"\n"),
        ("relay", "tls = \"none\"\n"),
    ] {
        let dir = dir_with(&[("m.toml", &smtp(host, tls))]);
        let errors = errors_of(dir.path());
        let line = if tls.is_empty() { 5 } else { 6 };
        assert!(
            errors.len() == 1
                && errors[0].contains(&format!("m.toml:{line}:12"))
                && errors[0].contains(host)
                && errors[0].contains("clear text")
                && errors[0].contains("tls = \"starttls\"")
                && errors[0].contains("tls = \"tls\""),
            "{host}: {errors:#?}"
        );
    }
    for host in ["127.0.0.1", "127.3.4.5", "::1", "localhost", "LOCALHOST"] {
        let dir = dir_with(&[("m.toml", &smtp(host, "tls = \"none\"\n"))]);
        assert!(load(dir.path(), false).is_ok(), "{host} is loopback");
    }
    for tls in ["starttls", "tls"] {
        let dir = dir_with(&[(
            "m.toml",
            &smtp("smtp.example.com", &format!("tls = \"{tls}\"\n")),
        )]);
        assert!(load(dir.path(), false).is_ok(), "{tls}");
    }
    let no_user = dir_with(&[(
        "m.toml",
        "[mail]\ntransport = \"smtp\"\n[mail.smtp]\nhost = \"smtp.example.com\"\n",
    )]);
    assert!(
        load(no_user.path(), false).is_ok(),
        "no AUTH, no password to leak"
    );
}

#[test]
fn a_rule_with_a_mistake_still_owns_the_template_it_names() {
    let dir = dir_with(&[(
        "r.toml",
        "[[rule]]\nname = \"a\"\noverdue_max = 2\ncustomer_update = { at = \"-1h\", extend_by = \"1d\", template = \"sorry\" }\n",
    )]);
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    std::fs::write(
        dir.path().join("templates/sorry.txt"),
        "Subject: Sorry\n\n{{ update.new_time }}\n",
    )
    .unwrap();
    let errors = errors_of(dir.path());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("r.toml:3:") && errors[0].contains("overdue_every"));
    assert!(errors[1].contains("sorry.txt:3:") && errors[1].contains("update.new_time"));
}

mod rules;
mod store;
