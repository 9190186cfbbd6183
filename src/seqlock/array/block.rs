//! One block of a [`SeqArray`](super::SeqArray): a rotating latch over a few hundred bytes of
//! elements, and the writer's record of which words each copy's version changed, so that a
//! write copies forward only what the versions in between touched.

use super::super::latch::{copy_words, Rotation};
use super::super::{round_up, LINE};
use crate::sync::{AtomicU64, Ordering};

/// Target number of data words in one block (512 bytes).
#[cfg(not(feature = "loom"))]
pub(super) const BLOCK_WORDS: usize = 64;
/// Under loom: tiny blocks, so that models with a few elements span several blocks.
#[cfg(feature = "loom")]
pub(super) const BLOCK_WORDS: usize = 2;

/// Number of rotating copies of each block of a `SeqArray` (see the seqlock guide's "Memory"
/// section for the choice).
pub(super) const ARRAY_COPIES: usize = 2;

/// Copies per block (a power of two).
pub(super) const N: usize = ARRAY_COPIES;
/// Header words of a block: its `published` version and one "changed range" word per copy,
/// padded to a cache line.
pub(super) const H: usize = round_up(1 + N, LINE);

/// One block: its latch and the writer's record of what each copy's version changed.
#[derive(Clone, Copy)]
pub(super) struct Block<'a> {
    pub(super) latch: Rotation<'a>,
    pub(super) changed: &'a [AtomicU64],
    pub(super) width: usize,
}

impl<'a> Block<'a> {
    /// The range a `changed` word names, clamped to the block (the word is shared memory).
    pub(super) fn range(&self, c: usize) -> (usize, usize) {
        let w = self.changed[c].load(Ordering::Relaxed);
        let end = ((w & 0xffff_ffff) as usize).min(self.width);
        let start = ((w >> 32) as usize).min(end);
        (start, end)
    }

    /// Writes the next version of the block: the words `a..b` come from `f`, the others from the
    /// current version. The next copy holds the version before the current one, so only the
    /// words that the current version changed are copied over (besides `a..b`).
    #[inline]
    pub(super) fn write(&self, a: usize, b: usize, f: impl FnOnce(&[AtomicU64])) {
        self.latch.write(|u, cur, next| {
            self.fill(u, cur, next, a, b, f);
        });
    }

    /// Brings `next` (the copy of version `u`) up to the current version outside `a..b`, lets
    /// `f` store `a..b` and records `a..b` as what version `u` changed.
    #[inline]
    pub(super) fn fill(
        &self,
        u: u64,
        cur: &[AtomicU64],
        next: &[AtomicU64],
        a: usize,
        b: usize,
        f: impl FnOnce(&[AtomicU64]),
    ) {
        let me = u as usize % N;
        // The versions between the one `next` holds (u − N) and the current one (u − 1) are
        // recorded in the other copies' `changed` words.
        let (mut lo, mut hi) = (self.width, 0);
        for c in (0..N).filter(|&c| c != me) {
            let (s, e) = self.range(c);
            if s < e {
                lo = lo.min(s);
                hi = hi.max(e);
            }
        }
        let cut = a.clamp(lo, hi.max(lo));
        copy_words(&next[lo.min(cut)..cut], &cur[lo.min(cut)..cut]);
        let from = b.clamp(lo, hi.max(lo));
        if from < hi {
            copy_words(&next[from..hi], &cur[from..hi]);
        }
        f(next);
        self.changed[me].store((a as u64) << 32 | b as u64, Ordering::Relaxed);
    }

    /// After a takeover from a dead writer: resynchronizes the version and makes the next copy
    /// (which the dead writer may have half written, outside any recorded range) equal to the
    /// current one again. Readers are not disturbed: they read the current copy, and a reader
    /// of the next copy's old version is lapped and retries.
    pub(super) fn recover(&self) {
        self.latch.resync();
        let (_, cur, next) = self.latch.begin();
        copy_words(next, cur);
    }
}
