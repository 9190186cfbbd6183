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
//! - **Shared memory is untrusted.** Every shared byte is accessed through atomics, every offset
//!   and length read from it is validated against local copies, and only types valid for every bit
//!   pattern ([`bytemuck::Pod`]) cross processes.
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
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

pub mod counter;
pub mod error;
#[cfg(not(feature = "loom"))]
pub mod inspect;
pub mod lock;
pub mod process;
pub mod ring;
pub mod segment;
pub mod seqlock;
pub mod sync;
pub mod value;
pub mod words;

pub use counter::{Counter, ShardedCounter};
pub use error::{Error, Result};
pub use lock::{
    Barrier, Condvar, Event, LockError, LockResult, Mutex, MutexGuard, ReentrantMutex, Semaphore,
};
pub use ring::{ByteRing, Connection, Pipe, PipeEnd};
pub use ring::{Consumer, MpmcRing, Producer, SpscRing};
pub use segment::object::{Kind, Object, TypeTag};
#[cfg(not(feature = "loom"))]
pub use segment::{Backing, Handle, Segment, SegmentOptions};
pub use seqlock::{SeqArray, SeqLock};
pub use value::AtomicValue;
