//! [`MpmcRing<T>`]: a bounded multi-producer multi-consumer ring, across processes, that survives
//! the death of a producer or consumer at any instruction.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::mpmc`], written in `src/guide/mpmc.md`.

mod engine;
mod registry;

pub(crate) use engine::{mpmc_layout, Core, Stop};
#[cfg(feature = "loom")]
use engine::{state_word, FULL};
pub(crate) use registry::MpmcMeta;
#[cfg(feature = "loom")]
pub use registry::LOOM_DEAD_WORD;

use super::head::RingHead;
use super::slot_words;
use super::{round_capacity, PopError, PushError};
use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use crate::words::{load_pod, store_pod};
use bytemuck::Pod;
use core::marker::PhantomData;
use std::time::Duration;

/// A bounded many-producer many-consumer queue of `T`s, shareable between processes.
///
/// Any number of threads and processes push and pop through `&self`. Capacities are rounded up
/// to a power of two, at least 2. Items of one producer are popped in the order it pushed them.
/// [`len`](MpmcRing::len) is approximate while others push or pop. A process killed while it
/// pushes or pops loses at most the one item each of its threads had in flight (an unpublished
/// push is counted in [`lost`](MpmcRing::lost); a pop has its item once it took it); see the
/// [guide](crate::guide::mpmc) for the algorithm and its guarantees.
///
/// `close()` makes later pushes fail with `Closed`; pops drain what was pushed and then fail with
/// `Closed`. A push racing with `close` either lands (and is popped) or fails with `Closed(v)`.
///
/// ```
/// let q = shmkit::MpmcRing::<u32>::new(8)?;
/// std::thread::scope(|s| {
///     for p in 0..2 {
///         let q = &q;
///         s.spawn(move || for i in 0..100 { q.push(p * 1000 + i).unwrap() });
///     }
///     let mut got: Vec<u32> = (0..200).map(|_| q.pop().unwrap()).collect();
///     got.sort();
///     assert_eq!(got[..100], (0..100).collect::<Vec<_>>()[..]);
/// });
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct MpmcRing<T> {
    h: RingHead,
    m: MpmcMeta,
    _t: PhantomData<T>,
    /// `capacity` slots of `1 + slot_words::<T>()` words (state word, then the item).
    slots: [AtomicU64],
}

// SAFETY: every field is an atomic (or PhantomData); T is Pod (no references, held as bits).
unsafe impl<T: Pod> Sync for MpmcRing<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for MpmcRing<T> {}

const fn stride<T>() -> usize {
    1 + slot_words::<T>()
}

/// The layout of the MPMC ring and byte queue, in their type tag's `extra` (the byte queue's in
/// its high half): 3 = pops copy before they take and write no slot, slots record the lap
/// finished in them; 2 was announcement lines for pushes and pops, pops freeing their slot;
/// 1 (`extra` 0) was the 128-entry process registry with owner-stamped slot claims.
#[cfg_attr(feature = "loom", allow(dead_code))]
pub(crate) const LAYOUT_VERSION: u64 = 3;

pub(crate) fn bad_capacity(requested: u64) -> Error {
    Error::InvalidCapacity {
        requested,
        reason: "an MPMC ring holds 2 to 2^32 items",
    }
}

/// The capacity an MPMC ring gets for `requested` (a power of two, at least 2).
pub(crate) fn mpmc_capacity(requested: u64) -> Option<u64> {
    round_capacity(requested).map(|c| c.max(2))
}

impl<T: Pod> MpmcRing<T> {
    const SIZED: () = assert!(
        core::mem::size_of::<T>() > 0,
        "MpmcRing<T> needs a T of at least one byte"
    );

    /// A ring on the heap, in an [`Arc`](std::sync::Arc) (for one process, tests and models) with room for `capacity` items,
    /// rounded up to a power of two (at least 2).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](crate::ring::MAX_CAPACITY).
    pub fn new(capacity: u64) -> Result<std::sync::Arc<Self>> {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZED;
        let cap = mpmc_capacity(capacity).ok_or_else(|| bad_capacity(capacity))?;
        let layout = mpmc_layout(cap, stride::<T>()).ok_or_else(|| bad_capacity(capacity))?;
        let n = cap as usize * stride::<T>();
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, exactly the layout of
        // `MpmcRing<T>` with `n` slot words (repr(C): RingHead, MpmcMeta, then the words).
        // Every field is written before the Box is formed; the Box frees it with the same
        // layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            core::ptr::addr_of_mut!((*ptr).m).write(MpmcMeta::fresh());
            let words = core::ptr::addr_of_mut!((*ptr).slots).cast::<AtomicU64>();
            for i in 0..n {
                words.add(i).write(AtomicU64::new(0));
            }
            // An Arc, so that ends and threads can share and keep it (the value moves into
            // the Arc's allocation before anyone else sees it).
            Ok(std::sync::Arc::from(Box::from_raw(ptr)))
        }
    }

    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    #[inline]
    fn core(&self) -> Core<'_> {
        Core::new(&self.h, &self.m, &self.slots, stride::<T>())
    }

    /// Number of slots (a power of two), from the local handle's dimensions.
    #[inline]
    pub fn capacity(&self) -> usize {
        super::capacity_for(self.slots.len(), stride::<T>())
    }

    /// The raw positions (pops taken, pushes taken) as found in shared memory; taken positions
    /// include the operations in flight.
    pub fn positions(&self) -> (u64, u64) {
        self.core().positions()
    }

    /// Approximate number of items (claimed pushes minus claimed pops, clamped to the capacity);
    /// exact when no push or pop is in flight.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether the ring looked empty (approximate, see [`len`](MpmcRing::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring looked full (approximate, see [`len`](MpmcRing::len)).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.h.ctl.closed.load(Ordering::Acquire) != 0
    }

    /// Items lost so far with processes that died while pushing them, after taking their
    /// position and before publishing it (at most one per thread of a killed process). A pop
    /// copies its item before it takes it, so a consumer killed mid-pop loses nothing to count.
    pub fn lost(&self) -> u64 {
        self.m.lost.load(Ordering::Relaxed)
    }

    /// Looks at every slot now and reaps those held by dead processes (blocking calls do this on
    /// their own for the slot they wait on). Returns how many were reaped.
    pub fn reap_dead(&self) -> u64 {
        self.core().reap_dead()
    }

    /// Closes the ring: pushes fail with `Closed` from now on, pops drain the remaining items and
    /// then fail with `Closed`. Every sleeper is woken. Closing twice is harmless.
    pub fn close(&self) {
        self.core().close()
    }

    /// Loom models only: head, tail and every slot's state word (for failure messages).
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn loom_dump(&self) -> Vec<u64> {
        let mut v = vec![
            self.h.head.load(Ordering::SeqCst),
            self.h.tail.load(Ordering::SeqCst),
        ];
        for i in 0..self.capacity() {
            v.push(self.slots[i * stride::<T>()].load(Ordering::SeqCst));
        }
        v
    }

    /// Loom models only: makes line `line` look held by a dead process that announced push
    /// position `pos` (whether it took it is up to the positions).
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn loom_stage_dead_announcer(&self, line: usize, pos: u64) {
        let l = &self.m.lines[line];
        l.owner.store(LOOM_DEAD_WORD, Ordering::Relaxed);
        l.tid.store(u64::MAX, Ordering::Relaxed);
        l.announce(pos);
    }

    /// Loom models only: sets slot `slot`'s word to "lap `lap - 1` published" (`lap` 0: never
    /// written), and the positions.
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn loom_stage_slot(&self, slot: usize, lap: u32, head: u64, tail: u64) {
        let w = if lap == 0 { 0 } else { state_word(lap, FULL) };
        self.slots[slot * stride::<T>()].store(w, Ordering::Relaxed);
        self.h.head.store(head, Ordering::Relaxed);
        self.h.tail.store(tail, Ordering::Relaxed);
    }

    /// Pushes `value` if there is room, without waiting.
    ///
    /// # Errors
    /// `Full(value)`, `Closed(value)`, or `Corrupted(value)` when the shared words are
    /// impossible.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let core = self.core();
        let me = core.me();
        core.try_push_with(me, |item| store_pod(item, &value))
            .map_err(|e| push_error(e, value))
    }

    /// Pops the oldest item if there is one, without waiting.
    ///
    /// # Errors
    /// `Empty`; `Closed` once the ring is closed and drained; `Corrupted`.
    pub fn try_pop(&self) -> Result<T, PopError> {
        self.core()
            .try_pop_with(|item| load_pod(item))
            .map_err(pop_error)
    }

    /// Pushes `value`, waiting as long as the ring is full.
    ///
    /// # Errors
    /// `Closed(value)`, `Corrupted(value)`.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.push_until(value, None)
    }

    /// Pushes `value`, waiting at most `timeout` while the ring is full.
    ///
    /// # Errors
    /// `Timeout(value)`, `Closed(value)`, `Corrupted(value)`.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.push_until(value, Some(timeout))
    }

    fn push_until(&self, value: T, timeout: Option<Duration>) -> Result<(), PushError<T>> {
        self.core()
            .push_with(timeout, |item| store_pod(item, &value))
            .map_err(|e| push_error(e, value))
    }

    /// Pops the oldest item, waiting as long as the ring is empty.
    ///
    /// # Errors
    /// `Closed` once closed and drained; `Corrupted`.
    pub fn pop(&self) -> Result<T, PopError> {
        self.pop_until(None)
    }

    /// Pops the oldest item, waiting at most `timeout` while the ring is empty.
    ///
    /// # Errors
    /// `Timeout`, `Closed` (closed and drained), `Corrupted`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        self.pop_until(Some(timeout))
    }

    fn pop_until(&self, timeout: Option<Duration>) -> Result<T, PopError> {
        self.core()
            .pop_with(timeout, |item| load_pod(item))
            .map_err(pop_error)
    }
}

fn push_error<T>(e: Stop, value: T) -> PushError<T> {
    match e {
        Stop::Wait(_) => PushError::Full(value),
        Stop::Closed => PushError::Closed(value),
        Stop::Timeout => PushError::Timeout(value),
        Stop::Corrupted => PushError::Corrupted(value),
    }
}

pub(crate) fn pop_error(e: Stop) -> PopError {
    match e {
        Stop::Wait(_) => PopError::Empty,
        Stop::Closed => PopError::Closed,
        Stop::Timeout => PopError::Timeout,
        Stop::Corrupted => PopError::Corrupted,
    }
}

impl<T: Pod> core::fmt::Debug for MpmcRing<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MpmcRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .field("lost", &self.lost())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use crate::words::words_for;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    /// Largest element size accepted in a tag read from shared memory.
    const MAX_ELEM: u32 = 1 << 20;

    fn stride_of(tag: &TypeTag) -> Option<usize> {
        (tag.elem_size > 0 && tag.elem_size <= MAX_ELEM)
            .then(|| 1 + words_for(tag.elem_size as usize))
    }

    // SAFETY: MpmcRing<T> is #[repr(C)]: a RingHead and an MpmcMeta of atomics, then
    // `tag.len * stride` AtomicU64 words (any bits valid; any bytes are a valid T because T:
    // Pod). `layout` and `cast` take the word count from the same local tag. No pointers, no
    // Drop.
    unsafe impl<T: Pod + Send + Sync> Object for MpmcRing<T> {
        type Params = u64;
        fn element() -> TypeTag {
            #[allow(clippy::let_unit_value)]
            let () = Self::SIZED;
            TypeTag::of::<T>(Kind::MPMC)
        }
        fn tag(capacity: &u64) -> TypeTag {
            Self::element().with_dims(*capacity, LAYOUT_VERSION)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            if tag.extra != LAYOUT_VERSION {
                return None;
            }
            mpmc_layout(tag.len, stride_of(tag)?)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the ring
            // is all atomics, written through them.
            let r = unsafe { Self::cast(ptr, tag).as_ref() };
            r.h.reset();
            r.m.reset();
            for w in r.slots.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = stride_of(tag).map_or(0, |s| (tag.len as usize).saturating_mul(s));
            let p = MpmcRing::<T>::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
