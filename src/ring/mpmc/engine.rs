//! The MPMC engine: slot state words, one push or pop attempt, the wait around it, and the
//! position hints (see the [module docs](super) for the algorithm). The process registry that
//! names the claimers is in [`registry`](super::registry).

use super::registry::{Blocker, Line, MpmcMeta, SHARED_LINE};
use crate::ring::head::RingHead;
use crate::ring::wait::{block, wake, Look, Sleeper};
use crate::ring::MAX_CAPACITY;
use crate::sync::asym::{heavy_barrier, light_barrier, LightBarrier};
use crate::sync::{AtomicU64, Deadline, Ordering};
use std::time::Duration;

/// Slot states (bits 30..=31 of a state word), written when a position is finished: `FULL` (its
/// item is published) or `SKIP` (its push was given up or reaped). The lap field of a slot's
/// word is the lap of the last position finished in it, plus one (0: none yet).
pub(crate) const FULL: u64 = 2;
pub(crate) const SKIP: u64 = 1;
/// Loop iterations after which a push or pop gives up with `Corrupted`: legitimately a call
/// moves past at most a few positions that others took meanwhile.
#[cfg(not(feature = "loom"))]
const ITER_LIMIT: u32 = 1 << 16;
#[cfg(feature = "loom")]
const ITER_LIMIT: u32 = 16;
/// Re-reads of a position that does not move after finding a word that fits no state of it
/// (a stale read does so once or twice) before giving up with `Corrupted`.
const STALE_LIMIT: u32 = 64;

/// After `pos` turned out to be taken already: the position `word` read again (a spin hint
/// first when it has not moved); `None` once it stayed at `pos` more than [`STALE_LIMIT`]
/// times (only scribbled words do that).
#[inline]
fn moved_on(word: &AtomicU64, pos: u64, stale: &mut u32) -> Option<u64> {
    let now = word.load(Ordering::Relaxed);
    if now == pos {
        *stale += 1;
        if *stale > STALE_LIMIT {
            return None;
        }
        crate::sync::spin_hint();
    }
    Some(now)
}

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

/// What a producer that found the slot at the tail still in use does next.
enum Full {
    /// Wait (full); `Some` with the unfinished push in the way.
    Wait(Option<Blocker>),
    /// Something moved: look again.
    Again,
    /// The tail read is stale (or the positions are scribbled): reread it.
    Stale,
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
    /// Inlined, so that a typed ring's constant stride makes the capacity a shift, not a
    /// division, on every push and pop.
    #[inline]
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
    ///
    /// The common case (this thread's own line, a head seen less than a lap behind the tail, an
    /// uncontended CAS) is inlined straight through: announce, take, write, publish. Everything
    /// else (the shared line, a full ring, a lost CAS) goes through [`push_at`](Self::push_at).
    #[inline]
    pub(crate) fn try_push_with(
        &self,
        me: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        if self.h.ctl.closed.load(Ordering::Relaxed) != 0 {
            return Err(Stop::Closed);
        }
        let line = match self.m.lines.get(me as usize) {
            Some(line) if me != SHARED_LINE && self.cap != 0 => line,
            _ => return self.push_shared(me, write),
        };
        let tail = &self.h.tail;
        let mut pos = tail.load(Ordering::Relaxed);
        // The first pass of `push_at`'s loop, for a slot known free from the head this thread
        // saw last (see there).
        if pos.wrapping_sub(line.seen_head()) < self.cap {
            match self.take(line, pos) {
                Ok(()) => return self.publish(pos, write),
                Err(now) => pos = now,
            }
        }
        self.push_at(line, pos, write)
    }

    /// Announces `pos` in `line`, then takes it with the one contended RMW on the tail; on a
    /// lost CAS withdraws the announcement and returns the tail now. Release on the CAS:
    /// whoever sees the tail past `pos` (Acquire) sees the announcement.
    #[inline(always)]
    fn take(&self, line: &Line, pos: u64) -> core::result::Result<(), u64> {
        line.announce(pos);
        crate::hooks::at("mpmc.push.announced");
        match self.h.tail.compare_exchange(
            pos,
            pos.wrapping_add(1),
            Ordering::AcqRel,
            Ordering::Relaxed,
        ) {
            Ok(_) => Ok(()),
            Err(now) => {
                line.withdraw();
                Err(now)
            }
        }
    }

    /// [`try_push_with`](Self::try_push_with) through the shared line (`me` is
    /// [`SHARED_LINE`]), or on a ring of no slots.
    #[cold]
    #[inline(never)]
    fn push_shared(
        &self,
        me: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
        let Some(line) = self.enter(me) else {
            return Err(Stop::Wait(None));
        };
        let r = self.push_at(line, self.h.tail.load(Ordering::Relaxed), write);
        self.leave(me);
        r
    }

    /// The push loop: takes the position at the tail, `pos` as last read, through `line`
    /// (moving on past positions others took, reading the head when the tail looks a lap ahead
    /// of it), then publishes.
    #[inline(never)]
    fn push_at(
        &self,
        line: &Line,
        mut pos: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        let tail = &self.h.tail;
        // A head this thread saw (a lower bound of the head): while the tail is less than a lap
        // ahead of it the slot at the tail is free, and the head, which every pop writes, is
        // not read at all.
        let mut seen = line.seen_head();
        let mut stale = 0u32;
        for _ in 0..ITER_LIMIT {
            if pos.wrapping_sub(seen) >= self.cap {
                // Acquire: the consumers of every position before `h` have copied their items
                // (each copies before its CAS), so the slot may be overwritten.
                let h = self.h.head.load(Ordering::Acquire);
                if h != seen {
                    seen = h;
                    line.set_seen_head(h);
                    if pos.wrapping_sub(seen) < self.cap {
                        continue;
                    }
                }
                match self.full_at(pos, h) {
                    Full::Wait(b) => return Err(Stop::Wait(b)),
                    Full::Again => {}
                    Full::Stale => match moved_on(tail, pos, &mut stale) {
                        Some(now) => pos = now,
                        None => break,
                    },
                }
                continue;
            }
            match self.take(line, pos) {
                Ok(()) => return self.publish(pos, write),
                Err(now) => pos = now,
            }
        }
        Err(Stop::Corrupted)
    }

    /// Fills and publishes push position `pos`, just taken by this thread (or gives it up if
    /// the ring was closed meanwhile).
    #[inline(always)]
    fn publish(
        &self,
        pos: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        // A producer killed from here to the publish leaves a taken, unpublished position:
        // consumers (or producers a lap later) reap it.
        crate::hooks::at("mpmc.push.claimed");
        let c = &self.h.ctl;
        let (sw, item) = self.slot(pos);
        let done = self.lap(pos).wrapping_add(1);
        let barrier = LightBarrier::get();
        // Pairs with the heavy barrier of a consumer confirming that the ring is closed:
        // either it sees the tail past `pos` and waits for it, or we see the flag here and
        // give the position up (see the guide, "Close").
        barrier.issue();
        if c.closed.load(Ordering::Relaxed) != 0 {
            sw.store(state_word(done, SKIP), Ordering::Release);
            wake(&c.items);
            return Err(Stop::Closed);
        }
        write(item);
        crate::hooks::at("mpmc.push.written");
        sw.store(state_word(done, FULL), Ordering::Release);
        // Pairs with the heavy barrier of a sleeping consumer (no lost wake-up).
        barrier.issue();
        if c.items_waiting.load(Ordering::Relaxed) != 0 {
            wake(&c.items);
        }
        Ok(())
    }

    /// The slot at tail `pos` looks taken by position `pos - cap`: the head `h` is not past it.
    #[cold]
    fn full_at(&self, pos: u64, h: u64) -> Full {
        let q = pos.wrapping_sub(self.cap);
        if h != q {
            // The head passed `pos` (our tail is stale), or is more than a lap behind it (which
            // no pop or push makes: scribbled positions).
            return Full::Stale;
        }
        let (sw, _) = self.slot(q);
        let s = sw.load(Ordering::Acquire);
        let lq = self.lap(q);
        let d = lap_of(s).wrapping_sub(lq) as i32;
        match (d, state_of(s)) {
            // Published and not popped yet: full.
            (1, FULL) => Full::Wait(None),
            // Skipped, and no consumer moved the head past it yet: help it.
            (1, SKIP) => {
                let _ = self.h.head.compare_exchange(
                    q,
                    q.wrapping_add(1),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                Full::Again
            }
            // Taken (the tail is past it) and not published: in the way.
            (0, _) => Full::Wait(Some(Blocker { pos: q, word: s })),
            _ => Full::Stale,
        }
    }

    /// One pop attempt: copies the item at the head with `read`, then takes its position (the
    /// copy is made before the CAS, so a taken position is finished: nothing for producers to
    /// wait on, and the slot is not written).
    #[inline]
    pub(crate) fn try_pop_with<R>(
        &self,
        mut read: impl FnMut(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
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
                (1, FULL) => {
                    // Copy, then take. If the CAS succeeds nobody took `pos` before us, so no
                    // producer a lap later wrote the slot while we copied (it waits for the head
                    // to pass `pos`); if it fails the copy is dropped.
                    let v = read(item);
                    crate::hooks::at("mpmc.pop.read");
                    if let Err(now) = head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    ) {
                        pos = now;
                        continue;
                    }
                    crate::hooks::at("mpmc.pop.taken");
                    // Pairs with the heavy barrier of a sleeping producer (no lost wake-up).
                    light_barrier();
                    if c.space_waiting.load(Ordering::Relaxed) != 0 {
                        wake(&c.space);
                    }
                    return Ok(v);
                }
                // A skipped push (given up, or reaped): help the head past it.
                (1, SKIP) => {
                    let _ = head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                    pos = head.load(Ordering::Relaxed);
                }
                (0, _) => {
                    // Nothing published at `pos`: empty, or a producer took it and is writing.
                    // The tail tells which; it is read only on a closed ring and by the reaper,
                    // so polling an empty ring reads no line that producers write but the slot.
                    let blocker = Blocker { pos, word: s };
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
                // `pos` was popped meanwhile (a stale head), or a scribbled word.
                _ => match moved_on(head, pos, &mut stale) {
                    Some(now) => pos = now,
                    None => break,
                },
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
        mut read: impl FnMut(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        let c = &self.h.ctl;
        self.wait_loop(timeout, Sleeper::many(&c.items_waiting, &c.items), || {
            self.try_pop_with(&mut read)
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
