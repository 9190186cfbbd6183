//! The rotating latch: `N` copies of a value and one published version number. Readers always
//! read a complete copy that the writer is not touching, even while a writer is in the middle of a
//! write or after it died there.
//!
//! # The protocol
//!
//! A latch is a `published` word (the version `v`, the number of completed writes) and `N` copies
//! (`N` a power of two). Version `v` lives in copy `v mod N`.
//!
//! ```text
//! writer, version u = v + 1          reader
//! ─────────────────────────          ──────────────────────────────────────
//! fence(Release)                     v1 = published.load(Acquire)
//! relaxed stores into copy u mod N   relaxed loads from copy v1 mod N
//! published.store(u, Release)        fence(Acquire)
//!                                    v2 = published.load(Relaxed)
//!                                    good iff v2 − v1 ≤ N − 2 (wrapping)
//! ```
//!
//! Why it is sound (Boehm's fence pattern, with a window of `N − 1` versions instead of one):
//!
//! - *Complete.* `published = v1` was stored with Release after every store of version `v1`'s
//!   copy; the reader acquired it, so its loads see those stores or later ones.
//! - *Not torn.* The only later stores to copy `v1 mod N` belong to versions `v1 + N`,
//!   `v1 + 2N`, …, and the writer makes them after its fence(Release), which follows its store
//!   `published = v1 + N − 1`. If a reader's load saw one of them, that fence synchronizes with
//!   the reader's fence(Acquire), so the store `published = v1 + N − 1` happens before the
//!   reader's second load, which then returns at least `v1 + N − 1`: the check fails and the
//!   attempt is dropped. (Versions never go back: only the lock holder stores them, each one
//!   `+1`.)
//!
//! # Why rotating copies
//!
//! - **Readers get a long window.** A reader of version `v1` is disturbed only when the writer
//!   *starts* version `v1 + N`, i.e. after `N − 1` whole further writes, not by the write that
//!   runs next to it. With a writer rewriting a 4 KiB value continuously, a reader copying 64
//!   cache lines that the other core keeps stealing would otherwise retry again and again.
//! - **The writer writes lines nobody is reading.** It fills a copy that readers left `N − 1`
//!   versions ago; the lines readers poll are the `published` word (one store per write) and the
//!   copy they read, which holds still. No per-copy sequence word is needed: the single version
//!   number says both which copy is current and whether the window was exceeded.
//! - **A dead writer never blocks readers.** A writer that stops (descheduled, or killed) before
//!   its `published` store leaves the last complete version readable forever. The next writer
//!   simply writes the same version again into the same copy: the torn copy was never published.
//!   It first reads `published` with a read-modify-write ([`resync`](Rotation::resync)), which
//!   always returns the latest value, so it never reuses the copy readers are reading.
//!
//! All data is moved with relaxed atomic word loads and stores ([`crate::words`]); no plain or
//! volatile read of shared bytes is ever made. Every index taken from shared memory is masked
//! with the local `N − 1`, so hostile memory gives wrong values, never an out-of-bounds access.

use crate::sync::{fence, AtomicU64, Ordering};

/// One latch: a view into shared words, with its geometry from local (trusted) numbers.
#[derive(Clone, Copy)]
pub(crate) struct Rotation<'a> {
    published: &'a AtomicU64,
    /// `N` copies, `stride` words apart (the last one may be exactly `width` words).
    copies: &'a [AtomicU64],
    stride: usize,
    width: usize,
    /// `N − 1`.
    mask: u64,
}

/// Retries of a read made at once before a retry first backs off.
const EAGER_RETRIES: u32 = 8;

impl<'a> Rotation<'a> {
    /// The latch made of `published` and the `n` copies in `copies` (`n` a power of two ≥ 2,
    /// `copies.len() ≥ (n − 1)·stride + width`, `width ≤ stride`).
    ///
    /// # Panics
    /// On a violated precondition (a local bug: callers compute every length locally).
    #[inline]
    pub(crate) fn new(
        published: &'a AtomicU64,
        copies: &'a [AtomicU64],
        n: usize,
        stride: usize,
        width: usize,
    ) -> Self {
        debug_assert!(n >= 2 && n.is_power_of_two());
        debug_assert!(width <= stride || n == 1);
        assert!(
            copies.len() >= (n - 1) * stride + width,
            "latch copies of the wrong size"
        );
        Rotation {
            published,
            copies,
            stride,
            width,
            mask: (n - 1) as u64,
        }
    }

    /// The copy that holds version `v`.
    #[inline]
    fn copy(&self, v: u64) -> &'a [AtomicU64] {
        let at = (v & self.mask) as usize * self.stride;
        &self.copies[at..at + self.width]
    }

    /// The published version (Acquire): the number of completed writes, wrapping.
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Sets a fresh latch to version 0 (the caller stored the initial value into copy 0, or
    /// zeroed all copies).
    pub(crate) fn init(&self) {
        self.published.store(0, Ordering::Release);
    }

    /// One read attempt: runs `f` on the current copy and returns its result with the version
    /// read, or `None` when the writer may have started overwriting that copy during the read (the
    /// result may be torn and is dropped).
    ///
    /// `f` must only load from the words (relaxed) and must not panic on any bit pattern.
    #[inline]
    pub(crate) fn try_read<R>(&self, f: impl FnOnce(&[AtomicU64]) -> R) -> Option<(R, u64)> {
        let v1 = self.published.load(Ordering::Acquire);
        let r = f(self.copy(v1));
        fence(Ordering::Acquire);
        let v2 = self.published.load(Ordering::Relaxed);
        (v2.wrapping_sub(v1) < self.mask).then_some((r, v1))
    }

    /// Reads until an attempt succeeds. Retries only while the writer laps the reader (`N − 1`
    /// writes during one read): never because a writer stopped or died.
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
        let mut retries = 0u32;
        loop {
            // The newest copy is complete and has a whole window ahead of it: retry at once. Only
            // a reader lapped again and again (it keeps being descheduled mid-read) backs off.
            // Under loom every hint is a scheduling point: one yield per retry.
            retries = retries.saturating_add(1);
            if cfg!(feature = "loom") || retries <= EAGER_RETRIES {
                crate::sync::spin_hint();
            } else {
                spin.snooze();
            }
            if let Some(r) = self.try_read(&mut f) {
                return r;
            }
        }
    }

    /// The writer's view of the current value (the caller holds the writer lock: nobody else
    /// writes, and it read `published` after acquiring the lock).
    #[inline]
    pub(crate) fn current(&self) -> &'a [AtomicU64] {
        self.copy(self.published.load(Ordering::Relaxed))
    }

    /// Writes the next version. `f(u, current, next)` gets the new version number, the current
    /// copy (to read from) and the copy of version `u` (to fill completely: it holds version
    /// `u − N`); then `u` is published. The caller holds the writer lock.
    #[inline]
    pub(crate) fn write<R>(&self, f: impl FnOnce(u64, &'a [AtomicU64], &'a [AtomicU64]) -> R) -> R {
        let (u, cur, next) = self.begin();
        let r = f(u, cur, next);
        self.published.store(u, Ordering::Release);
        r
    }

    /// The first half of a write (the second is the release store of `u`): returns the next
    /// version `u`, the current copy and the copy of `u`, after the fence that keeps the stores
    /// into it behind the store of the current version. Test hooks and the repair after a
    /// takeover use it alone (a write that is never published).
    #[inline]
    pub(crate) fn begin(&self) -> (u64, &'a [AtomicU64], &'a [AtomicU64]) {
        let v = self.published.load(Ordering::Relaxed);
        let u = v.wrapping_add(1);
        // Keeps the stores into copy `u` behind the store `published = v = u − 1`, the one a
        // lapped reader must then see: see the module docs.
        fence(Ordering::Release);
        (u, self.copy(v), self.copy(u))
    }

    /// After taking the lock over from a dead writer: reads `published` with a
    /// read-modify-write, which returns the latest value (the dead writer never released the
    /// lock, so a plain load might not see its last store), and makes it visible to this
    /// writer's later relaxed loads. Returns it.
    pub(crate) fn resync(&self) -> u64 {
        self.published.fetch_add(0, Ordering::AcqRel)
    }
}

/// Copies `src` into `dst` word by word (relaxed; equal lengths).
#[inline]
pub(crate) fn copy_words(dst: &[AtomicU64], src: &[AtomicU64]) {
    for (d, s) in dst.iter().zip(src) {
        d.store(s.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    fn fill(c: &[AtomicU64], x: u64) {
        c.iter().for_each(|w| w.store(x, Ordering::Relaxed));
    }

    /// A read overlapped by `k` whole writes succeeds for `k ≤ N − 2` and is dropped from
    /// `k = N − 1` on; at `k = N` the copy it read really was overwritten under it.
    #[test]
    fn lapped_exactly_after_n_minus_1_writes() {
        for n in [2usize, 4, 8, 16] {
            for k in 0..=n {
                let (published, copies) = (AtomicU64::new(0), words(4 * n));
                let r = Rotation::new(&published, &copies, n, 4, 3);
                r.init();
                r.write(|u, _, next| fill(next, u));
                let got = r.try_read(|c| {
                    let first = c[0].load(Ordering::Relaxed);
                    for _ in 0..k {
                        r.write(|u, _, next| fill(next, u));
                    }
                    (first, c[2].load(Ordering::Relaxed))
                });
                match got {
                    Some(((a, b), v)) => {
                        assert!(k + 2 <= n, "n {n}: a read lapped by {k} writes succeeded");
                        assert_eq!((a, b, v), (1, 1, 1));
                    }
                    None => assert!(k + 1 >= n, "n {n}: {k} writes made a read retry"),
                }
                if k == n {
                    // What the check protects against: the copy changed under the reader.
                    assert_eq!(copies[4 * (1 % n)].load(Ordering::Relaxed), 1 + n as u64);
                }
                assert_eq!(r.version(), 1 + k as u64);
                assert_eq!(
                    r.read(|c| c[1].load(Ordering::Relaxed)),
                    (1 + k as u64, 1 + k as u64)
                );
            }
        }
    }

    /// Hostile versions (anything, wrapping) select a copy in bounds and never stop a read of
    /// memory that holds still.
    #[test]
    fn hostile_versions_stay_in_bounds() {
        let (published, copies) = (AtomicU64::new(0), words(8 * 3 + 2));
        let r = Rotation::new(&published, &copies, 8, 3, 2);
        for v in [u64::MAX, u64::MAX - 1, 1 << 63, 12345] {
            published.store(v, Ordering::Relaxed);
            assert_eq!(r.read(|c| c.len()), (2, v));
            r.write(|u, _, next| fill(next, u));
            assert_eq!(r.version(), v.wrapping_add(1));
            assert_eq!(r.current()[1].load(Ordering::Relaxed), v.wrapping_add(1));
        }
    }
}
