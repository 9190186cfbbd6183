//! The list's lock and what only its holder does: freeze the reservations, settle the pushes in
//! flight, remove elements from the top (pop, clear), and finish or undo the removal of a holder
//! that died (see [`list`](super::list)'s module docs for the protocol).

use super::claim;
use super::list::*;
use crate::process;
use crate::sync::{Ordering, Spin};
use crate::{Error, Result};
use std::time::Duration;

/// Who runs a list operation, and (crash models only) the test point where it stops as if its
/// process had died there.
#[derive(Clone, Copy)]
pub(crate) struct Ctl {
    pub me: u64,
    pub abandon_at: Option<&'static str>,
}

impl Ctl {
    /// This process, running to the end.
    pub(crate) fn me() -> Ctl {
        Ctl {
            me: process::my_word(),
            abandon_at: None,
        }
    }

    /// Test point `name`: the `test-hooks` action, and the crash models' abandonment.
    #[inline]
    pub(super) fn point(&self, name: &'static str) -> Result<()> {
        crate::hooks::at(name);
        if self.abandon_at == Some(name) {
            return Err(Error::WouldBlock {
                what: super::stripe::ABANDONED,
            });
        }
        Ok(())
    }
}

/// Holds the list lock; released on drop.
pub(crate) struct ListLock<'a> {
    pub(super) v: View<'a>,
    pub(super) ctl: Ctl,
}

impl ListLock<'_> {
    /// After a crash model's abandonment: leaves the lock held, as a dead process would.
    pub(super) fn keep_if_abandoned<T>(self, res: &Result<T>) {
        if matches!(res, Err(Error::WouldBlock { what }) if *what == super::stripe::ABANDONED) {
            core::mem::forget(self);
        }
    }

    /// Freezes `reserved` and waits (until the timeout) for every reserved slot to be written or
    /// become a hole; returns the frozen boundary. On timeout, unfreezes and fails.
    pub(super) fn freeze_and_settle(&self, timeout: Option<Duration>) -> Result<usize> {
        let v = &self.v;
        let rw = loop {
            let raw = v.reserved().load(Ordering::Acquire);
            if raw & FROZEN != 0 {
                // We hold the lock: a freeze left behind is stale (scribbled memory); keep it.
                break raw & !FROZEN;
            }
            if v.reserved()
                .compare_exchange(raw, raw | FROZEN, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                break raw;
            }
        };
        self.ctl.point("list.pop.frozen")?;
        let r = idx(rw).min(v.cap);
        let (deadline, waited) = claim::deadline_of(timeout);
        let mut spin = Spin::new();
        let mut since: Option<(usize, std::time::Instant)> = None;
        loop {
            let pw = v.published().load(Ordering::Acquire);
            let p = View::plen(pw, v.cap);
            if p >= r {
                return Ok(r);
            }
            let state = &v.slot(p)[STATE];
            let st = state.load(Ordering::Acquire);
            let moved = if st == FULL || st & (1 << 63) != 0 {
                true
            } else if st != 0 {
                !process::word_alive(st)
                    && state
                        .compare_exchange(st, HOLE, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
            } else {
                let t0 = match since {
                    Some((q, t)) if q == p => t,
                    _ => since.insert((p, std::time::Instant::now())).1,
                };
                (cfg!(feature = "loom") || t0.elapsed() >= GRACE)
                    && state
                        .compare_exchange(0, HOLE, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
            };
            if moved {
                let _ = v.published().compare_exchange(
                    pw,
                    pw.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                continue;
            }
            if state.load(Ordering::Acquire) != st {
                continue; // claimed or written meanwhile: look again
            }
            if deadline.expired() {
                v.reserved().store(rw, Ordering::Release);
                return Err(Error::Timeout {
                    what: "a push in flight on the list",
                    waited,
                });
            }
            spin.snooze();
        }
    }

    /// Removes slots `new_len..r` (frozen, settled): records the removal, empties them from the
    /// top down, publishes the new length with a new epoch and unfreezes.
    pub(super) fn shrink(&self, op: u64, new_len: usize, r: usize) -> Result<()> {
        let v = &self.v;
        v.w[WORK].store(
            op << 62 | (new_len as u64) << 31 | r as u64,
            Ordering::Release,
        );
        self.ctl.point("list.pop.recorded")?;
        Self::finish(v, new_len, r, self.ctl)
    }

    /// The rest of a removal (also the repair's roll-forward): idempotent. The epoch moves on
    /// before any slot is emptied, so that a pusher that claims an emptied slot on an old
    /// reservation sees it (see [`View::push`]).
    fn finish(v: &View<'_>, new_len: usize, r: usize, ctl: Ctl) -> Result<()> {
        let rw = v.reserved().load(Ordering::Relaxed);
        let moved = next_epoch(rw, idx(rw));
        v.reserved().store(moved | FROZEN, Ordering::Release);
        for i in (new_len..r.min(v.cap)).rev() {
            v.slot(i)[STATE].store(0, Ordering::Release);
            ctl.point("list.pop.emptied")?;
        }
        let epoch = (v.published().load(Ordering::Relaxed) >> 32).wrapping_add(1) << 32;
        v.published()
            .store(epoch | new_len as u64, Ordering::Release);
        v.reserved()
            .store((moved & EPOCHS) | new_len as u64, Ordering::Release);
        v.w[GAP].store(0, Ordering::Release);
        v.w[WORK].store(0, Ordering::Release);
        Ok(())
    }

    /// After taking the lock over from a dead holder: finishes its recorded pop or clear, or
    /// unfreezes `reserved` if it had recorded none; resynchronizes the latch of an
    /// interrupted `set`.
    #[cold]
    pub(super) fn repair(&self) {
        let v = &self.v;
        let work = v.w[WORK].fetch_add(0, Ordering::AcqRel);
        let rw = v.reserved().fetch_add(0, Ordering::AcqRel);
        let (op, new_len, r) = (
            work >> 62,
            ((work >> 31) & 0x7fff_ffff) as usize,
            (work & 0x7fff_ffff) as usize,
        );
        if rw & FROZEN != 0 {
            if (op == POP || op == CLEAR) && r == idx(rw) && new_len <= r {
                let _ = Self::finish(v, new_len, r, Ctl::me());
            } else {
                v.reserved().store(rw & !FROZEN, Ordering::Release);
            }
        }
        if op == SET && (work & 0x7fff_ffff) < v.cap as u64 {
            v.latch((work & 0x7fff_ffff) as usize).resync();
        }
        v.w[WORK].store(0, Ordering::Release);
    }
}

impl Drop for ListLock<'_> {
    fn drop(&mut self) {
        self.v.w[LOCK].store(0, Ordering::Release);
    }
}
