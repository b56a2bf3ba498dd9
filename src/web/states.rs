//! The commitment states the action pages were made from, kept until the store's count
//! of commits ([`Writes`]) moves or the config is reloaded. A link's page is then one
//! HMAC and some HTML while nothing changes: mail scanners and people who open a link
//! twice cost no store read, and a flood of page views leaves the store to the
//! scheduler. A page may lag another program's write by as long as the daemon takes
//! to see it (a few milliseconds); acting never does, since the action reads again in
//! its own transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::Writes;

/// States kept at most: past it, those of an older count go, and then all.
const KEPT: usize = 1024;

/// The kept states (`S`: the pages' [`CommitmentState`](crate::actions::CommitmentState)),
/// by commitment id, each with the config (`C`) it was checked against.
pub struct States<S, C> {
    writes: Writes,
    kept: Mutex<HashMap<i64, Kept<S, C>>>,
}

struct Kept<S, C> {
    /// The count of commits before the state was read.
    count: u64,
    config: Arc<C>,
    state: Arc<S>,
}

impl<S, C> States<S, C> {
    /// States valid while `writes` stands still.
    pub fn new(writes: Writes) -> Self {
        States {
            writes,
            kept: Mutex::default(),
        }
    }

    /// The state of commitment `id` under `config`: kept, or made by `read` and kept.
    pub fn get<E>(
        &self,
        id: i64,
        config: &Arc<C>,
        read: impl FnOnce() -> Result<S, E>,
    ) -> Result<Arc<S>, E> {
        let count = self.writes.seen();
        if let Some(kept) = self.lock().get(&id)
            && kept.count == count
            && Arc::ptr_eq(&kept.config, config)
        {
            return Ok(kept.state.clone());
        }
        let state = Arc::new(read()?);
        let mut kept = self.lock();
        if kept.len() >= KEPT {
            kept.retain(|_, k| k.count == count);
            if kept.len() >= KEPT {
                kept.clear();
            }
        }
        kept.insert(
            id,
            Kept {
                count,
                config: config.clone(),
                state: state.clone(),
            },
        );
        Ok(state)
    }

    /// Counts a write made through the pages, once it is committed.
    pub fn wrote(&self) {
        self.writes.committed();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Kept<S, C>>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_state_is_read_again_once_a_commit_is_counted_or_the_config_changes() {
        let writes = Writes::default();
        let states = States::new(writes.clone());
        let config = Arc::new(());
        let reads = Cell::new(0);
        let read = || {
            reads.set(reads.get() + 1);
            Ok::<_, ()>("open".to_string())
        };
        states.get(1, &config, read).unwrap();
        states.get(1, &config, read).unwrap();
        assert_eq!(reads.get(), 1, "kept while nothing was written");
        states.get(2, &config, read).unwrap();
        assert_eq!(reads.get(), 2, "each commitment has its own");
        writes.committed();
        states.get(1, &config, read).unwrap();
        assert_eq!(reads.get(), 3, "read again after a commit");
        states.wrote();
        states.get(1, &config, read).unwrap();
        assert_eq!(reads.get(), 4, "read again after the pages' own write");
        let reloaded = Arc::new(());
        states.get(1, &reloaded, read).unwrap();
        assert_eq!(reads.get(), 5, "read again under a reloaded config");
        states.get(1, &reloaded, read).unwrap();
        assert_eq!(reads.get(), 5);
    }

    #[test]
    fn a_failed_read_is_not_kept() {
        let states = States::new(Writes::default());
        let config = Arc::new(());
        assert!(states.get(1, &config, || Err::<String, _>("busy")).is_err());
        let reads = Cell::new(0);
        states
            .get(1, &config, || {
                reads.set(1);
                Ok::<_, ()>("open".to_string())
            })
            .unwrap();
        assert_eq!(reads.get(), 1);
    }
}
