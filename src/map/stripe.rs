//! A map's stripe locks: who may change the chains of a stripe's buckets, and the repair after a
//! holder died.
//!
//! A stripe's words (one line):
//!
//! | word    | contents                                                                   |
//! | ------- | -------------------------------------------------------------------------- |
//! | `lock`  | 0 free · the holder's owner word ([`process::my_word`]), set by one CAS      |
//! | `count` | entries in the stripe's buckets (written by the holder)                     |
//! | `hint`  | where the stripe's next free-slot search starts (written by the holder)     |
//!
//! Waits and takeovers are [`claim`](super::claim)'s: a stopped holder makes `_timeout` calls time
//! out, a dead one's lock is taken over by one CAS and the stripe [repaired](Locked::repair).

use super::claim;
use super::geometry::*;
use super::read::Table;
use crate::process;
use crate::sync::{Deadline, Ordering};
use crate::{Error, Result};
use std::time::Duration;

/// Holds stripe `s`'s lock; released on drop.
pub(crate) struct Locked<'a> {
    /// The table (borrowed, not copied: a lock is moved around on every write's path).
    pub t: &'a Table<'a>,
    pub s: usize,
    /// A test point at which the operation stops as if its process had died there (see
    /// [`point`](Locked::point)); `None` outside the crash models.
    pub abandon_at: Option<&'static str>,
}

/// The error an operation abandoned at a test point returns (crash models only).
pub(crate) const ABANDONED: &str = "an operation abandoned at a test point";

impl<'a> Table<'a> {
    /// Takes stripe `s`'s lock, waiting until `deadline` for a live holder and taking it over
    /// from a dead one (then repairing the stripe).
    ///
    /// # Errors
    /// [`Error::Timeout`] at the deadline (with `waited`, the caller's timeout).
    pub(crate) fn lock(
        &'a self,
        s: usize,
        deadline: Deadline,
        waited: Duration,
    ) -> Result<Locked<'a>> {
        self.lock_as(s, process::my_word(), deadline, waited)
    }

    /// [`lock`](Table::lock) in the name of owner word `me` (crash models take locks in the
    /// name of a process that does not exist).
    pub(crate) fn lock_as(
        &'a self,
        s: usize,
        me: u64,
        deadline: Deadline,
        waited: Duration,
    ) -> Result<Locked<'a>> {
        let dead = claim::acquire(
            &self.stripe(s)[S_LOCK],
            me,
            deadline,
            "a map stripe lock",
            waited,
        )?;
        let l = Locked {
            t: self,
            s,
            abandon_at: None,
        };
        if dead.is_some() {
            l.repair();
        }
        Ok(l)
    }

    /// Takes stripe `s`'s lock over from the dead holder `dead` (one CAS) and repairs the stripe.
    #[cold]
    fn take_over(&'a self, s: usize, dead: u64, me: u64) -> Option<Locked<'a>> {
        claim::take_over(&self.stripe(s)[S_LOCK], dead, me)?;
        let l = Locked {
            t: self,
            s,
            abandon_at: None,
        };
        l.repair();
        Some(l)
    }

    /// Sweeps the stripes other than `but` whose lock is held by a dead process: takes each
    /// over (without waiting), repairs it and releases it, so that their claimed slots are free
    /// again. Returns how many stripes were repaired.
    #[cold]
    pub(crate) fn sweep_dead(&'a self, but: usize) -> usize {
        let me = process::my_word();
        let mut n = 0;
        for s in (0..self.g.stripes).filter(|&s| s != but) {
            let cur = self.stripe(s)[S_LOCK].load(Ordering::Acquire);
            if cur != 0 && !process::word_alive(cur) {
                if let Some(l) = self.take_over(s, cur, me) {
                    drop(l);
                    n += 1;
                }
            }
        }
        n
    }

    /// Whether slot `j` is linked in bucket `b`'s chain (a bounded walk; the caller holds the
    /// bucket's stripe, so the chain holds still).
    pub(crate) fn linked(&self, b: usize, j: usize) -> bool {
        let mut next = self
            .target(self.head(b).load(Ordering::Acquire))
            .ok()
            .flatten();
        for _ in 0..self.g.cap {
            match next {
                Some(k) if k == j => return true,
                Some(k) => {
                    next = self
                        .target(self.slot(k)[LINK].load(Ordering::Acquire))
                        .ok()
                        .flatten()
                }
                None => return false,
            }
        }
        false
    }
}

impl Locked<'_> {
    /// Repairs the stripe after its holder died (the caller holds it now):
    ///
    /// - every slot claimed by the stripe is kept (made live) if it is linked in its bucket's
    ///   chain, and freed otherwise: an insert that linked its entry happened, one that did not
    ///   never did; a removal that unlinked its entry happened, one that did not never did;
    /// - the entry count is recounted from the chains.
    ///
    /// An update of a value the dead holder was making left its owner word in the entry's claim:
    /// the next writer of that entry takes it over ([`super::entry`]).
    pub(crate) fn repair(&self) {
        let t = &self.t;
        let stripe = t.stripe(self.s);
        let mine = CLAIMED | self.s as u64;
        for j in 0..t.g.cap {
            let slot = t.slot(j);
            // RMW reads: the dead holder never released the lock, so plain loads might not see
            // its last stores; a read-modify-write returns the latest value.
            if slot[CLAIM].fetch_add(0, Ordering::AcqRel) != mine {
                continue;
            }
            let b = t.bucket(slot[LINK].load(Ordering::Relaxed) >> 32);
            if t.stripe_of(b) == self.s && t.linked(b, j) {
                slot[CLAIM].store(LIVE, Ordering::Release);
            } else {
                let seq = slot[SEQ].fetch_add(0, Ordering::AcqRel);
                if seq & 1 == 0 {
                    slot[SEQ].store(seq.wrapping_add(1), Ordering::Release);
                }
                slot[CLAIM].store(FREE, Ordering::Release);
            }
        }
        stripe[S_COUNT].store(self.recount() as u64, Ordering::Relaxed);
    }

    /// Entries in the stripe's chains (bounded walks).
    fn recount(&self) -> usize {
        let t = &self.t;
        let mut n = 0usize;
        for b in (self.s..t.g.buckets).step_by(t.g.stripes) {
            let mut next = t.target(t.head(b).load(Ordering::Acquire)).ok().flatten();
            let mut steps = 0;
            while let Some(j) = next {
                steps += 1;
                if steps > t.g.cap {
                    break;
                }
                n += 1;
                next = t
                    .target(t.slot(j)[LINK].load(Ordering::Acquire))
                    .ok()
                    .flatten();
            }
        }
        n.min(t.g.cap)
    }

    /// Test point `name` of a multi-step write: the `test-hooks` action for it
    /// ([`crate::hooks`]), and in crash models an abandonment: `Err` when the operation is to stop
    /// there as if its process had died (the caller then leaks the lock with `mem::forget`).
    #[inline]
    pub(crate) fn point(&self, name: &'static str) -> Result<()> {
        crate::hooks::at(name);
        if self.abandon_at == Some(name) {
            return Err(Error::WouldBlock { what: ABANDONED });
        }
        Ok(())
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.t.stripe(self.s)[S_LOCK].store(0, Ordering::Release);
    }
}
