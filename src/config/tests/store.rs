//! `[store]`: SQLite by default, PostgreSQL with a URL and a password kept out of TOML.

use super::*;
use crate::config::Backend;
use crate::store::Location;

#[test]
fn the_store_is_the_sqlite_file_unless_postgres_is_named() {
    let dir = dir_with(&[("s.toml", "[store]\npath = \"/var/lib/f/f.db\"\n")]);
    let config = load(dir.path(), false).unwrap();
    assert_eq!(config.store.backend, Backend::Sqlite);
    assert!(!config.store.shared());
    assert!(
        matches!(config.store.location().unwrap(), Location::Sqlite(p) if p == Path::new("/var/lib/f/f.db"))
    );
}

#[test]
fn a_postgres_store_reads_its_password_apart_from_the_url() {
    let dir = dir_with(&[(
        "s.toml",
        "[store]\nbackend = \"postgres\"\nurl = \"postgres://followup@db.internal/followup\"\npassword_env = \"FOLLOWUP_TEST_STORE_PW\"\n",
    )]);
    let config = load(dir.path(), false).unwrap();
    assert!(config.store.shared());
    assert_eq!(
        config.store.backend,
        Backend::Postgres {
            url: "postgres://followup@db.internal/followup".into(),
            password: PasswordSource::Env("FOLLOWUP_TEST_STORE_PW".into()),
        }
    );
    assert_eq!(
        config.store.describe(),
        "postgres://followup@db.internal/followup"
    );
    let missing = config.store.location().unwrap_err().to_string();
    assert!(
        missing.contains("store password variable FOLLOWUP_TEST_STORE_PW"),
        "{missing}"
    );
    let secret = dir.path().join("db-password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let dir = dir_with(&[(
        "s.toml",
        &format!(
            "[store]\nbackend = \"postgres\"\nurl = \"host=db user=followup\"\npassword_file = \"{}\"\n",
            secret.display()
        ),
    )]);
    let location = load(dir.path(), false).unwrap().store.location().unwrap();
    let Location::Postgres { password, .. } = &location else {
        panic!("{location}")
    };
    assert_eq!(password.as_deref(), Some("s3cret"));
    assert!(!format!("{location:?} {location}").contains("s3cret"));
}

#[test]
fn bad_store_settings_name_the_key_and_never_take_a_password_in_the_url() {
    for (text, line, says) in [
        (
            "[store]\nbackend = \"mysql\"\n",
            "s.toml:2:",
            "use \"sqlite\" or \"postgres\"",
        ),
        (
            "[store]\nbackend = \"postgres\"\n",
            "s.toml:2:",
            "needs url",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://ana:s3cret@db/followup\"\n",
            "s.toml:3:",
            "url holds a password",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"host=db password=s3cret\"\n",
            "s.toml:3:",
            "url holds a password",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://db/f?sslmode=sometimes\"\n",
            "s.toml:3:",
            "not a PostgreSQL connection URL",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://db/f?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem\"\n",
            "s.toml:3:",
            "cannot read the certificates of sslrootcert /nonexistent/ca.pem",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"host=db sslrootcert=/etc/ca.pem\"\n",
            "s.toml:3:",
            "add sslmode=verify-full",
        ),
        (
            "[store]\nurl = \"postgres://db/followup\"\n",
            "s.toml:2:",
            "url is for backend = \"postgres\"",
        ),
        (
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://db/f\"\npassword_env = \"A\"\npassword_file = \"b\"\n",
            "s.toml:4:",
            "not several",
        ),
    ] {
        let dir = dir_with(&[("s.toml", text)]);
        let errors = errors_of(dir.path());
        assert!(
            errors.iter().any(|e| e.contains(line) && e.contains(says)),
            "{text}: {errors:#?}"
        );
        assert!(!errors.iter().any(|e| e.contains("s3cret")), "{errors:#?}");
    }
}
