// Under the loom feature the primitives run on loom's atomics, which work only inside a loom
// model, so no example in these docs can run there. Rustdoc sets `cfg(doctest)` only while it
// collects doc tests; this empties the crate, docs included (hence first), for that pass alone:
// `cargo test --features loom` finds no doc test, while plain `cargo test`, every build and
// `cargo doc` are unchanged.
#![cfg(not(all(feature = "loom", doctest)))]
//! # shmkit: share state between processes through shared memory, atomics first
//!
//! shmkit lets separate OS processes share counters, values, arrays, queues and locks through
//! memory maps. The normal path is lock-free atomics: no lock, no system call, no serialization
//! per operation. What shmkit guarantees:
//!
//! - **Segments validate what they hold.** A segment starts with a versioned header (magic,
//!   format version, layout hash, sizes, checksum) that is checked, against the file's real size,
//!   before any offset in it is used; a missing, foreign, truncated, corrupted or other-version
//!   segment is a typed [`Error`], never undefined behaviour.
//! - **Objects are found by name with their type.** A directory maps names to objects with a type
//!   tag; asking for a name under another type is [`Error::TypeMismatch`]. Of many processes that
//!   create the same name at once, one creates and all see one object.
//! - **Segments are private and checked.** Created with mode 0600, never over an existing file
//!   nor under a predictable temporary name, published only complete; opened only when owned by
//!   this user (or root) and writable by nobody else, unless the caller opts in for a shared
//!   segment ([`Error::UntrustedSegment`], [`SegmentOptions::trust_owner`]). Limit: whoever may
//!   write a named or file-backed segment's file can truncate it, and the others then take
//!   `SIGBUS` on the lost pages (anonymous segments are sealed against it).
//! - **Shared memory is untrusted.** Every shared byte is accessed through atomics, every offset
//!   and length read from it is validated against local copies, and only types valid for every bit
//!   pattern ([`Pod`], re-exported from bytemuck with its derive) cross processes.
//! - **Process death is expected.** A process killed while creating a segment or an object is
//!   detected (pid plus start time) and reported or taken over, never waited on forever.
//!
//! ```
//! use shmkit::Segment;
//!
//! # fn main() -> shmkit::Result<()> {
//! # let name = format!("shmkit-doc-{}", std::process::id());
//! // Process A creates a named segment in /dev/shm (mode 0600) and two objects in it.
//! let seg = Segment::create(&name, 1 << 20)?;
//! let hits = seg.counter("hits")?;
//! let temp = seg.value::<f64>("temp", 20.0)?;
//! hits.add(3);
//!
//! // Process B (here: the same process) opens it by name and finds them, typed.
//! let other = Segment::open(&name)?;
//! assert_eq!(other.counter("hits")?.load(), 3);
//! other.value::<f64>("temp", 0.0)?.fetch_add(1.5);
//! assert_eq!(temp.load(), 21.5);
//!
//! // The wrong type is an error, not a reinterpretation.
//! assert!(matches!(other.value::<u32>("temp", 0), Err(shmkit::Error::TypeMismatch { .. })));
//! seg.unlink()?;
//! # Ok(()) }
//! ```
//!
//! The primitives also live on the heap ([`Counter::new`], [`AtomicValue::new`] …) with the same
//! methods, for single-process use and for the loom models in `loom-tests/`: run them with
//! `cargo test --features loom` (at most 2 preemptions per execution; `LOOM_MAX_PREEMPTIONS=3`
//! searches deeper).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, unnameable_types, clippy::undocumented_unsafe_blocks)]

// Say it here, once, rather than let the build fail deep inside on a missing libc item: the
// waits sleep on shared futex words, process identity comes from /proc, anonymous segments are
// sealed memfds and the MPMC and SPSC handshakes use membarrier.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "shmkit needs Linux: shared futex words, /proc (process start times), memfd_create with \
     seals and membarrier; this target has none of them"
);

// The public face: every item a user needs is re-exported once, below, at the crate root (one
// path per item); the modules themselves are private. The three `#[doc(hidden)]` modules and
// `internals` serve the in-tree tests, fuzz targets, loom models and benches, and are not part of
// the API.
mod counter;
mod error;
mod format;
#[doc(hidden)]
pub mod hooks;
// Two public modules of their own, for tools and for services that expose their segments:
// the structured state of every object, and its metrics exposition.
#[cfg(not(feature = "loom"))]
pub mod export;
#[cfg(not(feature = "loom"))]
pub mod inspect;
mod lock;
mod map;
mod object;
#[doc(hidden)]
pub mod process;
mod ring;
mod segment;
mod seqlock;
#[doc(hidden)]
pub mod sync;
mod value;
mod words;

pub use counter::{Counter, ShardedCounter};
pub use error::{Error, PopError, PushError, RecvError, Result, SendError};
pub use format::{FORMAT_VERSION, MAGIC};
pub use lock::{
    Barrier, Condvar, Event, LockError, LockResult, LockState, Mutex, MutexGuard, ReentrantGuard,
    ReentrantMutex, Semaphore,
};
pub use map::{key16, ByteList, ByteMap, List, MapOptions, PodMap};
#[cfg(feature = "serde")]
pub use map::{Namespace, SerdeList, SerdeMap};
pub use object::{Kind, Object, TypeTag};
pub use ring::{
    ByteReceiver, ByteRing, ByteSender, Connection, Consumer, MpmcBytes, MpmcRing, Pipe, PipeEnd,
    Producer, SpscRing,
};
pub use segment::directory::EntryInfo;
#[cfg(not(feature = "loom"))]
pub use segment::{
    Backing, DraftFile, Handle, Removal, Segment, SegmentOptions, User, Users, SHM_DIR,
};
pub use seqlock::{ArrayWriter, SeqArray, SeqLock, SeqLockWriter};
pub use value::{Arith, AtomicValue};

/// How each family of primitives works and what it guarantees: the long form of the types' docs
/// (the crate's modules are private; their guides are here).
pub mod guide {
    // Outer doc attributes resolve their links in this module: the whole public face is in scope.
    #[allow(unused_imports)]
    use crate::*;

    #[doc = include_str!("guide/segments.md")]
    pub mod segments {}

    #[doc = include_str!("guide/locks.md")]
    pub mod locks {}

    #[doc = include_str!("guide/seqlocks.md")]
    pub mod seqlocks {}

    #[doc = include_str!("guide/rings.md")]
    pub mod rings {}

    #[doc = include_str!("guide/mpmc.md")]
    pub mod mpmc {}

    #[doc = include_str!("guide/maps.md")]
    pub mod maps {}
}

/// The limits shmkit enforces (capacities, lengths, counts) and its defaults, in one place.
///
/// ```
/// use shmkit::limits;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// // Counts past a limit are clamped to it…
/// assert_eq!(seg.semaphore("s", u32::MAX)?.available(), limits::MAX_PERMITS);
/// // …and sizes past one are refused.
/// assert!(seg.spsc::<u8>("r", limits::RING_CAPACITY_LIMIT + 1).is_err());
/// # Ok(()) }
/// ```
pub mod limits {
    pub use crate::lock::{HOLDER_SLOTS, MAX_PARTIES, MAX_PERMITS, PARTY_SLOTS};
    #[cfg(feature = "serde")]
    pub use crate::map::SERDE_MAX_DEPTH;
    pub use crate::map::{KEY_MAX_LIMIT, LIST_CAPACITY_LIMIT, MAP_CAPACITY_LIMIT, VALUE_MAX_LIMIT};
    pub use crate::object::TYPE_NAME_MAX;
    pub use crate::ring::bytes::max_msg_limit;
    pub use crate::ring::mpmc_bytes::MAX_MSG_LIMIT;
    pub use crate::ring::{MAX_CAPACITY as RING_CAPACITY_LIMIT, MIN_BYTE_CAPACITY};
    pub use crate::segment::directory::NAME_MAX as OBJECT_NAME_MAX;
    #[cfg(not(feature = "loom"))]
    pub use crate::segment::{DEFAULT_DIR_CAPACITY, DEFAULT_WAIT, SEGMENT_NAME_MAX, USER_SLOTS};
    pub use crate::seqlock::LIVENESS_PERIOD;
}

/// Internals that the in-tree tests, fuzz targets, loom models and benches reach into. Not part of
/// the API: anything here may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::counter::SHARDS;
    #[cfg(feature = "loom")]
    pub use crate::lock::sim;
    pub use crate::object::fnv1a;
    pub use crate::segment::directory::{DirEntry, Directory};
    /// The segment lifecycle protocol (attach, removal) on plain words, for its loom models.
    pub use crate::segment::life;
    pub use crate::seqlock::copies_for;
}

/// The `bytemuck` crate that shmkit builds on, for its other items (`bytes_of`, `cast_slice`,
/// `AnyBitPattern` …) and as the path the derives need (see [`Pod`]).
pub use bytemuck;
/// Plain data that may cross processes, and its derive; re-exported from `bytemuck` so that a
/// crate using shmkit needs no `bytemuck` dependency of its own.
///
/// The derives name their crate `::bytemuck` unless told otherwise: a crate without its own
/// `bytemuck` dependency points them at this re-export with `#[bytemuck(crate = "shmkit::bytemuck")]`.
///
/// ```
/// use shmkit::{Pod, Segment, Zeroable};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
/// #[bytemuck(crate = "shmkit::bytemuck")]
/// #[repr(C)]
/// struct Job {
///     id: u64,
///     cost: f64,
/// }
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let last = seg.seqlock("last", Job::zeroed())?;
/// last.write(&Job { id: 7, cost: 2.5 });
/// assert_eq!(last.read(), Job { id: 7, cost: 2.5 });
/// # Ok(()) }
/// ```
pub use bytemuck::Pod;
/// Types for which all-zero bytes are a valid value, and its derive; re-exported from `bytemuck`
/// like [`Pod`] (whose example shows the derive on a struct).
///
/// ```
/// use shmkit::{AtomicValue, Zeroable};
///
/// let v = AtomicValue::new(<[u16; 4]>::zeroed()); // 8 bytes: one atomic word
/// v.store([1, 2, 3, 4]);
/// assert_eq!(v.load(), [1, 2, 3, 4]);
/// ```
pub use bytemuck::Zeroable;

/// The README's Rust examples, compiled (and, unless marked `no_run`, run) by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
