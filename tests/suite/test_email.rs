//! `followup test-email` against a real SMTP server on 127.0.0.1 that offers STARTTLS
//! with a self-signed certificate and takes mail only after a login: the settings an
//! admin copies from their relay, proven end to end.

use crate::common;

use std::time::Duration;

use common::{Env, SmtpServer, succeeded};

const USER: &str = "followup";
const PASSWORD: &str = "c0rrect-Horse-77";

/// An installation whose `[mail.smtp]` points at `server` with STARTTLS and a login,
/// the password coming from the systemd credential `smtp-password`.
fn with_relay(server: &SmtpServer, accept_invalid_certs: bool) -> Env {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    env.write_smtp_config(
        server.port,
        &format!(
            "tls = \"starttls\"\nusername = \"{USER}\"\npassword_credential = \"smtp-password\"\n\
             accept_invalid_certs = {accept_invalid_certs}\ntimeout = \"10s\"\n"
        ),
    );
    env
}

/// Runs `test-email --to ADDR` with the right password in a credentials directory, as
/// systemd makes it for LoadCredential=.
fn test_email_as_the_service_would(env: &Env, to: &str) -> std::process::Output {
    let dir = env.root.path().join("credentials");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("smtp-password"), format!("{PASSWORD}\n")).unwrap();
    env.cli_with(
        &["test-email", "--to", to],
        &[("CREDENTIALS_DIRECTORY", &dir.display().to_string())],
    )
}

#[test]
fn test_email_over_starttls_with_a_login_reaches_the_server() {
    let root = tempfile::tempdir().unwrap();
    let server = SmtpServer::start_with_login(root.path(), USER, PASSWORD);
    let env = with_relay(&server, true);
    let out = test_email_as_the_service_would(&env, "Ana Ruiz <ana@example.com>");
    let stdout = succeeded("test-email", out);
    assert!(
        stdout.contains("sent a test email to ana@example.com")
            && stdout.contains("with STARTTLS, logged in as followup"),
        "{stdout}"
    );
    let got = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, vec!["ana@example.com"]);
    assert_eq!(got[0].subject(), "followup test email");
    assert_eq!(
        got[0].parsed().header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    assert!(!String::from_utf8_lossy(&got[0].data).contains(PASSWORD));
}

#[test]
fn a_self_signed_certificate_is_refused_unless_accept_invalid_certs_is_set() {
    let root = tempfile::tempdir().unwrap();
    let server = SmtpServer::start_with_login(root.path(), USER, PASSWORD);
    let env = with_relay(&server, false);
    let out = test_email_as_the_service_would(&env, "ana@example.com");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TLS") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("accept_invalid_certs"), "{stderr}");
    assert!(server.messages().is_empty());
}

#[test]
fn a_wrong_password_fails_naming_the_login_and_never_prints_the_secret() {
    let root = tempfile::tempdir().unwrap();
    let server = SmtpServer::start_with_login(root.path(), USER, PASSWORD);
    let env = with_relay(&server, true);
    let wrong = "wr0ng-Battery-42";
    // Outside a service the credential is read from the config directory.
    env.write_config("smtp-password", &format!("{wrong}\n"));
    let out = env.cli(&["test-email", "--to", "ana@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("refused the login"), "{stderr}");
    assert!(stderr.contains("535"), "{stderr}");
    for text in [&stderr, &stdout] {
        assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    }
    assert!(server.messages().is_empty());
}

#[test]
fn a_relay_that_is_not_listening_is_named_as_such() {
    let env = Env::new("[[rule]]\nname = \"any\"\nremind = [\"0s\"]\n");
    let port = common::free_port();
    env.write_smtp_config(port, "");
    let out = env.cli(&["test-email", "--to", "ana@example.com"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("refused"),
        "{stderr}"
    );
}
