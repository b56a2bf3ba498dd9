//! What people type and where output goes: the edges of the command line, through the
//! real binary.

mod common;

use std::process::{Command, Stdio};

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
