//! Telling other programs' writes from the daemon's own: a [`WriteMark`] taken on the
//! daemon's connection ([`Store::write_mark`]) moves only when another connection
//! commits. The planning task looks after the store watch rang, and a batch of due
//! steps is decided again if another program wrote while it was composed.

use super::{Result, Store, WriteMark};

impl Store {
    /// Whether another program committed since `mark` was taken on this store; its own
    /// commits do not count.
    pub fn others_wrote_since(&self, mark: WriteMark) -> Result<bool> {
        Ok(self.write_mark()? != mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewCommitment;

    #[test]
    fn only_another_connections_commit_moves_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.db");
        let store = Store::open(&path).unwrap();
        let mark = store.write_mark().unwrap();
        store
            .insert_commitment(&NewCommitment::sample("2030-01-07 10:00"))
            .unwrap();
        assert!(!store.others_wrote_since(mark).unwrap());
        let other = Store::open(&path).unwrap();
        other
            .insert_commitment(&NewCommitment::sample("2030-01-07 10:00"))
            .unwrap();
        assert!(store.others_wrote_since(mark).unwrap());
    }
}
