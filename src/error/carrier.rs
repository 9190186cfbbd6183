//! The ring family's errors, one file: what a push, pop, send or receive found instead of
//! succeeding. Each converts into [`Error`] with `?`: pushes and sends into [`Error::Send`], pops
//! and receives into [`Error::Recv`] (the value of a failed push is dropped by the conversion;
//! match on [`PushError`] to keep it).
//!
//! They live on the error floor, beside the [`Error`] that wraps two of them, so that the
//! dependencies point one way: the rings import their errors from here, and no error names a
//! ring (see ARCHITECTURE.md).

use super::Error;
use core::fmt;

/// Why a push did not happen; the value is handed back (rtrb style).
///
/// ```
/// use shmkit::PushError;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let (mut tx, _rx) = seg.spsc::<u32>("q", 2)?.split()?;
/// tx.push(1)?;
/// tx.push(2)?;
/// match tx.try_push(3) {
///     Err(PushError::Full(v)) => assert_eq!(v, 3), // the value comes back
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(tx.try_push(4).unwrap_err().into_inner(), 4);
/// # Ok(()) }
/// ```
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
///
/// ```
/// use shmkit::PopError;
/// use std::time::Duration;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let q = seg.mpmc::<u64>("jobs", 8)?;
/// assert_eq!(q.try_pop(), Err(PopError::Empty));
/// assert_eq!(q.pop_timeout(Duration::from_millis(5)), Err(PopError::Timeout));
/// q.push(9)?;
/// q.close();
/// assert_eq!(q.pop()?, 9); // what was pushed before the close is still popped
/// assert_eq!(q.pop(), Err(PopError::Closed));
/// # Ok(()) }
/// ```
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

/// Why no message was received.
///
/// ```
/// use shmkit::RecvError;
/// use std::time::Duration;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let (mut tx, mut rx) = seg.byte_ring("b", 1024, 64)?.split()?;
/// tx.send(b"hello")?;
/// let mut small = [0u8; 2];
/// assert_eq!(rx.try_recv_slice(&mut small), Err(RecvError::TooSmall { needed: 5 }));
/// let mut buf = [0u8; 8];
/// assert_eq!(rx.try_recv_slice(&mut buf)?, 5); // the message had stayed in the ring
/// assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(RecvError::Timeout));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecvError {
    /// No message now (from the `try_` calls).
    Empty,
    /// The ring was closed and every message sent before has been received.
    Closed,
    /// No message arrived before the timeout.
    Timeout,
    /// The buffer given to `try_recv_slice` is shorter than the next message; the message stays
    /// in the ring (receive it with a buffer of at least `needed` bytes).
    TooSmall {
        /// The next message's length in bytes.
        needed: usize,
    },
    /// The ring's shared positions or a record header hold impossible values (another process
    /// scribbled over them); nothing was consumed.
    Corrupted,
}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecvError::Empty => f.write_str("the byte ring is empty"),
            RecvError::Closed => f.write_str("the byte ring is closed and drained"),
            RecvError::Timeout => f.write_str("timed out waiting for a message"),
            RecvError::TooSmall { needed } => {
                write!(f, "buffer too small: the next message has {needed} bytes")
            }
            RecvError::Corrupted => {
                f.write_str("the byte ring's shared positions or record headers are corrupted")
            }
        }
    }
}

impl std::error::Error for RecvError {}

/// Why a message was not sent (the caller still owns the bytes).
///
/// ```
/// use shmkit::SendError;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let q = seg.mpmc_bytes("msgs", 4, 16)?;
/// assert_eq!(q.send(&[0; 17]), Err(SendError::TooLarge { len: 17, max: 16 }));
/// while q.try_send(b"x").is_ok() {}
/// assert_eq!(q.try_send(b"y"), Err(SendError::Full));
/// q.close();
/// assert_eq!(q.send(b"z"), Err(SendError::Closed));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SendError {
    /// The queue is full (from `try_send`).
    Full,
    /// The queue was closed: no send will ever succeed again.
    Closed,
    /// The queue stayed full until the timeout (from `send_timeout`).
    Timeout,
    /// The message is longer than the queue's `max_msg`.
    TooLarge {
        /// The message's length.
        len: usize,
        /// The queue's largest message.
        max: usize,
    },
    /// The queue's shared words hold impossible values (another process scribbled over them);
    /// nothing was sent.
    Corrupted,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full => f.write_str("the queue is full"),
            SendError::Closed => f.write_str("the queue is closed"),
            SendError::Timeout => f.write_str("timed out waiting for room in the queue"),
            SendError::TooLarge { len, max } => write!(
                f,
                "a message of {len} bytes is larger than the queue's maximum of {max}"
            ),
            SendError::Corrupted => f.write_str("the queue's shared words are corrupted"),
        }
    }
}

impl std::error::Error for SendError {}

impl From<SendError> for Error {
    fn from(e: SendError) -> Self {
        Error::Send(e)
    }
}

impl From<RecvError> for Error {
    fn from(e: RecvError) -> Self {
        Error::Recv(e)
    }
}

impl<T> From<PushError<T>> for SendError {
    /// The same condition, without the value.
    fn from(e: PushError<T>) -> Self {
        match e {
            PushError::Full(_) => SendError::Full,
            PushError::Closed(_) => SendError::Closed,
            PushError::Timeout(_) => SendError::Timeout,
            PushError::Corrupted(_) => SendError::Corrupted,
        }
    }
}

impl From<PopError> for RecvError {
    fn from(e: PopError) -> Self {
        match e {
            PopError::Empty => RecvError::Empty,
            PopError::Closed => RecvError::Closed,
            PopError::Timeout => RecvError::Timeout,
            PopError::Corrupted => RecvError::Corrupted,
        }
    }
}

impl<T> From<PushError<T>> for Error {
    /// [`Error::Send`] with the same condition; the value that was not pushed is dropped.
    fn from(e: PushError<T>) -> Self {
        Error::Send(e.into())
    }
}

impl From<PopError> for Error {
    /// [`Error::Recv`] with the same condition.
    fn from(e: PopError) -> Self {
        Error::Recv(e.into())
    }
}
