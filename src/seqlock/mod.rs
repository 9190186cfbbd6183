//! Seqlock-protected values and arrays: tear-free snapshots that never block writers.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::seqlocks`], written in `src/guide/seqlocks.md`.

pub(crate) mod latch;
mod writer;

mod array;
mod value;

pub use array::{ArrayWriter, SeqArray};
pub use value::{copies_for, SeqLock, SeqLockWriter};
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
