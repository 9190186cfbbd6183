//! The one error type of shmkit.
//!
//! Every variant says what was found and, where it applies, what was expected, so that the
//! message alone tells a user what to do.

mod carrier;

pub use carrier::{PopError, PushError, RecvError, SendError};

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// `Result` with shmkit's [`Error`].
///
/// A function that returns it can use `?` on every shmkit call:
///
/// ```
/// use shmkit::Segment;
///
/// fn bump(seg: &Segment, name: &str) -> shmkit::Result<u64> {
///     let c = seg.counter(name)?;
///     c.inc();
///     Ok(c.load())
/// }
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// assert_eq!(bump(&seg, "runs")?, 1);
/// assert_eq!(bump(&seg, "runs")?, 2);
/// # Ok(()) }
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in shmkit.
///
/// Match on the variants a caller can act on; every variant also prints as one line that says
/// what was found and what was expected. The enum is `#[non_exhaustive]`: new variants may come
/// in minor versions, so a `match` needs a `_` arm.
///
/// ```
/// use shmkit::{Error, Segment};
///
/// # fn main() -> shmkit::Result<()> {
/// let name = format!("shmkit-doc-error-{}", std::process::id());
/// // Opening a segment nobody created.
/// match Segment::open(&name) {
///     Err(Error::NotFound { path }) => assert!(path.ends_with(&name)),
///     other => panic!("expected NotFound, got {other:?}"),
/// }
///
/// // Asking for an object under another type than it was created with.
/// let seg = Segment::create(&name, 1 << 16)?;
/// seg.counter("jobs")?;
/// let err = seg.value::<f64>("jobs", 0.0).unwrap_err();
/// assert!(matches!(&err, Error::TypeMismatch { name, .. } if name == "jobs"));
/// assert!(err.to_string().starts_with("object \"jobs\" is a counter"), "{err}");
/// seg.unlink()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The segment file does not exist.
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A segment of that name already exists (from [`Segment::create`](crate::Segment::create)).
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The file exists but is not a shmkit segment (its first bytes are not shmkit's magic).
    NotAShmkitSegment {
        /// The file.
        path: PathBuf,
        /// The first 8 bytes of the file, as a little-endian number (0 when the file is shorter).
        found_magic: u64,
    },
    /// The segment was written by another, incompatible format version of shmkit.
    VersionMismatch {
        /// The file.
        path: PathBuf,
        /// The format version this build reads.
        expected: u32,
        /// The format version in the header.
        found: u32,
    },
    /// The file is shorter than the header says the segment is (or than a header).
    Truncated {
        /// The file.
        path: PathBuf,
        /// The size the header (or the format) requires, in bytes.
        expected: u64,
        /// The file's real size, in bytes.
        actual: u64,
    },
    /// The header or the directory holds values that cannot be right.
    Corrupted {
        /// The file (or `<anonymous>`).
        path: PathBuf,
        /// What is wrong, naming the field and the value found.
        what: String,
    },
    /// The segment's creator is alive but has not finished initializing it within the wait.
    InitializationNotFinished {
        /// The file.
        path: PathBuf,
        /// The creator's process id, as recorded in the header (0 if not yet recorded).
        creator_pid: u32,
        /// How long we waited.
        waited: Duration,
    },
    /// The process that was creating the segment (or an object in it) died before finishing.
    CreatorDied {
        /// What was being created: a segment path or an object name.
        what: String,
        /// The dead creator's process id.
        pid: u32,
    },
    /// The operating system refused access.
    PermissionDenied {
        /// The file.
        path: PathBuf,
    },
    /// A segment or object name that shmkit does not accept.
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A segment size that shmkit does not accept.
    InvalidSize {
        /// The size asked for, in bytes.
        requested: u64,
        /// Why it was refused.
        reason: String,
    },
    /// An object exists under this name with another kind, element type or length.
    TypeMismatch {
        /// The object's name.
        name: String,
        /// What the caller asked for, e.g. `counter` or `value<f64>`.
        expected: String,
        /// What the directory holds.
        found: String,
    },
    /// No object of that name exists in the segment.
    ObjectNotFound {
        /// The name looked for.
        name: String,
    },
    /// The segment has no room left for the object.
    OutOfSpace {
        /// Bytes the object needs (with alignment).
        needed: u64,
        /// Bytes still free in the segment.
        available: u64,
    },
    /// Every entry of the segment's directory is taken.
    DirectoryFull {
        /// The directory's capacity (set at creation).
        capacity: u32,
    },
    /// A bounded wait ran out.
    Timeout {
        /// What was being waited for.
        what: &'static str,
        /// How long.
        waited: Duration,
    },
    /// The lock is permanently unusable: a holder declared its data beyond repair
    /// (`mark_not_recoverable`; POSIX `ENOTRECOVERABLE`), or a peer wrote that state into the
    /// shared lock word.
    NotRecoverable {
        /// What kind of lock.
        what: &'static str,
    },
    /// A `try_` call found the object busy.
    WouldBlock {
        /// What was busy.
        what: &'static str,
    },
    /// The calling thread already holds this (non-reentrant) lock; waiting would never end.
    WouldDeadlock {
        /// What kind of lock.
        what: &'static str,
    },
    /// A lock's previous owner died holding it and the guard handed over was dropped unrepaired
    /// (from converting a [`LockError::OwnerDied`](crate::LockError::OwnerDied)): the lock is
    /// unlocked but still inconsistent, and its next locker gets `OwnerDied` too.
    OwnerDied {
        /// What kind of lock.
        what: &'static str,
    },
    /// A bounded semaphore was released more often than acquired (Python's `ValueError` from
    /// `BoundedSemaphore.release`).
    SemaphoreOverRelease {
        /// The bound: free permits cannot exceed it.
        bound: u32,
    },
    /// The barrier is broken: a party timed out, or a party died without arriving. Every wait
    /// fails until the barrier is reset.
    BarrierBroken {
        /// The barrier's number of parties.
        parties: u32,
    },
    /// A seqlock writer died in the middle of a write (it left the write half done and still
    /// holds the writer lock). Readers still get the last complete value; the next writer takes
    /// over and repairs the object.
    WriterDied {
        /// The dead writer's process id.
        pid: u32,
    },
    /// Another live process (or thread) holds the seqlock's writer lock (from a `try_` call).
    WriterBusy {
        /// The holder's process id.
        pid: u32,
    },
    /// A writer guard inherited through `fork()`: the lock it stands for is held by the parent
    /// process, so the forked child may not write through its copy (the write did nothing).
    /// Take a writer of the child's own instead.
    InheritedGuard {
        /// What the guard locks, e.g. `the seqlock writer lock`.
        what: &'static str,
    },
    /// An index past the end of an array.
    IndexOutOfBounds {
        /// The index asked for (for a range: its end).
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A slice given for a whole-array copy has another length than the array.
    LengthMismatch {
        /// The array's length.
        expected: usize,
        /// The slice's length.
        found: usize,
    },
    /// A ring capacity that shmkit does not accept.
    InvalidCapacity {
        /// The capacity asked for, in items.
        requested: u64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A side of a single-producer single-consumer ring is held by a live process (possibly
    /// this one).
    RingSideTaken {
        /// `producer` or `consumer`.
        side: &'static str,
        /// The holder's process id.
        pid: u32,
    },
    /// Pushing into a ring or sending on a byte ring, pipe or byte queue failed (from
    /// `send_value`, or `?` on a [`SendError`] or a [`PushError`]).
    Send(SendError),
    /// Popping from a ring or receiving from a byte ring, pipe or byte queue failed (from
    /// `recv_value`, or `?` on a [`RecvError`] or a [`PopError`]).
    Recv(RecvError),
    /// A map has no free slot for a new entry (its capacity is fixed at creation).
    MapFull {
        /// The map's capacity, in entries.
        capacity: u64,
        /// The longest key, in bytes.
        key_max: u64,
        /// The longest value, in bytes.
        value_max: u64,
    },
    /// A list has no room for another element (its capacity is fixed at creation).
    ListFull {
        /// The list's capacity, in elements.
        capacity: u64,
    },
    /// A key, value or element is longer than the object accepts (fixed at creation).
    TooLarge {
        /// `key`, `value` or `element`.
        what: &'static str,
        /// Its length, in bytes.
        len: usize,
        /// The longest accepted, in bytes.
        max: usize,
    },
    /// An object's shared state holds values that cannot be right (another process scribbled
    /// over it, or a reader was disturbed too often to finish).
    ObjectCorrupted {
        /// The object's kind (`map`, `list`).
        kind: &'static str,
        /// What is wrong, naming the value found.
        what: String,
    },
    /// serde refused to encode a value (feature `serde`).
    Encode {
        /// The encoder's message.
        reason: String,
    },
    /// A message is not a valid encoding of the type asked for (feature `serde`).
    Decode {
        /// The decoder's message, with the message length and the type.
        reason: String,
    },
    /// A named or file-backed segment that another user controls: owned by a user this process
    /// does not trust, or writable by its group or by others. Such a user could change the
    /// objects under this process's feet or truncate the file (every access to the lost pages
    /// then raises `SIGBUS`). Opt in for a deliberately shared segment with
    /// [`SegmentOptions::trust_owner`](crate::SegmentOptions::trust_owner) and
    /// [`SegmentOptions::allow_shared`](crate::SegmentOptions::allow_shared).
    UntrustedSegment {
        /// The file.
        path: PathBuf,
        /// The file's owner (uid).
        owner_uid: u32,
        /// The file's permission bits (e.g. `0o666`).
        mode: u32,
        /// What is wrong: `"owned by another user"` or `"writable by group or others"`.
        reason: &'static str,
    },
    /// Any other I/O error, with what shmkit was doing.
    Io {
        /// What was being done, e.g. `mapping /dev/shm/jobs`.
        context: String,
        /// The operating system's error.
        source: io::Error,
    },
}

#[cfg_attr(feature = "loom", allow(dead_code))]
impl Error {
    /// Wraps an I/O error with context, turning the common kinds into their own variants.
    pub(crate) fn io(
        context: impl Into<String>,
        path: &std::path::Path,
        source: io::Error,
    ) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                path: path.to_path_buf(),
            },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                path: path.to_path_buf(),
            },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                path: path.to_path_buf(),
            },
            _ => Error::Io {
                context: context.into(),
                source,
            },
        }
    }

    pub(crate) fn corrupted(path: &std::path::Path, what: impl Into<String>) -> Self {
        Error::Corrupted {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { path } => write!(f, "segment {} does not exist", path.display()),
            Error::AlreadyExists { path } => write!(
                f,
                "segment {} already exists (open it, or remove it first)",
                path.display()
            ),
            Error::NotAShmkitSegment { path, found_magic } => write!(
                f,
                "{} is not a shmkit segment (first bytes {:#018x}, expected shmkit's magic {:#018x})",
                path.display(),
                found_magic,
                crate::format::MAGIC
            ),
            Error::VersionMismatch {
                path,
                expected,
                found,
            } => write!(
                f,
                "segment {} has format version {found}, this shmkit reads version {expected}",
                path.display()
            ),
            Error::Truncated {
                path,
                expected,
                actual,
            } => write!(
                f,
                "segment {} is truncated: {actual} bytes on disk, {expected} expected",
                path.display()
            ),
            Error::Corrupted { path, what } => {
                write!(f, "segment {} is corrupted: {what}", path.display())
            }
            Error::InitializationNotFinished {
                path,
                creator_pid,
                waited,
            } => write!(
                f,
                "segment {} is still being initialized by process {creator_pid} after waiting {waited:?}",
                path.display()
            ),
            Error::CreatorDied { what, pid } => write!(
                f,
                "process {pid} died while creating {what}; remove it and create it again"
            ),
            Error::PermissionDenied { path } => {
                write!(f, "permission denied for segment {}", path.display())
            }
            Error::InvalidName { name, reason } => write!(f, "invalid name {name:?}: {reason}"),
            Error::InvalidSize { requested, reason } => {
                write!(f, "invalid segment size {requested}: {reason}")
            }
            Error::TypeMismatch {
                name,
                expected,
                found,
            } => write!(
                f,
                "object {name:?} is a {found}, but a {expected} was asked for"
            ),
            Error::ObjectNotFound { name } => write!(f, "no object named {name:?} in the segment"),
            Error::OutOfSpace { needed, available } => write!(
                f,
                "segment out of space: the object needs {needed} bytes, {available} are free (create a larger segment)"
            ),
            Error::DirectoryFull { capacity } => write!(
                f,
                "segment directory is full ({capacity} entries; create the segment with a larger directory)"
            ),
            Error::Timeout { what, waited } => write!(f, "timed out after {waited:?} waiting for {what}"),
            Error::NotRecoverable { what } => write!(
                f,
                "the {what} is not recoverable: a holder declared its data beyond repair (remove it and create it again)"
            ),
            Error::WouldBlock { what } => write!(f, "the {what} is busy (the call would block)"),
            Error::WouldDeadlock { what } => write!(
                f,
                "this thread already holds the {what}; locking it again would deadlock"
            ),
            Error::OwnerDied { what } => write!(
                f,
                "the previous owner of the {what} died holding it and the data was not marked consistent; the next locker is told so again"
            ),
            Error::SemaphoreOverRelease { bound } => write!(
                f,
                "semaphore released too many times: {bound} permits are already free, its bound"
            ),
            Error::BarrierBroken { parties } => write!(
                f,
                "the barrier of {parties} parties is broken (a party timed out or died); reset it"
            ),
            Error::WriterDied { pid } => write!(
                f,
                "the seqlock writer (process {pid}) died in the middle of a write; readers see the last complete value until the next writer takes over"
            ),
            Error::WriterBusy { pid } => {
                write!(f, "the seqlock writer lock is held by process {pid}")
            }
            Error::InheritedGuard { what } => write!(
                f,
                "this guard was inherited through fork(): {what} is held by the parent process, \
                 so nothing was written (take a writer in this process)"
            ),
            Error::IndexOutOfBounds { index, len } => {
                write!(f, "index {index} out of bounds for an array of length {len}")
            }
            Error::LengthMismatch { expected, found } => write!(
                f,
                "slice of length {found} given for an array of length {expected}"
            ),
            Error::InvalidCapacity { requested, reason } => {
                write!(f, "invalid ring capacity {requested}: {reason}")
            }
            Error::RingSideTaken { side, pid } => write!(
                f,
                "the ring's {side} side is held by live process {pid} (one {side} at a time)"
            ),
            Error::Send(e) => write!(f, "send failed: {e}"),
            Error::Recv(e) => write!(f, "receive failed: {e}"),
            Error::MapFull {
                capacity,
                key_max,
                value_max,
            } => write!(
                f,
                "the map is full: all {capacity} entries are taken ({capacity} × ({key_max}-byte keys + {value_max}-byte values) = {} bytes; create it with a larger capacity)",
                capacity.saturating_mul(key_max.saturating_add(*value_max))
            ),
            Error::ListFull { capacity } => write!(
                f,
                "the list is full: it holds at most {capacity} elements (create it with a larger capacity)"
            ),
            Error::TooLarge { what, len, max } => {
                write!(f, "the {what} is {len} bytes long, the object accepts at most {max}")
            }
            Error::ObjectCorrupted { kind, what } => {
                write!(f, "the shared {kind} is corrupted: {what}")
            }
            Error::Encode { reason } => write!(f, "could not encode the value: {reason}"),
            Error::Decode { reason } => write!(f, "could not decode the message: {reason}"),
            Error::UntrustedSegment {
                path,
                owner_uid,
                mode,
                reason,
            } => write!(
                f,
                "refusing segment {}: {reason} (owner uid {owner_uid}, mode {mode:04o}); \
                 for a deliberately shared segment use SegmentOptions::trust_owner / allow_shared",
                path.display()
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Send(e) => Some(e),
            Error::Recv(e) => Some(e),
            _ => None,
        }
    }
}
