//! [`Pipe`]: a duplex connection between two processes, like Python's
//! `multiprocessing.Pipe(duplex=True)`, made of two byte rings in one object.
//!
//! # Layout (shared memory)
//!
//! | line | field |
//! | --- | --- |
//! | 0 | the claims of end A and end B, `max_msg` |
//! | 1–3 | the head of direction A→B (as in [`ByteRing`](super::ByteRing)) |
//! | 4–6 | the head of direction B→A |
//! | 7.. | `capacity / 8` words of A→B records, then `capacity / 8` words of B→A records |
//!
//! Each end is claimed by one process at a time ([`Pipe::end`]): the claim word holds the
//! claimer's owner word ([`crate::process`]), written in one CAS; a live holder makes a second claim fail with
//! [`Error::RingSideTaken`], a dead holder's end is taken over. End A sends on A→B and receives
//! on B→A; end B the reverse. Records, waiting and validation are those of the byte ring.

use super::bytes::byte_dims;
use super::head::RingHead;
use super::lane::{Lane, Rx, Tx, MIN_BYTE_CAPACITY};
use super::owned::Keep;
use super::wait::claim;
use super::MAX_CAPACITY;
use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use core::ptr::NonNull;
use crossbeam_utils::CachePadded;
use std::sync::Arc;

mod connection;
pub use connection::Connection;

/// The claims of both ends and the shared `max_msg`.
#[repr(C)]
struct Ends {
    /// End A's claim: the holder's owner word ([`crate::process`]), 0 when free.
    a: AtomicU64,
    /// End B's claim, same encoding.
    b: AtomicU64,
    /// The largest message, as created (untrusted: clamped on use).
    max_msg: AtomicU64,
    _reserved: AtomicU64,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Ends, [u64; 4]);

/// One of the two ends of a [`Pipe`].
///
/// ```
/// use shmkit::PipeEnd;
///
/// assert_eq!(PipeEnd::A.other(), PipeEnd::B);
/// assert_eq!(PipeEnd::B.other(), PipeEnd::A);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum PipeEnd {
    /// Sends on A→B, receives on B→A.
    A,
    /// Sends on B→A, receives on A→B.
    B,
}

impl PipeEnd {
    /// The other end.
    pub fn other(self) -> PipeEnd {
        match self {
            PipeEnd::A => PipeEnd::B,
            PipeEnd::B => PipeEnd::A,
        }
    }
}

/// A duplex message pipe between two processes: two byte rings (one per direction) of
/// `capacity` bytes each, for messages of up to `max_msg` bytes.
///
/// Create it on the heap with [`Pipe::new`] or in a segment with
/// [`Segment::pipe`](crate::Segment::pipe); each process then takes one end with
/// [`end`](Pipe::end) and talks through the [`Connection`].
///
/// ```
/// use shmkit::{Pipe, PipeEnd, RecvError};
/// let pipe = Pipe::new(4096, 256)?;
/// let mut a = pipe.end(PipeEnd::A)?;
/// let mut b = pipe.end(PipeEnd::B)?;
/// a.send(b"ping")?;
/// assert_eq!(b.recv()?, b"ping");
/// b.send(b"pong")?;
/// assert_eq!(a.recv()?, b"pong");
/// a.close();
/// assert_eq!(b.recv(), Err(RecvError::Closed));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
pub struct Pipe {
    ends: CachePadded<Ends>,
    ab: RingHead,
    ba: RingHead,
    /// `2 * capacity / 8` words; the length comes from the local tag.
    data: [AtomicU64],
}

// SAFETY: every field is an atomic.
unsafe impl Sync for Pipe {}
// SAFETY: as above.
unsafe impl Send for Pipe {}

/// Layout of a pipe of `cap` bytes per direction (`None` for impossible dimensions).
fn layout_of(cap: u64) -> Option<core::alloc::Layout> {
    if !(MIN_BYTE_CAPACITY..=MAX_CAPACITY).contains(&cap) || !cap.is_power_of_two() {
        return None;
    }
    let words = usize::try_from(cap / 4).ok()?;
    let (l, _) = core::alloc::Layout::new::<CachePadded<Ends>>()
        .extend(core::alloc::Layout::new::<RingHead>())
        .ok()?;
    let (l, _) = l.extend(core::alloc::Layout::new::<RingHead>()).ok()?;
    let (l, _) = l
        .extend(core::alloc::Layout::array::<AtomicU64>(words).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

impl Pipe {
    /// A pipe on the heap, in an [`Arc`] (for one process, tests) of `capacity` bytes per direction (rounded
    /// up to a power of two, at least 16) for messages of up to `max_msg` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] as for [`ByteRing::new`](super::ByteRing::new).
    pub fn new(capacity: u64, max_msg: u64) -> Result<std::sync::Arc<Self>> {
        let cap = byte_dims(capacity, max_msg)?;
        let layout = layout_of(cap).ok_or(Error::InvalidCapacity {
            requested: capacity,
            reason: "too large for this machine's address space",
        })?;
        let n = (cap / 4) as usize;
        // SAFETY: the layout has a non-zero size (it holds two RingHeads).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, exactly the layout of `Pipe`
        // with `n` data words (repr(C): Ends, two RingHeads, the words); every field is written
        // before the Box is formed, and the Box frees it with the same layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).ends).write(CachePadded::new(Ends {
                a: AtomicU64::new(0),
                b: AtomicU64::new(0),
                max_msg: AtomicU64::new(max_msg),
                _reserved: AtomicU64::new(0),
            }));
            core::ptr::addr_of_mut!((*ptr).ab).write(RingHead::fresh());
            core::ptr::addr_of_mut!((*ptr).ba).write(RingHead::fresh());
            let words = core::ptr::addr_of_mut!((*ptr).data).cast::<AtomicU64>();
            for i in 0..n {
                words.add(i).write(AtomicU64::new(0));
            }
            // An Arc, so that ends and threads can share and keep it (the value moves into
            // the Arc's allocation before anyone else sees it).
            Ok(std::sync::Arc::from(Box::from_raw(ptr)))
        }
    }

    /// Forms the fat pointer to a pipe at `raw` with `n` data words.
    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    /// The two directions (A→B, B→A), each on its half of the local data words.
    fn lanes(&self) -> (Lane<'_>, Lane<'_>) {
        let half = self.data.len() / 2;
        let max = self.ends.max_msg.load(Ordering::Relaxed);
        (
            Lane::new(&self.ab, &self.data[..half], max),
            Lane::new(&self.ba, &self.data[half..], max),
        )
    }

    /// Bytes per direction (a power of two), from the local handle's dimensions.
    pub fn capacity(&self) -> usize {
        self.lanes().0.cap as usize
    }

    /// The largest message accepted, in bytes.
    pub fn max_msg(&self) -> usize {
        self.lanes().0.max as usize
    }

    /// Bytes in use in the directions A→B and B→A now (see
    /// [`ByteRing::len`](super::ByteRing::len)).
    pub fn len(&self) -> (usize, usize) {
        let (ab, ba) = self.lanes();
        (ab.used() as usize, ba.used() as usize)
    }

    /// Whether both directions were empty at the moment of the call.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// Whether the pipe was closed (either direction).
    pub fn is_closed(&self) -> bool {
        let (ab, ba) = self.lanes();
        ab.is_closed() || ba.is_closed()
    }

    /// Closes both directions (see [`Connection::close`]).
    pub fn close(&self) {
        let (ab, ba) = self.lanes();
        ab.close();
        ba.close();
    }

    /// The pids holding ends A and B (0 = free). A pid may be stale if its holder died; the
    /// next claim takes the end over.
    pub fn holders(&self) -> (u32, u32) {
        (
            crate::process::word_pid(self.ends.a.load(Ordering::Acquire)),
            crate::process::word_pid(self.ends.b.load(Ordering::Acquire)),
        )
    }

    /// Claims `end` for this process and returns its connection, which keeps this pipe alive.
    ///
    /// # Errors
    /// [`Error::RingSideTaken`] (side `pipe end A`/`pipe end B`) if a live process (this one
    /// included) holds that end; [`Error::InvalidCapacity`] for an unusable view.
    pub fn end(self: &Arc<Self>, end: PipeEnd) -> Result<Connection> {
        // SAFETY: an Arc keeps its allocation alive, at one address, while any clone lives.
        unsafe { self.end_kept(end, Arc::clone(self)) }
    }

    /// Claims `end` of a pipe whose memory `keeper` keeps alive (for pipes placed in memory of
    /// your own; [`end`](Self::end) and the segment handle's `end` call this with an `Arc` and a
    /// handle).
    ///
    /// # Safety
    /// For as long as `keeper` lives, wherever it is moved, `self` stays valid for shared
    /// access at its present address.
    ///
    /// # Errors
    /// As [`end`](Self::end).
    pub unsafe fn end_kept(
        &self,
        end: PipeEnd,
        keeper: impl Send + Sync + 'static,
    ) -> Result<Connection> {
        // SAFETY: the caller's contract is Keep::new's.
        let keep = unsafe { Keep::new(keeper) };
        // SAFETY: `'static` stands for "as long as `keep` lives": the references stay inside
        // the connection, which drops `keep` last (its last field).
        let this: &'static Pipe = unsafe { NonNull::from(self).as_ref() };
        let (ab, ba) = this.lanes();
        if ab.cap == 0 {
            return Err(Error::InvalidCapacity {
                requested: 0,
                reason: "this view of the pipe has fewer than 16 bytes per direction",
            });
        }
        let (word, peer, side, send, recv) = match end {
            PipeEnd::A => (&this.ends.a, &this.ends.b, "pipe end A", ab, ba),
            PipeEnd::B => (&this.ends.b, &this.ends.a, "pipe end B", ba, ab),
        };
        claim(word, side)?;
        Ok(Connection {
            tx: Tx::new(send),
            rx: Rx::new(recv),
            claim: word,
            peer,
            end,
            #[cfg(feature = "serde")]
            scratch: Vec::new(),
            _keep: keep,
        })
    }

    /// The raw positions `(head, tail)` of the directions A→B and B→A, in bytes, as found in
    /// shared memory (for tools).
    pub fn positions(&self) -> ((u64, u64), (u64, u64)) {
        let pos = |h: &RingHead| {
            (
                h.head.load(Ordering::Acquire),
                h.tail.load(Ordering::Acquire),
            )
        };
        (pos(&self.ab), pos(&self.ba))
    }
}

impl core::fmt::Debug for Pipe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipe")
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
    use crate::ring::bytes::dims_valid;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Pipe is #[repr(C)]: the Ends atomics, two RingHeads of atomics, then
    // `tag.len / 4` AtomicU64 words (any bits valid). `layout` and `cast` both take the word
    // count from the same local tag (`cast` yields no words for a tag `layout` refuses), so the
    // fat pointer never exceeds the allocation. No pointers, no Drop.
    unsafe impl Object for Pipe {
        /// (capacity per direction in bytes, already rounded; max_msg).
        type Params = (u64, u64);
        fn element() -> TypeTag {
            TypeTag::plain(Kind::PIPE)
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
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the pipe
            // is all atomics, written through them (records are written before being read).
            let p = unsafe { Self::cast(ptr, tag).as_ref() };
            p.ends.a.store(0, Ordering::Relaxed);
            p.ends.b.store(0, Ordering::Relaxed);
            p.ends.max_msg.store(max_msg, Ordering::Relaxed);
            p.ends._reserved.store(0, Ordering::Relaxed);
            p.ab.reset();
            p.ba.reset();
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = if dims_valid(tag.len, tag.extra) {
                (tag.len / 4) as usize
            } else {
                0
            };
            let p = Pipe::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
