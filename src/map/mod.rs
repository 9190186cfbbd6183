//! Shared hash maps and lists in a segment: Python's `Manager().dict()`, `Manager().list()` and
//! `Manager().Namespace()` without a server process.
//!
//! - [`ByteMap`]: keys and values are byte strings of bounded length; [`PodMap<K, V>`] for plain
//!   data keys and values; with the feature `serde`, `SerdeMap<K, V>` for any serde types and
//!   `Namespace` (attributes of any serde type by name).
//! - [`List<T>`] of plain data, [`ByteList`] of byte strings, with `serde` `SerdeList<T>`.
//!
//! # What is guaranteed
//!
//! - **Reads are lock-free** and never block or slow down writers: a reader takes no lock and
//!   writes no shared word. A reader never sees a torn key or value: every key and value is read
//!   through atomic words and validated by per-entry version words (Boehm's seqlock pattern).
//! - **Writers of different keys rarely meet**: a map has up to 64 stripes, each with its own
//!   lock, chosen by the key's hash. Writers of one key serialize (which makes
//!   [`ByteMap::update`] and [`ByteMap::compare_exchange`] atomic); writers of different keys
//!   share a stripe only by chance. List appenders take no lock at all.
//! - **Fixed capacity**: the number of entries and the longest key and value are fixed at
//!   creation, so the bytes used are fixed too. A full map is [`Error::MapFull`](crate::Error)
//!   naming both limits; removed entries' slots are reused, so a map never leaks over any
//!   number of insert/remove cycles.
//! - **Process death**: a process killed at any point of any operation leaves the structure
//!   consistent: the operation happened or did not, no entry is half visible, no slot is lost,
//!   and nobody waits on the dead process beyond a liveness check (the crate's one rule,
//!   [`process::word_alive`](crate::process::word_alive)). Every wait is bounded: `_timeout`
//!   calls return by their deadline whatever a live peer does (also a stopped one).
//! - **Shared memory is untrusted**: every length, index and link read from shared memory is
//!   checked against the dimensions this process validated; a scribbled map gives errors or
//!   wrong values, never an out-of-bounds access, a panic or a hang.
//!
//! # The map's layout
//!
//! A map is a `#[repr(C)]` array of 8-byte atomic words (offsets in words; a *line* is 16 words,
//! 128 bytes, the x86_64 prefetch pair):
//!
//! | part          | size (words)        | contents                                               |
//! | ------------- | ------------------- | ------------------------------------------------------ |
//! | header        | 1 line              | layout tag, capacity, key and value limits, hash seed  |
//! | stripes       | `S` lines           | per stripe: lock (owner word), update in progress, entry count, allocation hint |
//! | slots         | `C × W`             | the entries (below), each also holding one bucket's head |
//!
//! `C` is the capacity (entries) and also the number of buckets (a key's hash scaled to
//! `0..C` by one multiply), `S` = the largest power of two ≤ min(`C`, 64) stripes (bucket `b`
//! belongs to stripe `b mod S`). One slot (`W` words, padded to 16 words, an aligned 128-byte
//! pair of cache lines, for small entries and to a whole number of 64-byte lines otherwise):
//!
//! | word           | contents                                                               |
//! | -------------- | ---------------------------------------------------------------------- |
//! | `claim`        | 0 free · 1 live · `2⁶³ + s` claimed by stripe `s`'s holder (being inserted or removed) |
//! | `seq`          | even: the key is stable; odd: free or being (re)filled. +1 at every change |
//! | `hash`         | the key's 64-bit hash (seeded per map)                                 |
//! | `link`         | key length (high 32 bits) · next slot of the chain + 1 (low 32 bits)    |
//! | `published`    | version of the value (a two-copy rotating latch, [`crate::seqlock`]'s) |
//! | `head`         | not the entry's: first slot + 1 of the chain of bucket *j* (this slot's number), 0 = empty |
//! | key            | ⌈key_max / 8⌉ words                                                    |
//! | 2 value copies | each: value length, then ⌈value_max / 8⌉ words                         |
//!
//! An insert into bucket `b` takes slot `b` when it is free, so most lookups find the bucket's
//! head and the entry in one line pair (in a map half full, most entries are in their own
//! bucket's slot); the others take one more line.
//!
//! Separate chaining over a fixed pool of slots: a bucket's chain only changes under its
//! stripe's lock, a free slot is claimed by one CAS on its `claim` word (so two stripes never
//! take one slot), and a slot only leaves a chain by being unlinked. Values are updated in place
//! through the slot's latch: the writer fills the copy readers are not reading, then one store
//! publishes it. Entries are never moved, so a reader walking a chain never misses an entry
//! that is present for the whole walk.
//!
//! # Process death in a map
//!
//! A claimed slot names its stripe, and the stripe's lock names its holder. The next writer that
//! finds the lock held by a dead process takes it over (one CAS) and repairs the stripe: every
//! slot claimed by the stripe is kept if it is linked in its bucket's chain (the insert happened,
//! or the removal did not) and freed otherwise; the entry count is recounted; the value latch
//! the dead writer was updating is resynchronized (its unpublished copy was never visible). A
//! writer that finds no free slot first sweeps the stripes of dead processes, so a dead process
//! never keeps a slot.
//!
//! # Iteration
//!
//! Iteration walks the slots, not the chains, and reads each live entry whole (key and value
//! from one version). It is not a snapshot of the whole map: an entry present and not removed
//! for the whole iteration is seen exactly once, with a value it held during the iteration; an
//! entry inserted or removed meanwhile may or may not be seen.
//!
//! # A Namespace
//!
//! Python's `Manager().Namespace()` is a bag of named attributes shared by processes. Here the
//! segment's directory names the namespace and a map holds its attributes (with the feature
//! `serde`, `Namespace` stores each attribute as its own serde type):
//!
//! ```
//! # fn main() -> shmkit::Result<()> {
//! use shmkit::Segment;
//! let seg = Segment::anonymous(1 << 20)?;
//! // Process A
//! let ns = seg.pod_map::<[u8; 16], f64>("ns", 64)?;
//! ns.insert(&shmkit::map::key16("x"), &1.5)?;
//! // Process B (opens the same segment): finds the namespace by name.
//! let ns = seg.pod_map::<[u8; 16], f64>("ns", 64)?;
//! assert_eq!(ns.get(&shmkit::map::key16("x"))?, Some(1.5));
//! # Ok(()) }
//! ```

mod claim;
mod geometry;
mod list;
mod list_faces;
mod list_lock;
mod map_bytes;
mod map_pod;
#[cfg(feature = "serde")]
mod map_serde;
mod read;
#[cfg(feature = "serde")]
mod serde_depth;
mod stripe;
mod write;

#[cfg(all(test, not(feature = "loom")))]
mod list_tests;
#[cfg(all(test, not(feature = "loom")))]
mod tests;

pub use list::{RawList, LIST_CAPACITY_LIMIT};
#[cfg(feature = "serde")]
pub use list_faces::SerdeList;
pub use list_faces::{ByteList, List};
pub use map_bytes::ByteMap;
pub use map_pod::PodMap;
#[cfg(feature = "serde")]
pub use map_serde::{Namespace, SerdeMap};
#[cfg(feature = "serde")]
pub use serde_depth::MAX_DEPTH as SERDE_MAX_DEPTH;

use crate::sync::AtomicU64;
use crate::{Error, Result};

/// Largest capacity of a map (entries): slot numbers fit in 31 bits.
pub const MAP_CAPACITY_LIMIT: u64 = 1 << 30;
/// Longest key a map accepts as its `key_max`, in bytes.
pub const KEY_MAX_LIMIT: u64 = 1 << 16;
/// Longest value a map or list element accepts as its maximum, in bytes.
pub const VALUE_MAX_LIMIT: u64 = 1 << 24;

/// The dimensions of a map, fixed at creation: how many entries it holds and the longest key
/// and value, in bytes.
///
/// ```
/// let opts = shmkit::MapOptions::new(1000).key_max(32).value_max(256);
/// assert_eq!(opts.bytes(), 1000 * (32 + 256));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// Number of entries.
    pub capacity: u64,
    /// Longest key, in bytes.
    pub key_max: u64,
    /// Longest value, in bytes.
    pub value_max: u64,
}

impl MapOptions {
    /// `capacity` entries of keys up to 32 bytes and values up to 256 bytes (change them with
    /// [`key_max`](Self::key_max) and [`value_max`](Self::value_max)).
    pub const fn new(capacity: u64) -> Self {
        MapOptions {
            capacity,
            key_max: 32,
            value_max: 256,
        }
    }

    /// Sets the longest key, in bytes.
    pub const fn key_max(mut self, bytes: u64) -> Self {
        self.key_max = bytes;
        self
    }

    /// Sets the longest value, in bytes.
    pub const fn value_max(mut self, bytes: u64) -> Self {
        self.value_max = bytes;
        self
    }

    /// The payload bytes the map can hold when full: `capacity × (key_max + value_max)`.
    pub const fn bytes(&self) -> u64 {
        self.capacity
            .saturating_mul(self.key_max.saturating_add(self.value_max))
    }

    /// Checks the dimensions against the limits.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for a capacity of 0 or above [`MAP_CAPACITY_LIMIT`], a
    /// `key_max` of 0 or above [`KEY_MAX_LIMIT`], or a `value_max` above [`VALUE_MAX_LIMIT`].
    pub fn check(&self) -> Result<()> {
        let bad = |requested, reason| Err(Error::InvalidCapacity { requested, reason });
        if self.capacity == 0 || self.capacity > MAP_CAPACITY_LIMIT {
            return bad(self.capacity, "a map holds 1 to 2^30 entries");
        }
        if self.key_max == 0 || self.key_max > KEY_MAX_LIMIT {
            return bad(self.key_max, "a map's key_max is 1 to 65536 bytes");
        }
        if self.value_max > VALUE_MAX_LIMIT {
            return bad(self.value_max, "a map's value_max is at most 16 MiB");
        }
        Ok(())
    }
}

/// The key of a [`PodMap`] with `[u8; 16]` keys made of a short string (cut at 16 bytes, zero
/// padded): for namespaces and dicts keyed by short names.
///
/// ```
/// assert_eq!(&shmkit::map::key16("job-7")[..6], b"job-7\0");
/// ```
pub fn key16(s: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = s.len().min(16);
    k[..n].copy_from_slice(&s.as_bytes()[..n]);
    k
}

/// Words of a line (128 bytes; 1 under loom, where lines do not matter and fewer atomics keep
/// the models small).
pub(crate) const LINE: usize = if cfg!(feature = "loom") { 1 } else { 16 };

/// Layout version of maps and lists, kept in the top byte of the type tag's `extra` and in the
/// object's header word: an object of another layout is refused, never misread.
pub(crate) const LAYOUT_VERSION: u64 = 2;

/// `n` zeroed words on the heap, as the tail of a `#[repr(C)]` struct made of one `[AtomicU64]`.
pub(crate) fn heap_words(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// The error for a scribbled object: what was found.
#[cold]
pub(crate) fn corrupted(kind: &'static str, what: impl Into<String>) -> Error {
    Error::ObjectCorrupted {
        kind,
        what: what.into(),
    }
}
