//! What people type and where output goes: the edges of the command line, through the
//! real binary.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use rusqlite::OptionalExtension as _;

use common::{Env, binary};

const RULES: &str = r#"
[[rule]]
name = "default"
match = {}
remind = ["0s"]
"#;

/// Runs `followup ARGS` with standard output a pipe whose reader is already gone, as
/// `followup show 1 | head -0` leaves it, and returns its exit status and stderr.
fn with_closed_stdout(env: &Env, args: &[&str]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(binary())
        .arg("--config")
        .arg(env.config_dir())
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_verb_that_prints_exits_quietly_when_the_reader_of_its_output_is_gone() {
    let env = Env::new(RULES);
    let id = env.add("Send quote", "+3d", &[]).to_string();
    let verbs: [&[&str]; 9] = [
        &["show", &id],
        &["show", &id, "--format", "json"],
        &["list"],
        &["export"],
        &["export", "--format", "json"],
        &["man"],
        &["completions", "bash"],
        &["status"],
        &["preview", &id],
    ];
    for args in verbs {
        let (status, stderr) = with_closed_stdout(&env, args);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "followup {args:?} on a closed pipe said: {stderr}"
        );
        assert!(
            status.success(),
            "followup {args:?} exited {status}: {stderr}"
        );
    }
}

#[test]
fn an_address_whose_domain_has_no_dot_is_refused_on_the_command_line_and_in_a_file() {
    let env = Env::new(RULES);
    let out = add_cli(&env, "Joan Patel <joan.patel@example>", "+3d", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--customer: 'joan.patel@example' has no dot in its domain"),
        "{stderr}"
    );
    let file = env.root.path().join("in.csv");
    std::fs::write(
        &file,
        "title,owner,customer,due\n\
         Quote,ana@example.com,joe@example.org,+3d\n\
         Visit,team@hughes,joe@example.org,+3d\n",
    )
    .unwrap();
    let out = env.cli(&["import", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in.csv:3: owner: 'team@hughes' has no dot in its domain"),
        "{stderr}"
    );
    assert!(
        !env.cli_ok(&["list"]).contains("Quote"),
        "nothing was imported"
    );
}

#[test]
fn a_row_another_program_writes_with_a_dotless_domain_is_quarantined_and_the_rest_served() {
    let env = Env::new(RULES);
    let daemon = env.start();
    let db = env.db();
    db.execute(
        "INSERT INTO commitments (title, owner, customer, due_at) VALUES
         ('Visit', 'ana@example.com', 'team@hughes', '2030-01-01 10:00'),
         ('Quote', 'ana@example.com', 'joe@example.org', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
        [],
    )
    .unwrap();
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    assert!(got[0].subject().contains("Quote"), "{}", got[0].subject());
    let reason: String = common::wait_until("row 1 quarantined", Duration::from_secs(20), || {
        db.query_row(
            "SELECT reason FROM problems WHERE commitment_id = 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    });
    assert!(
        reason.contains("customer: 'team@hughes' has no dot in its domain"),
        "{reason}"
    );
    let problems = env.cli_ok(&["list", "--problems"]);
    assert!(problems.contains("team@hughes"), "{problems}");
    assert!(daemon.stop().success());
}

const KIND_RULES: &str = r#"
[[rule]]
name = "quotes"
match = { kind = "quote" }
remind = ["0s"]

[[rule]]
name = "default"
remind = ["0s"]
"#;

/// `followup add` of a commitment Ana owes `customer`, with `extra` flags.
fn add_cli(env: &Env, customer: &str, due: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "add",
        "--title",
        "Boiler",
        "--owner",
        "ana@example.com",
        "--customer",
        customer,
        "--due",
        due,
    ];
    args.extend_from_slice(extra);
    env.cli(&args)
}

fn add_kind(env: &Env, kind: &str, extra: &[&str]) -> std::process::Output {
    add_cli(
        env,
        "joe@example.org",
        "+3d",
        &[&["--kind", kind], extra].concat(),
    )
}

#[test]
fn a_kind_that_looks_like_a_typo_is_refused_with_the_kind_it_resembles() {
    let env = Env::new(KIND_RULES);
    let out = add_kind(&env, "qoute", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--kind: no rule names the kind 'qoute': did you mean 'quote'?"),
        "{stderr}"
    );
    assert!(!env.cli_ok(&["list"]).contains("Boiler"));

    let forced = add_kind(&env, "qoute", &["--force"]);
    let stderr = String::from_utf8_lossy(&forced.stderr);
    assert!(forced.status.success(), "{stderr}");
    assert!(stderr.contains("warning: --kind"), "{stderr}");

    let other = add_kind(&env, "boiler", &[]);
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert!(other.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: --kind: no rule names the kind 'boiler' (rules name quote); it gets the rule 'default'"),
        "{stderr}"
    );

    let named = add_kind(&env, "quote", &[]);
    assert!(named.status.success());
    assert!(!String::from_utf8_lossy(&named.stderr).contains("kind"));

    let file = env.root.path().join("kinds.csv");
    std::fs::write(
        &file,
        "title,owner,customer,due,kind\n\
         One,ana@example.com,joe@example.org,+3d,quote\n\
         Two,ana@example.com,joe@example.org,+3d,qoute\n\
         Three,ana@example.com,joe@example.org,+3d,boiler\n",
    )
    .unwrap();
    let out = env.cli(&["import", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("kinds.csv:3: kind: no rule names the kind 'qoute': did you mean 'quote'?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("kinds.csv:4: warning: kind: no rule names the kind 'boiler'"),
        "{stderr}"
    );
}

const LATE_RULES: &str = r#"
[[rule]]
name = "late"
remind = ["-1d", "0s"]
overdue_every = "1s"
overdue_max = 2
alert = { at = "+0s", to = ["team@example.com"] }
escalate = { after = "+1s", to = ["lead@example.com"] }
"#;

#[test]
fn add_refuses_a_past_due_time_and_overdue_plans_the_late_steps_from_now() {
    let env = Env::new(LATE_RULES);
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(26)).to_string();
    let out = add_cli(&env, "joe@example.org", &yesterday, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is already past: use --overdue to record a promise that is already late"),
        "{stderr}"
    );
    let out = add_cli(&env, "joe@example.org", "+3d", &["--overdue"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("still ahead"));

    let daemon = env.start();
    let id = env.add("Send quote", &yesterday, &["--overdue"]);
    let got = env.smtp.wait_for(4, Duration::from_secs(20));
    let to = |address: &str| got.iter().filter(|m| m.to == [address]).count();
    assert_eq!(to("team@example.com"), 1, "the alert");
    assert_eq!(to("lead@example.com"), 1, "the escalation");
    assert_eq!(to("ana@example.com"), 2, "both overdue reminders");
    let shown = env.show(id);
    let steps = shown["timeline"].as_array().unwrap();
    let skipped: Vec<&str> = steps
        .iter()
        .filter(|s| s["state"] == "skipped")
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        skipped,
        ["remind", "remind"],
        "only the reminders before the due time"
    );
    assert!(daemon.stop().success());
}
