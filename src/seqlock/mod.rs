//! Seqlock-protected values and arrays: tear-free snapshots that never block writers.
//!
//! [`SeqLock<T>`] holds one plain value of any size, [`SeqArray<T>`] a fixed-length array. Readers
//! copy the data out without writing shared memory at all, so any number of readers in any number
//! of processes cost the writer nothing; a reader never sees a half-written value; writers never
//! wait for readers.
//!
//! # Design
//!
//! - **Data in atomic words.** Values are stored in `AtomicU64` words and copied with relaxed atomic
//!   loads and stores (`crate::words`), ordered by Boehm's fence protocol (see `latch.rs`): no plain or
//!   volatile access to shared bytes, so the racing reads of a seqlock are defined behaviour.
//! - **Two copies (a latch).** Every versioned block holds its data twice. While a writer rewrites
//!   one copy, readers read the other, so a writer that is descheduled, stopped or **killed in the
//!   middle of a write never blocks readers**: they keep getting the last complete value. A read
//!   retries only when writes keep overlapping it.
//! - **Writers are serialized across processes** by a writer lock whose owner word holds the
//!   holder's pid and start time, claimed in one CAS. A writer that finds the lock held by a dead
//!   process takes it over (one CAS) and repairs every block before writing, so the object is
//!   consistent again after the next write. [`SeqLock::writer`] / [`SeqArray::writer`] hold the lock
//!   for a series of writes (a single-writer handle: no lock traffic per write).
//! - **Arrays are striped.** A [`SeqArray`] is cut into blocks of about 512 bytes, each versioned
//!   independently: reading one element or a small range retries only when *its* block is written,
//!   however often other parts of the array change. Each element is read and written atomically;
//!   a read or write spanning several blocks is atomic per block, not as a whole (for whole-value
//!   atomicity, use a [`SeqLock`] of an array type).
//!
//! # Bounds for a writer that died
//!
//! - Readers ([`SeqLock::read`], [`SeqArray::get`] …) are never delayed by a dead writer: the
//!   stable copy stays readable, and holds the last complete value.
//! - [`SeqLock::read_checked`] reports [`Error::WriterDied`](crate::Error::WriterDied) on the first
//!   call after the death: a call that finds a write in progress waits up to [`STALL`] for it to
//!   move, then reads `/proc/<pid>/stat` once. [`SeqLock::check_writer`] and
//!   [`SeqArray::check_writer`] report a dead lock holder at once (one `/proc` read).
//! - A writer waiting for the lock checks the holder's liveness after 16 failed attempts (a few
//!   microseconds of spinning) and every 256 attempts after that, so it takes over from a dead
//!   holder within about a millisecond; `try_` writes check at once.
//!
//! A process whose pid was reused *and* whose start time matches the dead writer's in its low 32
//! bits (clock ticks since boot, so about 497 days apart at 100 Hz) would be taken for it: the
//! lock would then wait for that process to exit.

pub(crate) mod latch;
mod writer;

mod array;
#[cfg(not(feature = "loom"))]
pub(crate) mod describe;
mod value;

pub use array::{ArrayWriter, SeqArray};
pub use value::{SeqLock, Writer};

use crate::sync::AtomicU64;
use core::alloc::Layout;
use writer::WriterLock;

/// How long [`SeqLock::read_checked`] waits for a write in progress to move before it checks
/// whether the writer is alive.
pub const STALL: std::time::Duration = std::time::Duration::from_micros(50);

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
