//! Telling other programs' writes from the daemon's own: a [`WriteMark`] taken on the
//! daemon's connection ([`Marks::write_mark`]) moves only when another connection
//! commits. The planning task looks after the store watch rang, and a batch of due
//! steps is decided again if another program wrote while it was composed.

use super::Result;

/// Where other connections' writes stood at one moment ([`Marks::write_mark`]): two
/// marks of one store differ if another committed in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteMark(pub(super) i64);

/// Telling others' writes from this store's own.
pub trait Marks {
    /// Where others' writes stand now: the mark moves when another connection (another
    /// program, the web pages) commits, and not for this store's own commits, so the
    /// daemon can tell others' writes from its own.
    fn write_mark(&self) -> Result<WriteMark>;

    /// Whether another program committed since `mark` was taken on this store; its own
    /// commits do not count.
    fn others_wrote_since(&self, mark: WriteMark) -> Result<bool>;
}
