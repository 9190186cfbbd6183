//! [`MpmcBytes`]: a bounded many-producer many-consumer queue of byte messages, across
//! processes — Python's `multiprocessing.Queue` for bytes (and, with the `serde` feature, for any
//! serializable value).
//!
//! It is the [`MpmcRing`](super::MpmcRing) algorithm (per-slot state words, claims that record
//! the claimer, reaping of slots held by dead processes, close that never strands a message) with
//! slots of a fixed size: each slot holds a length word and up to `max_msg` bytes. Memory is
//! therefore `capacity × (16 + max_msg rounded up to 8)` bytes (plus 8 when that is an even
//! number of words) plus a 1.2 KiB header; size
//! `max_msg` for the largest message you send, not the typical one. For a stream of messages of
//! very different sizes between two processes, the single-producer byte ring's variable-size
//! records waste less memory.
//!
//! A length word read from shared memory is untrusted: a message whose length exceeds the slot
//! (a scribbling peer) is consumed and reported as [`SendError::Corrupted`] /
//! [`RecvError::Corrupted`], never read out of bounds.

use super::head::RingHead;
use super::mpmc::{mpmc_capacity, mpmc_layout, Core, MpmcMeta, Stop};
use super::{RecvError, SendError};
use crate::error::{Error, Result};
use crate::sync::{AtomicU64, Ordering};
use crate::words::{load_bytes, store_bytes, words_for};
use core::fmt;
use std::time::Duration;

/// Largest `max_msg` accepted (16 MiB): a slot is allocated for every message of the ring.
pub const MAX_MSG_LIMIT: u64 = 1 << 24;

/// A bounded many-producer many-consumer queue of byte messages of at most `max_msg` bytes,
/// shareable between processes.
///
/// ```
/// let q = shmkit::MpmcBytes::new(4, 100)?;
/// q.send(b"hello")?;
/// q.send(b"")?;
/// assert_eq!(q.recv()?, b"hello");
/// let mut buf = Vec::new();
/// assert_eq!(q.recv_into(&mut buf)?, 0);
/// assert!(matches!(q.send(&[0; 101]), Err(shmkit::SendError::TooLarge { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[repr(C)]
pub struct MpmcBytes {
    h: RingHead,
    /// The MPMC header; its first reserved word holds `max_msg` (written once by `init`).
    m: MpmcMeta,
    /// `capacity` slots of `stride(max_msg)` words: state word, length word, message words.
    slots: [AtomicU64],
}

/// Words per slot for messages of up to `max_msg` bytes: the state word, the length word and the
/// message words, rounded up to an odd number. An odd stride makes the slot area's length alone
/// (`capacity × stride` words, a power of two times an odd number) tell both dimensions, so a
/// handle knows its geometry without reading shared memory (see [`MpmcBytes::geometry`]).
fn stride(max_msg: u64) -> usize {
    (2 + words_for(max_msg as usize)) | 1
}

pub(crate) fn bad_capacity(requested: u64) -> Error {
    Error::InvalidCapacity {
        requested,
        reason: "an MPMC byte queue holds 2 to 2^32 messages of at most 16 MiB each",
    }
}

impl MpmcBytes {
    /// A queue on the heap, in an [`Arc`](std::sync::Arc) (for one process, tests and models) with room for `capacity`
    /// messages (rounded up to a power of two, at least 2) of at most `max_msg` bytes.
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for a capacity of 0 or above 2³², or `max_msg` above
    /// [`MAX_MSG_LIMIT`].
    pub fn new(capacity: u64, max_msg: u64) -> Result<std::sync::Arc<Self>> {
        let cap = mpmc_capacity(capacity)
            .filter(|_| max_msg <= MAX_MSG_LIMIT)
            .ok_or_else(|| bad_capacity(capacity))?;
        let layout = mpmc_layout(cap, stride(max_msg)).ok_or_else(|| bad_capacity(capacity))?;
        let n = (cap as usize)
            .checked_mul(stride(max_msg))
            .ok_or_else(|| bad_capacity(capacity))?;
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh zeroed allocation of `layout`, exactly the layout of
        // `MpmcBytes` with `n` slot words (repr(C): RingHead, MpmcMeta, words). All-zero bytes
        // are valid atomics; the head and meta are then written in full. The Box frees the
        // memory with the same layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            core::ptr::addr_of_mut!((*ptr).m).write(MpmcMeta::fresh());
            let q = Box::from_raw(ptr);
            q.m.reserved(0).store(max_msg, Ordering::Relaxed);
            Ok(std::sync::Arc::from(q))
        }
    }

    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    /// The largest message, as recorded in shared memory at creation (clamped to what a slot of
    /// the local geometry can hold, so a scribbled value can shrink it, never overrun a slot).
    pub fn max_msg(&self) -> usize {
        let Some((_, stride)) = self.geometry() else {
            return 0;
        };
        let recorded = self.m.reserved(0).load(Ordering::Relaxed);
        recorded.min((stride as u64 - 2) * 8) as usize
    }

    /// The slot count and stride, from the local handle alone: the slot area holds
    /// `capacity × stride` words, `capacity` a power of two and `stride` odd (see [`stride`]),
    /// so they are its length's power-of-two factor and odd factor. Nothing is read from shared
    /// memory: a peer cannot change the geometry under a handle. `None` for a view without a
    /// usable slot area.
    fn geometry(&self) -> Option<(u64, usize)> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let tz = n.trailing_zeros();
        let (cap, stride) = (1u64 << tz, n >> tz);
        (cap >= 2 && stride >= 3 && stride <= self::stride(MAX_MSG_LIMIT)).then_some((cap, stride))
    }

    fn core(&self) -> Option<Core<'_>> {
        let (_, s) = self.geometry()?;
        Some(Core::new(&self.h, &self.m, &self.slots, s))
    }

    /// Number of message slots (a power of two).
    pub fn capacity(&self) -> usize {
        self.core().map_or(0, |c| c.cap as usize)
    }

    /// Approximate number of queued messages (exact when nobody sends or receives).
    pub fn len(&self) -> usize {
        self.core().map_or(0, |c| c.len())
    }

    /// Whether the queue looked empty (approximate).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue looked full (approximate).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the queue was closed.
    pub fn is_closed(&self) -> bool {
        self.h.ctl.closed.load(Ordering::Acquire) != 0
    }

    /// Messages lost with processes that died while sending them (after taking their position,
    /// before publishing it); a receiver copies a message before it takes it.
    pub fn lost(&self) -> u64 {
        self.m.lost.load(Ordering::Relaxed)
    }

    /// Reaps every slot held by a dead process now; returns how many.
    pub fn reap_dead(&self) -> u64 {
        self.core().map_or(0, |c| c.reap_dead())
    }

    /// The raw position hints (receives claimed, sends claimed).
    pub fn positions(&self) -> (u64, u64) {
        self.h.positions()
    }

    /// Closes the queue: sends fail with `Closed` from now on; receives drain what is left and
    /// then fail with `Closed`. Every sleeper is woken.
    pub fn close(&self) {
        self.h.close();
    }

    fn check(&self, msg: &[u8]) -> core::result::Result<Core<'_>, SendError> {
        let core = self.core().ok_or(SendError::Corrupted)?;
        let max = self.max_msg();
        if msg.len() > max {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max,
            });
        }
        Ok(core)
    }

    /// Sends `msg` if there is room, without waiting.
    ///
    /// # Errors
    /// `Full`, `Closed`, `TooLarge`, `Corrupted`.
    pub fn try_send(&self, msg: &[u8]) -> core::result::Result<(), SendError> {
        let core = self.check(msg)?;
        let me = core.me();
        core.try_push_with(me, |slot| write_msg(slot, msg))
            .map_err(send_error)
    }

    /// Sends `msg`, waiting as long as the queue is full.
    ///
    /// # Errors
    /// `Closed`, `TooLarge`, `Corrupted`.
    pub fn send(&self, msg: &[u8]) -> core::result::Result<(), SendError> {
        self.send_until(msg, None)
    }

    /// Sends `msg`, waiting at most `timeout` while the queue is full.
    ///
    /// # Errors
    /// `Timeout`, `Closed`, `TooLarge`, `Corrupted`.
    pub fn send_timeout(
        &self,
        msg: &[u8],
        timeout: Duration,
    ) -> core::result::Result<(), SendError> {
        self.send_until(msg, Some(timeout))
    }

    fn send_until(
        &self,
        msg: &[u8],
        timeout: Option<Duration>,
    ) -> core::result::Result<(), SendError> {
        let core = self.check(msg)?;
        core.push_with(timeout, |slot| write_msg(slot, msg))
            .map_err(send_error)
    }

    /// Receives the oldest message if there is one, without waiting.
    ///
    /// # Errors
    /// `Empty`; `Closed` once closed and drained; `Corrupted`.
    pub fn try_recv(&self) -> core::result::Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.try_recv_into(&mut v).map(|_| v)
    }

    /// Receives the oldest message, waiting as long as the queue is empty.
    ///
    /// # Errors
    /// `Closed` once closed and drained; `Corrupted`.
    pub fn recv(&self) -> core::result::Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into_until(&mut v, None).map(|_| v)
    }

    /// Receives the oldest message, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, `Closed` (closed and drained), `Corrupted`.
    pub fn recv_timeout(&self, timeout: Duration) -> core::result::Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into_until(&mut v, Some(timeout)).map(|_| v)
    }

    /// Like [`try_recv`](MpmcBytes::try_recv), into `buf` (cleared first; its capacity is
    /// reused). Returns the message's length.
    ///
    /// # Errors
    /// As [`try_recv`](MpmcBytes::try_recv).
    pub fn try_recv_into(&self, buf: &mut Vec<u8>) -> core::result::Result<usize, RecvError> {
        let core = self.core().ok_or(RecvError::Corrupted)?;
        let max = self.max_msg();
        core.try_pop_with(|slot| read_msg(slot, max, buf))
            .map_err(recv_error)?
    }

    /// Receives the oldest message into `buf` (cleared first; its capacity is reused), waiting
    /// as long as the queue is empty. Returns the message's length.
    ///
    /// # Errors
    /// As [`recv`](MpmcBytes::recv).
    pub fn recv_into(&self, buf: &mut Vec<u8>) -> core::result::Result<usize, RecvError> {
        self.recv_into_until(buf, None)
    }

    /// [`recv_into`](MpmcBytes::recv_into) waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_timeout`](MpmcBytes::recv_timeout).
    pub fn recv_into_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> core::result::Result<usize, RecvError> {
        self.recv_into_until(buf, Some(timeout))
    }

    fn recv_into_until(
        &self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> core::result::Result<usize, RecvError> {
        let core = self.core().ok_or(RecvError::Corrupted)?;
        let max = self.max_msg();
        let cell = core::cell::RefCell::new(buf);
        core.pop_with(timeout, |slot| read_msg(slot, max, &mut cell.borrow_mut()))
            .map_err(recv_error)?
    }
}

#[cfg(feature = "serde")]
impl MpmcBytes {
    /// Encodes `value` (postcard, see the `serde` feature) and sends it as one message, waiting
    /// for room: Python's `Queue.put(obj)`.
    ///
    /// # Errors
    /// [`Error::Encode`] if serde refuses the value; [`Error::Send`] with
    /// [`SendError::TooLarge`] if the encoding is longer than [`max_msg`](Self::max_msg), or
    /// `Closed`/`Corrupted`.
    pub fn send_value<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        let mut buf = Vec::new();
        super::codec::encode(value, &mut buf)?;
        Ok(self.send_until(&buf, None)?)
    }

    /// [`send_value`](Self::send_value), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`send_value`](Self::send_value), and [`SendError::Timeout`].
    pub fn send_value_timeout<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        let mut buf = Vec::new();
        super::codec::encode(value, &mut buf)?;
        Ok(self.send_until(&buf, Some(timeout))?)
    }

    /// Receives one message (waiting for it) and decodes it as a `T`: Python's `Queue.get()`.
    ///
    /// # Errors
    /// [`Error::Recv`] (`Closed`, `Corrupted`); [`Error::Decode`] if the message is not a `T`
    /// or nests deeper than 128 levels (the message is consumed).
    pub fn recv_value<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        let mut buf = Vec::new();
        self.recv_into_until(&mut buf, None)?;
        super::codec::decode(&buf)
    }

    /// [`recv_value`](Self::recv_value), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_value`](Self::recv_value), and [`RecvError::Timeout`].
    pub fn recv_value_timeout<T: serde::de::DeserializeOwned>(
        &self,
        timeout: Duration,
    ) -> Result<T> {
        let mut buf = Vec::new();
        self.recv_into_until(&mut buf, Some(timeout))?;
        super::codec::decode(&buf)
    }
}

fn recv_error(e: Stop) -> RecvError {
    super::mpmc::pop_error(e).into()
}

/// Writes a message into a slot's payload: its length, then its bytes.
fn write_msg(slot: &[AtomicU64], msg: &[u8]) {
    // The caller checked msg.len() <= max_msg, and the slot holds 1 + words_for(max_msg) words.
    slot[0].store(msg.len() as u64, Ordering::Relaxed);
    store_bytes(&slot[1..], msg);
}

/// Reads a message out of a slot's payload into `buf`, validating the untrusted length.
fn read_msg(
    slot: &[AtomicU64],
    max: usize,
    buf: &mut Vec<u8>,
) -> core::result::Result<usize, RecvError> {
    let len = slot[0].load(Ordering::Relaxed);
    let room = (slot.len() - 1) * 8;
    if len > max as u64 || len > room as u64 {
        return Err(RecvError::Corrupted);
    }
    let len = len as usize;
    buf.clear();
    buf.resize(len, 0);
    load_bytes(&slot[1..], buf);
    Ok(len)
}

fn send_error(e: Stop) -> SendError {
    match e {
        Stop::Wait(_) => SendError::Full,
        Stop::Closed => SendError::Closed,
        Stop::Timeout => SendError::Timeout,
        Stop::Corrupted => SendError::Corrupted,
    }
}

impl fmt::Debug for MpmcBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpmcBytes")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("max_msg", &self.max_msg())
            .field("closed", &self.is_closed())
            .field("lost", &self.lost())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use crate::ring::mpmc::LAYOUT_VERSION;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    /// `extra` = MPMC layout version << 32 | max_msg: a queue of another layout (another shmkit
    /// build) is a type mismatch, never misread.
    fn extra(max_msg: u64) -> u64 {
        LAYOUT_VERSION << 32 | max_msg
    }

    /// The largest message of a tag of this layout.
    fn max_msg_of(tag: &TypeTag) -> Option<u64> {
        let max_msg = tag.extra & 0xFFFF_FFFF;
        (tag.extra >> 32 == LAYOUT_VERSION && max_msg <= MAX_MSG_LIMIT).then_some(max_msg)
    }

    fn words(tag: &TypeTag) -> Option<usize> {
        let max_msg = max_msg_of(tag)?;
        usize::try_from(tag.len).ok()?.checked_mul(stride(max_msg))
    }

    // SAFETY: MpmcBytes is #[repr(C)]: a RingHead and an MpmcMeta of atomics, then
    // `tag.len * stride(max_msg)` AtomicU64 words (any bits valid). `layout` and `cast` take
    // the word count from the same local tag. No pointers, no Drop.
    unsafe impl Object for MpmcBytes {
        /// (rounded capacity, max_msg).
        type Params = (u64, u64);
        fn element() -> TypeTag {
            TypeTag::plain(Kind::MPMC_BYTES)
        }
        fn tag(&(cap, max_msg): &(u64, u64)) -> TypeTag {
            Self::element().with_dims(cap, extra(max_msg))
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            words(tag)?;
            mpmc_layout(tag.len, stride(max_msg_of(tag)?))
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: (u64, u64)) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the queue
            // is all atomics, written through them.
            let q = unsafe { Self::cast(ptr, tag).as_ref() };
            q.h.reset();
            q.m.reset();
            q.m.reserved(0)
                .store(max_msg_of(tag).unwrap_or(0), Ordering::Relaxed);
            for w in q.slots.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let p = MpmcBytes::fat(ptr.as_ptr(), words(tag).unwrap_or(0));
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
