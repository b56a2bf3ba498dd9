//! The link key: the secret every link token is signed with. From a systemd credential
//! (`LoadCredential=link-key:/etc/followup/link.key`) when the unit passes one; else,
//! on PostgreSQL, from the database, where the first daemon keeps one for all; else
//! from `link.key` beside the SQLite store, created on first start (32 random bytes,
//! mode 0600). Deleting the file, or passing another credential, invalidates every
//! link sent before.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom as _, SystemRandom};

use super::link::KEY_LEN;
use crate::config::StoreSettings;

/// The credential's ID in `$CREDENTIALS_DIRECTORY`.
pub const CREDENTIAL: &str = "link-key";

/// The key file's name in the store's directory.
pub const FILE_NAME: &str = "link.key";

/// Shortest key accepted from a file or credential.
pub const MIN_LEN: usize = 16;

/// Why the key cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or creating the file failed.
    #[error("cannot {what} the link key {}: {source}", path.display())]
    Io {
        /// Read or create.
        what: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds too little to be a key.
    #[error("the link key {} holds {len} bytes; it needs at least {MIN_LEN} (delete it to have a new one made)", path.display())]
    Short {
        /// Which file.
        path: PathBuf,
        /// How many bytes it holds.
        len: usize,
    },
    /// The system's random source failed.
    #[error("cannot draw a random link key")]
    Random,
    /// The store that keeps the key could not be read.
    #[error("cannot read the link key kept in the store: {0}")]
    Store(String),
}

/// The credential systemd passes, if it passes one.
fn credential() -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty())?;
    Some(Path::new(&dir).join(CREDENTIAL)).filter(|c| c.exists())
}

/// Where the key is read from: the credential when systemd passes one, else the file
/// beside `store`.
pub fn location(store: &Path) -> PathBuf {
    if let Some(credential) = credential() {
        return credential;
    }
    store
        .parent()
        .map(|dir| dir.join(FILE_NAME))
        .unwrap_or_else(|| PathBuf::from(FILE_NAME))
}

/// The key for the configured store: the credential when systemd passes one; else,
/// for a store that daemons on several hosts share, the key kept in it (made the
/// first time), so that a link one daemon signed opens on every host; else the file
/// beside the store ([`load_or_create`]).
pub fn for_store(store: &StoreSettings) -> Result<Vec<u8>, KeyError> {
    if store.shared() && credential().is_none() {
        let failed = |e: &dyn std::fmt::Display| KeyError::Store(e.to_string());
        let location = store.location().map_err(|e| failed(&e))?;
        let fresh = random_key()?;
        if let Some(key) = crate::store::link_key(&location, &fresh).map_err(|e| failed(&e))? {
            return Ok(key);
        }
    }
    load_or_create(&store.path)
}

fn random_key() -> Result<Vec<u8>, KeyError> {
    let mut key = vec![0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| KeyError::Random)?;
    Ok(key)
}

/// The key at [`location`]; the file beside the store is created when missing.
pub fn load_or_create(store: &Path) -> Result<Vec<u8>, KeyError> {
    let path = location(store);
    match std::fs::read(&path) {
        Ok(key) if key.len() >= MIN_LEN => Ok(key),
        Ok(key) => Err(KeyError::Short {
            path,
            len: key.len(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(source) => Err(KeyError::Io {
            what: "read",
            path,
            source,
        }),
    }
}

fn create(path: &Path) -> Result<Vec<u8>, KeyError> {
    let key = random_key()?;
    let io = |source| KeyError::Io {
        what: "create",
        path: path.to_path_buf(),
        source,
    };
    // create_new: two processes racing to make it never overwrite each other's key.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut file) => {
            file.write_all(&key).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_racing(path),
        Err(e) => Err(io(e)),
    }
}

fn read_racing(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        what: "read",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_missing_key_is_made_once_private_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("followup.db");
        let first = load_or_create(&store).unwrap();
        assert_eq!(first.len(), KEY_LEN);
        let file = dir.path().join(FILE_NAME);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(&store).unwrap(), first);
    }

    #[test]
    fn a_short_key_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("followup.db");
        std::fs::write(dir.path().join(FILE_NAME), b"short").unwrap();
        let error = load_or_create(&store).unwrap_err().to_string();
        assert!(error.contains("link.key holds 5 bytes"), "{error}");
    }
}
