//! Seqlock-protected values and arrays: tear-free snapshots that never block writers.
//!
//! [`SeqLock<T>`] holds one plain value of any size, [`SeqArray<T>`] a fixed-length array. Readers
//! copy the data out without writing shared memory at all, so any number of readers in any number
//! of processes cost the writer no lock traffic (only the cache transfers of the versions they
//! actually read); a reader never sees a half-written value; writers never wait for readers.
//!
//! # Design
//!
//! - **Data in atomic words.** Values are stored in `AtomicU64` words and copied with relaxed atomic
//!   loads and stores (`crate::words`), ordered by Boehm's fence protocol (see `latch.rs`): no plain or
//!   volatile access to shared bytes, so the racing reads of a seqlock are defined behaviour.
//! - **Rotating copies (a latch).** Every versioned unit keeps `N` copies of its data and one
//!   published version number `v`; version `v` lives in copy `v mod N`. A writer fills the *next*
//!   copy, then publishes its version with one release store; a reader loads the version, copies
//!   that copy out, and checks that the version has not moved `N − 1` or more ahead (only then
//!   may the writer have started overwriting the copy it read). So:
//!   - a reader is disturbed only when the writer laps it (`N − 1` complete writes during one
//!     read), not by the write running next to it. (The former two-copy design held each copy
//!     still for only about one write phase: a reader copying a 4 KiB value whose cache lines the
//!     other core kept stealing retried many times.)
//!   - the writer writes cache lines no reader is reading at that moment; the only line both
//!     sides touch on every write is the version word (one store per write). Readers write
//!     nothing at all.
//!   - a writer that is descheduled, stopped or **killed in the middle of a write never blocks
//!     readers**: its copy was never published, so they keep getting the last complete value, and
//!     the next writer simply writes that version again.
//! - **Writers are serialized across processes** by a writer lock whose owner word holds the
//!   holder's pid and start time, claimed in one CAS. A writer that finds the lock held by a dead
//!   process takes it over (one CAS) and resynchronizes (a read-modify-write of each version word,
//!   and for arrays a copy of each block's current copy over its next one) before writing.
//!   [`SeqLock::writer`] / [`SeqArray::writer`] hold the lock for a series of writes (a
//!   single-writer handle: no lock traffic per write).
//! - **Arrays are striped.** A [`SeqArray`] is cut into blocks of about 512 bytes, each an
//!   independent latch with its own version: reading one element or a small range retries only
//!   when *its* block is lapped, however often other parts of the array change. Each element is
//!   read and written atomically; a read or write spanning several blocks is atomic per block, not
//!   as a whole (for whole-value atomicity, use a [`SeqLock`] of an array type).
//!
//! # Memory
//!
//! | object          | copies `N`                                  | bytes                                                        |
//! | --------------- | ------------------------------------------- | ------------------------------------------------------------ |
//! | `SeqLock<T>`    | [`copies_for`]: 16 up to 512 B, 8 up to 64 KiB, 4 above | 384 + `N` × (`size_of::<T>()` rounded up to 128) |
//! | `SeqArray<T>`   | [`ARRAY_COPIES`] = 2 per block              | 128 + per 512-byte block: 64 + 2 × 512 (≈ 2.1 × the data)    |
//!
//! (An array element takes a whole number of 8-byte words: a `u8` or an `f32` takes 8 bytes.)
//! `N` must cover how much slower a read of a freshly written value is than a write: the reader
//! pulls every cache line from the writer's core, the writer stores into lines it mostly owns
//! (a 64-byte value: ~10 ns to write, ~3 cache misses to read; 4 KiB: ~0.3 µs against 1–2 µs).
//! So a `SeqLock<[u64; 8]>` takes 384 + 16 × 128 = 2.4 KiB, a `SeqLock<[u64; 512]>` 384 + 8 × 4
//! KiB ≈ 32.4 KiB. For a value of 8 bytes or less, [`AtomicValue`](crate::AtomicValue) needs no
//! copies at all. Arrays keep two copies per block, as the former design did, because
//! they are often large and their blocks are small and seldom all hot: a block's reader is
//! disturbed only when the same block is published again during its read. A write to a block
//! fills the block's other copy with the words changed by the previous write of that block (kept
//! in a per-copy "changed range" word) plus the new data, so setting one element writes a few
//! words, not the whole block.
//!
//! # When a seqlock beats a lock, and when it cannot
//!
//! `cargo bench --bench seqlock` runs every case against `std` and `parking_lot` RwLocks, a
//! process-shared pthread rwlock and Python's `multiprocessing.Array` in the same run; the
//! figures measured so far are in the README's "Measured" section. What they show:
//!
//! - **Small values that are read more often than written** are the case a seqlock is for. A
//!   read is a dozen loads and writes nothing shared, where an RwLock's read is two
//!   read-modify-writes of the lock word; and once several readers run at once, a lock's readers
//!   bounce the lock word's cache line between them while a seqlock's readers do not disturb
//!   each other at all.
//! - **The writer never waits.** A lock's writer waits for the readers to leave; a seqlock's
//!   writer only re-acquires the cache lines the readers pulled. Not waiting does not make it
//!   free: no design can publish data to a reader without the cache-line transfers.
//! - **Large values cost what copying them costs.** Rust's memory model allows reads that race
//!   with writes only through atomics, and it has no atomic `memcpy`, so a snapshot is copied 8
//!   bytes at a time, slower than a vectorized `memcpy` under a lock: a large snapshot is slower
//!   than under an uncontended lock, and faster only against a writer that never pauses. Choose
//!   a seqlock for large values because the writer never waits and a dead writer never blocks
//!   anyone, not for read speed.
//! - **A writer that never pauses** makes every read pull freshly written lines from the
//!   writer's core. Lock and seqlock pay the same transfers, so the difference shrinks.
//!
//! # Bounds for a writer that died
//!
//! - Readers ([`SeqLock::read`], [`SeqArray::get`] …) are never delayed by a dead writer: the
//!   published copy stays readable, and holds the last complete value.
//! - [`SeqLock::read_checked`] reports [`Error::WriterDied`](crate::Error::WriterDied) on the first
//!   call after the death: a call that finds a write begun but not published (a `begun` word the
//!   writer stores before each write, which plain reads never touch) waits up to [`STALL`] for the
//!   version to move, then reads `/proc/<pid>/stat` once. [`SeqLock::check_writer`] and
//!   [`SeqArray::check_writer`] report a dead lock holder at once (one `/proc` read).
//! - A writer waiting for the lock spins for 16 attempts (a few microseconds), checks the
//!   holder's liveness once, then sleeps on a futex until the holder releases, rechecking the
//!   holder's liveness whenever [`LIVENESS_PERIOD`] (10 ms) passes without a release: it takes
//!   over from a dead holder within about that period; `try_` writes check at once.
//! - **Every wait for the writer lock is bounded** if you ask: `try_writer`/`try_write` return at
//!   once, `writer_timeout`/`write_timeout` (and [`SeqArray::set_timeout`]) by their deadline,
//!   whatever the holder does: stopped (`SIGSTOP`, a debugger), parked forever, or a live
//!   process's identity written into the lock word by a hostile peer. The blocking forms wait
//!   as long as the holder lives (a holder in another pid namespace counts as alive, see
//!   [`crate::process`]).
//! - **A thread never waits for itself**: a thread that holds a [`Writer`] or [`ArrayWriter`]
//!   and asks for the lock again (`write`, `set`, `writer`, …) gets
//!   [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) (the lock records the holding thread
//!   beside the owner word).
//! - The uncontended path makes no system call: a writer takes the lock with one CAS and
//!   releases it with one CAS; the futex is woken only when a waiter announced itself.
//!
//! The takeover relies on the kernel's guarantee that a process's stores are all visible once it
//! is gone (process exit is a full barrier): the dead writer's half-done copy is then final
//! before the next writer overwrites it.
//!
//! A process whose pid was reused *and* whose start time matches the dead writer's in its low 32
//! bits (clock ticks since boot, so about 497 days apart at 100 Hz) would be taken for it: the
//! lock would then wait for that process to exit.

pub(crate) mod latch;
mod writer;

mod array;
mod value;

pub use array::{ArrayWriter, SeqArray, ARRAY_COPIES};
pub use value::{copies_for, SeqLock, Writer};
pub use writer::LIVENESS_PERIOD;

use crate::sync::AtomicU64;
use core::alloc::Layout;
use writer::WriterLock;

/// How long [`SeqLock::read_checked`] waits for a write in progress to move before it checks
/// whether the writer is alive.
pub const STALL: std::time::Duration = std::time::Duration::from_micros(50);

/// Version of the latch layout, kept in the type tag's `extra` (version 1, `extra` 0, was the
/// two-copy latch): a segment object of another layout is refused, never misread.
#[cfg(not(feature = "loom"))]
const LAYOUT_VERSION: u64 = 2;

/// Words of a 128-byte slot (crossbeam's `CachePadded` size on x86_64, for the adjacent-line
/// prefetcher): words written by different sides sit at least this far apart. 1 under loom (no
/// caches there; fewer atomics to model).
const SLOT: usize = if cfg!(feature = "loom") { 1 } else { 16 };

/// Words of a 64-byte cache line (1 under loom).
const LINE: usize = if cfg!(feature = "loom") { 1 } else { 8 };

/// `n` rounded up to a multiple of `to` (> 0).
const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Layout of the shape both types share (`#[repr(C)]`: a [`WriterLock`], then `n` data words) with `n` words (`None` on overflow).
fn region_layout(n: usize) -> Option<Layout> {
    let (l, _) = Layout::new::<WriterLock>()
        .extend(Layout::array::<AtomicU64>(n).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

/// Allocates `n` zeroed words after a free lock on the heap and returns the fat pointer (metadata
/// `n`), to be cast to a type of that shape and boxed.
///
/// # Panics
/// If the size overflows; aborts on allocation failure (as `Box::new` does).
fn alloc_region(n: usize) -> *mut [AtomicU64] {
    let layout = region_layout(n).expect("seqlock size overflows");
    let words_at = Layout::new::<WriterLock>()
        .extend(Layout::array::<AtomicU64>(n).expect("checked above"))
        .expect("checked above")
        .1;
    // SAFETY: the layout has a non-zero size (the lock is 128 bytes).
    let base = unsafe { std::alloc::alloc(layout) };
    if base.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `base` is a fresh allocation of `layout`: the lock fits at offset 0 (its alignment
    // is the layout's) and `n` words at `words_at`; each field is written once, in place.
    unsafe {
        base.cast::<WriterLock>().write(WriterLock::new());
        let words = base.add(words_at).cast::<AtomicU64>();
        for i in 0..n {
            words.add(i).write(AtomicU64::new(0));
        }
    }
    core::ptr::slice_from_raw_parts_mut(base.cast::<AtomicU64>(), n)
}

#[cfg(not(feature = "loom"))]
/// Forms the fat pointer of a `S` (lock then `n` words) at `ptr`.
fn fat<S: ?Sized>(
    ptr: core::ptr::NonNull<u8>,
    n: usize,
    cast: fn(*mut [AtomicU64]) -> *mut S,
) -> core::ptr::NonNull<S> {
    let raw = cast(core::ptr::slice_from_raw_parts_mut(
        ptr.as_ptr().cast::<AtomicU64>(),
        n,
    ));
    // SAFETY: `raw` has the address of `ptr`, which is non-null.
    unsafe { core::ptr::NonNull::new_unchecked(raw) }
}
