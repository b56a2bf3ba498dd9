//! [`Marks`] on PostgreSQL.
//!
//! PostgreSQL has no counter of other sessions' commits like SQLite's `data_version`.
//! The mark is the `changes` sequence instead: every write of a commitment, by any
//! program, inserts into `changes` through the trigger, and so do the verbs, so no
//! write that gives the daemon something to plan or decide again is missed. It is
//! conservative: it moves for this store's own inserts into `changes` too (and for
//! ones rolled back), and the daemon then only looks once more. Writes that touch no
//! commitment (a customer's note) do not move it; they change no plan.

use crate::store::postgres::PostgresStore;
use crate::store::*;

/// The mark is how many values the `changes` sequence has drawn (see above).
impl Marks for PostgresStore {
    fn write_mark(&self) -> Result<WriteMark> {
        // A sequence's state is outside transactions: another session's `nextval` shows
        // at once. `is_called` is false until the first value is drawn.
        let drawn: i64 = self
            .query_one(
                "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM changes_seq_seq",
                &[],
            )?
            .try_get(0)?;
        Ok(WriteMark(drawn))
    }

    fn others_wrote_since(&self, mark: WriteMark) -> Result<bool> {
        Ok(self.write_mark()? != mark)
    }
}
