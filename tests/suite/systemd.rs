//! What systemd sees of the daemon, through the real protocol: the test owns the
//! datagram socket named by `NOTIFY_SOCKET` (as systemd does), sets `WATCHDOG_USEC`
//! and `JOURNAL_STREAM` as systemd would, and reads what the real binary sends.

use crate::common;

use std::time::{Duration, Instant};

use common::{Daemon, Env};

/// A watchdog of one second: the daemon pings every half second.
const WATCHDOG: (&str, &str) = ("WATCHDOG_USEC", "1000000");

fn pings(notices: &[(Instant, String)]) -> Vec<Instant> {
    notices
        .iter()
        .filter(|(_, text)| text.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| *at)
        .collect()
}

#[test]
fn systemd_hears_ready_watchdog_reloading_and_stopping() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let mut daemon = Daemon::start(env.root.path(), &env.config_dir(), &[WATCHDOG]);
    let ready = daemon.notices.last().unwrap().clone();
    assert!(ready.contains("STATUS=serving: 1 rule,"), "{ready}");

    // Pings keep coming (how regularly: bench/run.sh windows).
    for _ in 0..3 {
        daemon.wait_notice("WATCHDOG=1", Duration::from_secs(5));
    }

    daemon.signal("HUP");
    daemon.wait_notice("RELOADING=1", Duration::from_secs(10));
    let reloading = daemon.notices.last().unwrap().clone();
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    daemon.wait_notice("READY=1", Duration::from_secs(10));

    daemon.signal("TERM");
    daemon.wait_notice("STOPPING=1", Duration::from_secs(10));
    assert!(daemon.wait_exit().success());
}

#[test]
fn a_stalled_scheduler_loop_stops_pinging_the_watchdog() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let mut daemon = Daemon::start(env.root.path(), &env.config_dir(), &[WATCHDOG]);
    daemon.wait_notice("WATCHDOG=1", Duration::from_secs(5));

    // Another program holds the store's write lock for three seconds (six ping
    // intervals); the reload's re-plan makes the planning loop wait for it instead of
    // pinging.
    let db = env.db();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    daemon.signal("HUP");
    daemon.wait_notice("RELOADING=1", Duration::from_secs(10));
    daemon.wait_notice("READY=1", Duration::from_secs(10));
    let reloaded = daemon.notices.len();
    std::thread::sleep(Duration::from_secs(3));
    // Every ping sent while the lock was held is in the socket now: the loop cannot go
    // on before the ROLLBACK below. One may come as the pass starts.
    daemon.notices_within(Duration::ZERO);
    let stuck = daemon.notices[reloaded..]
        .iter()
        .filter(|n| n.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(stuck <= 1, "{stuck} pings while the loop was stuck");

    db.execute_batch("ROLLBACK").unwrap();
    daemon.wait_notice("WATCHDOG=1", Duration::from_secs(15));
    assert!(daemon.stop().success());
}

#[test]
fn without_a_watchdog_nothing_pings() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let mut daemon = env.start();
    // The loop lives through a wait of two seconds and a pass: its reminder comes.
    env.add("Ring back", "+2s", &[]);
    env.smtp.wait_for(1, Duration::from_secs(10));
    let heard = daemon.notices_within(Duration::ZERO);
    assert!(pings(&heard).is_empty(), "{heard:?}");
    assert!(daemon.stop().success());
}

#[test]
fn the_status_line_says_what_is_planned_next() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let mut daemon = env.start();
    let id = env.add("Send quote for the boiler service", "2099-11-24 17:00", &[]);
    let status = daemon.wait_notice("STATUS=1 step planned", Duration::from_secs(10));
    assert!(
        status.contains(&format!(
            "next Tue 24 Nov 2099 17:00 GMT (commitment {id}, remind 0s)"
        )),
        "{status}"
    );
    assert!(daemon.stop().success());
}

#[test]
fn under_journald_each_line_carries_its_priority_and_no_timestamp() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let mut daemon = Daemon::start_under_journal(env.root.path(), &env.config_dir(), &[]);
    // A broken reload logs errors and keeps the running config.
    env.write_config(
        "rules.toml",
        "[[rule]]\nname = \"any\"\nremind = [\"soon\"]\n",
    );
    daemon.signal("HUP");
    daemon.wait_notice("READY=1", Duration::from_secs(10));
    let log = daemon.log();
    assert!(daemon.stop().success());
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let priority = line
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
            .map(|(p, _)| p);
        assert!(
            matches!(priority, Some("3" | "4" | "6" | "7")),
            "no priority: {line:?}"
        );
        assert!(!line.contains('\u{1b}'), "colours in the journal: {line:?}");
        assert!(
            !line.contains(&jiff::Timestamp::now().strftime("%Y-%m-%dT").to_string()),
            "a timestamp in the journal: {line:?}"
        );
    }
    let error = lines
        .iter()
        .find(|l| l.contains("the new config is invalid"))
        .unwrap();
    assert!(error.starts_with("<3>"), "{error}");
    let info = lines
        .iter()
        .find(|l| l.contains("reloading the config"))
        .unwrap();
    assert!(info.starts_with("<6>"), "{info}");
}

#[test]
fn outside_journald_lines_keep_their_timestamp() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    // An inherited JOURNAL_STREAM that is not this stderr does not count.
    let daemon = Daemon::start(
        env.root.path(),
        &env.config_dir(),
        &[("JOURNAL_STREAM", "1:1")],
    );
    let log = daemon.log();
    assert!(daemon.stop().success());
    let first = log.lines().next().unwrap();
    assert!(
        !first.starts_with('<')
            && first.starts_with(&jiff::Timestamp::now().strftime("%Y-").to_string()),
        "{first}"
    );
}

#[test]
fn root_running_the_cli_leaves_every_store_file_to_the_service_user() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root can give the state directory to another user");
        return;
    }
    const SERVICE_USER: u32 = 65534; // nobody, standing in for the followup user
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    std::fs::set_permissions(env.root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The state directory as StateDirectory= leaves it: the service user's.
    let state = env.db_path().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(SERVICE_USER), Some(SERVICE_USER)).unwrap();
    let owners = || -> Vec<(String, u32)> {
        std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, e.metadata().unwrap().uid())
            })
            .collect()
    };

    // The admin creates the store before the service ever ran...
    let first = env.add("Call back about the invoice", "+1h", &[]);
    env.cli_ok(&["list"]);
    assert!(env.db_path().exists());
    for (name, uid) in owners() {
        assert_eq!(uid, SERVICE_USER, "{name} belongs to {uid}");
    }

    // A file only root may read is read before the switch.
    let private = tempfile::tempdir().unwrap();
    let csv = private.path().join("commitments.csv");
    std::fs::write(
        &csv,
        "title,owner,customer,due\nRing back,ana@example.com,joe@example.org,2099-01-05 10:00\n",
    )
    .unwrap();
    std::fs::set_permissions(&csv, std::fs::Permissions::from_mode(0o600)).unwrap();
    env.cli_ok(&["import", &csv.display().to_string()]);
    env.cli_ok(&["cancel", &(first + 1).to_string()]);

    // ...and uses it while the daemon, as the service user, has it open.
    let mut daemon = env.start();
    let second = env.add("Send quote for the boiler service", "+2h", &[]);
    env.cli_ok(&["done", &first.to_string()]);
    env.cli_ok(&["status"]);
    // The daemon, still able to write, planned the new one and dropped the done one.
    let planned = format!("(commitment {second}, remind 0s)");
    while !daemon
        .wait_notice("STATUS=", Duration::from_secs(10))
        .contains(&planned)
    {}
    let files = owners();
    assert!(
        files.iter().any(|(name, _)| name.ends_with("-wal")),
        "{files:?}"
    );
    for (name, uid) in &files {
        assert_eq!(*uid, SERVICE_USER, "{name} belongs to {uid}");
    }
    let shown = env.show(second);
    assert_eq!(shown["timeline"][0]["state"], "planned", "{shown:#}");
    assert!(daemon.stop().success());
}

#[test]
fn the_packaged_config_for_etc_followup_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/followup.toml");
    std::fs::copy(&shipped, dir.path().join("followup.toml")).unwrap();
    let out = std::process::Command::new(common::binary())
        .arg("--config")
        .arg(dir.path())
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = common::succeeded("check-config", out);
    assert!(
        stdout.contains("store:     /var/lib/followup/followup.db"),
        "{stdout}"
    );
    assert!(stdout.contains("/var/lib/followup/outbox"), "{stdout}");
}
