//! Running a command as root on a systemd install without taking the store away from
//! the service.
//!
//! The store belongs to the service user, who must be able to write the database and
//! the `-wal` and `-shm` files SQLite creates beside it. A command run as root would
//! create those files owned by root, and the daemon could no longer write its own
//! store. So when root runs a command that opens the store, and the store (or, before
//! it exists, its directory) belongs to another user, the command first becomes that
//! user and group; every file it then creates belongs to them. Run by anyone else, or
//! on a store that belongs to root, nothing changes.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::Context as _;
use nix::unistd::{Gid, Uid, geteuid, getuid, setgid, setgroups, setuid};

/// Becomes the owner of `store` (or of its directory) if running as root and that
/// owner is someone else. Must run before the store is opened and before any thread
/// is started; once switched, later calls change nothing.
pub fn adopt_store_owner(store: &Path) -> anyhow::Result<()> {
    if !geteuid().is_root() {
        return Ok(());
    }
    let Some(owned) = [Some(store), store.parent()]
        .into_iter()
        .flatten()
        .find_map(|p| std::fs::metadata(p).ok())
    else {
        return Ok(());
    };
    let (uid, gid) = (Uid::from_raw(owned.uid()), Gid::from_raw(owned.gid()));
    if uid.is_root() {
        return Ok(());
    }
    let switch = || -> nix::Result<()> {
        setgroups(&[gid])?;
        setgid(gid)?;
        setuid(uid)
    };
    switch().with_context(|| {
        format!(
            "cannot switch to uid {uid} and gid {gid}, the owner of the store {}, before opening it",
            store.display()
        )
    })?;
    anyhow::ensure!(
        getuid() == uid && geteuid() == uid,
        "still running as uid {} after switching to the store's owner {uid}",
        geteuid()
    );
    tracing::debug!(%uid, %gid, store = %store.display(), "running as the store's owner");
    Ok(())
}
