//! The verbs a person takes on a commitment, from the command line: each is recorded
//! with who took it and how, shown by `show`, and harmless when taken twice. Real
//! binary, real SQLite file, real SMTP server on 127.0.0.1.

use crate::common;
use common::store::Store;

use std::time::Duration;

use common::Env;

const QUIET_RULE: &str = "[[rule]]\nname = \"quiet\"\n";

const UPDATE_RULE: &str = r#"
[[rule]]
name = "order-info"
match = { kind = "order-info" }
customer_update = { at = "-2s", extend_by = "2 business days", max = 1 }
"#;

/// `followup ARGS` run by the user `ana`.
fn as_ana(env: &Env, args: &[&str]) -> std::process::Output {
    env.cli_with(args, &[("SUDO_USER", ""), ("USER", "ana")])
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The stderr of a command that must have failed with exit code 1.
fn failed(out: std::process::Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn done_twice_says_the_second_time_when_and_by_whom_it_was_done(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let id = env.add("Send the quote", "+2d", &[]).to_string();
    let first = stdout(&as_ana(&env, &["done", &id]));
    assert!(
        first.contains("is done; its remaining reminders are cancelled"),
        "{first}"
    );
    let second = stdout(&env.cli_with(&["done", &id], &[("USER", "bob")]));
    assert!(
        second.starts_with(&format!("commitment {id}: already marked done on "))
            && second.trim_end().ends_with("by ana (by command)"),
        "{second}"
    );
    let shown = env.show(id.parse().unwrap());
    let revisions = shown["revisions"].as_array().unwrap();
    assert_eq!(revisions.len(), 1, "the second done records nothing");
    assert_eq!(
        (
            &revisions[0]["action"],
            &revisions[0]["actor"],
            &revisions[0]["via"]
        ),
        (
            &serde_json::json!("done"),
            &serde_json::json!("ana"),
            &serde_json::json!("cli")
        )
    );
    let table = env.cli_ok(&["show", &id]);
    assert!(
        table.contains("Actions:") && table.contains("done    ana (by command)"),
        "{table}"
    );
    let cancel = stdout(&as_ana(&env, &["cancel", &id]));
    assert!(cancel.contains("already marked done"), "{cancel}");
    assert_eq!(
        env.show(id.parse().unwrap())["commitment"]["status"],
        "done"
    );
}

fn snooze_is_recorded_with_who_and_until_when_and_shown(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let id = env.add("Call Joe back", "+2d", &["--ref", "CRM-7"]);
    let said = stdout(&as_ana(
        &env,
        &["snooze", "--ref", "CRM-7", "--until", "+3h"],
    ));
    assert!(said.contains("reminders are snoozed until"), "{said}");
    let shown = env.show(id);
    let until = shown["snoozed_until"].as_str().expect("snoozed_until");
    let revision = &shown["revisions"][0];
    assert_eq!(revision["action"], "snooze");
    assert_eq!(revision["actor"], "ana");
    assert_eq!(revision["via"], "cli");
    assert_eq!(revision["until_at"].as_str(), Some(until));
    assert_eq!(
        revision["old_due"], revision["new_due"],
        "the due time stays"
    );
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(
        table.contains("snoozed:  reminders until") && table.contains("snooze  ana (by command)"),
        "{table}"
    );

    let past = failed(as_ana(&env, &["snooze", &id.to_string(), "--until=-1h"]));
    assert!(past.contains("--until"), "{past}");
    env.cli_ok(&["done", &id.to_string()]);
    let done = failed(as_ana(&env, &["snooze", &id.to_string(), "--until", "+3h"]));
    assert!(
        done.contains("is done; only open commitments can be snoozed"),
        "{done}"
    );
}

fn hold_and_send_now_refuse_an_update_the_commitment_does_not_have(store: Store) {
    let env = Env::on(store, QUIET_RULE);
    let id = env.add("Send the quote", "+2d", &[]).to_string();
    let hold = failed(as_ana(
        &env,
        &["hold", &id, "--update", "1", "--reason", "I called him"],
    ));
    assert!(
        hold.contains(&format!(
            "--update 1: commitment {id} has no customer update 1 planned"
        )),
        "{hold}"
    );
    let send = failed(as_ana(&env, &["send-now", &id, "--update", "1"]));
    assert!(send.contains("has no customer update 1 planned"), "{send}");
    let unknown = failed(as_ana(&env, &["send-now", "99", "--update", "1"]));
    assert!(unknown.contains("no commitment with id 99"), "{unknown}");
    assert!(
        env.show(id.parse().unwrap())["revisions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

fn a_held_update_is_recorded_with_the_reason_and_a_second_hold_says_so(store: Store) {
    let env = Env::on(store, UPDATE_RULE);
    let daemon = env.start();
    let id = env.add("Tell Joe about his order", "+1h", &["--kind", "order-info"]);
    env.wait_planned(Duration::from_secs(15));
    let key = id.to_string();
    let said = stdout(&as_ana(
        &env,
        &["hold", &key, "--update", "1", "--reason", "I called him"],
    ));
    assert!(said.contains("customer_update#1"), "{said}");
    let again = stdout(&as_ana(&env, &["send-now", &key, "--update", "1"]));
    assert!(
        again.contains("already held on ") && again.contains("by ana (by command): I called him"),
        "{again}"
    );
    let shown = env.show(id);
    let revision = &shown["revisions"][0];
    assert_eq!(revision["action"], "hold");
    assert_eq!(revision["step_key"], "customer_update#1");
    assert_eq!(revision["reason"], "I called him");
    assert!(daemon.stop().success());
}

fn the_daemons_automatic_update_is_recorded_as_the_daemons(store: Store) {
    let env = Env::on(store, UPDATE_RULE);
    let daemon = env.start();
    let id = env.add("Tell Joe about his order", "+3s", &["--kind", "order-info"]);
    env.smtp.wait_for(2, Duration::from_secs(15));
    let shown = env.show(id);
    let revision = &shown["revisions"][0];
    assert_eq!(revision["automatic"], true);
    assert_eq!(
        (&revision["action"], &revision["via"], &revision["actor"]),
        (
            &serde_json::json!("update"),
            &serde_json::json!("daemon"),
            &serde_json::Value::Null
        )
    );
    let table = env.cli_ok(&["show", &id.to_string()]);
    assert!(table.contains("daemon"), "{table}");
    assert!(daemon.stop().success());
}

on_both_stores!(
    done_twice_says_the_second_time_when_and_by_whom_it_was_done,
    snooze_is_recorded_with_who_and_until_when_and_shown,
    hold_and_send_now_refuse_an_update_the_commitment_does_not_have,
    a_held_update_is_recorded_with_the_reason_and_a_second_hold_says_so,
    the_daemons_automatic_update_is_recorded_as_the_daemons,
);
