//! [`MpmcRing<T>`]: a bounded multi-producer multi-consumer ring, across processes.
//!
//! The algorithm is Dmitry Vyukov's bounded MPMC queue with a sequence word per slot, on
//! monotonic 64-bit positions:
//!
//! - slot `i` starts with sequence `i`;
//! - a producer at position `p` may fill slot `p & mask` when its sequence is `p`: it claims `p`
//!   by a CAS on `tail`, writes the item and publishes it with sequence `p + 1` (release);
//! - a consumer at position `p` may empty the slot when its sequence is `p + 1`: it claims `p` by
//!   a CAS on `head`, reads the item and frees the slot for the next lap with sequence
//!   `p + capacity`.
//!
//! The same fixed head as [`SpscRing`](super::SpscRing) (positions on separate lines, a rarely
//! written control line with close flag, futex words and sleeper counts) precedes the slots;
//! each slot is one sequence word and the item's words. Sequence words and positions read from
//! shared memory are untrusted: they are masked with the local capacity and loops over them are
//! bounded, so a scribbling peer causes errors, wrong values or timeouts, never an out-of-bounds
//! access or a panic.
//!
//! # Process death
//!
//! A producer killed between claiming a position and publishing it leaves that slot unpublished:
//! consumers reaching it wait (blocking pops until their timeout) and [`close`](MpmcRing::close)
//! cannot report `Closed` past it. A consumer killed between claiming and freeing a slot blocks
//! producers one lap later. Detecting and skipping such slots is not implemented yet; use the
//! `_timeout` calls where peers may be killed.

use super::spsc::{ring_layout, slot_words, RingHead};
use super::wait::{arm_many, disarm_many, notify, spin, wake};
use super::{round_capacity, PopError, PushError};
use crate::error::{Error, Result};
use crate::sync::{fence, futex_wait, AtomicU64, Deadline, Ordering};
use crate::words::{load_pod, store_pod};
use bytemuck::Pod;
use core::marker::PhantomData;
use std::time::Duration;

/// Re-reads of an unchanged position after a slot said "taken" before a loop gives up with
/// `Corrupted` (legitimately the position moves within a few re-reads).
#[cfg(not(feature = "loom"))]
const STALE_LIMIT: u32 = 1 << 16;
#[cfg(feature = "loom")]
const STALE_LIMIT: u32 = 4;

/// A bounded many-producer many-consumer queue of `T`s, shareable between processes.
///
/// Any number of threads and processes push and pop through `&self`. Capacities are rounded up
/// to a power of two, at least 2. Items of one producer are popped in the order it pushed them.
/// [`len`](MpmcRing::len) is approximate while others push or pop.
///
/// `close()` makes later pushes fail with `Closed`; pops drain what was pushed and then fail with
/// `Closed` (a push racing with `close` may still land, and is then popped).
///
/// ```
/// let q = shmkit::ring::MpmcRing::<u32>::new(8)?;
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
    _t: PhantomData<T>,
    /// `capacity` slots of `1 + slot_words::<T>()` words (sequence, then the item).
    slots: [AtomicU64],
}

// SAFETY: every field is an atomic (or PhantomData); T is Pod (no references, held as bits).
unsafe impl<T: Pod> Sync for MpmcRing<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for MpmcRing<T> {}

const fn stride<T>() -> usize {
    1 + slot_words::<T>()
}

fn bad_capacity(requested: u64) -> Error {
    Error::InvalidCapacity {
        requested,
        reason: "an MPMC ring holds 2 to 2^32 items",
    }
}

/// The capacity an MPMC ring gets for `requested` (a power of two, at least 2).
fn mpmc_capacity(requested: u64) -> Option<u64> {
    round_capacity(requested).map(|c| c.max(2))
}

impl<T: Pod> MpmcRing<T> {
    const SIZED: () = assert!(
        core::mem::size_of::<T>() > 0,
        "MpmcRing<T> needs a T of at least one byte"
    );

    /// A ring on the heap (for one process, tests and models) with room for `capacity` items,
    /// rounded up to a power of two (at least 2).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](super::MAX_CAPACITY).
    pub fn new(capacity: u64) -> Result<Box<Self>> {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZED;
        let cap = mpmc_capacity(capacity).ok_or_else(|| bad_capacity(capacity))?;
        let layout = ring_layout(cap, stride::<T>()).ok_or_else(|| bad_capacity(capacity))?;
        let n = cap as usize * stride::<T>();
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, exactly the layout of
        // `MpmcRing<T>` with `n` slot words (repr(C): RingHead, then the words). Every field is
        // written before the Box is formed; the Box frees it with the same layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            let words = core::ptr::addr_of_mut!((*ptr).slots).cast::<AtomicU64>();
            for i in 0..n {
                let v = if i % stride::<T>() == 0 {
                    (i / stride::<T>()) as u64
                } else {
                    0
                };
                words.add(i).write(AtomicU64::new(v));
            }
            Ok(Box::from_raw(ptr))
        }
    }

    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    /// Number of slots (a power of two), from the local handle's dimensions.
    #[inline]
    pub fn capacity(&self) -> usize {
        super::capacity_for(self.slots.len(), stride::<T>())
    }

    /// The raw positions (pops claimed, pushes claimed) as found in shared memory.
    pub fn positions(&self) -> (u64, u64) {
        (
            self.h.head.load(Ordering::Acquire),
            self.h.tail.load(Ordering::Acquire),
        )
    }

    /// Approximate number of items (claimed pushes minus claimed pops, clamped to the capacity);
    /// exact when no push or pop is in flight.
    pub fn len(&self) -> usize {
        let (h, t) = self.positions();
        if h > t {
            // head ahead of tail: read at different moments (or corrupted)
            return 0;
        }
        (t - h).min(self.capacity() as u64) as usize
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

    /// Closes the ring: pushes fail with `Closed` from now on, pops drain the remaining items and
    /// then fail with `Closed`. Every sleeper is woken. Closing twice is harmless.
    pub fn close(&self) {
        let c = &self.h.ctl;
        c.closed.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        wake(&c.items);
        wake(&c.space);
    }

    /// Slot `pos & (cap - 1)`: its sequence word and its item words (in bounds: `cap` is the
    /// local capacity, a power of two ≥ 1, and `slots` holds `cap` whole slots).
    #[inline]
    fn slot(&self, pos: u64, cap: u64) -> (&AtomicU64, &[AtomicU64]) {
        let s = stride::<T>();
        let i = (pos & (cap - 1)) as usize * s;
        (&self.slots[i], &self.slots[i + 1..i + s])
    }

    /// Pushes `value` if there is room, without waiting.
    ///
    /// # Errors
    /// `Full(value)`, `Closed(value)`, or `Corrupted(value)` when the shared positions or
    /// sequences are impossible.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let c = &self.h.ctl;
        if c.closed.load(Ordering::Relaxed) != 0 {
            return Err(PushError::Closed(value));
        }
        let cap = self.capacity() as u64;
        if cap == 0 {
            return Err(PushError::Corrupted(value));
        }
        let mut pos = self.h.tail.load(Ordering::Relaxed);
        let mut stale = 0u32;
        loop {
            let (seq, item) = self.slot(pos, cap);
            let diff = seq.load(Ordering::Acquire).wrapping_sub(pos) as i64;
            if diff == 0 {
                match self.h.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        store_pod(item, &value);
                        seq.store(pos.wrapping_add(1), Ordering::Release);
                        notify(&c.items_waiting, &c.items);
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // The slot still holds the item of the previous lap: full.
                return Err(PushError::Full(value));
            } else {
                // Another producer took `pos`: move on (bounded, in case of scribbles).
                let now = self.h.tail.load(Ordering::Relaxed);
                if now == pos {
                    stale += 1;
                    if stale > STALE_LIMIT {
                        return Err(PushError::Corrupted(value));
                    }
                    crate::sync::spin_hint();
                }
                pos = now;
            }
        }
    }

    /// Pops the oldest item if there is one, without waiting.
    ///
    /// # Errors
    /// `Empty`; `Closed` once the ring is closed and every claimed push was popped; `Corrupted`.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let c = &self.h.ctl;
        let cap = self.capacity() as u64;
        if cap == 0 {
            return Err(PopError::Corrupted);
        }
        let mut pos = self.h.head.load(Ordering::Relaxed);
        let mut stale = 0u32;
        loop {
            let (seq, item) = self.slot(pos, cap);
            let diff = seq
                .load(Ordering::Acquire)
                .wrapping_sub(pos.wrapping_add(1)) as i64;
            if diff == 0 {
                match self.h.head.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let v = load_pod(item);
                        seq.store(pos.wrapping_add(cap), Ordering::Release);
                        notify(&c.space_waiting, &c.space);
                        return Ok(v);
                    }
                    Err(now) => pos = now,
                }
            } else if diff < 0 {
                // Nothing published at `pos` yet. Closed and no push claimed beyond: drained.
                if c.closed.load(Ordering::Acquire) != 0
                    && self.h.tail.load(Ordering::Acquire) == pos
                    && self.h.head.load(Ordering::Acquire) == pos
                {
                    return Err(PopError::Closed);
                }
                return Err(PopError::Empty);
            } else {
                let now = self.h.head.load(Ordering::Relaxed);
                if now == pos {
                    stale += 1;
                    if stale > STALE_LIMIT {
                        return Err(PopError::Corrupted);
                    }
                    crate::sync::spin_hint();
                }
                pos = now;
            }
        }
    }

    /// Pushes `value`, waiting as long as the ring is full.
    ///
    /// # Errors
    /// `Closed(value)`, `Corrupted(value)`.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.push_timeout(value, None)
    }

    /// Pushes `value`, waiting at most `timeout` (`None`: forever) while the ring is full.
    ///
    /// # Errors
    /// `Timeout(value)`, `Closed(value)`, `Corrupted(value)`.
    pub fn push_timeout(
        &self,
        mut value: T,
        timeout: Option<Duration>,
    ) -> Result<(), PushError<T>> {
        let deadline = Deadline::after(timeout);
        let c = &self.h.ctl;
        let mut round = 0;
        let mut armed: Option<u32> = None;
        loop {
            match self.try_push(value) {
                Err(PushError::Full(v)) => value = v,
                other => {
                    if armed.is_some() {
                        disarm_many(&c.space_waiting);
                    }
                    return other;
                }
            }
            if let Some(seq) = armed.take() {
                if !deadline.expired() {
                    futex_wait(&c.space, seq, deadline.remaining());
                }
                disarm_many(&c.space_waiting);
                continue;
            }
            if deadline.expired() {
                return Err(PushError::Timeout(value));
            }
            if spin(round) {
                round += 1;
                continue;
            }
            armed = Some(arm_many(&c.space_waiting, &c.space));
        }
    }

    /// Pops the oldest item, waiting as long as the ring is empty.
    ///
    /// # Errors
    /// `Closed` once closed and drained; `Corrupted`.
    pub fn pop(&self) -> Result<T, PopError> {
        self.pop_timeout(None)
    }

    /// Pops the oldest item, waiting at most `timeout` (`None`: forever) while the ring is empty.
    ///
    /// # Errors
    /// `Timeout`, `Closed` (closed and drained), `Corrupted`.
    pub fn pop_timeout(&self, timeout: Option<Duration>) -> Result<T, PopError> {
        let deadline = Deadline::after(timeout);
        let c = &self.h.ctl;
        let mut round = 0;
        let mut armed: Option<u32> = None;
        loop {
            match self.try_pop() {
                Err(PopError::Empty) => {}
                other => {
                    if armed.is_some() {
                        disarm_many(&c.items_waiting);
                    }
                    return other;
                }
            }
            if let Some(seq) = armed.take() {
                if !deadline.expired() {
                    futex_wait(&c.items, seq, deadline.remaining());
                }
                disarm_many(&c.items_waiting);
                continue;
            }
            if deadline.expired() {
                return Err(PopError::Timeout);
            }
            if spin(round) {
                round += 1;
                continue;
            }
            armed = Some(arm_many(&c.items_waiting, &c.items));
        }
    }
}

impl<T: Pod> core::fmt::Debug for MpmcRing<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MpmcRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::segment::object::{Kind, Object, TypeTag};
    use crate::words::words_for;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    /// Largest element size accepted in a tag read from shared memory.
    const MAX_ELEM: u32 = 1 << 20;

    fn stride_of(tag: &TypeTag) -> Option<usize> {
        (tag.elem_size > 0 && tag.elem_size <= MAX_ELEM)
            .then(|| 1 + words_for(tag.elem_size as usize))
    }

    // SAFETY: MpmcRing<T> is #[repr(C)]: a RingHead of atomics, then `tag.len * stride`
    // AtomicU64 words (any bits valid; any bytes are a valid T because T: Pod). `layout` and
    // `cast` take the word count from the same local tag. No pointers, no Drop.
    unsafe impl<T: Pod + Send + Sync> Object for MpmcRing<T> {
        type Params = u64;
        fn element() -> TypeTag {
            #[allow(clippy::let_unit_value)]
            let () = Self::SIZED;
            TypeTag::of::<T>(Kind::MPMC)
        }
        fn tag(capacity: &u64) -> TypeTag {
            Self::element().with_dims(*capacity, 0)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            if tag.len < 2 {
                return None;
            }
            ring_layout(tag.len, stride_of(tag)?)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the ring
            // is all atomics, written through them.
            let r = unsafe { Self::cast(ptr, tag).as_ref() };
            r.h.reset();
            let s = stride_of(tag).unwrap_or(1);
            for (i, w) in r.slots.iter().enumerate() {
                let v = if i % s == 0 { (i / s) as u64 } else { 0 };
                w.store(v, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = stride_of(tag).map_or(0, |s| (tag.len as usize).saturating_mul(s));
            let p = MpmcRing::<T>::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }

    impl crate::Segment {
        /// Finds or creates the [`MpmcRing`] `name` with room for `capacity` items, rounded up
        /// to a power of two, at least 2 (an existing ring must have the same element type and
        /// rounded capacity).
        ///
        /// # Errors
        /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](super::super::MAX_CAPACITY);
        /// as [`Segment::object`](crate::Segment::object).
        pub fn mpmc<T: Pod + Send + Sync>(
            &self,
            name: &str,
            capacity: u64,
        ) -> Result<crate::Handle<MpmcRing<T>>> {
            let cap = mpmc_capacity(capacity).ok_or_else(|| bad_capacity(capacity))?;
            self.object::<MpmcRing<T>>(name, cap)
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
#[path = "mpmc_tests.rs"]
mod tests;
