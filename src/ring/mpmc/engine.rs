//! The MPMC engine: slot state words, one push or pop attempt, the wait around it, and the
//! position hints (see the [module docs](super) for the algorithm). The process registry that
//! names the claimers is in [`registry`](super::registry).

use super::registry::MpmcMeta;
use crate::ring::head::RingHead;
use crate::ring::wait::{block, wake, Look, Sleeper};
use crate::ring::MAX_CAPACITY;
use crate::sync::asym::{heavy_barrier, light_barrier};
use crate::sync::{AtomicU64, Deadline, Ordering};
use std::time::Duration;

/// Slot states (bits 30..=31 of a state word).
pub(crate) const EMPTY: u64 = 0;
pub(crate) const WRITING: u64 = 1;
pub(crate) const FULL: u64 = 2;
pub(crate) const READING: u64 = 3;
/// Owner field of a claim made by a process that found no free registry entry.
pub(crate) const NO_OWNER: u64 = (1 << 30) - 1;
/// Loop iterations after which a push or pop gives up with `Corrupted`: legitimately a call
/// moves past at most a few positions that others claimed meanwhile.
#[cfg(not(feature = "loom"))]
const ITER_LIMIT: u32 = 1 << 16;
#[cfg(feature = "loom")]
const ITER_LIMIT: u32 = 16;
/// Re-reads of the hint after finding a word that fits no state of the position (a stale hint
/// does so once or twice) before giving up with `Corrupted`.
const STALE_LIMIT: u32 = 64;

#[inline]
pub(crate) const fn state_word(lap: u32, state: u64, owner: u64) -> u64 {
    ((lap as u64) << 32) | (state << 30) | (owner & NO_OWNER)
}
#[inline]
pub(crate) const fn lap_of(w: u64) -> u32 {
    (w >> 32) as u32
}
#[inline]
pub(crate) const fn state_of(w: u64) -> u64 {
    (w >> 30) & 3
}
#[inline]
pub(crate) const fn owner_of(w: u64) -> u64 {
    w & NO_OWNER
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
    /// Full (push) or empty (pop); `Some((slot, word))` when an in-flight slot of another
    /// process is in the way (a candidate for reaping), `None` when nothing is in flight.
    Wait(Option<(usize, u64)>),
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
    fn lap(&self, pos: u64) -> u32 {
        (pos >> self.cap.trailing_zeros()) as u32
    }

    /// The state word and payload of slot `i` (`i < cap`, so in bounds).
    #[inline]
    pub(super) fn slot_at(&self, i: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        let s = i * self.stride;
        (&self.slots[s], &self.slots[s + 1..s + self.stride])
    }

    #[inline]
    fn slot(&self, pos: u64) -> (&'a AtomicU64, &'a [AtomicU64]) {
        self.slot_at((pos & (self.cap - 1)) as usize)
    }

    /// One push attempt: claims the slot at the tail, lets `write` fill its payload, publishes.
    pub(crate) fn try_push_with(
        &self,
        me: u64,
        write: impl FnOnce(&[AtomicU64]),
    ) -> core::result::Result<(), Stop> {
        let c = &self.h.ctl;
        if c.closed.load(Ordering::Relaxed) != 0 {
            return Err(Stop::Closed);
        }
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
        let mut pos = self.h.tail.load(Ordering::Relaxed);
        let mut stale = 0u32;
        for _ in 0..ITER_LIMIT {
            let (sw, item) = self.slot(pos);
            let l = self.lap(pos);
            let s = sw.load(Ordering::Acquire);
            let d = lap_of(s).wrapping_sub(l) as i32;
            match (d, state_of(s)) {
                (0, EMPTY) => {
                    // AcqRel: acquire the consumer's free (its copy is done), release our
                    // registry entry to whoever sees the claim and judges our liveness.
                    let claimed = state_word(l, WRITING, me);
                    if sw
                        .compare_exchange(s, claimed, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    let _ = self.h.tail.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    // A producer killed here leaves a claimed slot: consumers reap it.
                    crate::hooks::at("mpmc.push.claimed");
                    write(item);
                    let full = state_word(l, FULL, 0);
                    sw.store(full, Ordering::Release);
                    // Pairs with the heavy barrier of a sleeping consumer (no lost wake-up) and
                    // of a consumer confirming that the ring is closed (no stranded item); see
                    // `crate::sync::asym`.
                    light_barrier();
                    if c.closed.load(Ordering::Relaxed) != 0 {
                        let skip = state_word(l.wrapping_add(1), EMPTY, 0);
                        if sw
                            .compare_exchange(full, skip, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                        {
                            wake(&c.items);
                            return Err(Stop::Closed);
                        }
                    }
                    if c.items_waiting.load(Ordering::Relaxed) != 0 {
                        wake(&c.items);
                    }
                    return Ok(());
                }
                // The slot holds the previous lap's item: full at `pos`.
                (-1, FULL) => return Err(Stop::Wait(None)),
                (-1, WRITING) | (-1, READING) => {
                    return Err(Stop::Wait(Some(((pos & (self.cap - 1)) as usize, s))))
                }
                // `pos` was taken (claimed, published, being read or already consumed):
                // help the hint on and follow it.
                (0, _) | (1, _) => {
                    pos = help_on(&self.h.tail, pos);
                }
                // A stale hint or a scribbled word: start again from the hint.
                _ => {
                    stale += 1;
                    if stale > STALE_LIMIT {
                        break;
                    }
                    crate::sync::spin_hint();
                    pos = self.h.tail.load(Ordering::Relaxed);
                }
            }
        }
        Err(Stop::Corrupted)
    }

    /// One pop attempt: claims the slot at the head, lets `read` copy its payload, frees it.
    pub(crate) fn try_pop_with<R>(
        &self,
        me: u64,
        read: impl FnOnce(&[AtomicU64]) -> R,
    ) -> core::result::Result<R, Stop> {
        let c = &self.h.ctl;
        if self.cap == 0 {
            return Err(Stop::Corrupted);
        }
        let mut pos = self.h.head.load(Ordering::Relaxed);
        let mut stale = 0u32;
        for _ in 0..ITER_LIMIT {
            let (sw, item) = self.slot(pos);
            let l = self.lap(pos);
            let s = sw.load(Ordering::Acquire);
            let d = lap_of(s).wrapping_sub(l) as i32;
            match (d, state_of(s)) {
                (0, FULL) => {
                    let claimed = state_word(l, READING, me);
                    if sw
                        .compare_exchange(s, claimed, Ordering::AcqRel, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    let _ = self.h.head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    // A consumer killed here leaves a claimed slot: producers reap it.
                    crate::hooks::at("mpmc.pop.claimed");
                    let v = read(item);
                    sw.store(state_word(l.wrapping_add(1), EMPTY, 0), Ordering::Release);
                    light_barrier();
                    if c.space_waiting.load(Ordering::Relaxed) != 0 {
                        wake(&c.space);
                    }
                    return Ok(v);
                }
                (0, EMPTY) => {
                    // Nothing pushed at `pos` yet. On a closed ring, confirm that no producer
                    // published here behind our back (see the module docs) before saying so.
                    if c.closed.load(Ordering::Acquire) != 0 {
                        c.closed.fetch_or(0, Ordering::AcqRel);
                        if !heavy_barrier() {
                            // Cannot confirm (the membarrier failed): report empty, retry later.
                            return Err(Stop::Wait(None));
                        }
                        if sw.load(Ordering::Acquire) == s {
                            return Err(Stop::Closed);
                        }
                        continue;
                    }
                    return Err(Stop::Wait(None));
                }
                // A producer is writing `pos`, or a consumer still reads the previous lap.
                (0, WRITING) | (-1, READING) | (-1, WRITING) => {
                    return Err(Stop::Wait(Some(((pos & (self.cap - 1)) as usize, s))))
                }
                (0, _) | (1, _) => {
                    pos = help_on(&self.h.head, pos);
                }
                _ => {
                    stale += 1;
                    if stale > STALE_LIMIT {
                        break;
                    }
                    crate::sync::spin_hint();
                    pos = self.h.head.load(Ordering::Relaxed);
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
            Err(Stop::Wait(Some((i, s)))) if due && self.reap_if_dead(i, s) => Look::Again,
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

/// Moves the position hint `hint` past `pos` (a position found taken) unless someone did, and
/// returns where to look next: the hint if it is further ahead, else `pos + 1`.
#[inline]
fn help_on(hint: &AtomicU64, pos: u64) -> u64 {
    let next = pos.wrapping_add(1);
    let _ = hint.compare_exchange(pos, next, Ordering::Relaxed, Ordering::Relaxed);
    let h = hint.load(Ordering::Relaxed);
    if h.wrapping_sub(next) as i64 > 0 {
        h
    } else {
        next
    }
}
