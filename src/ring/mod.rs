//! Bounded ring-buffer queues across processes.
//!
//! - [`SpscRing`]: one producer, one consumer (each side claimed by one process at a time), split
//!   into [`Producer`] and [`Consumer`] handles.
//! - [`ByteRing`]: one sender, one receiver of variable-length byte messages, split into
//!   [`ByteSender`] and [`ByteReceiver`] handles.
//! - [`Pipe`]: a duplex connection between two processes (two byte rings), one
//!   [`Connection`] per end, like Python's `multiprocessing.Pipe()`.
//! - [`MpmcRing`]: any number of producers and consumers in any processes, with per-slot state
//!   words that record who claimed each slot, so a killed process loses at most its item in
//!   flight and never blocks the others.
//! - [`MpmcBytes`]: the same for byte messages up to a fixed maximum size (Python's
//!   `multiprocessing.Queue` for bytes).
//!
//! Rings keep monotonic 64-bit positions (never wrapping indices) and copy items of any
//! [`bytemuck::Pod`] type through atomic words. Blocking calls spin briefly, then sleep on a
//! shared futex word; the fast path makes no system call unless the other side sleeps.

pub mod bytes;
#[cfg(feature = "serde")]
mod codec;
mod lane;
pub mod mpmc;
pub mod mpmc_bytes;
pub mod pipe;
pub mod spsc;
mod wait;

pub use bytes::{ByteReceiver, ByteRing, ByteSender};
pub use lane::{RecvError, MIN_BYTE_CAPACITY};
pub use pipe::{Connection, Pipe, PipeEnd};

pub use mpmc::MpmcRing;
pub use mpmc_bytes::{MpmcBytes, SendError};
pub use spsc::{Consumer, Producer, SpscRing};

use core::fmt;

/// Largest ring capacity accepted (2³² items).
pub const MAX_CAPACITY: u64 = 1 << 32;

/// Why a push did not happen; the value is handed back (rtrb style).
#[derive(PartialEq, Eq)]
pub enum PushError<T> {
    /// The ring is full (from `try_push`).
    Full(T),
    /// The ring was closed: no push will ever succeed again.
    Closed(T),
    /// The ring stayed full until the timeout (from `push_timeout`).
    Timeout(T),
    /// The ring's shared positions hold impossible values (another process scribbled over
    /// them); nothing was written.
    Corrupted(T),
}

impl<T> PushError<T> {
    /// The value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(v)
            | PushError::Closed(v)
            | PushError::Timeout(v)
            | PushError::Corrupted(v) => v,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "Full(..)",
            PushError::Closed(_) => "Closed(..)",
            PushError::Timeout(_) => "Timeout(..)",
            PushError::Corrupted(_) => "Corrupted(..)",
        })
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushError::Full(_) => "the ring is full",
            PushError::Closed(_) => "the ring is closed",
            PushError::Timeout(_) => "timed out waiting for room in the ring",
            PushError::Corrupted(_) => "the ring's shared positions are corrupted",
        })
    }
}

impl<T> std::error::Error for PushError<T> {}

/// Why a pop returned no item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PopError {
    /// The ring is empty (from `try_pop`).
    Empty,
    /// The ring was closed and every item pushed before has been popped.
    Closed,
    /// The ring stayed empty until the timeout (from `pop_timeout`).
    Timeout,
    /// The ring's shared positions hold impossible values (another process scribbled over
    /// them); nothing was read.
    Corrupted,
}

impl fmt::Display for PopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PopError::Empty => "the ring is empty",
            PopError::Closed => "the ring is closed and drained",
            PopError::Timeout => "timed out waiting for an item",
            PopError::Corrupted => "the ring's shared positions are corrupted",
        })
    }
}

impl std::error::Error for PopError {}

/// Rounds a requested capacity up to a power of two; `None` for 0 or above [`MAX_CAPACITY`].
pub fn round_capacity(requested: u64) -> Option<u64> {
    if requested == 0 || requested > MAX_CAPACITY {
        return None;
    }
    Some(requested.next_power_of_two())
}

/// The capacity of a ring whose slot area holds `words` words of `stride` words per slot: the
/// largest power of two that fits (the slot count itself for a ring opened with its own type; the
/// rounding keeps indices in bounds for a view under another element size).
#[inline]
pub(crate) fn capacity_for(words: usize, stride: usize) -> usize {
    match words / stride.max(1) {
        0 => 0,
        c => 1usize << c.ilog2(),
    }
}
