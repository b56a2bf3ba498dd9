//! [`Marks`] on SQLite.

use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl Marks for SqliteStore {
    fn write_mark(&self) -> Result<WriteMark> {
        // SQLite's `data_version`: it moves for other connections' commits only.
        Ok(WriteMark(self.conn.pragma_query_value(
            None,
            "data_version",
            |row| row.get(0),
        )?))
    }

    fn others_wrote_since(&self, mark: WriteMark) -> Result<bool> {
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
        let store = SqliteStore::open(&path).unwrap();
        let mark = store.write_mark().unwrap();
        store
            .insert_commitment(&NewCommitment::sample("2030-01-07 10:00"))
            .unwrap();
        assert!(!store.others_wrote_since(mark).unwrap());
        let other = SqliteStore::open(&path).unwrap();
        other
            .insert_commitment(&NewCommitment::sample("2030-01-07 10:00"))
            .unwrap();
        assert!(store.others_wrote_since(mark).unwrap());
    }
}
