//! One direction of variable-length byte messages: the algorithm behind
//! [`ByteRing`](super::ByteRing) and each direction of a [`Pipe`](super::Pipe).
//!
//! # Records
//!
//! The byte area holds `capacity` bytes (a power of two) in `capacity / 8` `AtomicU64` words.
//! The positions `head` and `tail` of the [`RingHead`] count **bytes** ever consumed and ever
//! written; they are monotonic and always multiples of 8. A record starts on a word and is never
//! split by the end of the area:
//!
//! | record | header word | followed by |
//! | --- | --- | --- |
//! | message | `MSG << 32 \| len` | `len` payload bytes, zero-padded to a whole word |
//! | padding | `PAD << 32 \| skip` | nothing: the next record starts at offset 0, `skip` bytes on |
//!
//! When a message does not fit before the end of the area, the sender writes a padding record to
//! the end and the message at offset 0, and publishes both with one store of `tail`. A record
//! takes `8 + round_up_8(len)` bytes; with `max_msg <= capacity / 2 - 8` a record is at most half
//! the area, so an empty ring always has room for any allowed message, wherever `tail` stands.
//!
//! # Ordering
//!
//! The sender writes the payload words and the header with relaxed stores, then `tail` with
//! `Release`; the receiver loads `tail` with `Acquire` before it reads a header or payload
//! (ditto `head` from receiver to sender), exactly as in [`SpscRing`](super::SpscRing).
//!
//! # Untrusted memory
//!
//! Positions, headers and `max_msg` are read from shared memory. Every one is validated against
//! the *local* capacity and `max_msg` (read once when the side is claimed, clamped to the
//! capacity's limit): a position that is not a multiple of 8 or out of range, a header of an
//! unknown kind, a length above `max_msg`, a record that overruns the end of the area or the
//! published tail — each is reported as `Corrupted`, never an out-of-bounds access or a panic.

use super::head::RingHead;
use super::wait::{block, notify, peer_gone, Look, Sleeper};
use crate::error::{RecvError, SendError};
use crate::sync::{AtomicU64, Deadline, Ordering};
use crate::words::{load_bytes, store_bytes, words_for};
use std::time::Duration;

/// Smallest byte capacity (it holds messages of up to 0 bytes).
pub const MIN_BYTE_CAPACITY: u64 = 16;

/// Kind of a message record's header (in bits 32..40; `'M'`).
const KIND_MSG: u64 = 0x4d;
/// Kind of a padding record's header (`'P'`).
const KIND_PAD: u64 = 0x50;

/// The largest `max_msg` a byte area of `capacity` bytes accepts: `capacity / 2 - 8`.
#[inline]
pub const fn max_msg_limit(capacity: u64) -> u64 {
    (capacity / 2).saturating_sub(8)
}

/// Bytes a record of a `len`-byte message takes: its header word and the padded payload.
#[inline]
const fn record_size(len: u64) -> u64 {
    8 + (len.div_ceil(8) * 8)
}

/// A validated local view of one direction: its head and its byte area.
#[derive(Clone, Copy)]
pub(super) struct Lane<'a> {
    pub(super) h: &'a RingHead,
    /// Exactly `cap / 8` words.
    data: &'a [AtomicU64],
    /// Bytes (a power of two, at least [`MIN_BYTE_CAPACITY`]), or 0 for an unusable view.
    pub(super) cap: u64,
    /// Largest message, clamped to [`max_msg_limit`]`(cap)`.
    pub(super) max: u64,
}

impl<'a> Lane<'a> {
    /// A view of `data` (its largest power-of-two prefix) with the `max_msg` found in shared
    /// memory (clamped).
    pub(super) fn new(h: &'a RingHead, data: &'a [AtomicU64], max_shared: u64) -> Self {
        let words = super::capacity_for(data.len(), 1);
        let cap = words as u64 * 8;
        let cap = if cap < MIN_BYTE_CAPACITY { 0 } else { cap };
        Lane {
            h,
            data: &data[..words],
            cap,
            max: max_shared.min(max_msg_limit(cap)),
        }
    }

    /// Word index of byte position `pos` (masked: always in bounds).
    #[inline]
    fn index(&self, pos: u64) -> usize {
        ((pos >> 3) & (self.cap / 8 - 1)) as usize
    }

    /// Bytes in use now (clamped to the capacity if the shared positions are corrupted).
    pub(super) fn used(&self) -> u64 {
        let head = self.h.head.load(Ordering::Acquire);
        let tail = self.h.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.cap)
    }

    pub(super) fn is_closed(&self) -> bool {
        self.h.is_closed()
    }

    /// Closes this direction and wakes both sides.
    pub(super) fn close(&self) {
        self.h.close();
    }
}

/// The sending side's state (the caller holds the claim).
pub(super) struct Tx<'a> {
    pub(super) lane: Lane<'a>,
    /// Our position: we are the only writer of `tail`.
    tail: u64,
    head_cache: u64,
}

impl<'a> Tx<'a> {
    /// Takes over the sending side (after a successful claim).
    pub(super) fn new(lane: Lane<'a>) -> Self {
        // Only the sender writes this flag: a holder that died asleep may have left it set.
        lane.h.ctl.space_waiting.store(0, Ordering::Relaxed);
        Tx {
            tail: lane.h.tail.load(Ordering::Acquire),
            head_cache: lane.h.head.load(Ordering::Acquire),
            lane,
        }
    }

    pub(super) fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let l = self.lane;
        if l.h.ctl.closed.load(Ordering::Relaxed) != 0 {
            return Err(SendError::Closed);
        }
        let len = msg.len() as u64;
        if len > l.max {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: l.max as usize,
            });
        }
        if l.cap == 0 || self.tail & 7 != 0 {
            return Err(SendError::Corrupted);
        }
        let size = record_size(len);
        let off = self.tail & (l.cap - 1);
        let skip = if off + size > l.cap { l.cap - off } else { 0 };
        let need = skip + size;
        if l.cap - self.tail.wrapping_sub(self.head_cache).min(l.cap) < need {
            let head = l.h.head.load(Ordering::Acquire);
            let used = self.tail.wrapping_sub(head);
            if used > l.cap || head & 7 != 0 {
                return Err(SendError::Corrupted);
            }
            self.head_cache = head;
            if l.cap - used < need {
                return Err(SendError::Full);
            }
        }
        let mut pos = self.tail;
        if skip != 0 {
            l.data[l.index(pos)].store(KIND_PAD << 32 | skip, Ordering::Relaxed);
            pos = pos.wrapping_add(skip);
        }
        let i = l.index(pos);
        // In bounds: the record starts at a word and ends at or before the end of the area.
        store_bytes(&l.data[i + 1..i + 1 + words_for(msg.len())], msg);
        l.data[i].store(KIND_MSG << 32 | len, Ordering::Relaxed);
        self.tail = pos.wrapping_add(size);
        l.h.tail.store(self.tail, Ordering::Release);
        notify(&l.h.ctl.items_waiting, &l.h.ctl.items);
        Ok(())
    }

    /// Sends, waiting at most `timeout` (`None`: forever) for room; a full lane whose
    /// receiver died holding its claim `peer` fails with `Closed` (a broken pipe).
    pub(super) fn send_timeout(
        &mut self,
        msg: &[u8],
        timeout: Option<Duration>,
        peer: &AtomicU64,
    ) -> Result<(), SendError> {
        let c = &self.lane.h.ctl;
        let at = Sleeper::one(&c.space_waiting, &c.space);
        block(at, Deadline::after(timeout), |due| {
            match self.try_send(msg) {
                Err(SendError::Full) if due && peer_gone(peer) => {
                    Look::Ready(Err(SendError::Closed))
                }
                Err(SendError::Full) => Look::Wait,
                r => Look::Ready(r),
            }
        })
        .unwrap_or(Err(SendError::Timeout))
    }
}

/// The receiving side's state (the caller holds the claim).
pub(super) struct Rx<'a> {
    pub(super) lane: Lane<'a>,
    /// Our position: we are the only writer of `head` (locally it may already be past a padding
    /// record that is not yet published as consumed).
    head: u64,
    tail_cache: u64,
}

impl<'a> Rx<'a> {
    /// Takes over the receiving side (after a successful claim).
    pub(super) fn new(lane: Lane<'a>) -> Self {
        // Only the receiver writes this flag: a holder that died asleep may have left it set.
        lane.h.ctl.items_waiting.store(0, Ordering::Relaxed);
        let head = lane.h.head.load(Ordering::Acquire);
        Rx {
            lane,
            head,
            tail_cache: head,
        }
    }

    /// Loads and validates the shared tail; returns the bytes available.
    fn refresh(&mut self) -> Result<u64, RecvError> {
        let tail = self.lane.h.tail.load(Ordering::Acquire);
        let avail = tail.wrapping_sub(self.head);
        if avail > self.lane.cap || tail & 7 != 0 {
            return Err(RecvError::Corrupted);
        }
        self.tail_cache = tail;
        Ok(avail)
    }

    /// Finds the next message without consuming it: its header position and length.
    fn peek(&mut self) -> Result<(u64, usize), RecvError> {
        let l = self.lane;
        if l.cap == 0 || self.head & 7 != 0 {
            return Err(RecvError::Corrupted);
        }
        let mut avail = self.tail_cache.wrapping_sub(self.head);
        if avail == 0 {
            avail = self.refresh()?;
            if avail == 0 {
                if l.h.ctl.closed.load(Ordering::Acquire) == 0 {
                    return Err(RecvError::Empty);
                }
                // Closed: a send that raced with close may have landed; drain it first.
                avail = self.refresh()?;
                if avail == 0 {
                    return Err(RecvError::Closed);
                }
            }
        }
        let mut pos = self.head;
        let mut hdr = l.data[l.index(pos)].load(Ordering::Relaxed);
        if hdr >> 32 == KIND_PAD {
            let skip = hdr & 0xFFFF_FFFF;
            // A padding record runs to the end of the area and is published together with the
            // message after it.
            if skip != l.cap - (pos & (l.cap - 1)) || skip >= avail {
                return Err(RecvError::Corrupted);
            }
            pos = pos.wrapping_add(skip);
            avail -= skip;
            self.head = pos;
            hdr = l.data[l.index(pos)].load(Ordering::Relaxed);
        }
        let len = hdr & 0xFFFF_FFFF;
        if hdr >> 32 != KIND_MSG
            || len > l.max
            || record_size(len) > avail
            || (pos & (l.cap - 1)) + record_size(len) > l.cap
        {
            return Err(RecvError::Corrupted);
        }
        Ok((pos, len as usize))
    }

    /// Receives the next message through `sink` (given its payload words and length); the
    /// message is consumed only if `sink` succeeds.
    fn try_recv_with<R>(
        &mut self,
        sink: impl FnOnce(&[AtomicU64], usize) -> Result<R, RecvError>,
    ) -> Result<R, RecvError> {
        let (pos, len) = self.peek()?;
        let l = self.lane;
        let i = l.index(pos);
        // In bounds: peek checked that the record ends at or before the end of the area.
        let r = sink(&l.data[i + 1..i + 1 + words_for(len)], len)?;
        self.head = pos.wrapping_add(record_size(len as u64));
        l.h.head.store(self.head, Ordering::Release);
        notify(&l.h.ctl.space_waiting, &l.h.ctl.space);
        Ok(r)
    }

    /// Receives into `buf` (replacing its contents); returns the length.
    pub(super) fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.try_recv_with(|words, len| {
            buf.clear();
            buf.resize(len, 0);
            load_bytes(words, buf);
            Ok(len)
        })
    }

    /// Receives into the front of `buf`; `TooSmall` (message kept) if it is shorter.
    pub(super) fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.try_recv_with(|words, len| {
            let dst = buf
                .get_mut(..len)
                .ok_or(RecvError::TooSmall { needed: len })?;
            load_bytes(words, dst);
            Ok(len)
        })
    }

    /// Waits (at most `timeout`) until `attempt` stops returning `Empty`. An empty lane whose
    /// sender died holding its claim `peer` reads as closed, once what it sent is drained.
    pub(super) fn wait<R>(
        &mut self,
        timeout: Option<Duration>,
        peer: &AtomicU64,
        mut attempt: impl FnMut(&mut Self) -> Result<R, RecvError>,
    ) -> Result<R, RecvError> {
        let c = &self.lane.h.ctl;
        let at = Sleeper::one(&c.items_waiting, &c.items);
        block(at, Deadline::after(timeout), |due| match attempt(self) {
            Err(RecvError::Empty) if due && peer_gone(peer) => {
                // Drain what it published before it died, then report it gone.
                Look::Ready(match attempt(self) {
                    Err(RecvError::Empty) => Err(RecvError::Closed),
                    r => r,
                })
            }
            Err(RecvError::Empty) => Look::Wait,
            r => Look::Ready(r),
        })
        .unwrap_or(Err(RecvError::Timeout))
    }

    /// Whether a receive would not block now: a message is ready, the ring is closed (and
    /// drained), or it is corrupted (the receive reports it).
    pub(super) fn ready(&mut self) -> bool {
        !matches!(self.peek(), Err(RecvError::Empty))
    }

    /// Waits (at most `timeout`) until [`ready`](Rx::ready), or the sender died holding its
    /// claim `peer` (a receive then drains and returns `Closed`).
    pub(super) fn poll(&mut self, timeout: Option<Duration>, peer: &AtomicU64) -> bool {
        self.wait(timeout, peer, |rx| {
            if rx.ready() {
                Ok(())
            } else {
                Err(RecvError::Empty)
            }
        }) != Err(RecvError::Timeout)
    }
}
