//! [`ByteRing`]: a single-producer single-consumer ring of variable-length byte messages, across
//! processes.
//!
//! # Layout (shared memory)
//!
//! | line | field | written by |
//! | --- | --- | --- |
//! | 0 | `head`: bytes ever consumed | the receiver |
//! | 1 | `tail`: bytes ever written | the sender |
//! | 2 | `closed`, the two side claims, the two futex words and their waiter flags | rarely |
//! | 3 | `max_msg` | the creator |
//! | 4.. | `capacity / 8` `AtomicU64` words of records | sender, then receiver |
//!
//! Lines 0–2 are the [`SpscRing`](super::SpscRing)'s head, with the same waiting protocol
//! (spin, then a shared futex, no system call while nobody sleeps; a blocked side rechecks its
//! peer's liveness every few milliseconds) and the same per-process side claims (a live holder makes a second claim fail with [`Error::RingSideTaken`]; a dead
//! holder's side is taken over). How records are laid out and validated is described in the
//! private `lane` module: a length header word, the payload padded to whole words, a padding
//! record where a message would cross the end of the area; every header and position read from
//! shared memory is checked against the local capacity and `max_msg`, so a corrupted ring gives
//! `Corrupted` errors, never an out-of-bounds access or a panic.
//!
//! # Sizes
//!
//! The capacity (bytes) is rounded up to a power of two, at least 16. A message takes
//! `8 + round_up_8(len)` bytes; `max_msg` must be at most `capacity / 2 - 8`, which guarantees
//! that an empty ring always has room for any allowed message.

use super::head::RingHead;
pub use super::lane::max_msg_limit;
use super::lane::{Lane, Rx, Tx, MIN_BYTE_CAPACITY};
use super::owned::Keep;
use super::wait::claim;
use super::{round_capacity, MAX_CAPACITY};
use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;
use std::sync::Arc;

mod ends;
pub use ends::{ByteReceiver, ByteSender};

/// Rounds a requested capacity and checks `max_msg` against it: the byte capacity to use.
pub(crate) fn byte_dims(capacity: u64, max_msg: u64) -> Result<u64> {
    let cap = round_capacity(capacity)
        .ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "a byte ring holds 1 to 2^32 bytes",
        })?
        .max(MIN_BYTE_CAPACITY);
    if max_msg > max_msg_limit(cap) {
        return Err(Error::InvalidCapacity {
            requested: max_msg,
            reason: "max_msg must be at most capacity / 2 - 8 bytes (capacity rounded up to a \
                     power of two, at least 16)",
        });
    }
    Ok(cap)
}

/// Whether `(capacity, max_msg)` read from a tag are dimensions [`byte_dims`] could produce.
#[cfg(not(feature = "loom"))]
pub(super) fn dims_valid(cap: u64, max_msg: u64) -> bool {
    (MIN_BYTE_CAPACITY..=MAX_CAPACITY).contains(&cap)
        && cap.is_power_of_two()
        && max_msg <= max_msg_limit(cap)
}

/// A bounded single-producer single-consumer queue of byte messages of varying length,
/// shareable between processes.
///
/// Create it on the heap with [`ByteRing::new`] or in a segment with
/// [`Segment::byte_ring`](crate::Segment::byte_ring); take the sending side with
/// [`sender`](ByteRing::sender) in one process and the receiving side with
/// [`receiver`](ByteRing::receiver) in another.
///
/// `close()` (from either side or the ring) makes every later send fail with `Closed`; receives
/// drain what is left and then fail with `Closed`. Dropping a handle does not close the ring: it
/// releases the side, so that another process may take it over.
///
/// ```
/// use shmkit::{ByteRing, RecvError};
/// let ring = ByteRing::new(1024, 100)?;
/// let (mut tx, mut rx) = ring.split()?;
/// tx.send(b"hello")?;
/// tx.send(b"")?;
/// assert_eq!(rx.recv()?, b"hello");
/// assert_eq!(rx.recv()?, b"");
/// ring.close();
/// assert_eq!(rx.try_recv(), Err(RecvError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
pub struct ByteRing {
    h: RingHead,
    /// The largest message, as created (untrusted: clamped on use).
    max_msg: CachePadded<AtomicU64>,
    /// `capacity / 8` words; the length comes from the local tag.
    data: [AtomicU64],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(CachePadded<AtomicU64>, CachePadded<u64>);

// SAFETY: every field is an atomic.
unsafe impl Sync for ByteRing {}
// SAFETY: as above.
unsafe impl Send for ByteRing {}

/// Layout of a byte ring of `cap` bytes (`None` for impossible dimensions).
fn layout_of(cap: u64) -> Option<core::alloc::Layout> {
    if !(MIN_BYTE_CAPACITY..=MAX_CAPACITY).contains(&cap) || !cap.is_power_of_two() {
        return None;
    }
    let words = usize::try_from(cap / 8).ok()?;
    let (l, _) = core::alloc::Layout::new::<RingHead>()
        .extend(core::alloc::Layout::new::<CachePadded<AtomicU64>>())
        .ok()?;
    let (l, _) = l
        .extend(core::alloc::Layout::array::<AtomicU64>(words).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

impl ByteRing {
    /// A ring on the heap, in an [`Arc`] (for one process, tests and models) of `capacity` bytes (rounded up
    /// to a power of two, at least 16) for messages of up to `max_msg` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for a capacity of 0 or above 2³² bytes, or a `max_msg` above
    /// `capacity / 2 - 8`.
    pub fn new(capacity: u64, max_msg: u64) -> Result<std::sync::Arc<Self>> {
        let cap = byte_dims(capacity, max_msg)?;
        let layout = layout_of(cap).ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "too large for this machine's address space",
        })?;
        let n = (cap / 8) as usize;
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, which is exactly the layout of
        // `ByteRing` with `n` data words (repr(C): RingHead, max_msg, then the words); every
        // field is written before the Box is formed, and the Box frees it with the same layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            core::ptr::addr_of_mut!((*ptr).max_msg)
                .write(CachePadded::new(AtomicU64::new(max_msg)));
            let words = core::ptr::addr_of_mut!((*ptr).data).cast::<AtomicU64>();
            for i in 0..n {
                words.add(i).write(AtomicU64::new(0));
            }
            // An Arc, so that ends and threads can share and keep it (the value moves into
            // the Arc's allocation before anyone else sees it).
            Ok(std::sync::Arc::from(Box::from_raw(ptr)))
        }
    }

    /// Forms the fat pointer to a ring at `raw` with `n` data words.
    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    fn lane(&self) -> Lane<'_> {
        Lane::new(&self.h, &self.data, self.max_msg.load(Ordering::Relaxed))
    }

    /// Size of the byte area (a power of two), from the local handle's dimensions.
    pub fn capacity(&self) -> usize {
        self.lane().cap as usize
    }

    /// The largest message accepted, in bytes.
    pub fn max_msg(&self) -> usize {
        self.lane().max as usize
    }

    /// Bytes in use now, counting each message's 8-byte header, its padding to whole words and
    /// any padding record at the end of the area (clamped to the capacity if the shared
    /// positions are corrupted). A message of `len` bytes takes `8 + round_up_8(len)`.
    pub fn len(&self) -> usize {
        self.lane().used() as usize
    }

    /// Whether no message was waiting at the moment of the call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The raw positions (bytes ever consumed, bytes ever written) as found in shared memory.
    pub fn positions(&self) -> (u64, u64) {
        self.h.positions()
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.lane().is_closed()
    }

    /// Closes the ring: sends fail with `Closed` from now on, receives drain the remaining
    /// messages and then fail with `Closed`. Sleepers on both sides are woken. Closing twice is
    /// harmless.
    pub fn close(&self) {
        self.lane().close();
    }

    /// The pids holding the sending and receiving sides (0 = free). A pid may be stale if its
    /// holder died; the next claim takes the side over.
    pub fn holders(&self) -> (u32, u32) {
        let c = &self.h.ctl;
        (
            crate::process::word_pid(c.producer.load(Ordering::Acquire)),
            crate::process::word_pid(c.consumer.load(Ordering::Acquire)),
        )
    }

    fn usable(&self) -> Result<Lane<'_>> {
        let lane = self.lane();
        if lane.cap == 0 {
            return Err(Error::InvalidCapacity {
                requested: 0,
                reason: "this view of the byte ring has fewer than 16 bytes",
            });
        }
        Ok(lane)
    }

    /// Claims the sending side; the [`ByteSender`] keeps this ring alive.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] (side `sender`) if a live process (this one included) holds it.
    pub fn sender(self: &Arc<Self>) -> Result<ByteSender> {
        // SAFETY: an Arc keeps its allocation alive, at one address, while any clone lives.
        unsafe { self.sender_kept(Arc::clone(self)) }
    }

    /// Claims the receiving side; the [`ByteReceiver`] keeps this ring alive.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] (side `receiver`) if a live process (this one included) holds
    /// it.
    pub fn receiver(self: &Arc<Self>) -> Result<ByteReceiver> {
        // SAFETY: as in `sender`.
        unsafe { self.receiver_kept(Arc::clone(self)) }
    }

    /// Claims both sides (for threads of one process, or to hand one side to a thread).
    ///
    /// # Errors
    /// As [`sender`](ByteRing::sender) and [`receiver`](ByteRing::receiver).
    pub fn split(self: &Arc<Self>) -> Result<(ByteSender, ByteReceiver)> {
        let tx = self.sender()?;
        let rx = self.receiver()?;
        Ok((tx, rx))
    }

    /// Claims the sending side of a ring whose memory `keeper` keeps alive (for rings placed
    /// in memory of your own; [`sender`](Self::sender) and the segment handle's `sender` call
    /// this with an `Arc` and a handle).
    ///
    /// # Safety
    /// For as long as `keeper` lives, wherever it is moved, `self` stays valid for shared
    /// access at its present address.
    ///
    /// # Errors
    /// As [`sender`](Self::sender).
    pub unsafe fn sender_kept(&self, keeper: impl Send + Sync + 'static) -> Result<ByteSender> {
        // SAFETY: the caller's contract is Keep::new's.
        let keep = unsafe { Keep::new(keeper) };
        // SAFETY: `'static` stands for "as long as `keep` lives": the references stay inside
        // the end, which drops `keep` last (its last field).
        let this: &'static ByteRing = unsafe { NonNull::from(self).as_ref() };
        let lane = this.usable()?;
        claim(&this.h.ctl.producer, "sender")?;
        Ok(ByteSender {
            tx: Tx::new(lane),
            claim: &this.h.ctl.producer,
            peer: &this.h.ctl.consumer,
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
            _keep: keep,
        })
    }

    /// Claims the receiving side of a ring whose memory `keeper` keeps alive (see
    /// [`sender_kept`](Self::sender_kept)).
    ///
    /// # Safety
    /// As [`sender_kept`](Self::sender_kept).
    ///
    /// # Errors
    /// As [`receiver`](Self::receiver).
    pub unsafe fn receiver_kept(&self, keeper: impl Send + Sync + 'static) -> Result<ByteReceiver> {
        // SAFETY: the caller's contract is Keep::new's.
        let keep = unsafe { Keep::new(keeper) };
        // SAFETY: as in `sender_kept`.
        let this: &'static ByteRing = unsafe { NonNull::from(self).as_ref() };
        let lane = this.usable()?;
        claim(&this.h.ctl.consumer, "receiver")?;
        Ok(ByteReceiver {
            rx: Rx::new(lane),
            claim: &this.h.ctl.consumer,
            peer: &this.h.ctl.producer,
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
            _keep: keep,
        })
    }
}

impl core::fmt::Debug for ByteRing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ByteRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("max_msg", &self.max_msg())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: ByteRing is #[repr(C)]: a RingHead of atomics, an atomic max_msg, then
    // `tag.len / 8` AtomicU64 words (any bits valid). `layout` and `cast` both take the word
    // count from the same local tag (`cast` yields no words for a tag `layout` refuses), so the
    // fat pointer never exceeds the allocation. No pointers, no Drop.
    unsafe impl Object for ByteRing {
        /// (capacity in bytes, already rounded; max_msg).
        type Params = (u64, u64);
        fn element() -> TypeTag {
            TypeTag::plain(Kind::BYTES_QUEUE)
        }
        fn tag(&(cap, max_msg): &(u64, u64)) -> TypeTag {
            Self::element().with_dims(cap, max_msg)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            if !dims_valid(tag.len, tag.extra) {
                return None;
            }
            layout_of(tag.len)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, (_, max_msg): (u64, u64)) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the ring
            // is all atomics, written through them (records are written before being read).
            let r = unsafe { Self::cast(ptr, tag).as_ref() };
            r.h.reset();
            r.max_msg.store(max_msg, Ordering::Relaxed);
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = if dims_valid(tag.len, tag.extra) {
                (tag.len / 8) as usize
            } else {
                0
            };
            let p = ByteRing::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
