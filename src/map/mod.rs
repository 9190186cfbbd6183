//! Shared hash maps and lists in a segment: Python's `Manager().dict()`, `Manager().list()` and
//! `Manager().Namespace()` without a server process.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::maps`], written in `src/guide/maps.md`.

mod claim;
mod entry;
mod geometry;
mod list;
mod list_faces;
mod list_lock;
mod map_bytes;
#[cfg(not(feature = "loom"))]
mod map_object;
mod map_pod;
#[cfg(feature = "serde")]
mod map_serde;
mod read;
#[cfg(feature = "serde")]
mod serde_depth;
mod stripe;
mod value;
mod write;

#[cfg(all(test, not(feature = "loom")))]
mod list_tests;
#[cfg(all(test, not(feature = "loom")))]
mod tests;

pub use list::LIST_CAPACITY_LIMIT;
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
/// assert_eq!(&shmkit::key16("job-7")[..6], b"job-7\0");
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
/// object's header word: an object of another layout is refused, never misread. (3: one-line
/// slots for small entries, the value length in the latch's `published` word. 4: a present
/// key's value is written under its entry claim (an owner word in the slot's `claim`), not its
/// stripe lock; `LIVE` is `2⁶³ + 2⁶²`; the stripe's `work` word is gone.)
pub(crate) const LAYOUT_VERSION: u64 = 4;

/// `n` zeroed words on the heap, as the tail of a `#[repr(C)]` struct made of one `[AtomicU64]`.
pub(crate) fn heap_words(n: usize) -> Box<[AtomicU64]> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

/// Asks the CPU to start loading the cache lines that hold `words`, so that their misses overlap
/// with each other and with the caller's other misses (a lookup's chain head and its value, a
/// writer's stripe lock and slot). A hint only: it reads nothing, changes no value any load
/// returns and never faults; nothing under loom or miri.
#[inline]
pub(crate) fn prefetch_lines(words: &[AtomicU64]) {
    #[cfg(all(target_arch = "x86_64", not(feature = "loom"), not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let base = words.as_ptr().cast::<i8>();
        let bytes = core::mem::size_of_val(words);
        // From the line holding the first byte to the one holding the last.
        let mut off = 0usize.wrapping_sub(base as usize & 63);
        while (off as isize) < bytes as isize {
            // SAFETY: a prefetch has no effect on memory and never faults, whatever the address
            // (`wrapping_add` forms it without claiming it is in bounds).
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(base.wrapping_add(off));
            }
            off = off.wrapping_add(64);
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "loom"), not(miri))))]
    let _ = words;
}

/// Asks the CPU to load the line holding `word` in the exclusive state (`prefetchw`), for a
/// writer that is about to read and then CAS or store into it: when another core holds the line,
/// one transfer then serves both the load and the write, instead of a shared copy for the load
/// and an upgrade for the write. A hint only: it changes no value any load returns and never
/// faults (CPUs without the instruction execute it as a no-op); nothing under loom or miri.
#[inline]
pub(crate) fn prefetch_write(word: &AtomicU64) {
    #[cfg(all(target_arch = "x86_64", not(feature = "loom"), not(miri)))]
    // SAFETY: `prefetchw` reads and writes no memory, sets no flags and never faults; the
    // address is that of a live reference.
    unsafe {
        core::arch::asm!(
            "prefetchw [{p}]",
            p = in(reg) word as *const AtomicU64,
            options(nostack, preserves_flags, readonly)
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(feature = "loom"), not(miri))))]
    let _ = word;
}

/// The error for a scribbled object: what was found.
#[cold]
pub(crate) fn corrupted(kind: &'static str, what: impl Into<String>) -> Error {
    Error::ObjectCorrupted {
        kind,
        what: what.into(),
    }
}

/// [`Error::TooLarge`] for a `what` (key, value, element) of `len` bytes over its limit `max`.
#[inline]
pub(crate) fn fits(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::TooLarge { what, len, max });
    }
    Ok(())
}
