//! `followup check-config` through the real binary: one run lists every mistake in
//! every file, each at its place, and a config the README describes as complete loads.

use crate::common;

use common::Env;

/// Six mistakes of different kinds in one file, none hiding another.
const MAIN: &str = r#"[store]
path = "state/followup.db"
keep = "a while"

[calendar]
timezone = "Europe/Londn"

[mail]
from = "Office <office@hughes>"
transport = "smtp"

[mail.smtp]
host = "smtp.example.com"
username = "office"
password_env = "FOLLOWUP_PASSWORD"

[log]
levle = "debug"

[[schedule]]
name = "digest"
cron = "0 8 * * *"
job = "digest"
"#;

/// A syntax error: it hides nothing in the other file.
const RULES: &str = r#"[[rule]]
name = "quotes"
remind = ["-1d", "-2h"
"#;

#[test]
fn check_config_reports_every_mistake_in_every_file_in_one_run() {
    let env = Env::new(RULES);
    env.write_config("followup.toml", MAIN);
    env.write_config(
        "templates/owner_reminder.txt",
        "Subject: {{ commitment.titel }}\n\nDue {{ commitment.due }}\n",
    );
    let out = env.cli(&["check-config"]);
    assert_eq!(out.status.code(), Some(78), "EX_CONFIG");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = env.config_dir();
    let main = dir.join("followup.toml").display().to_string();
    let rules = dir.join("rules.toml").display().to_string();
    let template = dir
        .join("templates/owner_reminder.txt")
        .display()
        .to_string();
    let expected = [
        (format!("{main}:3:8:"), "'a while' is not an offset"),
        (format!("{main}:6:12:"), "unknown time zone 'Europe/Londn'"),
        (format!("{main}:9:8:"), "no dot in its domain"),
        (format!("{main}:14:12:"), "clear text"),
        (format!("{main}:18:1:"), "levle"),
        (format!("{main}:22:8:"), "seconds first"),
        (format!("{rules}:3:"), "unclosed array"),
        (format!("{template}:1:"), "commitment.titel"),
    ];
    let missing: Vec<_> = expected
        .iter()
        .filter(|(place, what)| {
            !stdout
                .lines()
                .any(|line| line.starts_with(place.as_str()) && line.contains(what))
        })
        .collect();
    assert!(missing.is_empty(), "missing {missing:#?} in:\n{stdout}");
    assert_eq!(
        stdout.lines().count(),
        expected.len(),
        "one line per mistake:\n{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("8 error(s)"), "{stderr}");
}

#[test]
fn tables_that_leave_out_their_keys_pass_check_config() {
    let env = Env::new("[[rule]]\nname = \"all\"\nremind = [\"0s\"]\n");
    env.write_config(
        "followup.toml",
        "[store]\n[calendar]\n[mail]\ntransport = \"smtp\"\n[mail.smtp]\n[log]\n",
    );
    let stdout = common::succeeded("check-config", env.cli(&["check-config"]));
    assert!(stdout.contains("smtp (127.0.0.1:25"), "{stdout}");
    assert!(stdout.contains("Europe/London"), "{stdout}");
}
