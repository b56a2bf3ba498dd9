//! Mail at its edges: the sendmail program's failures sorted by exit status, headers that
//! stay within a line whatever the data, and what customers' mail does not carry.
//! Real binary, real SQLite file; a shell script as the sendmail program, or the real
//! SMTP server on 127.0.0.1.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Env, SmtpServer};

/// The contents of the `.eml` files in `dir` now, sorted.
fn eml_files(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    found.sort();
    found
}

/// Waits until `dir` holds at least `count` `.eml` files; returns their contents.
fn wait_for_files(dir: &Path, count: usize, timeout: Duration) -> Vec<String> {
    let what = format!("{count} messages in {}", dir.display());
    common::wait_until(&what, timeout, || {
        let found = eml_files(dir);
        (found.len() >= count).then_some(found)
    })
}

/// Points the installation at a sendmail script: `script`, where `$SENT` is a directory
/// that a message kept with [`KEEP`] goes to. Returns the directory.
fn sendmail_script(env: &Env, script: &str) -> PathBuf {
    let sent = env.root.path().join("sent");
    std::fs::create_dir_all(&sent).unwrap();
    let path = env.root.path().join("sendmail");
    let text = format!("#!/bin/sh\nSENT='{}'\n{script}", sent.display());
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.edit_config("followup.toml", |t| {
        t.replace("transport = \"smtp\"", "transport = \"sendmail\"")
            + &format!("\n[mail.sendmail]\ncommand = \"{}\"\n", path.display())
    });
    sent
}

/// Keeps the message in `tmp` in `$SENT` under a name of its own, whole or not at all.
const KEEP: &str = "mv \"$tmp\" \"$tmp.eml\"\n";

/// A sendmail that refuses `bad@example.org` with exit status 67 (EX_NOUSER) and keeps
/// every other message as `ARGUMENTS` and the message. Returns the directory.
fn sendmail_refusing_one_address(env: &Env) -> PathBuf {
    let script = r#"for arg in "$@"; do
  case "$arg" in
    bad@example.org) echo "bad@example.org... User unknown" >&2; exit 67 ;;
  esac
done
tmp=$(mktemp "$SENT/.msg.XXXXXX")
echo "$@" > "$tmp"
cat >> "$tmp"
"#;
    sendmail_script(env, &format!("{script}{KEEP}"))
}

#[test]
fn an_address_sendmail_refuses_fails_at_once_and_the_other_mail_goes_out() {
    let env = Env::new(
        "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    let sent = sendmail_refusing_one_address(&env);
    let daemon = env.start();
    let bad = env.add_for("Bad <bad@example.org>", "For the bad address", "+1s");
    let good = env.add("For the good customer", "+1s", &[]);
    // The notice of the failure reaches the owner without waiting for any retry.
    let notice = common::wait_until("a failure notice", Duration::from_secs(20), || {
        eml_files(&sent)
            .into_iter()
            .find(|f| f.contains("Subject: Not delivered"))
    });
    assert!(notice.starts_with("-i -f followup@example.com -- ana@example.com\n"));
    assert!(notice.contains("bad@example.org"), "{notice}");
    let shown = env.show(bad);
    let failed: Vec<_> = shown["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["state"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{shown:#}");
    assert_eq!(failed[0]["attempts"], 1, "EX_NOUSER is not retried");
    let error = failed[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains("unknown recipient (exit status 67)") && error.contains("User unknown"),
        "{error}"
    );
    let files = wait_for_files(&sent, 1, Duration::from_secs(20));
    common::wait_until(
        "the good customer's update recorded as sent",
        Duration::from_secs(20),
        || (env.show(good)["deliveries"][0]["state"] == "sent").then_some(()),
    );
    assert!(
        wait_for_files(&sent, files.len(), Duration::from_secs(1))
            .iter()
            .any(|f| f.starts_with("-i -f followup@example.com -- joe@example.org\n")),
        "the good customer's update went out"
    );
    assert!(daemon.stop().success());
}

/// An installation with a login but `tls = "none"`, against `server`, which offers
/// AUTH only after STARTTLS.
fn plain_login_against(server: &SmtpServer) -> Env {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    env.write_config("smtp-password", "secret\n");
    env.write_smtp_config(
        server.port,
        "tls = \"none\"\nusername = \"followup\"\npassword_file = \"config/smtp-password\"\ntimeout = \"10s\"\n",
    );
    env
}

#[test]
fn a_login_over_a_plain_connection_to_a_relay_that_wants_starttls_says_to_use_it() {
    let root = tempfile::tempdir().unwrap();
    let server = SmtpServer::start_with_login(root.path(), "followup", "secret");
    let env = plain_login_against(&server);
    let out = env.cli(&["test-email", "--to", "ana@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("only after STARTTLS") && stderr.contains("tls = \"starttls\""),
        "{stderr}"
    );
    assert!(!stderr.contains("No compatible"), "{stderr}");
    // The daemon records the same words on the email that waits.
    let daemon = env.start();
    let id = env.add("Send the quote", "+1s", &[]);
    let error = common::wait_until(
        "an error recorded on the email",
        Duration::from_secs(20),
        || {
            env.show(id)["deliveries"][0]["last_error"]
                .as_str()
                .map(str::to_string)
        },
    );
    assert!(error.contains("tls = \"starttls\""), "{error}");
    assert!(daemon.stop().success());
}

#[test]
fn customer_mail_carries_no_internal_id_and_the_owner_copy_does() {
    let env = Env::new(
        "[[rule]]\nname = \"upd\"\ncustomer_update = { at = \"0s\", extend_by = \"1d\" }\n",
    );
    let daemon = env.start();
    let id = env.add("Send the quote", "+1s", &[]);
    let got = env.smtp.wait_for(2, Duration::from_secs(20));
    let header = |to: &str| {
        let message = got
            .iter()
            .find(|m| m.to == vec![to.to_string()])
            .unwrap_or_else(|| panic!("no mail to {to}: {got:?}"));
        message
            .parsed()
            .header_raw("X-Followup-Commitment")
            .map(|v| v.trim().to_string())
    };
    assert_eq!(header("joe@example.org"), None);
    assert_eq!(header("ana@example.com"), Some(id.to_string()));
    assert!(daemon.stop().success());
}

#[test]
fn a_title_of_one_long_word_reaches_the_owner_in_lines_a_relay_accepts() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let daemon = env.start();
    let title = "x".repeat(1200);
    env.add(&title, "+1s", &[]);
    let got = env.smtp.wait_for(1, Duration::from_secs(20));
    let raw = String::from_utf8_lossy(&got[0].data).into_owned();
    for line in raw.split("\r\n") {
        assert!(line.len() <= 998, "a line of {} octets", line.len());
    }
    assert!(got[0].subject().contains(&title), "{}", got[0].subject());
    assert!(daemon.stop().success());
}

#[test]
fn an_owners_own_reminder_that_fails_for_good_reaches_them_through_status_and_the_digest() {
    let env = Env::new(
        "[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n\n[[schedule]]\nname = \"digest\"\ncron = \"* * * * * *\"\njob = \"digest\"\n",
    );
    // The program refuses every reminder about this title, as a relay refuses a line
    // too long, and takes everything else.
    let script = r#"tmp=$(mktemp "$SENT/.msg.XXXXXX")
cat > "$tmp"
if grep -q '^Subject:.*Refused title' "$tmp"; then
  rm "$tmp"; echo "500 Line too long" >&2; exit 65
fi
"#;
    let sent = sendmail_script(&env, &format!("{script}{KEEP}"));
    let daemon = env.start();
    let id = env.add("Refused title", "+1s", &[]);
    let digest = common::wait_until(
        "a digest listing the failure",
        Duration::from_secs(20),
        || {
            eml_files(&sent)
                .into_iter()
                .find(|f| f.contains("EMAILS TO YOU THAT COULD NOT BE DELIVERED"))
        },
    );
    let parsed = mail_parser::MessageParser::default()
        .parse(digest.as_bytes())
        .unwrap();
    let to = parsed.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.address(), Some("ana@example.com"));
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains(&format!("#{id}  Refused title")) && text.contains("exit status 65"),
        "{text}"
    );
    let status = env.cli_ok(&["status"]);
    assert!(
        status.contains("not told:")
            && status.contains(&format!("commitment {id}, to Ana Ruiz <ana@example.com>")),
        "{status}"
    );
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains("delivery failed for good")),
        "{log}"
    );
    assert!(daemon.stop().success());
}
