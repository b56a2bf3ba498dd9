//! Checking `[store]`: the SQLite file by default, or a PostgreSQL database that
//! several daemons share. A PostgreSQL password never lives in TOML, the URL's included:
//! `password_file`, `password_env` or `password_credential` say where it is, as for
//! SMTP.

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::mail::{PasswordError, PasswordKeys, PasswordSource, password_source, resolve};
use super::sections::StoreSection;
use crate::store::Location;

/// `[store]`, checked.
#[derive(Clone, Debug)]
pub struct StoreSettings {
    /// The database.
    pub backend: Backend,
    /// The SQLite file, absolute; beside it the link key, with SQLite.
    pub path: PathBuf,
    /// How long records of sent emails are kept before the prune job deletes them.
    pub keep: jiff::SignedDuration,
}

/// Which database holds the store.
#[derive(Clone, Debug, PartialEq)]
pub enum Backend {
    /// The SQLite file at [`StoreSettings::path`], served by one daemon.
    Sqlite,
    /// A PostgreSQL database, which several daemons may share.
    Postgres {
        /// The connection URL (or `key=value` pairs), without a password.
        url: String,
        /// Where its password is.
        password: PasswordSource,
    },
}

impl StoreSettings {
    /// Where the store is, with its password read: for opening it. Never log it.
    pub fn location(&self) -> Result<Location, PasswordError> {
        Ok(match &self.backend {
            Backend::Sqlite => Location::Sqlite(self.path.clone()),
            Backend::Postgres { url, password } => Location::Postgres {
                url: url.clone(),
                password: password.read_for("store")?,
            },
        })
    }

    /// The store in words for logs and `status`: the SQLite file, or the URL (which
    /// holds no password).
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite => self.path.display().to_string(),
            Backend::Postgres { url, .. } => crate::store::postgres::redacted(url),
        }
    }

    /// Whether several daemons may serve the store at once.
    pub fn shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }
}

/// Checks `[store]`'s backend, URL and password keys, from `place` (its file and text)
/// when a file set it.
pub(super) fn backend(
    dir: &Path,
    base: &Path,
    store: &StoreSection,
    place: Option<&(PathBuf, String)>,
    errors: &mut Vec<ConfigError>,
) -> Backend {
    let Some((file, source)) = place else {
        return Backend::Sqlite;
    };
    let at = |span, message: String| ConfigError::at(file, source, Some(span), message);
    let name = store.backend.as_ref().map(|b| b.get_ref().trim());
    let postgres = match name {
        None | Some("sqlite") => false,
        Some("postgres") => true,
        Some(other) => {
            let span = store.backend.as_ref().map(|b| b.span()).unwrap_or_default();
            errors.push(at(
                span,
                format!("backend = \"{other}\" is not a store: use \"sqlite\" or \"postgres\""),
            ));
            return Backend::Sqlite;
        }
    };
    let keys = PasswordKeys {
        file: store.password_file.as_ref(),
        env: store.password_env.as_ref(),
        credential: store.password_credential.as_ref(),
    };
    if !postgres {
        let stray = [
            store.url.as_ref().map(|u| ("url", u.span())),
            keys.file.map(|k| ("password_file", k.span())),
            keys.env.map(|k| ("password_env", k.span())),
            keys.credential.map(|k| ("password_credential", k.span())),
        ];
        for (key, span) in stray.into_iter().flatten() {
            errors.push(at(
                span,
                format!(
                    "{key} is for backend = \"postgres\"; the SQLite store is the file at path"
                ),
            ));
        }
        return Backend::Sqlite;
    }
    let password = password_source(dir, base, keys, file, source, errors);
    let Some(url) = store.url.as_ref() else {
        let span = store.backend.as_ref().map(|b| b.span()).unwrap_or_default();
        errors.push(at(
            span,
            "backend = \"postgres\" needs url = \"postgres://user@host/database\"".into(),
        ));
        return Backend::Sqlite;
    };
    if let Err(e) = crate::store::postgres::check_url(url.get_ref()) {
        errors.push(at(url.span(), e));
        return Backend::Sqlite;
    }
    Backend::Postgres {
        url: url.get_ref().trim().to_string(),
        password,
    }
}

/// The store's settings as `[store]` gives them.
pub(super) fn settings(
    dir: &Path,
    base: &Path,
    store: &StoreSection,
    place: Option<&(PathBuf, String)>,
    errors: &mut Vec<ConfigError>,
) -> StoreSettings {
    StoreSettings {
        backend: backend(dir, base, store, place, errors),
        path: resolve(base, &store.path),
        keep: super::jobs::keep(store, place, errors),
    }
}
