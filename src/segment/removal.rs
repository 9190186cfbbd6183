//! Removing segments safely: only stale ones (no live user), exactly once, and never a newer
//! segment that took the same name.
//!
//! # The protocol
//!
//! The header's `life` word holds a state (bits 62..64) and a generation (the bits below):
//!
//! | state      | meaning                                             | next                         |
//! | ---------- | --------------------------------------------------- | ---------------------------- |
//! | `IDLE`     | in use or not, nobody is removing it                | `REMOVING` (a cleaner)       |
//! | `REMOVING` | a cleaner is checking the user table                | `REMOVED` (that cleaner), `IDLE` (it found a user, or an attacher cancelled) |
//! | `REMOVED`  | decided: nobody attaches any more; the name goes    | —                            |
//!
//! 1. A **cleaner** claims the segment with one CAS `IDLE g → REMOVING g+1` (or takes over a
//!    claim whose recorded cleaner, the `cleaner` word, is none, dead or itself, the same way; a
//!    live other one's claim makes it answer [`Removal::Busy`]), then reads every user slot and
//!    the overflow count.
//! 2. If it finds a live or unknown user it puts `IDLE g+1` back and answers
//!    [`Removal::InUse`]. Otherwise it **confirms** with one CAS `REMOVING g+1 → REMOVED g+1`.
//!    A cleaner that does not confirm clears its `cleaner` record (CAS from its own word), so a
//!    record left by a lost claim never makes later cleaners answer "busy".
//! 3. An **attacher** stores its user slot first, then reads `life`: `IDLE` → attached;
//!    `REMOVING g` → it cancels with a CAS `REMOVING g → IDLE g`, which makes that cleaner's
//!    confirmation fail; `REMOVED` → it lets go and looks the name up again (`open` reports
//!    [`Error::NotFound`], `open_or_create` creates a fresh segment).
//!
//! Both sides use `SeqCst`, with a `SeqCst` fence between the write and the read: of
//! "attacher stores its slot, then reads `life`" and "cleaner writes `life`, then reads the
//! slots", at least one sees the other's write. The steps run on plain words in
//! [`life`](super::life), which `loom-tests/segment_life.rs` model-checks (attacher against
//! cleaner, two cleaners, a cleaner or an attacher killed mid-way). So a segment that
//! gains a user during the check is never removed, and since the confirmation is a CAS on a
//! generation that only that claim produced, exactly one cleaner confirms.
//!
//! 4. **Unlinking** the name is done only for a `REMOVED` segment, and only if the name still
//!    names the very file that was checked: the remover opens the name, compares device and
//!    inode with the mapping's, takes an exclusive `flock` on it (bounded wait), compares the
//!    name's device and inode once more, and unlinks. Every remover of a file takes that file's
//!    lock, so two removers (the confirming cleaner and a helper finishing the job of a cleaner
//!    that died) never both unlink, and a new segment linked under the name after the first
//!    unlink is never removed by the second. ([`Removal::Removed`] is answered by the one that
//!    unlinked.) Something outside shmkit that unlinks and re-creates names (`rm`) is not bound
//!    by this.
//!
//! Test points ([`crate::hooks`], feature `test-hooks`, named by the segment's file name):
//! `segment.attach.claimed` (an attacher's slot is stored, `life` not yet read),
//! `segment.remove.claimed` (a cleaner holds `REMOVING`, has not read the slots),
//! `segment.remove.checked` (it found no user, has not confirmed),
//! `segment.remove.confirmed` (`REMOVED`, the name not yet unlinked) and
//! `segment.remove.locked` (the remover holds the file's lock, has not re-checked the name).

use super::life::{self, NoClaim};
use super::mapping::FileId;
use super::users::{self, hook_name, Table, Users};
use super::{named_path, Backing, Segment, SegmentOptions};
use crate::error::{Error, Result};
use crate::process;
use crate::sync::Deadline;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

/// What [`Segment::remove_if_stale`] did.
///
/// ```
/// use shmkit::{Removal, Segment};
///
/// # fn main() -> shmkit::Result<()> {
/// let name = format!("shmkit-doc-removal-{}", std::process::id());
/// let seg = Segment::create(&name, 1 << 16)?;
/// match Segment::remove_if_stale(&name)? {
///     Removal::InUse(users) => assert_eq!(users.live[0].pid, std::process::id()),
///     other => panic!("removed a segment in use: {other:?}"),
/// }
/// drop(seg);
/// assert_eq!(Segment::remove_if_stale(&name)?, Removal::Removed);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// This call removed the segment's name.
    Removed,
    /// The segment has live or unknown users (listed): not removed.
    InUse(Users),
    /// Another live process (`cleaner_pid`) is deciding about this segment right now: not
    /// removed by this call.
    Busy {
        /// The pid of that cleaner (0 if it could not be told).
        cleaner_pid: u32,
    },
    /// There was nothing to remove: no such name, or another cleaner removed it first.
    Gone,
}

/// What a cleaner decided about one mapped segment.
pub(crate) enum Decision {
    /// This cleaner confirmed the removal (`REMOVED`): it must unlink the name.
    Stale,
    /// Someone else had already decided to remove it.
    AlreadyRemoved,
    /// It has users.
    InUse(Users),
    /// Another live cleaner (this pid; 0 if unknown) is deciding.
    Busy(u32),
}

/// Runs steps 1–2 of the protocol (module docs) on table `t` (the steps themselves are in
/// [`life`](super::life)).
pub(crate) fn decide(t: Table<'_>, path: &Path) -> Result<Decision> {
    let w = t.words();
    let alive = &process::word_alive;
    let claim = match w.claim_removal(process::my_word(), alive) {
        Ok(Ok(claim)) => claim,
        Ok(Err(NoClaim::AlreadyRemoved)) => return Ok(Decision::AlreadyRemoved),
        Ok(Err(NoClaim::Busy(c))) => return Ok(Decision::Busy(process::word_pid(c))),
        Err(d) => return Err(Error::corrupted(path, d.to_string())),
    };
    crate::hooks::at_named("segment.remove.claimed", hook_name(path));
    let held = || t.overflow_held();
    let found = w.scan(alive, &held);
    if found.is_stale() {
        crate::hooks::at_named("segment.remove.checked", hook_name(path));
    }
    Ok(match w.decide_with(claim, found, alive, &held) {
        life::Decision::Stale => {
            crate::hooks::at_named("segment.remove.confirmed", hook_name(path));
            Decision::Stale
        }
        life::Decision::InUse(scan) => Decision::InUse(users::users_of(scan)),
        life::Decision::Busy(c) => Decision::Busy(process::word_pid(c)),
    })
}

/// Unlinks `path` if it names file `id` (step 4 of the module docs); `Ok(false)` if it is gone
/// or names another file.
pub(crate) fn unlink_if_same(path: &Path, id: FileId, wait: Duration) -> Result<bool> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        // A symbolic link (ELOOP) or anything else at the name is not our file.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), path, e)),
    };
    let same = |m: &std::fs::Metadata| (m.dev(), m.ino()) == id;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), path, e))?;
    if !same(&meta) {
        return Ok(false);
    }
    let deadline = Deadline::after(Some(wait));
    loop {
        // SAFETY: flock on a descriptor we own; it reads only its integer arguments.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(Error::io(format!("locking {}", path.display()), path, e));
        }
        if deadline.expired() {
            return Err(Error::io(
                format!(
                    "locking {} (another remover held it for {wait:?})",
                    path.display()
                ),
                path,
                e,
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    crate::hooks::at_named("segment.remove.locked", hook_name(path));
    match path.symlink_metadata() {
        Ok(m) if same(&m) => {}
        _ => return Ok(false),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), path, e)),
    }
    // `file` closes here, releasing the lock.
}

/// Decides about a mapped segment (table `t`, file `id`, name `path`) and, if it is stale,
/// removes its name.
pub(crate) fn remove_mapped(
    t: Table<'_>,
    path: &Path,
    id: FileId,
    wait: Duration,
) -> Result<Removal> {
    Ok(match decide(t, path)? {
        Decision::Stale | Decision::AlreadyRemoved => {
            if unlink_if_same(path, id, wait)? {
                Removal::Removed
            } else {
                Removal::Gone
            }
        }
        Decision::InUse(u) => Removal::InUse(u),
        Decision::Busy(pid) => Removal::Busy { cleaner_pid: pid },
    })
}

impl SegmentOptions {
    /// Removes the named segment `name` if it is stale (see [`Segment::remove_if_stale`]),
    /// opening it with these options' trust rules and wait.
    pub fn remove_if_stale(&self, name: &str) -> Result<Removal> {
        let path = named_path(name)?;
        self.remove_path_if_stale(&path, Backing::Named)
    }

    /// [`remove_if_stale`](Self::remove_if_stale) for a file-backed segment at `path`.
    pub fn remove_file_if_stale(&self, path: impl AsRef<Path>) -> Result<Removal> {
        self.remove_path_if_stale(path.as_ref(), Backing::File)
    }

    fn remove_path_if_stale(&self, path: &Path, backing: Backing) -> Result<Removal> {
        // The cleaner only looks: it must not count as a user itself.
        let opts = self.clone().register(false);
        let seg = match opts.open_at(path.to_path_buf(), backing) {
            Ok(seg) => seg,
            Err(Error::NotFound { .. }) => return Ok(Removal::Gone),
            Err(e) => return Err(e),
        };
        remove_mapped(
            seg.inner.table(),
            path,
            seg.inner.attach.file_id(),
            self.wait,
        )
    }
}

impl Segment {
    /// Removes the named segment `name` from `/dev/shm` if no live process uses it ("stale":
    /// nobody in its user table is alive, and no unknown user is counted), and tells what
    /// happened. Of several processes calling this at once, exactly one removes the segment;
    /// a process that attaches during the check keeps it from being removed; a segment
    /// created under the same name in the meantime is never removed. See
    /// [the guide](crate::guide::segments) for the protocol.
    ///
    /// ```
    /// use shmkit::{Removal, Segment};
    ///
    /// # fn main() -> shmkit::Result<()> {
    /// let name = format!("shmkit-doc-stale-{}", std::process::id());
    /// let seg = Segment::create(&name, 1 << 16)?;
    /// // In use by this process: kept.
    /// assert!(matches!(Segment::remove_if_stale(&name)?, Removal::InUse(_)));
    /// drop(seg);
    /// assert_eq!(Segment::remove_if_stale(&name)?, Removal::Removed);
    /// assert_eq!(Segment::remove_if_stale(&name)?, Removal::Gone);
    /// # Ok(()) }
    /// ```
    pub fn remove_if_stale(name: &str) -> Result<Removal> {
        SegmentOptions::new().remove_if_stale(name)
    }

    /// Removes the named segment `name` from `/dev/shm` whatever its users (forced removal).
    /// Processes that have it mapped keep using it; processes that open the name afterwards
    /// get a new segment (or [`Error::NotFound`]), so use it only when the users are to be
    /// abandoned. A shmkit segment of this format is first marked removed (so that a racing
    /// `open_or_create` does not join it) and its name unlinked only if it still names that
    /// file; anything else under the name (another format version, a file that is not a
    /// segment) is simply unlinked.
    pub fn remove(name: &str) -> Result<()> {
        let path = named_path(name)?;
        let opts = SegmentOptions::new()
            .register(false)
            .wait_timeout(Duration::from_millis(100));
        if let Ok(seg) = opts.open_at(path.clone(), Backing::Named) {
            seg.inner.table().words().condemn();
            return if unlink_if_same(&path, seg.inner.attach.file_id(), opts.wait)? {
                Ok(())
            } else {
                // Someone else removed it meanwhile (and maybe made a new one under the name,
                // which is not the segment this call looked at: left alone).
                Err(Error::NotFound { path })
            };
        }
        std::fs::remove_file(&path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), &path, e))
    }

    /// Removes this segment's name (named or file-backed; nothing for anonymous segments),
    /// whatever its users, if the name still names this segment's file: a segment re-created
    /// under the same name by someone else is left alone ([`Error::NotFound`] then). Mappings
    /// stay valid; new `open`s fail with [`Error::NotFound`], and `open_or_create` makes a
    /// fresh segment.
    pub fn unlink(&self) -> Result<()> {
        let Some(path) = &self.inner.path else {
            return Ok(());
        };
        self.inner.table().words().condemn();
        if unlink_if_same(path, self.inner.attach.file_id(), self.inner.wait)? {
            Ok(())
        } else {
            Err(Error::NotFound {
                path: path.to_path_buf(),
            })
        }
    }
}
