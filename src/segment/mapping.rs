//! Creating, opening and mapping the files behind segments.
//!
//! Creation never exposes a half-initialized segment under its final name: the creator builds the
//! segment in a file nobody can find or predict (an `O_TMPFILE` file with no name at all, or a
//! random temporary name: see [`publish`](super::publish)), sets its mode with `fchmod` (so the
//! umask does not apply), sizes it, writes the header, and then links it to the final name, which
//! fails with `EEXIST` if another creator got there first. So of many concurrent
//! `open_or_create` calls exactly one creates, and every other one opens a complete segment.
//!
//! Opening checks the file's owner and mode before reading it ([`Trust`]); a file that stays
//! all zero (nobody's segment in the making) is reported after [`ZERO_GRACE`].

use crate::error::{Error, Result};
use crate::segment::header::{self, Geometry, Header, State};
use crate::segment::publish::Draft;
use crate::sync::{Deadline, Spin};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Maps `len` bytes of `file` shared, read-write.
pub(crate) fn map(file: &File, len: u64, path: &Path) -> Result<MmapRaw> {
    MmapOptions::new()
        .len(len as usize)
        .map_raw(file)
        .map_err(|e| Error::io(format!("mapping {}", path.display()), path, e))
}

fn header_of(map: &MmapRaw) -> &Header {
    // SAFETY: every mapping is at least HEADER_SIZE bytes (checked by callers before mapping),
    // page-aligned (so aligned for Header), and Header is made only of AtomicU64s, valid for every
    // bit pattern and sound to share between processes through a shared reference.
    unsafe { &*(map.as_ptr() as *const Header) }
}

/// A file's device and inode: which file a mapping is of (the user registry's key, and what a
/// removal checks a name against before unlinking it).
pub(crate) type FileId = (u64, u64);

fn file_id(file: &File, path: &Path) -> Result<FileId> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), path, e))?;
    Ok((meta.dev(), meta.ino()))
}

/// Builds a new segment for `path` with `mode`, geometry `g` and header `flags`, complete but
/// not yet under its name: the caller registers in it, then publishes the draft (which fails
/// with `AlreadyExists` if the name is taken).
pub(crate) fn create_file(
    path: &Path,
    g: &Geometry,
    mode: u32,
    flags: u64,
) -> Result<(Draft, MmapRaw, FileId)> {
    let draft = Draft::new(path, mode, true)?;
    let file = draft.file();
    // The umask applied to open's mode; set exactly what was asked for.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(format!("setting the mode of {}", path.display()), path, e))?;
    file.set_len(g.size)
        .map_err(|e| Error::io(format!("sizing {}", path.display()), path, e))?;
    let map = map(file, g.size, path)?;
    header_of(&map).initialize(g, flags);
    let id = file_id(file, path)?;
    Ok((draft, map, id))
}

/// Whose segments an opener uses (from [`SegmentOptions`](super::SegmentOptions)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trust {
    /// Owners trusted besides this process's effective uid and root.
    pub owners: Vec<u32>,
    /// Whether group- or world-writable segments are accepted.
    pub shared: bool,
}

impl Trust {
    /// Checks the owner and mode of an opened segment file (from `fstat` on its descriptor, so
    /// what is checked is what gets mapped).
    pub(crate) fn check(&self, meta: &std::fs::Metadata, path: &Path) -> Result<()> {
        let owner = meta.uid();
        let mode = meta.mode() & 0o7777;
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        let reason = if owner != me && owner != 0 && !self.owners.contains(&owner) {
            "owned by another user"
        } else if mode & 0o022 != 0 && !self.shared {
            "writable by group or others"
        } else {
            return Ok(());
        };
        Err(Error::UntrustedSegment {
            path: path.to_path_buf(),
            owner_uid: owner,
            mode,
            reason,
        })
    }
}

/// Opens an existing segment at `path` if `trust` accepts its owner and mode, waiting up to
/// `wait` for a creator to finish.
pub(crate) fn open_file(
    path: &Path,
    wait: Duration,
    trust: &Trust,
) -> Result<(MmapRaw, Geometry, FileId)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => Error::InvalidName {
                name: path.display().to_string(),
                reason: "is a symbolic link; shmkit does not follow links to segments",
            },
            _ => Error::io(format!("opening {}", path.display()), path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), path, e))?;
    if !meta.is_file() {
        return Err(Error::NotAShmkitSegment {
            path: path.to_path_buf(),
            found_magic: 0,
        });
    }
    // Before reading a byte of it: whose is it?
    trust.check(&meta, path)?;
    let len = meta.len();
    if len < header::HEADER_SIZE {
        // Too short for a header: a truncated segment if what is there starts like one,
        // otherwise not ours at all.
        let mut b = [0u8; 8];
        let n = (len as usize).min(8);
        use std::io::Read;
        (&file)
            .read_exact(&mut b[..n])
            .map_err(|e| Error::io(format!("reading {}", path.display()), path, e))?;
        return Err(if b[..n] == header::MAGIC.to_le_bytes()[..n] {
            Error::Truncated {
                path: path.to_path_buf(),
                expected: header::HEADER_SIZE,
                actual: len,
            }
        } else {
            Error::NotAShmkitSegment {
                path: path.to_path_buf(),
                found_magic: u64::from_le_bytes(b),
            }
        });
    }
    let head = map(&file, header::HEADER_SIZE, path)?;
    // When the file last changed (data or status: ftruncate, chmod, link), for telling a file
    // that stays all zero from one a creator is about to fill.
    let changed = [meta.modified().ok(), meta.created().ok()]
        .into_iter()
        .flatten()
        .chain(std::time::UNIX_EPOCH.checked_add(Duration::new(
            meta.ctime().max(0) as u64,
            meta.ctime_nsec().clamp(0, 999_999_999) as u32,
        )))
        .max();
    let geometry = wait_ready(header_of(&head), len, path, wait, changed)?;
    drop(head);
    let map = map(&file, geometry.size, path)?;
    // Validate again on the full mapping: the file may have been replaced between the two maps
    // only if someone renamed over it, and then this catches a different header.
    match header::validate(header_of(&map), len, path)? {
        State::Ready(g) if g == geometry => Ok((map, g, (meta.dev(), meta.ino()))),
        _ => Err(Error::corrupted(
            path,
            "header changed while it was being opened",
        )),
    }
}

/// How long a file with no creator recorded may stay all zero before it is reported as not a
/// segment: a creator records itself first of all, right after sizing the file (and shmkit's
/// own creators publish a name only once the header is complete, so they never show this state
/// at all).
pub(crate) const ZERO_GRACE: Duration = Duration::from_millis(200);

fn wait_ready(
    h: &Header,
    len: u64,
    path: &Path,
    wait: Duration,
    changed: Option<std::time::SystemTime>,
) -> Result<Geometry> {
    let deadline = Deadline::after(Some(wait));
    // A file unchanged for longer than the grace is judged at once; a fresh one gets the grace.
    let fresh_for = changed
        .and_then(|t| t.elapsed().ok())
        .map_or(ZERO_GRACE, |age| ZERO_GRACE.saturating_sub(age));
    let zero_deadline = Deadline::after(Some(fresh_for.min(wait)));
    let mut spin = Spin::new();
    loop {
        match header::validate(h, len, path)? {
            State::Ready(g) => return Ok(g),
            State::Initializing { word, start } => {
                let pid = crate::process::word_pid(word);
                if word == 0 && start == 0 && zero_deadline.expired() {
                    // No creator ever recorded itself: all zero is not a segment; the magic
                    // without a creator is no state a creator leaves.
                    let magic = h.magic.load(crate::sync::Ordering::Relaxed);
                    return Err(if magic == 0 {
                        Error::NotAShmkitSegment {
                            path: path.to_path_buf(),
                            found_magic: 0,
                        }
                    } else {
                        Error::corrupted(
                            path,
                            "the header has the magic but no creator and is not ready",
                        )
                    });
                }
                if word != 0 && !header::creator_alive(word, start) {
                    return Err(Error::CreatorDied {
                        what: format!("segment {}", path.display()),
                        pid,
                    });
                }
                if deadline.expired() {
                    return Err(Error::InitializationNotFinished {
                        path: path.to_path_buf(),
                        creator_pid: pid,
                        waited: wait,
                    });
                }
                spin.snooze();
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// Creates an anonymous segment: a sealed memfd (it can be neither shrunk nor grown, so no peer
/// can make the others take SIGBUS), mapped shared, inherited by `fork()`ed children.
pub(crate) fn create_anonymous(g: &Geometry, flags: u64) -> Result<(MmapRaw, FileId)> {
    let path = PathBuf::from("<anonymous>");
    let name = c"shmkit-anonymous";
    // SAFETY: `name` is a valid NUL-terminated string; memfd_create returns a new fd or -1.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(Error::io(
            "creating an anonymous segment (memfd_create)",
            &path,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.set_len(g.size)
        .map_err(|e| Error::io("sizing an anonymous segment", &path, e))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on a memfd we own; the call reads only its integer argument.
    if unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) } != 0 {
        return Err(Error::io(
            "sealing an anonymous segment",
            &path,
            std::io::Error::last_os_error(),
        ));
    }
    let map = map(&file, g.size, &path)?;
    header_of(&map).initialize(g, flags);
    let id = file_id(&file, &path)?;
    Ok((map, id))
}
