//! [`ByteSender`] and [`ByteReceiver`]: the two ends of a [`ByteRing`](super::ByteRing)(super::ByteRing), each the
//! only handle of its side system-wide, each owning its ring.
use crate::error::Result;
use crate::error::{RecvError, SendError};
use crate::ring::lane::{Rx, Tx};
use crate::ring::owned::Keep;
use crate::ring::wait::release;
use crate::sync::AtomicU64;
use std::time::Duration;

/// The sending side of a [`ByteRing`](super::ByteRing): the only handle, system-wide, that sends. It owns its
/// ring (it keeps the heap ring or the segment mapping alive), so it is `Send + 'static`.
/// Dropping it releases the side (it does not close the ring).
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let (mut tx, mut rx) = seg.byte_ring("log", 4096, 256)?.split()?;
/// // Ends are owned (`Send + 'static`): move one into a thread, or keep it in a struct.
/// let t = std::thread::spawn(move || -> shmkit::Result<()> {
///     for line in ["started", "working", "done"] {
///         tx.send(line.as_bytes())?;
///     }
///     Ok(())
/// });
/// t.join().unwrap()?;
/// assert_eq!(rx.recv()?, b"started");
/// # Ok(()) }
/// ```
pub struct ByteSender {
    // `'static` below stands for "as long as `_keep` lives" (see `ByteRing::sender_kept`).
    pub(super) tx: Tx<'static>,
    pub(super) claim: &'static AtomicU64,
    /// The receiver's claim: a blocked send gives up when its holder died.
    pub(super) peer: &'static AtomicU64,
    #[cfg(feature = "serde")]
    pub(super) scratch: Vec<u8>,
    /// Keeps the ring alive; declared last, so it is dropped after everything that points in.
    pub(super) _keep: Keep,
}

/// The receiving side of a [`ByteRing`](super::ByteRing): the only handle, system-wide, that receives. Like the
/// [`ByteSender`] it owns its ring and is `Send + 'static`. Dropping it releases the side (it
/// does not close the ring).
///
/// ```
/// use shmkit::RecvError;
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let (mut tx, mut rx) = seg.byte_ring("jobs", 4096, 64)?.split()?;
/// tx.send(b"job-1")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.recv_into(&mut buf)?, 5); // reuses the buffer's allocation
/// assert_eq!(buf, b"job-1");
/// assert_eq!(rx.try_recv(), Err(RecvError::Empty));
/// tx.close();
/// assert_eq!(rx.recv(), Err(RecvError::Closed)); // closed, and everything sent was received
/// # Ok(()) }
/// ```
pub struct ByteReceiver {
    // `'static` below stands for "as long as `_keep` lives" (see `ByteRing::sender_kept`).
    pub(super) rx: Rx<'static>,
    pub(super) claim: &'static AtomicU64,
    /// The sender's claim: a blocked receive drains and reports `Closed` when its holder died.
    pub(super) peer: &'static AtomicU64,
    #[cfg(feature = "serde")]
    pub(super) scratch: Vec<u8>,
    /// Keeps the ring alive; declared last, so it is dropped after everything that points in.
    pub(super) _keep: Keep,
}

impl ByteSender {
    /// Sends `msg` if there is room for it now, without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`], `Closed`, `TooLarge` (longer than [`max_msg`](Self::max_msg)),
    /// `Corrupted`.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.tx.try_send(msg)
    }

    /// Sends `msg`, waiting as long as there is no room for it. While it waits it rechecks,
    /// every few milliseconds, that the receiving side's holder is alive.
    ///
    /// # Errors
    /// `Closed` (at once, when the ring is closed while waiting, or when the receiver died
    /// holding its side while the ring is full), `TooLarge`, `Corrupted`.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.tx.send_timeout(msg, None, self.peer)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// `Timeout`, `Closed`, `TooLarge`, `Corrupted`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.tx.send_timeout(msg, Some(timeout), self.peer)
    }

    /// Encodes `value` with postcard into a buffer this handle reuses and sends it, waiting
    /// for room.
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode) if serde refuses the value; [`Error::Send`](crate::Error::Send) with
    /// [`SendError::TooLarge`] if the encoding is longer than [`max_msg`](Self::max_msg), or
    /// `Closed`/`Corrupted`.
    #[cfg(feature = "serde")]
    pub fn send_value<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.send_value_until(value, None)
    }

    /// [`send_value`](Self::send_value), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`send_value`](Self::send_value), and [`SendError::Timeout`].
    #[cfg(feature = "serde")]
    pub fn send_value_timeout<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<()> {
        self.send_value_until(value, Some(timeout))
    }

    #[cfg(feature = "serde")]
    fn send_value_until<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
        timeout: Option<Duration>,
    ) -> Result<()> {
        crate::ring::codec::encode(value, &mut self.scratch)?;
        Ok(self.tx.send_timeout(&self.scratch, timeout, self.peer)?)
    }

    /// Bytes in use in the ring now (see [`ByteRing::len`](super::ByteRing::len)).
    pub fn len(&self) -> usize {
        self.tx.lane.used() as usize
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's byte capacity.
    pub fn capacity(&self) -> usize {
        self.tx.lane.cap as usize
    }

    /// The largest message accepted, in bytes.
    pub fn max_msg(&self) -> usize {
        self.tx.lane.max as usize
    }

    /// Closes the ring (see [`ByteRing::close`](super::ByteRing::close)).
    pub fn close(&self) {
        self.tx.lane.close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.tx.lane.is_closed()
    }
}

impl Drop for ByteSender {
    fn drop(&mut self) {
        release(self.claim);
    }
}

impl ByteReceiver {
    /// Receives the oldest message if there is one, without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`]; `Closed` once the ring is closed and drained; `Corrupted`.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.rx.try_recv_into(&mut v).map(|_| v)
    }

    /// Receives the oldest message, waiting as long as there is none. While it waits it
    /// rechecks, every few milliseconds, that the sending side's holder is alive.
    ///
    /// # Errors
    /// `Closed` once the ring is closed and drained, or once the sender died holding its side
    /// and every message it sent was received; `Corrupted`.
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.rx
            .wait(None, self.peer, |rx| rx.try_recv_into(&mut v))?;
        Ok(v)
    }

    /// Receives the oldest message, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, `Closed`, `Corrupted`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_into_timeout(&mut v, timeout).map(|_| v)
    }

    /// Receives the oldest message into `buf`, replacing its contents (its allocation is
    /// reused), without waiting; returns the message's length.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.rx.try_recv_into(buf)
    }

    /// Receives the oldest message into `buf`, replacing its contents, waiting as long as there
    /// is none; returns the message's length.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.rx.wait(None, self.peer, |rx| rx.try_recv_into(buf))
    }

    /// Receives the oldest message into `buf`, replacing its contents, waiting at most
    /// `timeout`; returns the message's length.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.rx
            .wait(Some(timeout), self.peer, |rx| rx.try_recv_into(buf))
    }

    /// Receives the oldest message into the front of `buf` without waiting; returns its
    /// length.
    ///
    /// # Errors
    /// [`RecvError::TooSmall`] with the message's length if `buf` is shorter (the message
    /// stays in the ring); otherwise as [`try_recv`](Self::try_recv).
    pub fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.rx.try_recv_slice(buf)
    }

    /// Receives the oldest message into the front of `buf`, waiting at most `timeout`; returns
    /// its length.
    ///
    /// # Errors
    /// As [`try_recv_slice`](Self::try_recv_slice), and `Timeout`.
    pub fn recv_slice_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<usize, RecvError> {
        self.rx
            .wait(Some(timeout), self.peer, |rx| rx.try_recv_slice(buf))
    }

    /// Waits at most `timeout` (`Duration::ZERO`: just look) until a receive would not block;
    /// `true` when a message is ready, or the ring is closed and drained, or its sender died
    /// (the next receive drains and returns `Closed`), like Python's `Connection.poll`.
    pub fn poll(&mut self, timeout: Duration) -> bool {
        self.rx.poll(Some(timeout), self.peer)
    }

    /// Receives the next message (waiting for it) into a buffer this handle reuses and decodes
    /// it with postcard.
    ///
    /// # Errors
    /// [`Error::Recv`](crate::Error::Recv) (`Closed`, `Corrupted`); [`Error::Decode`](crate::Error::Decode) if the bytes are not a `T`
    /// or nest deeper than 128 levels (the message is consumed).
    #[cfg(feature = "serde")]
    pub fn recv_value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        self.recv_value_until(None)
    }

    /// [`recv_value`](Self::recv_value), waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`recv_value`](Self::recv_value), and [`RecvError::Timeout`].
    #[cfg(feature = "serde")]
    pub fn recv_value_timeout<T: serde::de::DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T> {
        self.recv_value_until(Some(timeout))
    }

    #[cfg(feature = "serde")]
    fn recv_value_until<T: serde::de::DeserializeOwned>(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<T> {
        let buf = &mut self.scratch;
        self.rx
            .wait(timeout, self.peer, |rx| rx.try_recv_into(buf))?;
        crate::ring::codec::decode(&self.scratch)
    }

    /// Bytes in use in the ring now (see [`ByteRing::len`](super::ByteRing::len)).
    pub fn len(&self) -> usize {
        self.rx.lane.used() as usize
    }

    /// Whether the ring is empty now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ring's byte capacity.
    pub fn capacity(&self) -> usize {
        self.rx.lane.cap as usize
    }

    /// The largest message accepted, in bytes.
    pub fn max_msg(&self) -> usize {
        self.rx.lane.max as usize
    }

    /// Closes the ring (see [`ByteRing::close`](super::ByteRing::close)).
    pub fn close(&self) {
        self.rx.lane.close();
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.rx.lane.is_closed()
    }
}

impl Drop for ByteReceiver {
    fn drop(&mut self) {
        release(self.claim);
    }
}
