//! [`RawList`]: the shared list's words and protocol (elements as byte strings of at most
//! `elem_max` bytes); [`List<T>`](super::List), [`ByteList`](super::ByteList) and
//! `SerdeList<T>` are its typed faces.
//!
//! # Layout (words; a line is 16 words)
//!
//! | part        | contents                                                                    |
//! | ----------- | --------------------------------------------------------------------------- |
//! | header line | layout tag, capacity, `elem_max`                                            |
//! | `reserved`  | (own line) the next index to reserve (low 32 bits), an epoch (bits 32..62, +1 when a pop or clear empties slots), bit 62 `FROZEN` while a pop or clear runs |
//! | `published` | (own line) epoch (high 32 bits, +1 at every pop or clear) · length (low 32)   |
//! | lock line   | lock (0 or the holder's owner word) · work (the pop or clear in progress) · gap (the first sighting of an empty slot below `reserved`: index + 1, time) |
//! | slots       | per element: `state`, the latch's `published`, two copies (length, data)     |
//!
//! A slot's `state`: 0 empty · the writer's owner word (being pushed) · `FULL` · `HOLE`.
//!
//! # Push (lock-free between pushers)
//!
//! Reserve index `r` with one CAS `reserved: r → r + 1` (refused while `FROZEN`), claim slot `r`
//! with one CAS `state: 0 → my owner word`, check that `reserved`'s epoch did not change in
//! between (else a pop emptied the slot after making it a hole: give it back and start again),
//! write the element through the slot's latch, store `FULL`, then advance `published` over every
//! `FULL` or `HOLE` slot. `len()` is the published
//! prefix: an element becomes visible once every element reserved before it is written.
//!
//! A pusher killed after claiming its slot leaves its owner word there: whoever advances
//! `published` finds it dead (the crate's one liveness rule) and marks the slot a `HOLE`. A
//! pusher killed (or stalled for [`GRACE`]) between its reservation and its claim leaves an
//! empty slot below `reserved`: the first reader that finds it records when (the `gap` word),
//! and a reader that finds it still empty [`GRACE`] later marks it a `HOLE` under the lock
//! (readers never wait for it); a stalled pusher that comes back finds its slot gone and
//! reserves another. A hole counts in `len()` and
//! against the capacity, reads as absent ([`List::get`](super::List::get) returns `None`), is
//! skipped by iteration, and is removed by `pop` and `clear` (`set` fills it).
//!
//! # Pop, clear and set (under the list lock)
//!
//! `pop` and `clear` freeze `reserved` (so no push can start), wait until every reserved slot
//! is `FULL` or a `HOLE`, record what they will remove in the lock's `work` word, empty the
//! slots from the top down, store the new length (with a new epoch, so that a stale helper's
//! CAS on `published` fails) and unfreeze. A holder killed in between is repaired by the next
//! one: with `work` recorded it finishes the removal, without it it unfreezes. `set` writes the
//! slot's latch (readers see the old or the new element whole).

use super::{claim, corrupted, LAYOUT_VERSION, LINE};
use crate::process;
use crate::seqlock::latch::Rotation;
use crate::sync::{AtomicU64, Ordering, Spin};
use crate::words::{store_bytes, words_for};
use crate::{Error, Result};
use std::time::Duration;

/// Largest capacity of a list (indices and lengths fit in 31 bits).
pub const LIST_CAPACITY_LIMIT: u64 = (1 << 31) - 1;

/// The header's first word: `"shmklst"` and the layout version.
const LIST_TAG: u64 = 0x73686d6b_6c737400 | LAYOUT_VERSION;
const LINE_W: usize = if LINE < 4 { 4 } else { LINE };
const H_CAP: usize = 1;
const H_ELEM: usize = 2;
pub(super) const RESERVED: usize = LINE_W;
pub(super) const PUBLISHED: usize = 2 * LINE_W;
pub(super) const LOCK: usize = 3 * LINE_W;
pub(super) const WORK: usize = 3 * LINE_W + 1;
pub(super) const GAP: usize = 3 * LINE_W + 2;
pub(super) const SLOTS: usize = 4 * LINE_W;

/// Slot words before the latch copies.
pub(super) const STATE: usize = 0;
const VERSION: usize = 1;
const COPIES: usize = 2;

/// `state` values besides 0 and owner words (which never have bit 63 set).
pub(super) const FULL: u64 = 1 << 63 | 1;
pub(super) const HOLE: u64 = 1 << 63 | 2;
/// Bit of `reserved` set while a pop or clear runs.
pub(super) const FROZEN: u64 = 1 << 62;
/// One epoch of `reserved` (its bits 32..62).
pub(super) const EPOCH: u64 = 1 << 32;
pub(super) const EPOCHS: u64 = FROZEN - EPOCH;

/// The index part of a `reserved` word.
#[inline]
pub(super) fn idx(rw: u64) -> usize {
    (rw & 0xffff_ffff) as usize
}

/// The `reserved` word with the next epoch (wrapping within its bits), unfrozen, at `index`.
#[inline]
pub(super) fn next_epoch(rw: u64, index: usize) -> u64 {
    ((rw & EPOCHS).wrapping_add(EPOCH) & EPOCHS) | index as u64
}

/// `work` ops: `op << 62 | new_len << 31 | r`.
pub(super) const POP: u64 = 1;
pub(super) const CLEAR: u64 = 2;
pub(super) const SET: u64 = 3;

/// How long a slot may stay empty below `reserved` before a lock holder marks it a hole.
pub const GRACE: Duration = Duration::from_millis(20);

/// Milliseconds of `CLOCK_MONOTONIC` (one clock for every process of the machine), low 32 bits.
fn now_ms() -> u32 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the local `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

pub(crate) use super::list_lock::Ctl;
pub(super) use super::list_lock::ListLock;

/// The words of a list (see the module docs); its faces are `#[repr(transparent)]` over it.
#[repr(C)]
pub struct RawList {
    words: [AtomicU64],
}

static_assertions::const_assert!(SLOTS >= 8 && FULL != HOLE && FROZEN > LIST_CAPACITY_LIMIT);

/// A list's validated dimensions over its words.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub(super) w: &'a [AtomicU64],
    pub cap: usize,
    pub elem_max: usize,
    pub(super) copy: usize,
    slot: usize,
}

/// Words of a list of `cap` elements of at most `elem_max` bytes (`None` out of the limits).
pub(crate) fn list_words(cap: u64, elem_max: u64) -> Option<usize> {
    if cap == 0 || cap > LIST_CAPACITY_LIMIT || elem_max > super::VALUE_MAX_LIMIT {
        return None;
    }
    let slot = COPIES + 2 * (1 + words_for(elem_max as usize));
    let n = SLOTS.checked_add((cap as usize).checked_mul(slot)?)?;
    n.checked_mul(8).filter(|&b| b <= isize::MAX as usize)?;
    Some(n)
}

/// The error for bad list dimensions.
pub(crate) fn bad_list(cap: u64) -> Error {
    Error::InvalidCapacity {
        requested: cap,
        reason: "a list holds 1 to 2^31 - 1 elements of at most 16 MiB",
    }
}

/// Writes a fresh list of `cap` elements of at most `elem_max` bytes into `words` (arbitrary
/// bytes; `words.len() == list_words(cap, elem_max)`).
pub(crate) fn list_init(words: &[AtomicU64], cap: u64, elem_max: u64) {
    for w in words {
        w.store(0, Ordering::Relaxed);
    }
    words[H_CAP].store(cap, Ordering::Relaxed);
    words[H_ELEM].store(elem_max, Ordering::Relaxed);
    words[0].store(LIST_TAG, Ordering::Release);
}

impl RawList {
    /// A list on the heap.
    pub(crate) fn new_boxed(cap: u64, elem_max: u64) -> Result<Box<RawList>> {
        let n = list_words(cap, elem_max).ok_or_else(|| bad_list(cap))?;
        let words = super::heap_words(n);
        list_init(&words, cap, elem_max);
        // SAFETY: RawList is #[repr(C)] with a single `[AtomicU64]` field: the same layout and
        // metadata as the boxed slice, from the global allocator.
        Ok(unsafe { Box::from_raw(Box::into_raw(words) as *mut RawList) })
    }

    /// The raw words (unit tests scribble on them).
    #[cfg(test)]
    #[cfg_attr(feature = "loom", allow(dead_code))]
    pub(crate) fn words_for_tests(&self) -> &[AtomicU64] {
        &self.words
    }

    /// The validated view.
    #[inline]
    pub(crate) fn view(&self) -> Result<View<'_>> {
        let w = &self.words;
        let h = |i: usize| w.get(i).map_or(0, |x| x.load(Ordering::Relaxed));
        let (tag, cap, elem) = (h(0), h(H_CAP), h(H_ELEM));
        if tag != LIST_TAG || list_words(cap, elem) != Some(w.len()) {
            return Err(corrupted(
                "list",
                format!("header (tag {tag:#x}, capacity {cap}, elem_max {elem}) does not match the {} words mapped", w.len()),
            ));
        }
        let copy = 1 + words_for(elem as usize);
        Ok(View {
            w,
            cap: cap as usize,
            elem_max: elem as usize,
            copy,
            slot: COPIES + 2 * copy,
        })
    }
}

impl<'a> View<'a> {
    pub(super) fn slot(&self, i: usize) -> &'a [AtomicU64] {
        let at = SLOTS + i * self.slot;
        &self.w[at..at + self.slot]
    }

    pub(super) fn latch(&self, i: usize) -> Rotation<'a> {
        let s = self.slot(i);
        Rotation::new(&s[VERSION], &s[COPIES..], 2, self.copy, self.copy)
    }

    pub(super) fn reserved(&self) -> &'a AtomicU64 {
        &self.w[RESERVED]
    }

    pub(super) fn published(&self) -> &'a AtomicU64 {
        &self.w[PUBLISHED]
    }

    /// The published length (clamped to the capacity).
    pub(super) fn plen(word: u64, cap: usize) -> usize {
        ((word & 0xffff_ffff) as usize).min(cap)
    }

    /// Writes `elem` as slot `i`'s next latch version (resynchronized first: the last writer
    /// may have been a process that died).
    fn write_elem(&self, i: usize, elem: &[u8]) {
        let latch = self.latch(i);
        latch.resync();
        latch.write(|_, _, next| {
            next[0].store(elem.len() as u64, Ordering::Relaxed);
            store_bytes(&next[1..], elem);
        });
    }

    /// Reads element `i` through `f(words, len)`: `None` when `i` is past the published length
    /// or the slot holds no element (a hole, or popped meanwhile).
    pub(crate) fn read<R>(
        &self,
        i: usize,
        mut f: impl FnMut(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        if i >= self.cap {
            return Ok(None);
        }
        let mut p = Self::plen(self.published().load(Ordering::Acquire), self.cap);
        if i >= p {
            p = self.advance();
            if i >= p {
                return Ok(None);
            }
        }
        if self.slot(i)[STATE].load(Ordering::Acquire) != FULL {
            return Ok(None);
        }
        let latch = self.latch(i);
        let mut spin = Spin::new();
        for _ in 0..super::read::MAX_RESTARTS {
            let elem_max = self.elem_max;
            if let Some((r, _)) = latch.try_read(|c| {
                let n = (c[0].load(Ordering::Relaxed) as usize).min(elem_max);
                f(&c[1..], n)
            }) {
                return Ok(Some(r));
            }
            spin.snooze();
        }
        Err(corrupted(
            "list",
            "an element kept changing while it was read",
        ))
    }

    /// The published length after advancing it over every written slot (and over slots of dead
    /// pushers, which become holes). Never waits for a live pusher, nor sleeps.
    pub(crate) fn advance(&self) -> usize {
        self.advance_as(true)
    }

    /// [`advance`](Self::advance); with `gaps: false` it leaves slots empty below `reserved`
    /// alone (pushers, and callers that hold the lock).
    fn advance_as(&self, gaps: bool) -> usize {
        loop {
            let pw = self.published().load(Ordering::Acquire);
            let p = Self::plen(pw, self.cap);
            let rw = self.reserved().load(Ordering::Acquire);
            if rw & FROZEN != 0 || p >= idx(rw).min(self.cap) {
                return p;
            }
            let state = &self.slot(p)[STATE];
            let st = state.load(Ordering::Acquire);
            if st == FULL || st & (1 << 63) != 0 {
                let _ = self.published().compare_exchange(
                    pw,
                    pw.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                continue;
            }
            // A push in flight: give it a moment before judging.
            let mut spin = Spin::new();
            for _ in 0..8 {
                spin.snooze();
                if state.load(Ordering::Acquire) != st {
                    break;
                }
            }
            if state.load(Ordering::Acquire) != st {
                continue;
            }
            if st != 0 {
                if process::word_alive(st) {
                    return p; // a live pusher is writing it
                }
                let _ = state.compare_exchange(st, HOLE, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            // Empty below `reserved`: a pusher between its reservation and its claim.
            if cfg!(feature = "loom") || !gaps || !self.gap_expired(p) || !self.fill_gap(p) {
                return p;
            }
        }
    }

    /// Whether slot `p`, empty below `reserved`, was first seen so [`GRACE`] ago or more (and
    /// records the first sighting when it is new).
    fn gap_expired(&self, p: usize) -> bool {
        let gap = &self.w[GAP];
        let g = gap.load(Ordering::Acquire);
        let now = now_ms();
        if g >> 32 != p as u64 + 1 {
            let _ = gap.compare_exchange(
                g,
                (p as u64 + 1) << 32 | now as u64,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
            return false;
        }
        u128::from(now.wrapping_sub(g as u32)) >= GRACE.as_millis()
    }

    /// Marks slot `p` (empty below `reserved` for [`GRACE`]) a hole under the lock, taken
    /// without waiting (so that no pop or clear can empty and reuse the slot meanwhile).
    /// Returns whether it did.
    #[cold]
    fn fill_gap(&self, p: usize) -> bool {
        let Ok(_g) = self.lock(Some(Duration::ZERO), Ctl::me()) else {
            return false;
        };
        let rw = self.reserved().load(Ordering::Acquire);
        if rw & FROZEN != 0 || p >= idx(rw).min(self.cap) {
            return false;
        }
        let done = self.slot(p)[STATE]
            .compare_exchange(0, HOLE, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        self.w[GAP].store(0, Ordering::Release);
        done
    }

    /// Appends `elem`; returns its index.
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::ListFull`]; [`Error::Timeout`] when a pop or clear held
    /// the list past `timeout`.
    pub(crate) fn push(&self, elem: &[u8], timeout: Option<Duration>, ctl: Ctl) -> Result<usize> {
        self.check_len(elem)?;
        let me = ctl.me;
        let mut spin = Spin::new();
        loop {
            let rw = self.reserved().load(Ordering::Acquire);
            if rw & FROZEN != 0 {
                // A pop or clear runs: wait for it by taking its lock (which repairs it if its
                // holder died). Holding the lock, a freeze still there is stale: undo it.
                let g = self.lock(timeout, Ctl::me())?;
                let _ = self.reserved().compare_exchange(
                    rw,
                    rw & !FROZEN,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                drop(g);
                continue;
            }
            let r = idx(rw);
            if r >= self.cap {
                self.advance_as(false);
                return Err(Error::ListFull {
                    capacity: self.cap as u64,
                });
            }
            if self
                .reserved()
                .compare_exchange(rw, rw + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                spin.snooze();
                continue;
            }
            ctl.point("list.push.reserved")?;
            let state = &self.slot(r)[STATE];
            if state
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                continue; // we stalled past GRACE and the slot became a hole: take another
            }
            if (self.reserved().load(Ordering::Acquire) ^ rw) & EPOCHS != 0 {
                // A pop made our slot a hole and emptied it meanwhile (it bumps the epoch
                // before emptying): the slot is not ours any more.
                let _ = state.compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
                continue;
            }
            ctl.point("list.push.claimed")?;
            self.write_elem(r, elem);
            ctl.point("list.push.written")?;
            state.store(FULL, Ordering::Release);
            self.advance_as(false);
            return Ok(r);
        }
    }

    fn check_len(&self, elem: &[u8]) -> Result<()> {
        super::fits("element", elem.len(), self.elem_max)
    }

    /// Takes the list lock (repairing a dead holder's pop or clear).
    pub(super) fn lock(&self, timeout: Option<Duration>, ctl: Ctl) -> Result<ListLock<'a>> {
        let (deadline, waited) = claim::deadline_of(timeout);
        let dead = claim::acquire(&self.w[LOCK], ctl.me, deadline, "the list lock", waited)?;
        let g = ListLock { v: *self, ctl };
        if dead.is_some() {
            g.repair();
        }
        Ok(g)
    }

    /// Replaces element `i` (fills a hole).
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::IndexOutOfBounds`] past the length; [`Error::Timeout`].
    pub(crate) fn set(&self, i: usize, elem: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.check_len(elem)?;
        let g = self.lock(timeout, Ctl::me())?;
        let len = self.advance_as(false);
        if i >= len {
            return Err(Error::IndexOutOfBounds { index: i, len });
        }
        self.w[WORK].store(SET << 62 | i as u64, Ordering::Relaxed);
        self.write_elem(i, elem);
        crate::hooks::at("list.set.written");
        self.slot(i)[STATE].store(FULL, Ordering::Release);
        self.w[WORK].store(0, Ordering::Relaxed);
        drop(g);
        Ok(())
    }

    /// Removes the last element (and any holes after it) and returns what `f` read of it; `None`
    /// for an empty list.
    ///
    /// # Errors
    /// [`Error::Timeout`] when a push in flight or the lock held past `timeout` (nothing was
    /// removed).
    pub(crate) fn pop<R>(
        &self,
        timeout: Option<Duration>,
        ctl: Ctl,
        f: impl FnOnce(&[AtomicU64], usize) -> R,
    ) -> Result<Option<R>> {
        let g = self.lock(timeout, ctl)?;
        let res = (|| {
            let r = g.freeze_and_settle(timeout)?;
            let mut k = r;
            while k > 0 && self.slot(k - 1)[STATE].load(Ordering::Acquire) != FULL {
                k -= 1;
            }
            let out = (k > 0).then(|| {
                let c = self.latch(k - 1).current();
                f(
                    &c[1..],
                    (c[0].load(Ordering::Relaxed) as usize).min(self.elem_max),
                )
            });
            g.shrink(POP, k.saturating_sub(1), r)?;
            Ok(out)
        })();
        g.keep_if_abandoned(&res);
        res
    }

    /// Removes every element.
    ///
    /// # Errors
    /// [`Error::Timeout`] as [`pop`](Self::pop).
    pub(crate) fn clear(&self, timeout: Option<Duration>, ctl: Ctl) -> Result<()> {
        let g = self.lock(timeout, ctl)?;
        let res = g
            .freeze_and_settle(timeout)
            .and_then(|r| g.shrink(CLEAR, 0, r));
        g.keep_if_abandoned(&res);
        res
    }

    /// Number of holes among the published elements (a scan).
    pub(crate) fn holes(&self) -> usize {
        let p = self.advance();
        (0..p)
            .filter(|&i| self.slot(i)[STATE].load(Ordering::Relaxed) != FULL)
            .count()
    }

    /// `reserved` and `published` as stored (for inspection).
    pub(crate) fn positions(&self) -> (u64, u64) {
        (
            self.reserved().load(Ordering::Relaxed),
            self.published().load(Ordering::Relaxed),
        )
    }
}

#[cfg(not(feature = "loom"))]
pub(crate) mod object {
    use super::*;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    /// The words of a list with tag `tag` (`len` = capacity, `extra` = version · elem_max).
    pub(crate) fn words_of_tag(tag: &crate::object::TypeTag) -> Option<usize> {
        if tag.extra >> 56 != LAYOUT_VERSION {
            return None;
        }
        list_words(tag.len, tag.extra & 0xffff_ffff)
    }

    pub(crate) fn extra(elem_max: u64) -> u64 {
        LAYOUT_VERSION << 56 | elem_max
    }

    pub(crate) fn layout(tag: &crate::object::TypeTag) -> Option<Layout> {
        Layout::array::<AtomicU64>(words_of_tag(tag)?)
            .ok()?
            .align_to(128)
            .ok()
    }

    /// # Safety
    /// As [`crate::Object::init`].
    pub(crate) unsafe fn init(ptr: NonNull<u8>, tag: &crate::object::TypeTag) {
        let n = words_of_tag(tag).unwrap_or(0);
        // SAFETY: the caller's contract: `n` aligned words at `ptr`; AtomicU64 is valid for
        // every bit pattern.
        let words = unsafe { core::slice::from_raw_parts(ptr.as_ptr().cast::<AtomicU64>(), n) };
        if n != 0 {
            list_init(words, tag.len, tag.extra & 0xffff_ffff);
        }
    }

    pub(crate) fn cast<S: ?Sized>(
        ptr: NonNull<u8>,
        tag: &crate::object::TypeTag,
        f: fn(*mut [AtomicU64]) -> *mut S,
    ) -> NonNull<S> {
        let n = words_of_tag(tag).unwrap_or(0);
        let raw = f(core::ptr::slice_from_raw_parts_mut(
            ptr.as_ptr().cast::<AtomicU64>(),
            n,
        ));
        // SAFETY: `raw` has the address of `ptr`, which is non-null.
        unsafe { NonNull::new_unchecked(raw) }
    }
}
