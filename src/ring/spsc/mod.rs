//! [`SpscRing<T>`]: a bounded single-producer single-consumer ring, across processes.
//!
//! # Layout (shared memory)
//!
//! | line | field | written by |
//! | --- | --- | --- |
//! | 0 | `head`: number of items ever popped | the consumer |
//! | 1 | `tail`: number of items ever pushed | the producer |
//! | 2 | `closed`, the two side claims, the two futex words and their waiter flags | rarely |
//! | 3.. | `capacity` slots of `1 + words_for_type::<T>()` `AtomicU64` words: a stamp, then the item | producer, then consumer |
//!
//! Positions are monotonic `u64`s (they never wrap in practice); item `n` lives in slot
//! `n & (capacity - 1)`. The producer writes the item, then the slot's **stamp** `n + 1`
//! (release) after publishing `tail`; the consumer polls the stamp of the slot it wants (acquire),
//! never `tail`, so an item costs it one cache line (stamp and item together) instead of two:
//! this is what brings a cross-process round trip close to the hardware floor. The producer
//! keeps a cached copy of `head` and reads the shared one only when the cache says full. Each
//! side is the only writer of its position and keeps it in its handle. Positions and stamps read
//! from shared memory are validated before use (`0 <= tail - head <= capacity`; a stamp counts
//! only if it is exactly `n + 1`), and slots are indexed with the capacity of the *local* handle:
//! a peer that scribbles over the ring causes [`Corrupted`](super::PopError::Corrupted) errors or
//! wrong values, never an out-of-bounds access or a panic. `tail` is still published (for `len`,
//! `shmkit stat` and a producer that takes over the side: it continues after the last stamped
//! slot).
//!
//! # Waiting
//!
//! A side that must wait spins briefly, then announces itself in a waiter flag, issues a heavy
//! barrier (a `SeqCst` fence and a global expedited `membarrier`), re-checks, and sleeps on a
//! futex word. The other side, after publishing its position, issues a light barrier (a compiler
//! barrier) and reads the flag: the pair acts as two `SeqCst` fences (see
//! [`crate::sync::asym`]), so no wake-up is lost; and the flag is read (not written) on the fast
//! path, so a push or pop makes neither a system call nor a fence while nobody sleeps. A sleep
//! lasts at most the recheck period (10 ms), after which a blocked side checks that its peer's
//! holder is alive: a pop whose producer died drains what it pushed and fails with `Closed`, a
//! push into a full ring whose consumer died fails with `Closed(value)`.
//!
//! # Claims
//!
//! Each side is claimed by at most one handle at a time, system-wide: the claim word holds the
//! claimer's owner word ([`crate::process`]: pid, start-time tag, pid-namespace tag), written in
//! one CAS. Claiming a side that a live process holds is [`Error::RingSideTaken`]; a side whose
//! holder died is taken over (a producer that takes over first publishes what its dead
//! predecessor had written and covered by `tail`). A blocked push or pop rechecks its peer's
//! claim every 10 ms (see the ring family's wait loop).

use super::head::RingHead;
use super::owned::Keep;
use super::wait::claim;
use super::{round_capacity, slot_words, MAX_CAPACITY};
use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use bytemuck::Pod;
use core::marker::PhantomData;
use core::ptr::NonNull;
use std::sync::Arc;

mod ends;
pub use ends::{Consumer, Producer};

/// A bounded single-producer single-consumer queue of `T`s, shareable between processes.
///
/// Create it on the heap with [`SpscRing::new`] or in a segment with
/// [`Segment::spsc`](crate::Segment::spsc); then take the producer side with
/// [`producer`](SpscRing::producer) in one process (or thread) and the consumer side with
/// [`consumer`](SpscRing::consumer) in another. Capacities are rounded up to a power of two.
///
/// `close()` (from either side or the ring) makes every later push fail with `Closed` at once;
/// pops drain what is left and then fail with `Closed`. A push that races with `close` may still
/// land (and is then popped). Dropping a handle does not close the ring: it only releases the
/// side, so another process may take it over.
///
/// ```
/// use shmkit::{SpscRing, PopError};
/// let ring = SpscRing::<u64>::new(3)?; // rounded up to 4
/// assert_eq!(ring.capacity(), 4);
/// let (mut tx, mut rx) = ring.split()?;
/// std::thread::scope(|s| {
///     s.spawn(move || for i in 0..100 { tx.push(i).unwrap() });
///     for i in 0..100 { assert_eq!(rx.pop(), Ok(i)); }
/// });
/// ring.close();
/// assert_eq!(rx.try_pop(), Err(PopError::Closed));
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct SpscRing<T> {
    h: RingHead,
    _t: PhantomData<T>,
    /// `capacity * stride::<T>()` words (stamp, then the item); the length comes from the
    /// local tag.
    slots: [AtomicU64],
}

// SAFETY: every field is an atomic (or PhantomData); T is Pod (no references, held as bits).
unsafe impl<T: Pod> Sync for SpscRing<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for SpscRing<T> {}

/// A consumer finding no item reads the shared `tail` (to report a corrupted one) on the first
/// such poll and then once per this many.
const TAIL_CHECK_EVERY: u32 = 1024;

/// Words per SPSC slot: the stamp, then the item.
pub(super) const fn stride<T>() -> usize {
    1 + slot_words::<T>()
}

/// Layout of a ring whose items take `words` words each, with `capacity` slots.
pub(super) fn ring_layout(capacity: u64, words: usize) -> Option<core::alloc::Layout> {
    if capacity == 0 || capacity > MAX_CAPACITY || !capacity.is_power_of_two() || words == 0 {
        return None;
    }
    let n = usize::try_from(capacity).ok()?.checked_mul(words)?;
    let (l, _) = core::alloc::Layout::new::<RingHead>()
        .extend(core::alloc::Layout::array::<AtomicU64>(n).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

impl<T: Pod> SpscRing<T> {
    const SIZED: () = assert!(
        core::mem::size_of::<T>() > 0,
        "SpscRing<T> needs a T of at least one byte"
    );

    /// A ring on the heap, in an [`Arc`] (for one process, tests and models) with room for `capacity` items,
    /// rounded up to a power of two.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`].
    pub fn new(capacity: u64) -> Result<std::sync::Arc<Self>> {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZED;
        let cap = round_capacity(capacity).ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "a ring holds 1 to 2^32 items",
        })?;
        let w = stride::<T>();
        let layout = ring_layout(cap, w).ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "too large for this machine's address space",
        })?;
        let n = cap as usize * w;
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, which is exactly the layout of
        // `SpscRing<T>` with `n` slot words (repr(C): RingHead, then the words); every field is
        // written before the Box is formed, and the Box frees it with the same layout.
        unsafe {
            Self::write_fresh(ptr, n);
            // An Arc, so that ends and threads can share and keep it (the value moves into
            // the Arc's allocation before anyone else sees it).
            Ok(std::sync::Arc::from(Box::from_raw(ptr)))
        }
    }

    /// Forms the fat pointer to a ring at `raw` with `n` slot words.
    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    /// # Safety
    /// `ptr` is valid for writes of a ring with `n` slot words and suitably aligned.
    unsafe fn write_fresh(ptr: *mut Self, n: usize) {
        // SAFETY: per the contract, every place written lies inside the allocation.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            let slots = core::ptr::addr_of_mut!((*ptr).slots).cast::<AtomicU64>();
            for i in 0..n {
                slots.add(i).write(AtomicU64::new(0));
            }
        }
    }

    /// Number of slots (a power of two), from the local handle's dimensions.
    #[inline]
    pub fn capacity(&self) -> usize {
        super::capacity_for(self.slots.len(), stride::<T>())
    }

    /// The raw positions (items ever popped, items ever pushed) as found in shared memory.
    pub fn positions(&self) -> (u64, u64) {
        self.h.positions()
    }

    /// Number of items in the ring at the moment of the call (clamped to the capacity if the
    /// shared positions are corrupted).
    pub fn len(&self) -> usize {
        let (h, t) = self.positions();
        let n = t.wrapping_sub(h);
        n.min(self.capacity() as u64) as usize
    }

    /// Whether the ring was empty at the moment of the call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring was full at the moment of the call.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.h.is_closed()
    }

    /// Closes the ring: pushes fail with `Closed` from now on, pops drain the remaining items and
    /// then fail with `Closed`. Sleepers on both sides are woken. Closing twice is harmless.
    pub fn close(&self) {
        self.h.close();
    }

    /// The pids holding the producer and consumer sides (0 = free). A pid may be stale if its
    /// holder died; the next claim takes the side over.
    pub fn holders(&self) -> (u32, u32) {
        let c = &self.h.ctl;
        (
            crate::process::word_pid(c.producer.load(Ordering::Acquire)),
            crate::process::word_pid(c.consumer.load(Ordering::Acquire)),
        )
    }

    /// Claims the producer side; the [`Producer`] keeps this ring alive.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub fn producer(self: &Arc<Self>) -> Result<Producer<T>> {
        // SAFETY: an Arc keeps its allocation alive, at one address, while any clone lives.
        unsafe { self.producer_kept(Arc::clone(self)) }
    }

    /// Claims the consumer side; the [`Consumer`] keeps this ring alive.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub fn consumer(self: &Arc<Self>) -> Result<Consumer<T>> {
        // SAFETY: as in `producer`.
        unsafe { self.consumer_kept(Arc::clone(self)) }
    }

    /// Claims both sides (for threads of one process, or to hand one side to a thread).
    ///
    /// # Errors
    /// As [`producer`](SpscRing::producer) and [`consumer`](SpscRing::consumer).
    pub fn split(self: &Arc<Self>) -> Result<(Producer<T>, Consumer<T>)> {
        let p = self.producer()?;
        let c = self.consumer()?;
        Ok((p, c))
    }

    /// Claims the producer side of a ring whose memory `keeper` keeps alive (for rings placed
    /// in memory of your own; [`producer`](Self::producer) and the segment handle's
    /// `producer` call this with an `Arc` and a handle).
    ///
    /// # Safety
    /// For as long as `keeper` lives, wherever it is moved, `self` stays valid for shared
    /// access at its present address.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub unsafe fn producer_kept(&self, keeper: impl Send + Sync + 'static) -> Result<Producer<T>> {
        // SAFETY: the caller's contract is Keep::new's.
        let keep = unsafe { Keep::new(keeper) };
        self.check_capacity()?;
        claim(&self.h.ctl.producer, "producer")?;
        // Only the producer writes this flag: a holder that died asleep may have left it set.
        self.h.ctl.space_waiting.store(0, Ordering::Relaxed);
        let cap = self.capacity() as u64;
        let mut tail = self.h.tail.load(Ordering::Acquire);
        let head = self.h.head.load(Ordering::Acquire);
        // A producer killed between publishing `tail` and stamping its last item(s) left them
        // written (items are stored before `tail`) but invisible: the consumer would wait for
        // their stamps for ever. Stamp every position the published `tail` covers that the
        // consumer has not passed (at most a ring's worth; a stamp already there is left as is).
        let covered = tail.wrapping_sub(head);
        if covered <= cap {
            for k in 0..covered {
                let pos = head.wrapping_add(k);
                let (stamp, _) = self.slot(pos, cap);
                if stamp.load(Ordering::Acquire) != pos.wrapping_add(1) {
                    stamp.store(pos.wrapping_add(1), Ordering::Release);
                }
            }
        }
        // `tail` is published before the stamps it covers, so stamps past it are not expected;
        // continue after any found anyway (at most a ring's worth), never overwriting an item
        // the consumer may already see.
        for _ in 0..cap {
            let (stamp, _) = self.slot(tail, cap);
            if stamp.load(Ordering::Acquire) != tail.wrapping_add(1) {
                break;
            }
            tail = tail.wrapping_add(1);
        }
        Ok(Producer {
            ring: NonNull::from(self),
            tail,
            head_cache: self.h.head.load(Ordering::Acquire),
            cap,
            _keep: keep,
        })
    }

    /// Claims the consumer side of a ring whose memory `keeper` keeps alive (see
    /// [`producer_kept`](Self::producer_kept)).
    ///
    /// # Safety
    /// As [`producer_kept`](Self::producer_kept).
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] if a live process (this one included) holds it.
    pub unsafe fn consumer_kept(&self, keeper: impl Send + Sync + 'static) -> Result<Consumer<T>> {
        // SAFETY: the caller's contract is Keep::new's.
        let keep = unsafe { Keep::new(keeper) };
        self.check_capacity()?;
        claim(&self.h.ctl.consumer, "consumer")?;
        // Only the consumer writes this flag: a holder that died asleep may have left it set.
        self.h.ctl.items_waiting.store(0, Ordering::Relaxed);
        let head = self.h.head.load(Ordering::Acquire);
        Ok(Consumer {
            ring: NonNull::from(self),
            head,
            cap: self.capacity() as u64,
            empty_polls: 0,
            _keep: keep,
        })
    }

    fn check_capacity(&self) -> Result<()> {
        if self.capacity() == 0 {
            return Err(Error::InvalidCapacity {
                requested: 0,
                reason: "this view of the ring has no whole slot",
            });
        }
        Ok(())
    }

    /// The stamp and item words of position `pos` (in bounds: masked with the local capacity,
    /// and the local slot area holds `cap` whole slots).
    #[inline]
    fn slot(&self, pos: u64, cap: u64) -> (&AtomicU64, &[AtomicU64]) {
        let w = stride::<T>();
        let i = (pos & (cap - 1)) as usize * w;
        (&self.slots[i], &self.slots[i + 1..i + w])
    }
}

impl<T: Pod> core::fmt::Debug for SpscRing<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SpscRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
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

    /// Words per slot (stamp + item) for the tag's element size.
    fn words_of(tag: &TypeTag) -> Option<usize> {
        (tag.elem_size > 0 && tag.elem_size <= MAX_ELEM)
            .then(|| 1 + words_for(tag.elem_size as usize))
    }

    // SAFETY: SpscRing<T> is #[repr(C)]: a RingHead of atomics, then `tag.len * words` AtomicU64
    // slot words (stamps and items) (any bits valid; any bytes are a valid T because T: Pod). `layout` and `cast`
    // both take the slot count from the same local tag, so the fat pointer never exceeds the
    // allocation. No pointers, no Drop.
    unsafe impl<T: Pod + Send + Sync> Object for SpscRing<T> {
        type Params = u64;
        fn element() -> TypeTag {
            #[allow(clippy::let_unit_value)]
            let () = Self::SIZED;
            TypeTag::of::<T>(Kind::SPSC)
        }
        fn tag(capacity: &u64) -> TypeTag {
            Self::element().with_dims(*capacity, 0)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            ring_layout(tag.len, words_of(tag)?)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the ring
            // is all atomics, written through them.
            let r = unsafe { Self::cast(ptr, tag).as_ref() };
            r.h.reset();
            // Stamps 0: no slot holds an item yet (item words are written before being read).
            for w in r.slots.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = words_of(tag).map_or(0, |w| (tag.len as usize).saturating_mul(w));
            let p = SpscRing::<T>::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
