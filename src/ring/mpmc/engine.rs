//! The MPMC engine: slot state words, one push or pop attempt, the wait around it, and the
//! position hints (see the [module docs](super) for the algorithm). The process registry that
//! names the claimers is in [`registry`](super::registry).

use super::registry::{Blocker, Line, MpmcMeta};
use crate::ring::head::RingHead;
use crate::ring::wait::{block, wake, Look, Sleeper};
use crate::ring::MAX_CAPACITY;
use crate::sync::asym::{heavy_barrier, light_barrier};
use crate::sync::{AtomicU64, Deadline, Ordering};
use std::time::Duration;

/// Slot states (bits 30..=31 of a state word; 1 and 3 were the claim states of layout 1).
pub(crate) const EMPTY: u64 = 0;
pub(crate) const FULL: u64 = 2;
/// Loop iterations after which a push or pop gives up with `Corrupted`: legitimately a call
/// moves past at most a few positions that others took meanwhile.
#[cfg(not(feature = "loom"))]
const ITER_LIMIT: u32 = 1 << 16;
#[cfg(feature = "loom")]
const ITER_LIMIT: u32 = 16;
/// Re-reads of a position that does not move after finding a word that fits no state of it
/// (a stale read does so once or twice) before giving up with `Corrupted`.
const STALE_LIMIT: u32 = 64;

#[inline]
pub(crate) const fn state_word(lap: u32, state: u64) -> u64 {
    ((lap as u64) << 32) | (state << 30)
}
#[inline]
pub(crate) const fn lap_of(w: u64) -> u32 {
    (w >> 32) as u32
}
#[inline]
pub(crate) const fn state_of(w: u64) -> u64 {
    (w >> 30) & 3
}

/// Layout of an MPMC ring (or byte queue) with `capacity` slots of `stride` words.
pub(crate) fn mpmc_layout(capacity: u64, stride: usize) -> Option<core::alloc::Layout> {
    if !(2..=MAX_CAPACITY).contains(&capacity) || !capacity.is_power_of_two() || stride < 2 {
        return None;
    }
    let n = usize::try_from(capacity).ok()?.checked_mul(stride)?;
    let (l, _) = core::alloc::Layout::new::<RingHead>()
        .extend(core::alloc::Layout::new::<MpmcMeta>())
        .ok()?;
    let (l, _) = l
        .extend(core::alloc::Layout::array::<AtomicU64>(n).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

/// Where a push or pop attempt stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Full (push) or empty (pop); `Some(blocker)` when a position taken by someone else and
    /// not finished is in the way (a candidate for reaping), `None` when nothing is in flight
    /// (or the shared line is busy).
    Wait(Option<Blocker>),
    Closed,
    Timeout,
    Corrupted,
}

/// A borrowed view of a ring's shared parts, with its dimensions from the local handle.
pub(crate) struct Core<'a> {
    pub(crate) h: &'a RingHead,
    pub(crate) m: &'a MpmcMeta,
    pub(crate) slots: &'a [AtomicU64],
    /// Words per slot (state word + payload), at least 2.
    pub(crate) stride: usize,
    /// Slot count: a power of two with `cap * stride <= slots.len()`, or 0 (unusable).
    pub(crate) cap: u64,
}

impl<'a> Core<'a> {
    pub(crate) fn new(
        h: &'a RingHead,
        m: &'a MpmcMeta,
        slots: &'a [AtomicU64],
        stride: usize,
    ) -> Self {
        let cap = crate::ring::capacity_for(slots.len(), stride) as u64;
        Core {
            h,
            m,
            slots,
            stride,
            cap,
        }
    }

    #[inline]
    pub(super) fn lap(&self, pos: u64) -> u32 {
        (pos >> self.cap.trailing_zeros()) as u32
    }

    /// The state word and payload of slot `i` (`i < cap`, so in bounds).
    #[inline]
    pub(super) fn slot_at(&self, i: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        let s = i * self.stride;
        (&self.slots[s], &self.slots[s + 1..s + self.stride])
    }

    #[inline]
    pub(super) fn slot(&self, pos: u64) -> (&'a AtomicU64, &'a [AtomicU64]) {
        self.slot_at((pos & (self.cap - 1)) as usize)
    }

    /// One push attempt: takes the position at the tail, lets `write` fill its slot, publishes.
    pub(crate) fn try_push_with(
        &self,
        me: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        if self.h.ctl.closed.load(Ordering::Relaxed) != 0 {
            return Err(Stop::Closed);
        }
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
        let Some(line) = self.enter(me) else {
            return Err(Stop::Wait(None));
        };
        let r = self.push_at(line, write);
        self.leave(me);
        r
    }

    fn push_at(
        &self,
        line: &Line,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        let c = &self.h.ctl;
        let tail = &self.h.tail;
        let mut pos = tail.load(Ordering::Relaxed);
        let mut stale = 0u32;
        for _ in 0..ITER_LIMIT {
            let (sw, item) = self.slot(pos);
            let l = self.lap(pos);
            // Acquire: the consumer that freed the slot for this lap has finished its copy.
            let s = sw.load(Ordering::Acquire);
            let d = lap_of(s).wrapping_sub(l) as i32;
            match (d, state_of(s)) {
                (0, EMPTY) => {
                    // Announce, then take `pos` with the one contended RMW. Release on the CAS:
                    // whoever sees the tail past `pos` (Acquire) sees the announcement.
                    line.announce(false, pos);
                    crate::hooks::at("mpmc.push.announced");
                    if let Err(now) = tail.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        line.withdraw();
                        pos = now;
                        continue;
                    }
                    // A producer killed from here to the publish leaves a taken, unpublished
                    // position: consumers reap it.
                    crate::hooks::at("mpmc.push.claimed");
                    // Pairs with the heavy barrier of a consumer confirming that the ring is
                    // closed: either it sees the tail past `pos` and waits for it, or we see the
                    // flag here and give the position up (see the guide, "Close").
                    light_barrier();
                    if c.closed.load(Ordering::Relaxed) != 0 {
                        sw.store(state_word(l.wrapping_add(1), EMPTY), Ordering::Release);
                        wake(&c.items);
                        return Err(Stop::Closed);
                    }
                    write(item);
                    crate::hooks::at("mpmc.push.written");
                    sw.store(state_word(l, FULL), Ordering::Release);
                    // Pairs with the heavy barrier of a sleeping consumer (no lost wake-up).
                    light_barrier();
                    if c.items_waiting.load(Ordering::Relaxed) != 0 {
                        wake(&c.items);
                    }
                    return Ok(());
                }
                // The slot holds the item of `pos - cap`: full, unless a consumer took it and
                // is still copying it.
                (-1, FULL) => {
                    let p = pos.wrapping_sub(self.cap);
                    if self.h.head.load(Ordering::Acquire) == p {
                        return Err(Stop::Wait(None));
                    }
                    let now = tail.load(Ordering::Relaxed);
                    if now != pos {
                        pos = now;
                        continue;
                    }
                    return Err(Stop::Wait(Some(Blocker {
                        pos: p,
                        word: s,
                        pop: true,
                    })));
                }
                // The producer of `pos - cap` took it and has not published it: full, and that
                // position is in the way.
                (-1, EMPTY) => {
                    let now = tail.load(Ordering::Relaxed);
                    if now != pos {
                        pos = now;
                        continue;
                    }
                    let p = pos.wrapping_sub(self.cap);
                    return Err(Stop::Wait(Some(Blocker {
                        pos: p,
                        word: s,
                        pop: false,
                    })));
                }
                // `pos` was taken meanwhile (a stale tail), or a scribbled word.
                _ => {
                    let now = tail.load(Ordering::Relaxed);
                    if now == pos {
                        stale += 1;
                        if stale > STALE_LIMIT {
                            break;
                        }
                        crate::sync::spin_hint();
                    }
                    pos = now;
                }
            }
        }
        Err(Stop::Corrupted)
    }

    /// One pop attempt: takes the position at the head, lets `read` copy its item, frees the slot.
    pub(crate) fn try_pop_with<R>(
        &self,
        me: u64,
        read: impl FnOnce(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
        let Some(line) = self.enter(me) else {
            return Err(Stop::Wait(None));
        };
        let r = self.pop_at(line, read);
        self.leave(me);
        r
    }

    fn pop_at<R>(
        &self,
        line: &Line,
        read: impl FnOnce(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        let c = &self.h.ctl;
        let head = &self.h.head;
        let mut pos = head.load(Ordering::Relaxed);
        let mut stale = 0u32;
        for _ in 0..ITER_LIMIT {
            let (sw, item) = self.slot(pos);
            let l = self.lap(pos);
            // Acquire: the producer's item is complete.
            let s = sw.load(Ordering::Acquire);
            let d = lap_of(s).wrapping_sub(l) as i32;
            match (d, state_of(s)) {
                (0, FULL) => {
                    line.announce(true, pos);
                    crate::hooks::at("mpmc.pop.announced");
                    if let Err(now) = head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        line.withdraw();
                        pos = now;
                        continue;
                    }
                    // A consumer killed from here to the free leaves a taken slot: producers
                    // reap it one lap later.
                    crate::hooks::at("mpmc.pop.claimed");
                    let v = read(item);
                    crate::hooks::at("mpmc.pop.read");
                    sw.store(state_word(l.wrapping_add(1), EMPTY), Ordering::Release);
                    light_barrier();
                    if c.space_waiting.load(Ordering::Relaxed) != 0 {
                        wake(&c.space);
                    }
                    return Ok(v);
                }
                (0, EMPTY) => {
                    // Nothing published at `pos`: empty, or a producer took it and is writing.
                    // The tail tells which; it is read only on a closed ring and by the reaper,
                    // so polling an empty ring reads no line that producers write but the slot.
                    let blocker = Blocker {
                        pos,
                        word: s,
                        pop: false,
                    };
                    // On a closed ring, confirm that no producer took `pos` behind our back
                    // (see the guide, "Close") before saying so.
                    if c.closed.load(Ordering::Acquire) != 0 {
                        c.closed.fetch_or(0, Ordering::AcqRel);
                        if !heavy_barrier() {
                            // Cannot confirm (the membarrier failed): report empty, retry later.
                            return Err(Stop::Wait(None));
                        }
                        if sw.load(Ordering::Acquire) != s {
                            continue;
                        }
                        let t = self.h.tail.load(Ordering::Acquire);
                        if t == pos {
                            return Err(Stop::Closed);
                        }
                        if t.wrapping_sub(pos) as i64 > 0 {
                            // Taken: its producer publishes it or gives it up (or is reaped).
                            return Err(Stop::Wait(Some(blocker)));
                        }
                        // A tail behind the head: a stale read, or scribbled positions.
                        stale += 1;
                        if stale > STALE_LIMIT {
                            break;
                        }
                        pos = head.load(Ordering::Relaxed);
                        continue;
                    }
                    return Err(Stop::Wait(Some(blocker)));
                }
                // A consumer still copies the item of `pos - cap`: nothing was pushed at `pos`
                // yet (producers wait for that slot, and reap it if its consumer died).
                (-1, FULL) => {
                    let now = head.load(Ordering::Relaxed);
                    if now != pos {
                        pos = now;
                        continue;
                    }
                    return Err(Stop::Wait(None));
                }
                // `pos` is finished (lap + 1): popped (a stale head) or skipped (a reaped or
                // given-up push, which nobody popped): help the head past it.
                (1, _) => {
                    let _ = head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    pos = head.load(Ordering::Relaxed);
                }
                // A stale head, or a scribbled word.
                _ => {
                    let now = head.load(Ordering::Relaxed);
                    if now == pos {
                        stale += 1;
                        if stale > STALE_LIMIT {
                            break;
                        }
                        crate::sync::spin_hint();
                    }
                    pos = now;
                }
            }
        }
        Err(Stop::Corrupted)
    }

    /// Runs `attempt` until it stops waiting, through the ring family's wait loop: spins, then
    /// sleeps on the futex of `at`; once per recheck period it reaps the slot in the way if
    /// its owner died.
    pub(crate) fn wait_loop<R>(
        &self,
        timeout: Option<Duration>,
        at: Sleeper<'_>,
        mut attempt: impl FnMut() -> core::result::Result<R, Stop>,
    ) -> core::result::Result<R, Stop> {
        block(at, Deadline::after(timeout), |due| match attempt() {
            Err(Stop::Wait(Some(b))) if due && self.reap_if_dead(b) => Look::Again,
            Err(Stop::Wait(_)) => Look::Wait,
            other => Look::Ready(other),
        })
        .unwrap_or(Err(Stop::Timeout))
    }

    pub(crate) fn push_with(
        &self,
        timeout: Option<Duration>,
        write: impl Fn(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        let me = self.me();
        let c = &self.h.ctl;
        self.wait_loop(timeout, Sleeper::many(&c.space_waiting, &c.space), || {
            self.try_push_with(me, &write)
        })
    }

    pub(crate) fn pop_with<R>(
        &self,
        timeout: Option<Duration>,
        read: impl Fn(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        let me = self.me();
        let c = &self.h.ctl;
        self.wait_loop(timeout, Sleeper::many(&c.items_waiting, &c.items), || {
            self.try_pop_with(me, &read)
        })
    }

    pub(crate) fn close(&self) {
        self.h.close();
    }

    pub(crate) fn positions(&self) -> (u64, u64) {
        self.h.positions()
    }

    pub(crate) fn len(&self) -> usize {
        let (h, t) = self.positions();
        if h > t {
            return 0;
        }
        (t - h).min(self.cap) as usize
    }
}
