//! Bounded ring-buffer queues across processes.
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::rings`], written in `src/guide/rings.md`.

pub mod bytes;
#[cfg(feature = "serde")]
mod codec;
mod head;
mod lane;
pub mod mpmc;
pub mod mpmc_bytes;
mod owned;
pub mod pipe;
pub mod spsc;
mod wait;

pub use crate::error::{PopError, PushError, RecvError, SendError};
pub use bytes::{ByteReceiver, ByteRing, ByteSender};
pub use lane::MIN_BYTE_CAPACITY;
pub use pipe::{Connection, Pipe, PipeEnd};

pub use mpmc::MpmcRing;
pub use mpmc_bytes::MpmcBytes;
pub use spsc::{Consumer, Producer, SpscRing};

/// Largest ring capacity accepted (2³² items).
pub const MAX_CAPACITY: u64 = 1 << 32;

use crate::words::words_for_type;

/// Rounds a requested capacity up to a power of two; `None` for 0 or above [`MAX_CAPACITY`].
pub fn round_capacity(requested: u64) -> Option<u64> {
    if requested == 0 || requested > MAX_CAPACITY {
        return None;
    }
    Some(requested.next_power_of_two())
}

/// Words per item (at least one).
pub(crate) const fn slot_words<T>() -> usize {
    let w = words_for_type::<T>();
    if w == 0 {
        1
    } else {
        w
    }
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

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::{MpmcBytes, MpmcRing, RecvError, SendError, SpscRing};
    use crate::Error;

    /// `?` on every ring error inside a function returning `shmkit::Result` (issue 11, item 8).
    #[test]
    fn every_ring_error_converts_with_question_mark() {
        fn spsc() -> crate::Result<u64> {
            let ring = SpscRing::<u64>::new(1)?;
            let (mut tx, mut rx) = ring.split()?;
            tx.push(7)?;
            tx.try_push(8)?;
            Ok(rx.pop()?)
        }
        assert!(matches!(spsc(), Err(Error::Send(SendError::Full))));
        fn mpmc() -> crate::Result<u64> {
            let q = MpmcRing::<u64>::new(2)?;
            q.push(1)?;
            let v = q.pop()?;
            q.try_pop()?;
            Ok(v)
        }
        assert!(matches!(mpmc(), Err(Error::Recv(RecvError::Empty))));
        fn bytes() -> crate::Result<Vec<u8>> {
            let q = MpmcBytes::new(2, 8)?;
            q.send(b"x")?;
            let v = q.recv()?;
            q.close();
            q.recv()?;
            Ok(v)
        }
        assert!(matches!(bytes(), Err(Error::Recv(RecvError::Closed))));
    }
}
