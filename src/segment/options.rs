//! [`SegmentOptions`]: how segments are created and opened (mode, directory size, waits, whose
//! segments to trust, whether to register as a user, removal on the last detach).

use super::header::{self, FLAG_REMOVE_ON_LAST_DETACH};
use super::mapping::{self, Trust};
use super::{named_path, removal, Backing, Segment, DEFAULT_DIR_CAPACITY, DEFAULT_WAIT};
use crate::error::{Error, Result};
use crate::sync::Deadline;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Options for creating and opening segments; [`Segment`]'s constructors use the defaults.
///
/// ```
/// use shmkit::SegmentOptions;
/// use std::os::unix::fs::PermissionsExt;
/// use std::time::Duration;
///
/// # fn main() -> shmkit::Result<()> {
/// let name = format!("shmkit-doc-options-{}", std::process::id());
/// let opts = SegmentOptions::new()
///     .mode(0o640) // readable by the group too (exactly this, whatever the umask)
///     .dir_capacity(256) // room for 256 named objects
///     .wait_timeout(Duration::from_secs(1)); // give up on a stuck creator after 1 s
/// let seg = opts.create(&name, 1 << 20)?;
/// assert_eq!(seg.dir_capacity(), 256);
/// let mode = std::fs::metadata(seg.path().unwrap()).unwrap().permissions().mode();
/// assert_eq!(mode & 0o777, 0o640);
///
/// // The same options open it (the mode and capacity only apply to creation).
/// let again = opts.open(&name)?;
/// assert_eq!(again.size(), seg.size());
/// seg.unlink()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    mode: u32,
    dir_capacity: u32,
    pub(super) wait: Duration,
    pub(super) trust: Trust,
    pub(super) register: bool,
    remove_on_last_detach: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            mode: 0o600,
            dir_capacity: DEFAULT_DIR_CAPACITY,
            wait: DEFAULT_WAIT,
            trust: Trust::default(),
            register: true,
            remove_on_last_detach: false,
        }
    }
}

impl SegmentOptions {
    /// The defaults: mode 0600, 64 directory entries, waits bounded at 5 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// File mode of segments this creates (exactly this, whatever the umask). Default 0600.
    ///
    /// A mode that lets the group or others write (0660, 0666) makes a deliberately shared
    /// segment: openers, this process included, must then accept it with
    /// [`allow_shared(true)`](Self::allow_shared) (and other users' processes with
    /// [`trust_owner`](Self::trust_owner) naming the creator's uid). A group-readable 0640
    /// segment needs no opt-in.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o7777;
        self
    }

    /// How many named objects a new segment can hold. Default 64.
    pub fn dir_capacity(mut self, entries: u32) -> Self {
        self.dir_capacity = entries;
        self
    }

    /// How long to wait for another process that is creating the segment or an object in it
    /// before giving up with an error. Default 5 s.
    pub fn wait_timeout(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Also accept segments owned by the user `uid` (may be given several times).
    ///
    /// By default `open`, `open_file` and the existing-file path of `open_or_create` and
    /// `file` accept only segments owned by this process's effective uid or by root, and
    /// refuse others with [`Error::UntrustedSegment`]: the owner of a segment can rewrite
    /// every object in it and truncate it, which makes every process using the lost pages
    /// take `SIGBUS`. Trust another user only for a segment you share with it on purpose.
    pub fn trust_owner(mut self, uid: u32) -> Self {
        if !self.trust.owners.contains(&uid) {
            self.trust.owners.push(uid);
        }
        self
    }

    /// Accept segments whose mode lets their group or others write (default `false`: they
    /// are refused with [`Error::UntrustedSegment`], since any process of those users could
    /// rewrite the objects or truncate the file). Set it for a segment shared on purpose,
    /// e.g. one created with [`mode(0o660)`](Self::mode) for a group.
    pub fn allow_shared(mut self, allow: bool) -> Self {
        self.trust.shared = allow;
        self
    }

    /// Whether this process records itself in the segment's user table (default `true`; see
    /// [`Segment::users`]). Tools that only look at a segment (`shmkit ls`, `stat`, `watch`)
    /// map it with `false`, so that they neither count as users nor keep a stale segment from
    /// being collected. A segment mapped without registering may be removed under it by
    /// `shmkit gc` (the mapping stays valid).
    pub fn register(mut self, register: bool) -> Self {
        self.register = register;
        self
    }

    /// Mark the segment so that the last process to detach from it removes its name (default
    /// `false`). The mark lives in the segment's header: set by whoever creates or opens it
    /// with this option, it stays for the segment's life. "Last" is decided exactly like
    /// [`Segment::remove_if_stale`]: when a process drops its last mapping, it removes the
    /// segment if no other live (or unknown) user is recorded; a segment re-created under the
    /// same name by someone else in the meantime is never removed (the name is unlinked only
    /// if it still names the very file that was mapped). Processes that map without
    /// registering do not count.
    pub fn remove_on_last_detach(mut self, remove: bool) -> Self {
        self.remove_on_last_detach = remove;
        self
    }

    /// Creates the named segment `name` in `/dev/shm`; fails if it exists.
    pub fn create(&self, name: &str, size: u64) -> Result<Segment> {
        let path = named_path(name)?;
        self.create_at(path, size, Backing::Named)
    }

    /// Opens the named segment `name`.
    pub fn open(&self, name: &str) -> Result<Segment> {
        self.open_at(named_path(name)?, Backing::Named)
    }

    /// Opens the named segment `name`, creating it with `size` bytes if it does not exist.
    /// Of many processes racing here exactly one creates; the others open its segment. An
    /// existing segment is opened whatever its size.
    pub fn open_or_create(&self, name: &str, size: u64) -> Result<Segment> {
        self.open_or_create_at(named_path(name)?, size, Backing::Named)
    }

    /// Opens the file-backed segment at `path`, creating it with `size` bytes if missing.
    pub fn file(&self, path: impl AsRef<Path>, size: u64) -> Result<Segment> {
        self.open_or_create_at(path.as_ref().to_path_buf(), size, Backing::File)
    }

    /// Opens the existing file-backed segment at `path`.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<Segment> {
        self.open_at(path.as_ref().to_path_buf(), Backing::File)
    }

    /// Creates an anonymous segment, shared with children `fork()`ed after this call.
    pub fn anonymous(&self, size: u64) -> Result<Segment> {
        let g = header::plan(size, self.dir_capacity as u64)?;
        let (map, id) = mapping::create_anonymous(&g, 0)?;
        let path = PathBuf::from("<anonymous>");
        Segment::from_map(
            map,
            g,
            None,
            Backing::Anonymous,
            self.wait,
            id,
            self.register,
        )?
        .ok_or(Error::NotFound { path })
    }

    fn flags(&self) -> u64 {
        if self.remove_on_last_detach {
            FLAG_REMOVE_ON_LAST_DETACH
        } else {
            0
        }
    }

    fn create_at(&self, path: PathBuf, size: u64, backing: Backing) -> Result<Segment> {
        let g = header::plan(size, self.dir_capacity as u64)?;
        let (draft, map, id) = mapping::create_file(&path, &g, self.mode, self.flags())?;
        // Registered before the name exists, so no cleaner ever sees it without its creator.
        let seg = Segment::from_map(
            map,
            g,
            Some(path.clone()),
            backing,
            self.wait,
            id,
            self.register,
        )?
        .ok_or_else(|| Error::NotFound { path: path.clone() })?;
        // On failure (the name is taken) `seg` drops: its registration goes with it, and its
        // removal on the last detach, if marked, finds the name naming another file and keeps it.
        draft.publish(&path)?;
        Ok(seg)
    }

    pub(super) fn open_at(&self, path: PathBuf, backing: Backing) -> Result<Segment> {
        let (map, g, id) = mapping::open_file(&path, self.wait, &self.trust)?;
        match Segment::from_map(
            map,
            g,
            Some(path.clone()),
            backing,
            self.wait,
            id,
            self.register,
        )? {
            Some(seg) => {
                if self.remove_on_last_detach {
                    seg.mark_remove_on_last_detach();
                }
                Ok(seg)
            }
            // A cleaner decided to remove it: help it take the name away (only if the name
            // still names this file), and report it as gone.
            None => {
                let _ = removal::unlink_if_same(&path, id, self.wait);
                Err(Error::NotFound { path })
            }
        }
    }

    fn open_or_create_at(&self, path: PathBuf, size: u64, backing: Backing) -> Result<Segment> {
        // Validate the arguments before touching the file system.
        header::plan(size, self.dir_capacity as u64)?;
        // A segment being removed makes `open` report NotFound while its name may still exist
        // for a moment (until its cleaner unlinks it): bounded by the wait.
        let deadline = Deadline::after(Some(self.wait));
        loop {
            let opened = self.open_at(path.clone(), backing);
            match opened {
                Err(Error::NotFound { .. }) => {}
                other => return other,
            }
            match self.create_at(path.clone(), size, backing) {
                // Lost the race to another creator: open theirs.
                Err(Error::AlreadyExists { .. }) if !deadline.expired() => {
                    std::thread::yield_now();
                    continue;
                }
                other => return other,
            }
        }
    }
}
