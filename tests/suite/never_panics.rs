//! Property tests: whatever text arrives (a config file, a time typed by a user, a
//! template, a row written by another program), the parsers return an error, never a
//! panic. Kept brief enough for CI; raise PROPTEST_CASES to search longer.

use std::path::Path;

use followup::calendar::{Calendar, Hours, Offset};
use followup::commitment::{StoredCommitment, parse_mailbox};
use followup::config;
use followup::mail::Templates;
use followup::when::{parse_stored, parse_when};
use proptest::prelude::*;

/// Fragments of real config, so that generated files reach past the TOML parser into
/// the checks behind it.
fn config_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("[store]\n".to_string()),
        Just("[calendar]\n".to_string()),
        Just("[mail]\n".to_string()),
        Just("[mail.smtp]\n".to_string()),
        Just("[daemon]\n".to_string()),
        Just("[[rule]]\n".to_string()),
        Just("name = \"r\"\n".to_string()),
        Just("timezone = \"Europe/London\"\n".to_string()),
        Just("business_hours = { mon = \"09:00-17:00\" }\n".to_string()),
        Just("holidays = [\"2026-12-25\"]\n".to_string()),
        Just("from = \"a@example.com\"\n".to_string()),
        Just("transport = \"smtp\"\n".to_string()),
        Just("host = \"h\"\n".to_string()),
        Just("remind = [\"-1d\", \"0s\"]\n".to_string()),
        Just("overdue_every = \"1d\"\n".to_string()),
        Just("customer_update = { at = \"-1h\", extend_by = \"2 business days\" }\n".to_string()),
        Just("alert = { to = [\"t@example.com\"] }\n".to_string()),
        Just("catch_up = \"latest\"\n".to_string()),
        "[a-z_]{1,12} = \"[ -~]{0,16}\"\n",
        "[a-z_]{1,12} = [0-9-]{1,6}\n",
        "[ -~\n]{0,40}",
    ];
    prop::collection::vec(fragment, 0..12).prop_map(|parts| parts.concat())
}

/// 300 cases each by default; `PROPTEST_CASES` sets another number.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn calendar() -> Calendar {
    Calendar::new(jiff::tz::TimeZone::get("Europe/London").unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_config_loader_never_panics(text in config_text(), other in "[ -~\n]{0,80}") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), &text).unwrap();
        std::fs::write(dir.path().join("b.toml"), &other).unwrap();
        if let Err(errors) = config::load(dir.path(), false) {
            for e in &errors.0 {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    #[test]
    fn the_when_parser_never_panics(text in "\\PC{0,40}", plus in "\\+[0-9 a-z]{0,20}") {
        let now = jiff::Timestamp::now();
        let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let _ = parse_when(&text, now, &zone, &calendar());
        let _ = parse_when(&plus, now, &zone, &calendar());
        let _ = parse_stored(&text, &zone);
    }

    #[test]
    fn offsets_hours_and_addresses_never_panic(text in "\\PC{0,40}", business in "[+-]?[0-9]{1,20} business [a-z]{0,8}") {
        let _ = text.parse::<Offset>();
        if let Ok(offset) = business.parse::<Offset>() {
            let _ = calendar().shift(jiff::Timestamp::now(), &offset);
        }
        let _ = text.parse::<Hours>();
        let _ = parse_mailbox(&text);
    }

    #[test]
    fn the_template_loader_never_panics(text in "(Subject: )?\\PC{0,30}(\n\n)?([ -~]|\\{\\{|\\}\\}|\\{%|%\\})*") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("owner_reminder.txt"), &text).unwrap();
        std::fs::write(dir.path().join("owner_reminder.html"), &text).unwrap();
        let _ = Templates::load(dir.path(), &[]);
    }

    #[test]
    fn rows_written_by_other_programs_never_panic(
        title in proptest::option::of("\\PC{0,20}"),
        owner in proptest::option::of("\\PC{0,30}"),
        due in proptest::option::of("[0-9T:+ -]{0,30}"),
        status in proptest::option::of("[a-z]{0,10}"),
        zone in proptest::option::of("[A-Za-z/_]{0,20}"),
    ) {
        let row = StoredCommitment {
            id: 1,
            title,
            owner: owner.clone(),
            customer: owner,
            due_at: due,
            status,
            timezone: zone,
            ..Default::default()
        };
        let _ = row.check(calendar().zone());
    }
}

#[test]
fn the_shipped_config_still_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    assert!(config::load(&dir, false).is_ok());
}
