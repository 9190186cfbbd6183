//! The two-copy latch: one versioned block of words that readers can always read consistently,
//! even while a writer is in the middle of a write or after it died there.
//!
//! A block is `1 + 2·W` words: a sequence word, then two copies of the data (`copy0`, `copy1`,
//! `W` words each). A write goes through three phases; the sequence word's value modulo 4 says
//! which copy is stable for readers:
//!
//! | `seq % 4` | writer is…                          | readers read | copies            |
//! | --------- | ----------------------------------- | ------------ | ----------------- |
//! | 0         | idle                                | `copy0`      | equal             |
//! | 1         | writing `copy0`                     | `copy1`      | `copy1` = old     |
//! | 2         | writing `copy1`                     | `copy0`      | `copy0` = new     |
//! | 3         | (never written; corrupted memory)   | `copy0`      | unknown           |
//!
//! A write: `seq = 4k+1` (Release) and `fence(Release)`, data into `copy0`, `seq = 4k+2`
//! (Release) and `fence(Release)`, data into `copy1`, `seq = 4k+4` (Release). A read (Boehm's protocol):
//! `s = seq` (Acquire), relaxed loads of the stable copy, `fence(Acquire)`, `seq` again (Relaxed);
//! the read is good iff both loads saw `s`. Why it is sound: a data store made after any later
//! bump is preceded by that bump and a release fence; a reader that saw such a store synchronizes
//! through its acquire fence and then sees the bump, so its second load differs. The copy a reader
//! picks at `s` is written only after the bump that follows `s`, and its last writes came before
//! the release store of `s`, which the reader acquired.
//!
//! Because one copy is always stable, a writer that stops (descheduled, or killed) never blocks
//! readers: they keep getting the last complete value. A writer that takes over after a dead one
//! calls [`recover`](Block::recover), which copies the stable copy over the torn one and sets the
//! sequence to the next multiple of 4, restoring "idle, copies equal".
//!
//! All data is moved with relaxed atomic word loads and stores ([`crate::words`]); no plain read
//! of shared bytes is ever made.

use crate::sync::{fence, AtomicU64, Ordering};

/// One latch block: a view into `1 + 2·w` words of shared memory.
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    seq: &'a AtomicU64,
    copy0: &'a [AtomicU64],
    copy1: &'a [AtomicU64],
}

impl<'a> Block<'a> {
    /// Words a block of `w` data words takes.
    #[inline]
    pub(crate) const fn words(w: usize) -> usize {
        1 + 2 * w
    }

    /// The block in `words` (exactly `1 + 2·w` words, split locally).
    ///
    /// # Panics
    /// If `words.len() != 1 + 2·w` (a local bug: callers slice with local lengths).
    #[inline]
    pub(crate) fn new(words: &'a [AtomicU64], w: usize) -> Self {
        assert_eq!(words.len(), Self::words(w), "latch block of the wrong size");
        let (seq, data) = words.split_at(1);
        let (copy0, copy1) = data.split_at(w);
        Block {
            seq: &seq[0],
            copy0,
            copy1,
        }
    }

    /// The sequence word's current value (Acquire).
    #[inline]
    pub(crate) fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Sets a fresh block to "idle": sequence 0. The caller has stored the initial data into both
    /// copies (or zeros).
    pub(crate) fn init(&self) {
        self.seq.store(0, Ordering::Release);
    }

    /// The copy readers use at sequence `s`.
    #[inline]
    fn stable(&self, s: u64) -> &'a [AtomicU64] {
        if s & 3 == 1 {
            self.copy1
        } else {
            self.copy0
        }
    }

    /// One read attempt: runs `f` on the stable copy and returns its result with the sequence
    /// seen, or `None` when a write overlapped (the result may be torn and is dropped).
    ///
    /// `f` must only load from the words (relaxed) and must not panic on any bit pattern.
    #[inline]
    pub(crate) fn try_read<R>(&self, f: impl FnOnce(&[AtomicU64]) -> R) -> Option<(R, u64)> {
        let s1 = self.seq.load(Ordering::Acquire);
        let r = f(self.stable(s1));
        fence(Ordering::Acquire);
        let s2 = self.seq.load(Ordering::Relaxed);
        (s1 == s2).then_some((r, s1))
    }

    /// Reads until an attempt succeeds. Retries only while writes overlap the read: never
    /// because a writer stopped or died.
    #[inline]
    pub(crate) fn read<R>(&self, mut f: impl FnMut(&[AtomicU64]) -> R) -> (R, u64) {
        if let Some(r) = self.try_read(&mut f) {
            return r;
        }
        self.read_slow(f)
    }

    #[cold]
    fn read_slow<R>(&self, mut f: impl FnMut(&[AtomicU64]) -> R) -> (R, u64) {
        let mut spin = crate::sync::Spin::new();
        loop {
            // Under loom every spin hint is a scheduling point: one yield per retry is enough.
            if cfg!(feature = "loom") {
                crate::sync::yield_now();
            } else {
                spin.snooze();
            }
            if let Some(r) = self.try_read(&mut f) {
                return r;
            }
        }
    }

    /// The writer's view of the current value: `copy0` (the caller holds the writer lock and the
    /// block is idle, so nobody else writes it).
    #[inline]
    pub(crate) fn current(&self) -> &'a [AtomicU64] {
        self.copy0
    }

    /// Bumps the sequence to `to`: a release store (publishing the data stored before) and a
    /// release fence (keeping the data stores after it behind it).
    #[inline]
    fn bump(&self, to: u64) {
        self.seq.store(to, Ordering::Release);
        fence(Ordering::Release);
    }

    /// Writes through the three phases; `f` stores the new data into the copy it is given and is
    /// called twice (once per copy) with the same effect. The caller holds the writer lock and
    /// the block is idle (`seq % 4 == 0`, as after [`recover`](Block::recover)).
    #[inline]
    pub(crate) fn write(&self, mut f: impl FnMut(&[AtomicU64])) {
        let s = self.seq.load(Ordering::Relaxed) & !3;
        self.bump(s.wrapping_add(1));
        f(self.copy0);
        self.bump(s.wrapping_add(2));
        f(self.copy1);
        self.seq.store(s.wrapping_add(4), Ordering::Release);
    }

    /// Test hook: starts a write and abandons it between the odd and the even store, with
    /// `copy0` half written (its first `⌈w/2⌉` words new, the rest old), as a writer killed there
    /// would leave it. `scratch` holds the complete new data (`w` words, private memory).
    pub(crate) fn write_abandoned(&self, scratch: &[AtomicU64]) {
        let s = self.seq.load(Ordering::Relaxed) & !3;
        self.bump(s.wrapping_add(1));
        let half = self.copy0.len().div_ceil(2);
        for (d, v) in self.copy0.iter().zip(scratch).take(half) {
            d.store(v.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Repairs a block a dead writer may have left mid-write (the caller holds the writer lock):
    /// copies the stable copy over the other one and sets the sequence to the next multiple of 4.
    /// Harmless on an idle block. Readers are never disturbed: they keep reading the stable copy
    /// until the final store.
    pub(crate) fn recover(&self) {
        let s = self.seq.load(Ordering::Acquire);
        if s & 3 == 0 {
            // Idle: a write completed its last phase; the copies are equal.
            return;
        }
        // Readers that see one of the stores below must then see the sequence move on (or at
        // least the dead writer's last bump, which we acquired): pair with their acquire fence.
        fence(Ordering::Release);
        let (from, to) = if s & 3 == 1 {
            (self.copy1, self.copy0)
        } else {
            (self.copy0, self.copy1)
        };
        for (d, v) in to.iter().zip(from) {
            d.store(v.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.seq.store((s & !3).wrapping_add(4), Ordering::Release);
    }
}
