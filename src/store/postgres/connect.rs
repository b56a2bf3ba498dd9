//! Connecting to PostgreSQL: checking a configured URL, connecting with a password
//! read apart from it, and serving a daemon: the store's connection and a second one
//! that listens for changes.
//!
//! The listening connection is dedicated, since notifications arrive only on the
//! connection that listens. Notifications sent while it is disconnected are lost, so
//! after every (re)connection the daemon is told to look at the store as if one had
//! arrived. Where notifications never arrive (behind a pooler in transaction mode),
//! the daemon's periodic look at the store, which it makes as it renews its claim,
//! finds the changes all the same, a few seconds later.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ::postgres::Client;
use ::postgres::fallible_iterator::FallibleIterator as _;
use tokio::sync::Notify;

use super::tls::Target;
use super::{PostgresStore, Said, redacted};
use crate::store::{Result, StoreError};

/// The channel the `changes` triggers notify.
const CHANNEL: &str = "followup_changes";

/// How long the listener waits for a notification before it looks whether it should
/// stop.
const LISTEN_TURN: Duration = Duration::from_secs(5);

/// Why `url` cannot name a store in a config, in words; `Ok` if it can. A password
/// in it is refused: it belongs in a file, a variable or a credential.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let target = Target::of(url).map_err(|e| e.to_string())?;
    if target.config.get_password().is_some() {
        return Err("url holds a password; keep it out of the config with password_file, password_env or password_credential".into());
    }
    if target.config.get_hosts().is_empty() {
        return Err("url names no host".into());
    }
    Ok(())
}

/// How to reach `url` with `password`.
fn target(url: &str, password: Option<&str>) -> Result<Target> {
    let mut target = Target::of(url).map_err(|e| StoreError::Open {
        path: redacted(url).into(),
        source: Box::new(e),
    })?;
    if let Some(password) = password {
        target.config.password(password);
    }
    Ok(target)
}

impl PostgresStore {
    /// Connects to the database at `url` with `password` (if the URL needs one),
    /// brings its schema up to date and reads the store's id. Errors name the URL
    /// without its password.
    pub fn connect(url: &str, password: Option<&str>) -> Result<PostgresStore> {
        PostgresStore::connect_to(url, target(url, password)?)
    }

    fn connect_to(url: &str, reach: Target) -> Result<PostgresStore> {
        let target = || redacted(url).into();
        let open_err = |source: ::postgres::Error| StoreError::Open {
            path: target(),
            source: Box::new(Said::from(source)),
        };
        let mut client = reach.connect().map_err(open_err)?;
        super::schema::migrate(&mut client).map_err(|source| StoreError::Migrate {
            path: target(),
            source: Box::new(source),
        })?;
        let id = client
            .query_one("SELECT id FROM store_identity", &[])
            .and_then(|row| row.try_get(0))
            .map_err(open_err)?;
        Ok(PostgresStore::with(client, reach, id))
    }
}

/// Opens the store for a daemon and starts its listener, which rings `changed` on
/// every notification of a change and after every (re)connection. The listener stops
/// once what is returned beside the store is dropped.
pub(crate) fn serve(
    url: &str,
    password: Option<&str>,
    changed: Arc<Notify>,
) -> Result<(PostgresStore, Box<dyn std::any::Any + Send>)> {
    let reach = target(url, password)?;
    if reach.in_the_clear() {
        tracing::warn!(
            store = redacted(url),
            "the connection to the store crosses the network unencrypted: add sslmode=verify-full to the url (and sslrootcert=FILE for the server's certificate authority)"
        );
    }
    // The daemon's own work can be done again: see `Target::without_waiting_for_flush`.
    let store = PostgresStore::connect_to(url, reach.clone().without_waiting_for_flush())?;
    let stop = Arc::new(AtomicBool::new(false));
    let listening = Listening(stop.clone());
    let shown = redacted(url);
    std::thread::Builder::new()
        .name("followup-listen".into())
        .spawn(move || listen(&reach, &shown, &changed, &stop))
        .map_err(|e| StoreError::Serve(Box::new(e)))?;
    Ok((store, Box::new(listening)))
}

/// Stops the listener when dropped.
struct Listening(Arc<AtomicBool>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn listen(reach: &Target, shown: &str, changed: &Notify, stop: &AtomicBool) {
    let mut cut_off = false;
    let mut pause = Duration::from_millis(200);
    while !stop.load(Ordering::Relaxed) {
        let mut client = match connect_listening(reach) {
            Ok(client) => client,
            Err(e) => {
                if !cut_off {
                    tracing::warn!(store = shown, cause = %Said::from(e), "cannot listen for changes to the store; trying again");
                    cut_off = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if cut_off {
            tracing::info!(store = shown, "listening for changes to the store again");
        }
        pause = Duration::from_millis(200);
        // What was sent while no one listened is lost: look as if it had arrived.
        changed.notify_one();
        let mut notifications = client.notifications();
        loop {
            match notifications.timeout_iter(LISTEN_TURN).next() {
                Ok(Some(_)) => changed.notify_one(),
                Err(e) => {
                    tracing::warn!(store = shown, cause = %Said::from(e), "the store's listening connection was lost; reconnecting");
                    cut_off = true;
                    break;
                }
                Ok(None) if stop.load(Ordering::Relaxed) => return,
                Ok(None) => {}
            }
        }
    }
}

fn connect_listening(reach: &Target) -> std::result::Result<Client, ::postgres::Error> {
    let mut client = reach.connect()?;
    client.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    Ok(client)
}
