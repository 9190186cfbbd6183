//! [`Connection`]: one end of a [`Pipe`](super::Pipe), held by one process at a time, owning its
//! pipe.
use super::PipeEnd;
use crate::error::Result;
use crate::error::{RecvError, SendError};
use crate::ring::lane::{Rx, Tx};
use crate::ring::owned::Keep;
use crate::ring::wait::{holder_alive, release};
use crate::sync::{AtomicU64, Ordering};
use std::time::Duration;

/// One end of a [`Pipe`](super::Pipe), held by one process at a time: sends to and receives from the other
/// end. It owns its pipe (it keeps the heap pipe or the segment mapping alive), so it is
/// `Send + 'static`. Dropping it releases the end (it does not close the pipe), so another
/// process may take it over.
///
/// ```
/// use shmkit::{PipeEnd, Segment};
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let pipe = seg.pipe("rpc", 4096, 256)?;
/// let mut client = pipe.end(PipeEnd::A)?; // in one process
/// let mut server = pipe.end(PipeEnd::B)?; // in another
/// client.send(b"ping")?;
/// assert_eq!(server.recv()?, b"ping");
/// server.send(b"pong")?;
/// assert_eq!(client.recv()?, b"pong");
/// assert!(client.peer().is_some()); // the process holding the other end
/// # Ok(()) }
/// ```
pub struct Connection {
    // `'static` below stands for "as long as `_keep` lives" (see `Pipe::end_kept`).
    pub(super) tx: Tx<'static>,
    pub(super) rx: Rx<'static>,
    pub(super) claim: &'static AtomicU64,
    /// The other end's claim word.
    pub(super) peer: &'static AtomicU64,
    pub(super) end: PipeEnd,
    #[cfg(feature = "serde")]
    pub(super) scratch: Vec<u8>,
    /// Keeps the pipe alive; declared last, so it is dropped after everything that points in.
    pub(super) _keep: Keep,
}

impl Connection {
    /// Receives with `attempt`, waiting at most `timeout`; an empty direction whose sender died
    /// holding its end reads as closed (Python's `EOFError`).
    fn recv_with<R>(
        &mut self,
        timeout: Option<Duration>,
        mut attempt: impl FnMut(&mut Rx<'_>) -> Result<R, RecvError>,
    ) -> Result<R, RecvError> {
        self.rx.wait(timeout, self.peer, |rx| attempt(rx))
    }

    /// Sends, waiting at most `timeout` for room; a full direction whose receiver died holding
    /// its end fails with `Closed` (Python's `BrokenPipeError`).
    fn send_with(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<(), SendError> {
        self.tx.send_timeout(msg, timeout, self.peer)
    }

    /// Which end this is.
    pub fn end(&self) -> PipeEnd {
        self.end
    }

    /// The pid of the live process holding the other end, if any: `None` while the other end is
    /// free, or when its holder died without closing the pipe (blocking receives then drain
    /// what it sent and return `Closed`, blocking sends to it fail with `Closed`, within
    /// ~10 ms of waiting, the ring family's recheck period, like Python's `EOFError` and `BrokenPipeError`).
    pub fn peer(&self) -> Option<u32> {
        let w = self.peer.load(Ordering::Acquire);
        (w != 0 && holder_alive(w)).then_some(crate::process::word_pid(w))
    }

    /// Sends `msg` to the other end if there is room now, without waiting.
    ///
    /// # Errors
    /// [`SendError::Full`], `Closed`, `TooLarge`, `Corrupted`.
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.tx.try_send(msg)
    }

    /// Sends `msg` to the other end, waiting as long as there is no room.
    ///
    /// # Errors
    /// `Closed` (either end closed the pipe), `TooLarge`, `Corrupted`.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, None)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// `Timeout`, `Closed`, `TooLarge`, `Corrupted`.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendError> {
        self.send_with(msg, Some(timeout))
    }

    /// Receives the oldest message from the other end, without waiting.
    ///
    /// # Errors
    /// [`RecvError::Empty`]; `Closed` once the pipe is closed and this direction drained;
    /// `Corrupted`.
    pub fn try_recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.rx.try_recv_into(&mut v).map(|_| v)
    }

    /// Receives the oldest message from the other end, waiting as long as there is none.
    ///
    /// # Errors
    /// `Closed` once the pipe is closed and this direction drained; `Corrupted`.
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_with(None, |rx| rx.try_recv_into(&mut v))?;
        Ok(v)
    }

    /// Receives the oldest message, waiting at most `timeout`.
    ///
    /// # Errors
    /// `Timeout`, `Closed`, `Corrupted`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvError> {
        let mut v = Vec::new();
        self.recv_with(Some(timeout), |rx| rx.try_recv_into(&mut v))?;
        Ok(v)
    }

    /// Receives the oldest message into `buf`, replacing its contents (its allocation is
    /// reused), waiting as long as there is none; returns the message's length.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_with(None, |rx| rx.try_recv_into(buf))
    }

    /// Receives the oldest message into the front of `buf` without waiting; returns its length.
    ///
    /// # Errors
    /// [`RecvError::TooSmall`] with the message's length if `buf` is shorter (the message
    /// stays); otherwise as [`try_recv`](Self::try_recv).
    pub fn try_recv_slice(&mut self, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.rx.try_recv_slice(buf)
    }

    /// Waits at most `timeout` (`Duration::ZERO`: just look) until a receive would not block;
    /// `true` when a message is ready, or the pipe is closed and drained, or the other end's
    /// holder died (the next receive drains and returns `Closed`), like Python's
    /// `Connection.poll`.
    pub fn poll(&mut self, timeout: Duration) -> bool {
        self.rx.poll(Some(timeout), self.peer)
    }

    /// Encodes `value` with postcard (into a buffer this connection reuses) and sends it,
    /// waiting for room.
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode); [`Error::Send`](crate::Error::Send) (`TooLarge` when the encoding exceeds `max_msg`,
    /// `Closed`, `Corrupted`).
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
        let mut buf = core::mem::take(&mut self.scratch);
        let r = crate::ring::codec::encode(value, &mut buf)
            .and_then(|()| Ok(self.send_with(&buf, timeout)?));
        self.scratch = buf;
        r
    }

    /// Receives the next message (waiting for it) and decodes it with postcard.
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
        let mut buf = core::mem::take(&mut self.scratch);
        let r = self.recv_with(timeout, |rx| rx.try_recv_into(&mut buf));
        let v = r
            .map_err(crate::Error::from)
            .and_then(|_| crate::ring::codec::decode(&buf));
        self.scratch = buf;
        v
    }

    /// Closes the pipe, both directions: the other end's receives drain what this end sent and
    /// then return `Closed`, and its sends fail with `Closed` (a broken pipe); this end can
    /// still drain what was sent to it. Sleepers on both ends are woken.
    pub fn close(&self) {
        self.tx.lane.close();
        self.rx.lane.close();
    }

    /// Whether the pipe was closed.
    pub fn is_closed(&self) -> bool {
        self.tx.lane.is_closed() || self.rx.lane.is_closed()
    }

    /// The largest message accepted, in bytes.
    pub fn max_msg(&self) -> usize {
        self.tx.lane.max as usize
    }

    /// Bytes per direction.
    pub fn capacity(&self) -> usize {
        self.tx.lane.cap as usize
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        release(self.claim);
    }
}
