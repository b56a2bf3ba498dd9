//! A count of the store's commits that this process knows of: its own, counted once
//! committed, and other programs', counted once the daemon has seen them. What was read
//! while the count stood still is still true for as long as it stands, so a reader may
//! keep it until the count moves (the pages keep the commitments they show).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A shared count of commits; clones count together.
#[derive(Clone, Debug, Default)]
pub struct Writes(Arc<AtomicU64>);

impl Writes {
    /// The count now. Read it before reading the store: what is read then is at least
    /// as new as this count.
    pub fn seen(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Counts a commit, or a look that may have found another program's. Called after
    /// it, never before: a reader that saw the old count then reads again.
    pub fn committed(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
