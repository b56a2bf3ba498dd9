//! The PostgreSQL store over TLS with a password, against a real server that speaks
//! TLS with a certificate of its own authority and lets the store's user in only over
//! TLS and by SCRAM (`Postgres::start_with_tls`). Skipped where PostgreSQL is not
//! installed.

use crate::common;

use std::sync::OnceLock;
use std::time::Duration;

use common::Env;
use common::postgres::{Postgres, TLS_PASSWORD, TLS_USER, certificate_authority};
use common::store::Store;
use followup::store::Location;

/// One TLS server for the tests of this file, each on a database of its own.
fn server() -> Option<&'static Postgres> {
    static SERVER: OnceLock<Option<Postgres>> = OnceLock::new();
    SERVER.get_or_init(Postgres::start_with_tls).as_ref()
}

/// A fresh database `name` owned by the TLS user; its URL over checked TLS.
fn database(server: &Postgres, name: &str) -> String {
    server.create_database_for(name, TLS_USER);
    server.tls_url(name)
}

fn open(url: &str, password: Option<&str>) -> Result<(), String> {
    followup::store::open(&Location::Postgres {
        url: url.to_string(),
        password: password.map(str::to_string),
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

/// The sessions of the TLS user on `database`: (encrypted, last statement).
fn sessions(server: &Postgres, database: &str) -> Vec<(bool, String)> {
    server
        .admin()
        .query(
            "SELECT s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.usename = $1 AND a.datname = $2",
            &[&TLS_USER, &database],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

#[test]
fn the_store_connects_over_tls_checking_the_servers_certificate_and_signs_in_by_scram() {
    let Some(server) = server() else { return };
    let url = database(server, "checked");
    let store = followup::store::open(&Location::Postgres {
        url: url.clone(),
        password: Some(TLS_PASSWORD.to_string()),
    })
    .unwrap_or_else(|e| panic!("open {url}: {e}"));
    assert!(!store.id().is_empty());
    let seen = sessions(server, "checked");
    assert!(!seen.is_empty(), "the store holds a session open");
    assert!(seen.iter().all(|(ssl, _)| *ssl), "{seen:?}");

    // libpq's spellings of the same: key=value pairs, verify-ca, require.
    for variant in [
        format!(
            "host=127.0.0.1 port={} user={TLS_USER} dbname=checked sslmode=verify-ca sslrootcert='{}'",
            server.port(),
            server.ca_file().display()
        ),
        url.replace("verify-full", "require"),
    ] {
        open(&variant, Some(TLS_PASSWORD)).unwrap_or_else(|e| panic!("{variant}: {e}"));
    }
}

#[test]
fn what_cannot_be_checked_or_signed_in_is_refused_in_words() {
    let Some(server) = server() else { return };
    let url = database(server, "refused");
    let stranger = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(stranger.path(), certificate_authority("someone else").0).unwrap();
    let plain = url.split_once('?').unwrap().0.to_string();
    let cases = [
        (
            "the public authorities do not vouch for the server",
            url.replace(&format!("&sslrootcert={}", server.ca_file().display()), ""),
            TLS_PASSWORD,
            "UnknownIssuer (no authority of sslrootcert",
        ),
        (
            "another authority does not either",
            url.replace(
                &server.ca_file().display().to_string(),
                &stranger.path().display().to_string(),
            ),
            TLS_PASSWORD,
            "UnknownIssuer",
        ),
        (
            "a name the certificate is not for",
            url.replace("127.0.0.1", "localhost"),
            TLS_PASSWORD,
            "must name the host as the server's certificate does",
        ),
        (
            "a wrong password",
            url.clone(),
            "not the password",
            "password authentication failed",
        ),
        (
            "an unencrypted connection, the default",
            plain.clone(),
            TLS_PASSWORD,
            "no encryption",
        ),
        (
            "an unencrypted connection, asked for",
            format!("{plain}?sslmode=disable"),
            TLS_PASSWORD,
            "no encryption",
        ),
        (
            "a root certificate file that is not there",
            url.replace("ca.pem", "missing.pem"),
            TLS_PASSWORD,
            "missing.pem",
        ),
        (
            "a root certificate without sslmode",
            format!("{plain}?sslrootcert={}", server.ca_file().display()),
            TLS_PASSWORD,
            "add sslmode=verify-full",
        ),
    ];
    for (what, url, password, says) in cases {
        let error = open(&url, Some(password)).expect_err(what);
        eprintln!("{what}: {error}");
        assert!(error.contains(says), "{what}: {error}");
        assert!(
            !error.contains(TLS_PASSWORD),
            "{what}: the password in {error}"
        );
    }
    assert!(sessions(server, "refused").is_empty());
}

const RULES: &str = r#"
[[rule]]
name = "at-due"
remind = ["0s"]
"#;

#[test]
fn a_daemon_on_a_tls_store_with_a_password_file_sends_and_listens_over_tls() {
    let Some(server) = server() else { return };
    let url = database(server, "daemon");
    let env = Env::on(Store::Postgres { url: url.clone() }, RULES);
    let password_file = env.root.path().join("db-password");
    std::fs::write(&password_file, format!("{TLS_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(
        &password_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    env.edit_config("followup.toml", |text| {
        text.replace(
            &format!("url = \"{url}\"\n"),
            &format!(
                "url = \"{url}\"\npassword_file = \"{}\"\n",
                password_file.display()
            ),
        )
    });
    let start = common::monday_morning();
    env.use_test_clock(start);
    let daemon = env.start();
    env.add("Quote for the roof", "+60s", &[]);
    env.set_clock(start + jiff::SignedDuration::from_secs(60));
    let got = env
        .smtp
        .wait_for(1, Duration::from_secs(20))
        .into_iter()
        .next()
        .unwrap();
    assert!(
        got.subject().contains("Quote for the roof"),
        "{}",
        got.subject()
    );

    // The daemon's own connection and its listening one, both encrypted.
    let seen = sessions(server, "daemon");
    assert!(seen.iter().all(|(ssl, _)| *ssl), "{seen:?}");
    assert!(
        seen.iter().any(|(_, query)| query.starts_with("LISTEN")),
        "the daemon listens: {seen:?}"
    );
    assert!(daemon.stop_within(Duration::from_secs(20)).success());
}
