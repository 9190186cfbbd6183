//! Whether the processes counted in a segment's overflow word still live.
//!
//! The user table has [`USER_SLOTS`](super::users::USER_SLOTS) slots; an attacher that finds
//! them all held by live processes is counted in the header's `users_overflow` word instead.
//! A count says how many, not who, so by itself it cannot tell that a process it includes was
//! killed. Each process counted there therefore holds an OFD read lock (`F_OFD_SETLK`,
//! `F_RDLCK`) on the overflow word's bytes of the segment file, taken before its count is added
//! and kept until after it is taken away; the kernel drops it when the process dies (when the
//! last descriptor of that open file goes, so a fork child that keeps the inherited descriptor
//! keeps it too, and it maps the segment as well). A cleaner that reads a positive count and
//! then finds no such lock held (`F_OFD_GETLK`) knows that everyone the count includes has died
//! or already left ([`life::UNLOCKED`](super::life::UNLOCKED) has the argument).
//!
//! Every doubt counts the users as alive: a name that no longer names the mapped file, a file
//! system without OFD locks, any error. An attacher that cannot take its lock sets
//! [`life::UNLOCKED`](super::life::UNLOCKED), and from then on the count is taken as it stands
//! (as before these locks existed).
//!
//! These locks do not meet the exclusive `flock` a remover takes to unlink the name (`flock`
//! and OFD locks are separate on Linux), so a forced removal is never held up by them.
//! Anonymous segments have no name to remove and take no lock.

use super::header::Header;
use super::mapping::FileId;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The locked bytes: the overflow word.
const START: i64 = core::mem::offset_of!(Header, users_overflow) as i64;
const LEN: i64 = 8;

/// An overflow lock held by this process (dropped after its count is taken away).
#[derive(Debug)]
pub(crate) struct OverflowLock {
    _file: File,
}

/// Opens `path` for reading if it still names file `id`.
fn open_same(path: &Path, id: FileId) -> Option<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let m = file.metadata().ok()?;
    ((m.dev(), m.ino()) == id).then_some(file)
}

/// The lock description for `l_type` over the overflow word.
fn range(l_type: libc::c_short) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = l_type;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = START;
    fl.l_len = LEN;
    fl.l_pid = 0; // required by OFD locks
    fl
}

/// Takes this process's overflow lock on the segment file `id` at `path`; `None` if it cannot
/// be had (the caller then marks the count unchecked).
pub(crate) fn lock(path: &Path, id: FileId) -> Option<OverflowLock> {
    let file = open_same(path, id)?;
    let fl = range(libc::F_RDLCK as libc::c_short);
    // SAFETY: F_OFD_SETLK on a descriptor we own, with a valid `flock` the call only reads.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &fl) };
    (r == 0).then_some(OverflowLock { _file: file })
}

/// Whether any process holds an overflow lock on the segment file `id` at `path` (`true`
/// whenever that cannot be told).
pub(crate) fn held(path: &Path, id: FileId) -> bool {
    let Some(file) = open_same(path, id) else {
        return true;
    };
    let mut fl = range(libc::F_WRLCK as libc::c_short);
    // SAFETY: F_OFD_GETLK on a descriptor we own, with a valid `flock` it reads and rewrites.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    r != 0 || fl.l_type != libc::F_UNLCK as libc::c_short
}

#[cfg(all(test, not(feature = "loom"), not(miri)))]
mod tests {
    use super::*;

    fn id_of(path: &Path) -> FileId {
        let m = std::fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    #[test]
    fn a_lock_is_seen_until_dropped_and_a_replaced_name_counts_as_held() {
        let dir = std::env::temp_dir().join(format!("shmkit-overflow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seg");
        std::fs::write(&path, [0u8; 256]).unwrap();
        let id = id_of(&path);
        assert!(!held(&path, id));
        let l = lock(&path, id).expect("OFD locks on the temp dir's file system");
        // Seen from another open file description of this very process, too.
        assert!(held(&path, id));
        let again = lock(&path, id).expect("read locks share");
        drop(l);
        assert!(held(&path, id));
        drop(again);
        assert!(!held(&path, id));
        // Another file under the name: no lock taken, and the answer is "held".
        // (Made before the old one goes, so that it cannot reuse the old inode number.)
        let other = dir.join("other");
        std::fs::write(&other, [0u8; 256]).unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert!(lock(&path, id).is_none());
        assert!(held(&path, id));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
