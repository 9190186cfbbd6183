//! A map's words seen through its validated geometry ([`Table`]), and the lock-free reads: a
//! lookup walks a bucket's chain, iteration walks the slots; both validate every slot they read
//! with its `seq` word (see the [module docs](super) for the layout).
//!
//! # Why a reader never sees a torn or foreign entry
//!
//! A reader of slot `j` loads `seq` (Acquire), then the slot's words (relaxed), then issues
//! `fence(Acquire)` and loads `seq` again: the words belong to one stable version of the slot
//! only if both loads return the same even value. A slot's key only changes while `seq` is odd
//! (free or being filled), and a writer that fills a slot issues `fence(Release)` after claiming
//! it, so a reader that loaded any of its new words sees the odd `seq` (or a later value) on its
//! second load (Boehm's seqlock argument). The value is read through the slot's rotating latch,
//! which gives the same guarantee for in-place updates.
//!
//! A slot is linked into a chain only with an even `seq` and made odd only after it was
//! unlinked, so an odd `seq` means the reader followed a stale link: it restarts from the bucket's
//! head. A slot that was freed and reused in *another* bucket is caught by its hash, which no
//! longer maps to the reader's bucket. Every walk is bounded by the capacity (a scribbled chain
//! may hold a cycle) and restarts are bounded too.

use super::corrupted;
use super::geometry::*;
use super::value::Pair;
use crate::sync::{fence, AtomicU64, Ordering, Spin};
use crate::Result;

/// Restarts of one read before it gives up and reports the map as corrupted (a consistent map
/// needs a restart only when a writer changed the chain under the reader).
pub(crate) const MAX_RESTARTS: u32 = if cfg!(feature = "loom") {
    1 << 30
} else {
    10_000
};

/// A map's words with their geometry and hash seed (all validated, local).
#[derive(Clone, Copy)]
pub(crate) struct Table<'a> {
    pub w: &'a [AtomicU64],
    pub g: Geometry,
    pub seed: u64,
}

/// What a lookup found, as the caller's closure read it.
pub(crate) enum Found<R> {
    Absent,
    Present(R),
}

impl<'a> Table<'a> {
    /// The table over `words`, after checking the header. Always inlined with the geometry's
    /// derivation, so that each operation computes only the offsets it uses.
    #[inline(always)]
    pub(crate) fn new(w: &'a [AtomicU64]) -> Result<Table<'a>> {
        Self::new_known(w, None)
    }

    /// [`new`](Table::new) for a face that knows its limits at compile time (`known`: key_max
    /// and value_max, see [`Geometry::of`]); `None` reads them from the header.
    #[inline(always)]
    pub(crate) fn new_known(w: &'a [AtomicU64], known: Option<(u64, u64)>) -> Result<Table<'a>> {
        let g = Geometry::of(w, known)?;
        Ok(Table {
            w,
            g,
            seed: w[H_SEED].load(Ordering::Relaxed),
        })
    }

    /// The key's hash tag (32 bits: [`tag`]), which picks its bucket.
    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        tag(hash(self.seed, key))
    }

    #[inline]
    pub(crate) fn bucket(&self, h: u64) -> usize {
        self.g.bucket(h)
    }

    #[inline]
    pub(crate) fn stripe_of(&self, bucket: usize) -> usize {
        bucket & (self.g.stripes - 1)
    }

    /// The words of stripe `s` (`s < stripes`).
    #[inline]
    pub(crate) fn stripe(&self, s: usize) -> &'a [AtomicU64] {
        let at = self.g.stripes_at + s * STRIPE_WORDS;
        &self.w[at..at + STRIPE_WORDS]
    }

    /// The head word of bucket `b` (`b < buckets`): in slot `b`.
    #[inline]
    pub(crate) fn head(&self, b: usize) -> &'a AtomicU64 {
        &self.w[self.g.slots_at + b * self.g.slot_words + HEAD]
    }

    /// The words of slot `j` (`j < cap`).
    #[inline]
    pub(crate) fn slot(&self, j: usize) -> &'a [AtomicU64] {
        let at = self.g.slots_at + j * self.g.slot_words;
        &self.w[at..at + self.g.slot_words]
    }

    /// The key words of a slot.
    #[inline]
    pub(crate) fn key_words(&self, slot: &'a [AtomicU64]) -> &'a [AtomicU64] {
        &slot[KEY..KEY + self.g.key_words]
    }

    /// The value latch of a slot: its `published` word and two copies.
    #[inline]
    pub(crate) fn latch(&self, slot: &'a [AtomicU64]) -> Pair<'a> {
        Pair::new(
            &slot[PUBLISHED],
            &slot[self.g.copies_at..],
            self.g.copy_stride,
            self.g.copy_words,
            self.g.value_max,
        )
    }

    /// Prefetches the lines of slot `j` (`j < cap`) that a lookup reads before the value: the
    /// head, the entry's words and key (all of a one-line slot), so that their misses overlap.
    #[inline]
    pub(crate) fn prefetch_entry(&self, j: usize) {
        let slot = self.slot(j);
        super::prefetch_lines(&slot[..(KEY + self.g.key_words).min(slot.len())]);
    }

    /// [`prefetch_entry`](Table::prefetch_entry) for a writer, exclusive
    /// ([`super::prefetch_write`]): the line of the slot's first word and the line of its key's
    /// last word (the same line for keys of up to 24 bytes; one more for 32-byte keys).
    #[inline]
    pub(crate) fn prefetch_entry_write(&self, j: usize) {
        let slot = self.slot(j);
        super::prefetch_write(&slot[SEQ]);
        if let Some(last) = slot.get(KEY + self.g.key_words - 1) {
            super::prefetch_write(last);
        }
    }

    /// Prefetches the lines of the value copy a read of `slot` is about to copy (slots of more
    /// than one line only). The copy's index is only a hint here: the latch reads `published`
    /// again and validates.
    #[inline]
    fn prefetch_value(&self, slot: &'a [AtomicU64]) {
        if slot.len() <= 8 {
            return;
        }
        let c = self.g.copy_words;
        let at = self.g.copies_at + self.latch(slot).current_index() * self.g.copy_stride;
        if let Some(copy) = slot.get(at..at + c) {
            super::prefetch_lines(copy);
        }
    }

    /// The slot a link or head word points to: `None` at the end of a chain, an error for a
    /// number past the capacity.
    #[inline]
    pub(crate) fn target(&self, link: u64) -> Result<Option<usize>> {
        match (link & 0xffff_ffff) as usize {
            0 => Ok(None),
            n if n <= self.g.cap => Ok(Some(n - 1)),
            n => Err(bad_link(n, self.g.cap)),
        }
    }

    /// A key's length as stored in its slot's `seq` word, clamped to `key_max`.
    #[inline]
    pub(crate) fn key_len(&self, seq: u64) -> usize {
        seq_key_len(seq, self.g.key_max)
    }

    /// Whether the slot's key words hold `key` (relaxed loads; the caller validates).
    #[inline]
    pub(crate) fn key_is(&self, slot: &[AtomicU64], key: &[u8]) -> bool {
        slot[KEY..KEY + crate::words::words_for(key.len())]
            .iter()
            .enumerate()
            .all(|(i, w)| w.load(Ordering::Relaxed) == key_word(key, i))
    }

    /// Looks `key` (hash `h`, at most `key_max` bytes) up without a lock. On a match, `f` gets
    /// the value's words and length (clamped) inside the validated read: it must only load
    /// (relaxed) and not panic on any bits; its result is dropped when the read was disturbed and
    /// the read is retried.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted) on a link past the capacity, a
    /// chain longer than the capacity, or a read disturbed [`MAX_RESTARTS`] times.
    #[inline]
    pub(crate) fn lookup<R>(
        &self,
        h: u64,
        key: &[u8],
        mut f: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Result<Found<R>> {
        debug_assert!(key.len() <= self.g.key_max);
        let b = self.bucket(h);
        self.prefetch_entry(b);
        if let Some(found) = self.walk(b, h, key, &mut f)? {
            return Ok(found);
        }
        self.lookup_again(b, h, key, f)
    }

    /// The restarts of a lookup whose first walk was disturbed.
    #[cold]
    fn lookup_again<R>(
        &self,
        b: usize,
        h: u64,
        key: &[u8],
        mut f: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Result<Found<R>> {
        let mut spin = Spin::new();
        for _ in 1..MAX_RESTARTS {
            spin.snooze();
            if let Some(found) = self.walk(b, h, key, &mut f)? {
                return Ok(found);
            }
        }
        Err(corrupted("map", "a lookup was disturbed too often"))
    }

    /// One walk of bucket `b`'s chain: `None` when it must restart.
    #[inline]
    fn walk<R>(
        &self,
        b: usize,
        h: u64,
        key: &[u8],
        f: &mut impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Result<Option<Found<R>>> {
        let mut next = self.target(self.head(b).load(Ordering::Acquire))?;
        let mut steps = 0usize;
        while let Some(j) = next {
            steps += 1;
            if steps > self.g.cap {
                return Err(corrupted(
                    "map",
                    "a chain longer than the capacity (a cycle)",
                ));
            }
            let slot = self.slot(j);
            let s1 = slot[SEQ].load(Ordering::Acquire);
            if s1 & 1 == 1 {
                return Ok(None); // a stale link to a slot being freed or refilled
            }
            let link = slot[LINK].load(Ordering::Relaxed);
            let hj = link >> 32;
            let mut hit = None;
            let mut lapped = false;
            if hj == h && (s1 >> KEY_LEN_SHIFT) as usize == key.len() && self.key_is(slot, key) {
                self.prefetch_value(slot);
                match self.latch(slot).try_read(|c, n| f(c, n)) {
                    Some(r) => hit = Some(r),
                    None => lapped = true,
                }
            }
            fence(Ordering::Acquire);
            if slot[SEQ].load(Ordering::Relaxed) != s1 || self.bucket(hj) != b {
                return Ok(None); // the slot changed, or belongs to another chain now
            }
            if let Some(r) = hit {
                return Ok(Some(Found::Present(r)));
            }
            if lapped {
                return Ok(None); // the value was being updated: read it again
            }
            next = self.target(link)?;
        }
        Ok(Some(Found::Absent))
    }

    /// Reads slot `j` whole if it holds a live entry: its key into `key` and its value into
    /// `value`. `Ok(false)` for a slot without a live entry.
    ///
    /// # Errors
    /// [`Error::ObjectCorrupted`](crate::Error::ObjectCorrupted) when the slot kept changing
    /// during [`MAX_RESTARTS`] attempts.
    pub(crate) fn read_slot(
        &self,
        j: usize,
        key: &mut Vec<u8>,
        value: &mut Vec<u8>,
    ) -> Result<bool> {
        let slot = self.slot(j);
        let mut spin = Spin::new();
        for _ in 0..MAX_RESTARTS {
            if !is_live(slot[CLAIM].load(Ordering::Relaxed)) {
                return Ok(false);
            }
            let s1 = slot[SEQ].load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let klen = self.key_len(s1);
                key.resize(klen, 0);
                crate::words::load_bytes(self.key_words(slot), key);
                let got = self.latch(slot).try_read(|c, n| {
                    value.resize(n, 0);
                    crate::words::load_bytes(c, value);
                });
                fence(Ordering::Acquire);
                if got.is_some() && slot[SEQ].load(Ordering::Relaxed) == s1 {
                    return Ok(true);
                }
            }
            spin.snooze();
        }
        Err(corrupted("map", "an entry kept changing while it was read"))
    }

    /// Number of entries: the sum of the stripes' counts (each exact when its stripe is idle),
    /// at most the capacity.
    pub(crate) fn len(&self) -> usize {
        let mut n = 0u64;
        for s in 0..self.g.stripes {
            n = n.saturating_add(self.stripe(s)[S_COUNT].load(Ordering::Relaxed));
        }
        (n as usize).min(self.g.cap)
    }
}

/// The error for a link past the capacity (out of line, with its numbers by value, so that no
/// caller's table is kept in memory for it).
#[cold]
#[inline(never)]
fn bad_link(n: usize, cap: usize) -> crate::Error {
    corrupted("map", format!("link to slot {n} of {cap}"))
}
