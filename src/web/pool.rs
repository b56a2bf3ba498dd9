//! The web's own connections to the store, so that pages never wait for the
//! scheduler's connection nor hold it: a few connections, opened when first needed,
//! each used on a blocking thread. A write through one of them moves the daemon's
//! write mark like any other program's write.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::store::{Location, Store, StoreError};

/// Connections at most: SQLite readers do not block each other, and a handful covers
/// a burst of page views without taking every blocking thread.
pub const CONNECTIONS: usize = 4;

/// A small pool of store connections.
#[derive(Clone)]
pub struct Pool {
    location: Location,
    idle: Arc<Mutex<Vec<Box<dyn Store>>>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    /// A pool for the store at `location`; nothing is opened yet.
    pub fn new(location: Location) -> Pool {
        Pool {
            location,
            idle: Arc::default(),
            permits: Arc::new(Semaphore::new(CONNECTIONS)),
        }
    }

    /// How many connections have been opened and are idle now.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Runs the read-only `f` at once on the calling thread, on a connection already
    /// open and idle; `None` if there is none (the caller goes through [`Pool::call`],
    /// which opens one). `f` makes one read of the store (one statement, or a named
    /// view such as [`Store::commitment_view`](crate::store::Views::commitment_view)), done as a read that must not wait
    /// ([`Store::read_without_waiting`](crate::store::Store#method.read_without_waiting)): it holds the thread up
    /// [`crate::store::READ_NOW_WAIT`] at most.
    ///
    /// Never on PostgreSQL: its client blocks on a runtime of its own, which must not
    /// run on the runtime's thread, so every read goes through [`Pool::call`].
    pub fn read_now<T>(&self, f: impl FnOnce(&dyn Store) -> T) -> Option<T> {
        if matches!(self.location, Location::Postgres { .. }) {
            return None;
        }
        let store = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        let out = store.read_without_waiting(f).ok();
        // A connection that could not be set back to waiting is dropped, not reused.
        if out.is_some() {
            self.idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(store);
        }
        out
    }

    /// Runs `f` on a blocking thread with one of the connections, once one is free.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&dyn Store) -> T + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the pool's semaphore is never closed");
        let idle = self.idle.clone();
        let location = self.location.clone();
        let store = idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        tokio::task::spawn_blocking(move || {
            let store = match store {
                Some(store) => store,
                None => crate::store::open(&location)?,
            };
            let out = f(&*store);
            idle.lock().unwrap_or_else(|p| p.into_inner()).push(store);
            Ok(out)
        })
        .await
        .expect("store calls do not panic")
    }
}
