//! The value latch of a map slot: two copies of the value and one `published` word that holds
//! both the version and the length of the current copy, so that a small entry (8-byte key and
//! value) fits one 64-byte line with no length word per copy.
//!
//! It is the rotating latch of [`crate::seqlock::latch`] with `N = 2`, with the value's length
//! travelling in the same store that publishes the copy:
//!
//! | bits of `published` | contents                                                     |
//! | ------------------- | ------------------------------------------------------------ |
//! | 63 … 25             | version `v` (completed writes, wrapping at 2^39): copy `v mod 2` |
//! | 24 … 0              | length in bytes of copy `v mod 2` (≤ 2^24; clamped to `value_max`) |
//!
//! ```text
//! writer, version u = v + 1          reader
//! ─────────────────────────          ──────────────────────────────────────
//! fence(Release)                     p1 = published.load(Acquire)
//! relaxed stores into copy u mod 2   relaxed loads from copy (p1 >> 25) mod 2
//! published.store(u·2^25 | len)      fence(Acquire)
//!   (Release)                        p2 = published.load(Relaxed)
//!                                    good iff p2 = p1
//! ```
//!
//! The argument is the rotating latch's (Boehm's fence pattern): a reader that loaded a word of
//! the next write into its copy sees, on its second load, that write's predecessor's `published`
//! or a later one, which differs from `p1` (each write changes the version). A writer that dies
//! before its `published` store leaves the last complete copy readable; the next writer reads
//! `published` with a read-modify-write ([`resync`](Pair::resync)) and writes the same version
//! again. The version wraps at 2^39 writes: a reader would have to stall between its two loads of
//! `published` for exactly a multiple of 2^39 (≈ 5.5·10^11) writes of one key to be fooled.
//!
//! Every index and length read from shared memory is masked or clamped with local numbers.

use crate::sync::{fence, AtomicU64, Ordering};

/// Bits of the length in `published`.
const LEN_BITS: u32 = 25;
const LEN_MASK: u64 = (1 << LEN_BITS) - 1;
/// Versions wrap at 2^39.
const VERSION_MASK: u64 = (1 << (64 - LEN_BITS)) - 1;

static_assertions::const_assert!(super::VALUE_MAX_LIMIT <= LEN_MASK);

/// One slot's latch: a view into shared words, with its geometry from local numbers.
#[derive(Clone, Copy)]
pub(crate) struct Pair<'a> {
    published: &'a AtomicU64,
    /// Two copies of `width` words, `stride` words apart.
    copies: &'a [AtomicU64],
    stride: usize,
    width: usize,
    value_max: usize,
}

impl<'a> Pair<'a> {
    /// The latch made of `published` and the two copies of `width` words at the start of
    /// `copies`, `stride` words apart.
    ///
    /// # Panics
    /// When `copies` holds fewer than `stride + width` words or `width > stride` (a local bug:
    /// lengths are local).
    #[inline]
    pub(crate) fn new(
        published: &'a AtomicU64,
        copies: &'a [AtomicU64],
        stride: usize,
        width: usize,
        value_max: usize,
    ) -> Self {
        assert!(
            width <= stride && copies.len() >= stride + width,
            "latch copies of the wrong size"
        );
        debug_assert!(value_max <= width * 8);
        Pair {
            published,
            copies,
            stride,
            width,
            value_max,
        }
    }

    /// The copy of version `v` and the length in `p`, clamped to `value_max`.
    #[inline]
    fn unpack(&self, p: u64) -> (&'a [AtomicU64], usize) {
        let at = ((p >> LEN_BITS) & 1) as usize * self.stride;
        let len = ((p & LEN_MASK) as usize).min(self.value_max);
        (&self.copies[at..at + self.width], len)
    }

    /// Which copy (0 or 1) is current, as a hint for a prefetch (not validated).
    #[inline]
    pub(crate) fn current_index(&self) -> usize {
        ((self.published.load(Ordering::Relaxed) >> LEN_BITS) & 1) as usize
    }

    /// One read attempt: `f(copy, length)` on the current copy; `None` when a writer may have
    /// started overwriting that copy during the read (the result is dropped).
    ///
    /// `f` must only load from the words (relaxed) and must not panic on any bit pattern.
    #[inline]
    pub(crate) fn try_read<R>(&self, f: impl FnOnce(&[AtomicU64], usize) -> R) -> Option<R> {
        let p1 = self.published.load(Ordering::Acquire);
        let (copy, len) = self.unpack(p1);
        let r = f(copy, len);
        fence(Ordering::Acquire);
        (self.published.load(Ordering::Relaxed) == p1).then_some(r)
    }

    /// The writer's view of the current value and its length (the caller holds the writer
    /// lock: nobody else writes).
    #[inline]
    pub(crate) fn current(&self) -> (&'a [AtomicU64], usize) {
        self.unpack(self.published.load(Ordering::Relaxed))
    }

    /// The first half of a write: the next version `u` and its copy (to fill), after the fence
    /// that keeps the stores into it behind the store of the current version. The caller holds
    /// the writer lock and then calls [`publish`](Pair::publish).
    #[inline]
    pub(crate) fn begin(&self) -> (u64, &'a [AtomicU64]) {
        let v = self.published.load(Ordering::Relaxed) >> LEN_BITS;
        let u = v.wrapping_add(1) & VERSION_MASK;
        // Keeps the stores into copy `u` behind the store of version `v`, the one a lapped
        // reader must then see (see the module docs).
        fence(Ordering::Release);
        let at = (u & 1) as usize * self.stride;
        (u, &self.copies[at..at + self.width])
    }

    /// Publishes version `u` (from [`begin`](Pair::begin)) holding `len` bytes.
    #[inline]
    pub(crate) fn publish(&self, u: u64, len: usize) {
        let len = (len as u64).min(LEN_MASK);
        self.published.store(u << LEN_BITS | len, Ordering::Release);
    }

    /// After taking the lock over from a dead writer: reads `published` with a
    /// read-modify-write, which returns the latest value, so that the next write never reuses
    /// the copy readers are reading.
    pub(crate) fn resync(&self) -> u64 {
        self.published.fetch_add(0, Ordering::AcqRel)
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn writes_alternate_copies_and_carry_their_length() {
        let (published, copies) = (AtomicU64::new(0), words(4));
        let p = Pair::new(&published, &copies, 2, 2, 16);
        for (i, len) in [3usize, 16, 0, 9].into_iter().enumerate() {
            let (u, next) = p.begin();
            assert_eq!(u, i as u64 + 1);
            next[0].store(u, Ordering::Relaxed);
            p.publish(u, len);
            let (copy, got) = p.current();
            assert_eq!((copy[0].load(Ordering::Relaxed), got), (u, len));
            assert_eq!(p.current_index(), (u & 1) as usize);
            assert_eq!(
                p.try_read(|c, n| (c[0].load(Ordering::Relaxed), n)),
                Some((u, len))
            );
        }
    }

    #[test]
    fn a_write_during_a_read_drops_it_and_an_unpublished_one_does_not() {
        let (published, copies) = (AtomicU64::new(0), words(2));
        let p = Pair::new(&published, &copies, 1, 1, 8);
        assert_eq!(p.try_read(|_, _| p.begin()).map(|_| ()), Some(()));
        let r = p.try_read(|_, _| {
            let (u, _) = p.begin();
            p.publish(u, 1);
        });
        assert!(r.is_none());
    }

    #[test]
    fn hostile_words_are_clamped_and_versions_wrap() {
        let (published, copies) = (AtomicU64::new(u64::MAX), words(8));
        let p = Pair::new(&published, &copies, 5, 3, 20);
        let (copy, len) = p.current();
        assert_eq!((copy.len(), len), (3, 20));
        let (u, _) = p.begin();
        assert_eq!(u, 0);
        p.publish(u, usize::MAX);
        assert_eq!(published.load(Ordering::Relaxed), LEN_MASK);
        assert_eq!(p.resync(), LEN_MASK);
    }
}
