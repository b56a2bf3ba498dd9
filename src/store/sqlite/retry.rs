//! [`Retries`] on SQLite.

use jiff::Timestamp;

use crate::store::sqlite::SqliteStore;
use crate::store::*;

impl Retries for SqliteStore {
    fn retry(&self, of: Option<i64>, now: Timestamp) -> Result<usize> {
        self.transaction(|s| {
            if let Some(id) = of
                && !s.has_commitment(id)?
            {
                return Err(StoreError::NotFound(id));
            }
            s.retry_held(now, of)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrying_the_mail_of_a_missing_commitment_says_it_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("followup.db")).unwrap();
        let now = Timestamp::now();
        assert!(matches!(
            store.retry(Some(7), now),
            Err(StoreError::NotFound(7))
        ));
        assert_eq!(store.retry(None, now).unwrap(), 0);
    }
}
