//! The test clock: the daemon and every command read the time from the file named by
//! `FOLLOWUP_TEST_CLOCK`, and the daemon follows each rewrite. Real binary, real SQLite
//! file, real SMTP server on 127.0.0.1.

use crate::common;

use std::time::Duration;

use common::{Env, monday_morning};

#[test]
fn a_command_counts_from_the_test_clock() {
    let env = Env::new("[[rule]]\nname = \"r\"\nremind = [\"0s\"]\n");
    env.use_test_clock(monday_morning());
    let id = env.add("Call back", "+2h", &[]);
    let due: jiff::Timestamp = env.show(id)["commitment"]["due_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(due, monday_morning() + jiff::SignedDuration::from_hours(2));
}

#[test]
fn a_bad_test_clock_is_an_error_naming_the_file_and_the_value() {
    let env = Env::new("[[rule]]\nname = \"r\"\n");
    let path = env.root.path().join("bad-clock");
    std::fs::write(&path, "tomorrow-ish\n").unwrap();
    let out = env.cli_with(
        &["list"],
        &[("FOLLOWUP_TEST_CLOCK", path.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(path.to_str().unwrap()) && stderr.contains("\"tomorrow-ish\""),
        "{stderr}"
    );
}

#[test]
fn the_daemon_sends_a_step_when_the_test_clock_reaches_it_and_not_before() {
    let env = Env::new("[[rule]]\nname = \"r\"\nremind = [\"0s\", \"+1d\"]\n");
    env.use_test_clock(monday_morning());
    let daemon = env.start();
    let id = env.add("Quote for the boiler", "+2h", &[]);
    env.wait_planned(Duration::from_secs(10));
    env.advance(Duration::from_secs(2 * 3600 - 1));
    // Everything due by a second before is done: nothing was.
    env.wait_idle(Duration::from_secs(10));
    assert!(env.smtp.messages().is_empty());
    env.advance(Duration::from_secs(1));
    let got = env.smtp.wait_for(1, Duration::from_secs(10));
    assert!(got[0].subject().contains("Quote for the boiler"));
    // A day later, the overdue repeat.
    env.advance(Duration::from_secs(24 * 3600));
    env.smtp.wait_for(2, Duration::from_secs(10));
    env.wait_timeline_done(id, Duration::from_secs(10));
    assert_eq!(env.smtp.messages().len(), 2);
    assert!(daemon.stop().success());
}
