//! Publishing a new segment file: it appears under its name only once it is complete, and it is
//! never built under a name another process could predict (and squat, making `create` fail).
//!
//! 1. **Unnamed** (the normal way on Linux): the file is opened with `O_TMPFILE` in the target
//!    directory (tmpfs, ext4, xfs, btrfs … support it), so it has no name at all while it is
//!    built; it is then linked to its name with `linkat("/proc/self/fd/N", name,
//!    AT_SYMLINK_FOLLOW)`, which fails with `EEXIST` if the name exists. A creator killed
//!    mid-way leaves nothing behind (the kernel frees an unnamed file with its last descriptor).
//! 2. **Random name** (where the file system has no `O_TMPFILE` or `/proc` is not mounted): the
//!    file is built as `.<name>.shmkit-init.<pid>.<64 random bits>` (from `getrandom`, else
//!    `/dev/urandom`), created with `O_CREAT|O_EXCL|O_NOFOLLOW` (a name taken by chance is
//!    retried with new random bits), then `link(2)`ed to its name and unlinked. A creator killed
//!    mid-way leaves this file behind (`shmkit ls --all` shows it, `shmkit rm` removes it).
//!
//! Either way `O_NOFOLLOW`/`O_EXCL` semantics hold: nothing is ever opened through a link a
//! squatter planted, and an existing name is never replaced.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What marks a temporary file of the random-name way: `.<name>` + this + `<pid>.<random>`.
const DRAFT_MARK: &str = ".shmkit-init.";

/// Attempts at a random name before giving up (each collision is a 2⁻⁶⁴ chance, or a squatter
/// who can read our random numbers).
const NAME_ATTEMPTS: u32 = 16;

/// A segment file being built, not yet under its name.
pub(crate) struct Draft {
    file: File,
    /// The temporary name, when the random-name way was taken (removed on drop).
    tmp: Option<PathBuf>,
}

impl Draft {
    /// Creates the file that will become `path`, with `mode` (the umask applies here; the
    /// caller sets the exact mode with `fchmod`): unnamed if `unnamed` and the system allows,
    /// else under a random name (see the module docs).
    pub(crate) fn new(path: &Path, mode: u32, unnamed: bool) -> Result<Draft> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let base = path
            .file_name()
            .ok_or_else(|| Error::InvalidName {
                name: path.display().to_string(),
                reason: "a segment path must end in a file name",
            })?
            .to_string_lossy();
        if unnamed && Path::new("/proc/self/fd").is_dir() {
            match OpenOptions::new()
                .read(true)
                .write(true)
                .mode(mode)
                .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
                .open(dir)
            {
                Ok(file) => return Ok(Draft { file, tmp: None }),
                // No O_TMPFILE here: an old kernel (EISDIR) or a file system without it.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EISDIR | libc::EOPNOTSUPP | libc::EINVAL)
                    ) => {}
                Err(e) => {
                    return Err(Error::io(
                        format!("creating a file in {}", dir.display()),
                        path,
                        e,
                    ))
                }
            }
        }
        let mut attempts = 0;
        loop {
            let tmp = dir.join(format!(
                ".{base}{DRAFT_MARK}{}.{}",
                std::process::id(),
                random_u64()
            ));
            match OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(file) => {
                    return Ok(Draft {
                        file,
                        tmp: Some(tmp),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    attempts += 1;
                    if attempts >= NAME_ATTEMPTS {
                        // Not AlreadyExists: that would say the segment's name is taken.
                        return Err(Error::Io {
                            context: format!(
                                "creating a temporary file in {} ({NAME_ATTEMPTS} random names \
                                 were all taken)",
                                dir.display()
                            ),
                            source: e,
                        });
                    }
                }
                Err(e) => return Err(Error::io(format!("creating {}", tmp.display()), path, e)),
            }
        }
    }

    /// The file being built.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The file's temporary name, if the random-name way was taken.
    #[cfg(test)]
    pub(crate) fn tmp(&self) -> Option<&Path> {
        self.tmp.as_deref()
    }

    /// Gives the complete file its name `path`; [`Error::AlreadyExists`] if the name exists
    /// (another creator was first, or anything else is there).
    pub(crate) fn publish(&self, path: &Path) -> Result<()> {
        let r = match &self.tmp {
            Some(tmp) => std::fs::hard_link(tmp, path),
            None => {
                let from = format!("/proc/self/fd/{}\0", self.file.as_raw_fd());
                let to =
                    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                        Error::InvalidName {
                            name: path.display().to_string(),
                            reason: "a segment path must not contain NUL",
                        }
                    })?;
                // SAFETY: both paths are NUL-terminated strings that outlive the call; linkat
                // reads them and touches no other memory of ours.
                let rc = unsafe {
                    libc::linkat(
                        libc::AT_FDCWD,
                        from.as_ptr().cast(),
                        libc::AT_FDCWD,
                        to.as_ptr(),
                        libc::AT_SYMLINK_FOLLOW,
                    )
                };
                if rc == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            }
        };
        r.map_err(|e| Error::io(format!("publishing {}", path.display()), path, e))
    }
}

impl Drop for Draft {
    fn drop(&mut self) {
        if let Some(tmp) = &self.tmp {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// A temporary file of a segment being created the random-name way (where the file system has
/// no `O_TMPFILE`, segments are built under a random name and then linked to their own):
/// `.<name>.shmkit-init.<pid>.<random>` in the segment's directory. A creator
/// killed mid-way leaves it behind; `shmkit ls --all` shows such files and `shmkit rm`/`gc`
/// remove those whose creator is dead.
///
/// ```
/// use shmkit::DraftFile;
///
/// let d = DraftFile::parse(".jobs.shmkit-init.4242.1234567890").unwrap();
/// assert_eq!((d.segment.as_str(), d.creator_pid), ("jobs", 4242));
/// assert!(DraftFile::parse("jobs").is_none());
/// assert!(DraftFile::parse(".jobs.shmkit-init.x.1").is_none());
/// // This process is alive; pid 0 never is.
/// let me = format!(".jobs.shmkit-init.{}.7", std::process::id());
/// assert!(DraftFile::parse(&me).unwrap().creator_alive());
/// assert!(!DraftFile::parse(".jobs.shmkit-init.0.7").unwrap().creator_alive());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftFile {
    /// The name the segment was to be published under.
    pub segment: String,
    /// The creating process, as its pid namespace numbers it.
    pub creator_pid: u32,
}

impl DraftFile {
    /// Reads a file name (not a path) of a directory such as `/dev/shm`; `None` if it is not a
    /// shmkit temporary file.
    pub fn parse(file_name: &str) -> Option<DraftFile> {
        let rest = file_name.strip_prefix('.')?;
        let at = rest.rfind(DRAFT_MARK)?;
        let (pid, n) = rest[at + DRAFT_MARK.len()..].split_once('.')?;
        n.parse::<u64>().ok()?;
        Some(DraftFile {
            segment: rest[..at].to_string(),
            creator_pid: pid.parse().ok()?,
        })
    }

    /// Whether the creating process still runs (a zombie counts as dead). A creator in another
    /// pid namespace cannot be told by its pid: such a file may be judged wrongly, which is why
    /// the tools remove only files of dead creators, and only on request.
    pub fn creator_alive(&self) -> bool {
        crate::process::pid_alive(self.creator_pid)
    }
}

/// 64 random bits from the kernel (`getrandom`, else `/dev/urandom`); if both fail, the clock
/// mixed with a counter (still unique in this process, merely guessable).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: the buffer is 8 writable bytes that outlive the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(b);
    }
    if let Ok(mut f) = File::open("/dev/urandom") {
        if std::io::Read::read_exact(&mut f, &mut b).is_ok() {
            return u64::from_ne_bytes(b);
        }
    }
    use crate::sync::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (t ^ N.fetch_add(1, Ordering::Relaxed).rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("shmkit-publish-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        d
    }

    #[test]
    fn both_methods_publish_once_and_leave_nothing_else() {
        for unnamed in [true, false] {
            for dir in [scratch(&format!("{unnamed}")), PathBuf::from("/dev/shm")] {
                let path = dir.join(format!("shmkit-publish-{unnamed}-{}", std::process::id()));
                let _ = std::fs::remove_file(&path);
                let d = Draft::new(&path, 0o600, unnamed).unwrap();
                // An unnamed draft has no name at all; a named one a random, unguessable one.
                assert_eq!(d.tmp().is_none(), unnamed);
                let d2 = Draft::new(&path, 0o600, unnamed).unwrap();
                let tmps: Vec<PathBuf> = [d.tmp(), d2.tmp()]
                    .into_iter()
                    .flatten()
                    .map(Path::to_path_buf)
                    .collect();
                if !unnamed {
                    assert_ne!(tmps[0], tmps[1]);
                }
                std::io::Write::write_all(&mut d.file(), b"complete").unwrap();
                d.publish(&path).unwrap();
                assert!(matches!(
                    d2.publish(&path),
                    Err(Error::AlreadyExists { .. })
                ));
                drop((d, d2));
                assert!(tmps.iter().all(|t| !t.exists()), "{tmps:?} left behind");
                assert_eq!(std::fs::read(&path).unwrap(), b"complete");
                std::fs::remove_file(&path).unwrap();
                if dir != Path::new("/dev/shm") {
                    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
                    assert!(left.is_empty(), "unnamed {unnamed}: left {left:?}");
                    std::fs::remove_dir(&dir).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_random_name_draft_parses_back() {
        let dir = scratch("parse");
        let path = dir.join("seg.with.dots");
        let d = Draft::new(&path, 0o600, false).unwrap();
        let name = d.tmp().unwrap().file_name().unwrap().to_str().unwrap();
        let parsed = DraftFile::parse(name).unwrap();
        assert_eq!(parsed.segment, "seg.with.dots");
        assert_eq!(parsed.creator_pid, std::process::id());
        assert!(parsed.creator_alive());
        drop(d);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn random_names_differ() {
        let a = random_u64();
        let b = random_u64();
        assert_ne!(a, b);
    }
}
