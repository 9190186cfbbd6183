//! [`MpmcRing<T>`]: a bounded multi-producer multi-consumer ring, across processes, that survives
//! the death of a producer or consumer at any instruction.
//!
//! # Algorithm
//!
//! A bounded ring of slots on monotonic 64-bit positions (item `p` lives in slot
//! `p & (capacity - 1)`, in lap `p / capacity`). Each slot has one **state word** that says, in
//! one atomic value, which lap the slot is in, what is happening to it and who is doing it:
//!
//! ```text
//!  63            32 31  30 29                      0
//! +----------------+------+-------------------------+
//! |  lap (32 bits) | state| owner (registry index)  |
//! +----------------+------+-------------------------+
//!   state: EMPTY → WRITING(owner) → FULL → READING(owner) → EMPTY of the next lap
//! ```
//!
//! - A producer at position `p` claims slot `p` with one CAS `EMPTY(lap) → WRITING(lap, me)`,
//!   writes the item and publishes it with `FULL(lap)` (release).
//! - A consumer at `p` claims it with one CAS `FULL(lap) → READING(lap, me)`, copies the item and
//!   frees the slot for the next lap with `EMPTY(lap + 1)` (release).
//! - `head` and `tail` are only hints of where to start: whoever finds the slot at the hint
//!   already claimed moves the hint on with a CAS (helping). Claims therefore happen in position
//!   order, and items of one producer are popped in the order it pushed them.
//!
//! Because the claim and the claimer's identity are one CAS, **there is no instant at which a
//! slot is taken but nobody is recorded as its taker**: this is what makes process death
//! recoverable (Vyukov's queue claims with a CAS on `tail` and would leave an anonymous hole).
//!
//! # Process death
//!
//! The owner field is an index into a small **registry** of processes in the ring's header
//! (pid and start time, claimed once per process in one CAS; 128 entries). A waiter that finds
//! the slot it needs in `WRITING` or `READING` for longer than its spin phase checks the owner's
//! liveness; if the process is gone, it **reaps** the slot with a CAS to `EMPTY(lap + 1)`: a dead
//! producer's slot is skipped, a dead consumer's slot is freed. Every reaped slot adds one to
//! [`lost`](MpmcRing::lost). What can be lost is exactly the one item each killed process had in
//! flight (claimed, not yet published or not yet fully copied); every other item is delivered
//! exactly once. Only the blocking calls (`push`, `pop`, `_timeout`) judge liveness (it reads
//! `/proc`); `try_` calls report `Full`/`Empty` while a dead process's slot is in the way.
//! Registry entries of dead processes are reused; the new holder first reaps every slot the
//! dead one still held. If 128 live processes hold entries, further processes still work, but
//! their in-flight slots cannot be reaped should they die.
//!
//! # Close
//!
//! [`close`](MpmcRing::close) makes later pushes fail with `Closed`. A producer checks the flag
//! again after publishing (behind a light barrier); a consumer that finds an empty slot on a
//! closed ring confirms with a read-modify-write of the flag and a heavy barrier before it
//! reports `Closed`. The barriers pair like two `SeqCst` fences ([`crate::sync::asym`]; they are
//! `SeqCst` fences in the loom models, which check this race), so one of the two sees the other:
//! an item is either popped or handed back to its producer as `Closed(value)`, never stranded in
//! a ring that consumers have left. Sleeping and waking use the same pairing, so a push or pop
//! makes no fence and no system call while nobody sleeps.
//!
//! # Untrusted memory
//!
//! State words and positions read from shared memory are untrusted: slots are indexed with the
//! local capacity, owners are bounds-checked against the registry, and every loop is bounded, so
//! a scribbling peer causes errors, wrong values or timeouts, never an out-of-bounds access or a
//! panic.

use super::spsc::{slot_words, RingHead};
use super::wait::{block, wake, Look, Sleeper};
use super::{round_capacity, PopError, PushError, MAX_CAPACITY};
use crate::error::{Error, Result};
use crate::sync::asym::{heavy_barrier, light_barrier};
use crate::sync::{fence, AtomicU64, Deadline, Ordering};
use crate::words::{load_pod, store_pod};
use bytemuck::Pod;
use core::marker::PhantomData;
use std::time::Duration;

/// Registry entries: processes whose in-flight slots can be reaped if they die.
#[cfg(not(feature = "loom"))]
pub const REGISTRY_ENTRIES: usize = 128;
/// Registry entries (small under loom, to keep the models' state space small).
#[cfg(feature = "loom")]
pub const REGISTRY_ENTRIES: usize = 2;

/// Slot states (bits 30..=31 of a state word).
pub(super) const EMPTY: u64 = 0;
pub(super) const WRITING: u64 = 1;
pub(super) const FULL: u64 = 2;
pub(super) const READING: u64 = 3;
/// Owner field of a claim made by a process that found no free registry entry.
pub(super) const NO_OWNER: u64 = (1 << 30) - 1;
/// Marks a registry entry whose new holder is still reaping the slots of the dead previous one
/// (the owner word's flag bit, never set in an identity).
const SWEEPING: u64 = crate::process::FLAG;

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
pub(super) const fn state_word(lap: u32, state: u64, owner: u64) -> u64 {
    ((lap as u64) << 32) | (state << 30) | (owner & NO_OWNER)
}
#[inline]
pub(super) const fn lap_of(w: u64) -> u32 {
    (w >> 32) as u32
}
#[inline]
pub(super) const fn state_of(w: u64) -> u64 {
    (w >> 30) & 3
}
#[inline]
pub(super) const fn owner_of(w: u64) -> u64 {
    w & NO_OWNER
}

/// The MPMC part of the header: the lost-item count and the process registry.
#[repr(C)]
pub(super) struct MpmcMeta {
    /// Items lost with a process that died while holding their slot.
    pub(super) lost: AtomicU64,
    _reserved: [AtomicU64; 7],
    /// The owner word ([`crate::process`]) of each registered process (0: free entry).
    pub(super) registry: [AtomicU64; REGISTRY_ENTRIES],
}

#[cfg(not(feature = "loom"))]
static_assertions::const_assert_eq!(core::mem::size_of::<MpmcMeta>(), 64 + 8 * 128);

impl MpmcMeta {
    pub(super) fn fresh() -> Self {
        MpmcMeta {
            lost: AtomicU64::new(0),
            _reserved: core::array::from_fn(|_| AtomicU64::new(0)),
            registry: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Reserved word `i` (0..7) of the header: kind-specific, written once at creation.
    pub(super) fn reserved(&self, i: usize) -> &AtomicU64 {
        &self._reserved[i]
    }

    #[cfg(not(feature = "loom"))]
    pub(super) fn reset(&self) {
        self.lost.store(0, Ordering::Relaxed);
        for w in self._reserved.iter().chain(self.registry.iter()) {
            w.store(0, Ordering::Relaxed);
        }
    }
}

/// Layout of an MPMC ring (or byte queue) with `capacity` slots of `stride` words.
pub(super) fn mpmc_layout(capacity: u64, stride: usize) -> Option<core::alloc::Layout> {
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

/// Whether the registry entry `e` names a live process. An empty entry (never legitimately
/// named by a claim: claimers register first) counts as alive: liveness unknown, keep waiting.
#[cfg(not(feature = "loom"))]
fn entry_alive(e: u64) -> bool {
    e == 0 || super::wait::holder_alive(e & !SWEEPING)
}

/// The owner word a loom model writes into a registry entry to stage a dead process (no real
/// identity has it: its pid field is 0).
#[cfg(feature = "loom")]
pub const LOOM_DEAD_WORD: u64 = 1 << 32;

/// Under loom every model thread is this live process; entries naming [`LOOM_DEAD_WORD`] are
/// dead.
#[cfg(feature = "loom")]
fn entry_alive(e: u64) -> bool {
    e & !SWEEPING != LOOM_DEAD_WORD
}

/// This process's registry value.
fn my_entry() -> u64 {
    crate::process::my_word()
}

/// Where a push or pop attempt stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stop {
    /// Full (push) or empty (pop); `Some((slot, word))` when an in-flight slot of another
    /// process is in the way (a candidate for reaping), `None` when nothing is in flight.
    Wait(Option<(usize, u64)>),
    Closed,
    Timeout,
    Corrupted,
}

/// A borrowed view of a ring's shared parts, with its dimensions from the local handle.
pub(super) struct Core<'a> {
    pub(super) h: &'a RingHead,
    pub(super) m: &'a MpmcMeta,
    pub(super) slots: &'a [AtomicU64],
    /// Words per slot (state word + payload), at least 2.
    pub(super) stride: usize,
    /// Slot count: a power of two with `cap * stride <= slots.len()`, or 0 (unusable).
    pub(super) cap: u64,
}

impl<'a> Core<'a> {
    pub(super) fn new(
        h: &'a RingHead,
        m: &'a MpmcMeta,
        slots: &'a [AtomicU64],
        stride: usize,
    ) -> Self {
        let cap = super::capacity_for(slots.len(), stride) as u64;
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
    fn slot_at(&self, i: usize) -> (&'a AtomicU64, &'a [AtomicU64]) {
        let s = i * self.stride;
        (&self.slots[s], &self.slots[s + 1..s + self.stride])
    }

    #[inline]
    fn slot(&self, pos: u64) -> (&'a AtomicU64, &'a [AtomicU64]) {
        self.slot_at((pos & (self.cap - 1)) as usize)
    }

    /// This process's registry index, or [`NO_OWNER`] when the registry is full of live
    /// processes. Cached per thread (keyed by the ring's address and checked against the entry,
    /// so a remapped ring or a forked child never uses a stale index).
    pub(super) fn me(&self) -> u64 {
        let key = self.m as *const MpmcMeta as usize;
        let mine = my_entry();
        if let Some(i) = cache::get(key) {
            if self
                .m
                .registry
                .get(i as usize)
                .is_some_and(|e| e.load(Ordering::Relaxed) == mine)
            {
                return i;
            }
        }
        let i = self.register(mine);
        if i != NO_OWNER {
            cache::put(key, i);
        }
        i
    }

    #[cold]
    fn register(&self, mine: u64) -> u64 {
        let reg = &self.m.registry;
        // Another thread of this process may have registered already.
        if let Some(i) = reg.iter().position(|e| e.load(Ordering::Acquire) == mine) {
            return i as u64;
        }
        for (i, e) in reg.iter().enumerate() {
            if e.load(Ordering::Relaxed) != 0 {
                continue;
            }
            match e.compare_exchange(0, mine, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return i as u64,
                Err(now) if now == mine => return i as u64,
                Err(_) => {}
            }
        }
        // Full: take over the entry of a dead process, after reaping what it still holds.
        for (i, e) in reg.iter().enumerate() {
            let w = e.load(Ordering::Acquire);
            if w == mine {
                return i as u64;
            }
            if entry_alive(w) {
                continue;
            }
            if e.compare_exchange(w, mine | SWEEPING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                for k in 0..self.cap as usize {
                    let (sw, _) = self.slot_at(k);
                    let s = sw.load(Ordering::Acquire);
                    if owner_of(s) == i as u64 {
                        self.reap_word(sw, s);
                    }
                }
                if e.compare_exchange(mine | SWEEPING, mine, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
                {
                    return i as u64;
                }
                // We were judged dead meanwhile (cannot happen while we run): give up on it.
            }
        }
        NO_OWNER
    }

    /// Turns an in-flight slot word `s` (WRITING or READING of a dead owner) into `EMPTY` of the
    /// next lap, counting the item as lost. `true` if the slot changed (reaped here or by
    /// someone else), so the caller should look again.
    fn reap_word(&self, sw: &AtomicU64, s: u64) -> bool {
        let st = state_of(s);
        if st != WRITING && st != READING {
            return false;
        }
        let next = state_word(lap_of(s).wrapping_add(1), EMPTY, 0);
        match sw.compare_exchange(s, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => {
                self.m.lost.fetch_add(1, Ordering::Relaxed);
                wake(&self.h.ctl.items);
                wake(&self.h.ctl.space);
                true
            }
            Err(_) => true,
        }
    }

    /// Reaps slot `i` if it still holds word `s` and its owner is dead. `true` if the slot
    /// changed.
    pub(super) fn reap_if_dead(&self, i: usize, s: u64) -> bool {
        if i as u64 >= self.cap {
            return false;
        }
        let (sw, _) = self.slot_at(i);
        if sw.load(Ordering::Acquire) != s {
            return true;
        }
        let o = owner_of(s);
        let Some(e) = self.m.registry.get(o as usize) else {
            // NO_OWNER (unregistered claimer) or garbage: liveness unknown, keep waiting.
            return false;
        };
        if entry_alive(e.load(Ordering::Acquire)) {
            return false;
        }
        self.reap_word(sw, s)
    }

    /// One push attempt: claims the slot at the tail, lets `write` fill its payload, publishes.
    pub(super) fn try_push_with(
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
    pub(super) fn try_pop_with<R>(
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
    pub(super) fn wait_loop<R>(
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

    pub(super) fn push_with(
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

    pub(super) fn pop_with<R>(
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

    pub(super) fn close(&self) {
        let c = &self.h.ctl;
        c.closed.store(1, Ordering::Release);
        fence(Ordering::SeqCst);
        wake(&c.items);
        wake(&c.space);
    }

    pub(super) fn positions(&self) -> (u64, u64) {
        (
            self.h.head.load(Ordering::Acquire),
            self.h.tail.load(Ordering::Acquire),
        )
    }

    pub(super) fn len(&self) -> usize {
        let (h, t) = self.positions();
        if h > t {
            return 0;
        }
        (t - h).min(self.cap) as usize
    }

    /// Reaps every in-flight slot whose owner is dead; returns how many.
    pub(super) fn reap_dead(&self) -> u64 {
        let mut n = 0;
        for i in 0..self.cap as usize {
            let (sw, _) = self.slot_at(i);
            let s = sw.load(Ordering::Acquire);
            let st = state_of(s);
            if (st == WRITING || st == READING) && self.reap_if_dead(i, s) {
                n += 1;
            }
        }
        n
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

/// Per-thread cache of registry indices, keyed by ring address.
mod cache {
    use std::cell::Cell;

    const N: usize = 4;
    std::thread_local! {
        static CACHE: Cell<([(usize, u64); N], usize)> = const { Cell::new(([(0, 0); N], 0)) };
    }

    #[inline]
    pub(super) fn get(key: usize) -> Option<u64> {
        // Loom replays a model many times in one thread: a cache surviving between executions
        // would make them differ (loom needs each to be deterministic).
        if cfg!(feature = "loom") {
            return None;
        }
        CACHE.with(|c| {
            let (e, _) = c.get();
            e.iter().find(|(k, _)| *k == key).map(|&(_, i)| i)
        })
    }

    pub(super) fn put(key: usize, i: u64) {
        CACHE.with(|c| {
            let (mut e, next) = c.get();
            if let Some(x) = e.iter_mut().find(|(k, _)| *k == key) {
                x.1 = i;
            } else {
                e[next % N] = (key, i);
            }
            c.set((e, (next + 1) % N));
        });
    }
}

/// A bounded many-producer many-consumer queue of `T`s, shareable between processes.
///
/// Any number of threads and processes push and pop through `&self`. Capacities are rounded up
/// to a power of two, at least 2. Items of one producer are popped in the order it pushed them.
/// [`len`](MpmcRing::len) is approximate while others push or pop. A process killed while it
/// pushes or pops loses at most the one item it had in flight, counted in
/// [`lost`](MpmcRing::lost); see the [module docs](self) for the algorithm and its guarantees.
///
/// `close()` makes later pushes fail with `Closed`; pops drain what was pushed and then fail with
/// `Closed`. A push racing with `close` either lands (and is popped) or fails with `Closed(v)`.
///
/// ```
/// let q = shmkit::ring::MpmcRing::<u32>::new(8)?;
/// std::thread::scope(|s| {
///     for p in 0..2 {
///         let q = &q;
///         s.spawn(move || for i in 0..100 { q.push(p * 1000 + i).unwrap() });
///     }
///     let mut got: Vec<u32> = (0..200).map(|_| q.pop().unwrap()).collect();
///     got.sort();
///     assert_eq!(got[..100], (0..100).collect::<Vec<_>>()[..]);
/// });
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct MpmcRing<T> {
    h: RingHead,
    m: MpmcMeta,
    _t: PhantomData<T>,
    /// `capacity` slots of `1 + slot_words::<T>()` words (state word, then the item).
    slots: [AtomicU64],
}

// SAFETY: every field is an atomic (or PhantomData); T is Pod (no references, held as bits).
unsafe impl<T: Pod> Sync for MpmcRing<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for MpmcRing<T> {}

const fn stride<T>() -> usize {
    1 + slot_words::<T>()
}

fn bad_capacity(requested: u64) -> Error {
    Error::InvalidCapacity {
        requested,
        reason: "an MPMC ring holds 2 to 2^32 items",
    }
}

/// The capacity an MPMC ring gets for `requested` (a power of two, at least 2).
pub(super) fn mpmc_capacity(requested: u64) -> Option<u64> {
    round_capacity(requested).map(|c| c.max(2))
}

impl<T: Pod> MpmcRing<T> {
    const SIZED: () = assert!(
        core::mem::size_of::<T>() > 0,
        "MpmcRing<T> needs a T of at least one byte"
    );

    /// A ring on the heap (for one process, tests and models) with room for `capacity` items,
    /// rounded up to a power of two (at least 2).
    ///
    /// # Errors
    /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`].
    pub fn new(capacity: u64) -> Result<Box<Self>> {
        #[allow(clippy::let_unit_value)]
        let () = Self::SIZED;
        let cap = mpmc_capacity(capacity).ok_or_else(|| bad_capacity(capacity))?;
        let layout = mpmc_layout(cap, stride::<T>()).ok_or_else(|| bad_capacity(capacity))?;
        let n = cap as usize * stride::<T>();
        // SAFETY: the layout has a non-zero size (it holds a RingHead).
        let raw = unsafe { std::alloc::alloc(layout) };
        if raw.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let ptr = Self::fat(raw, n);
        // SAFETY: `ptr` points to a fresh allocation of `layout`, exactly the layout of
        // `MpmcRing<T>` with `n` slot words (repr(C): RingHead, MpmcMeta, then the words).
        // Every field is written before the Box is formed; the Box frees it with the same
        // layout.
        unsafe {
            core::ptr::addr_of_mut!((*ptr).h).write(RingHead::fresh());
            core::ptr::addr_of_mut!((*ptr).m).write(MpmcMeta::fresh());
            let words = core::ptr::addr_of_mut!((*ptr).slots).cast::<AtomicU64>();
            for i in 0..n {
                words.add(i).write(AtomicU64::new(0));
            }
            Ok(Box::from_raw(ptr))
        }
    }

    fn fat(raw: *mut u8, n: usize) -> *mut Self {
        core::ptr::slice_from_raw_parts_mut(raw.cast::<AtomicU64>(), n) as *mut Self
    }

    #[inline]
    fn core(&self) -> Core<'_> {
        Core::new(&self.h, &self.m, &self.slots, stride::<T>())
    }

    /// Number of slots (a power of two), from the local handle's dimensions.
    #[inline]
    pub fn capacity(&self) -> usize {
        super::capacity_for(self.slots.len(), stride::<T>())
    }

    /// The raw position hints (pops claimed, pushes claimed) as found in shared memory; they may
    /// lag behind the slots by the operations in flight.
    pub fn positions(&self) -> (u64, u64) {
        self.core().positions()
    }

    /// Approximate number of items (claimed pushes minus claimed pops, clamped to the capacity);
    /// exact when no push or pop is in flight.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether the ring looked empty (approximate, see [`len`](MpmcRing::len)).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring looked full (approximate, see [`len`](MpmcRing::len)).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Whether the ring was closed.
    pub fn is_closed(&self) -> bool {
        self.h.ctl.closed.load(Ordering::Acquire) != 0
    }

    /// Items lost so far with processes that died while pushing or popping them (at most one per
    /// killed process).
    pub fn lost(&self) -> u64 {
        self.m.lost.load(Ordering::Relaxed)
    }

    /// Looks at every slot now and reaps those held by dead processes (blocking calls do this on
    /// their own for the slot they wait on). Returns how many were reaped.
    pub fn reap_dead(&self) -> u64 {
        self.core().reap_dead()
    }

    /// Closes the ring: pushes fail with `Closed` from now on, pops drain the remaining items and
    /// then fail with `Closed`. Every sleeper is woken. Closing twice is harmless.
    pub fn close(&self) {
        self.core().close()
    }

    /// Loom models only: head, tail and every slot's state word (for failure messages).
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn loom_dump(&self) -> Vec<u64> {
        let mut v = vec![
            self.h.head.load(Ordering::SeqCst),
            self.h.tail.load(Ordering::SeqCst),
        ];
        for i in 0..self.capacity() {
            v.push(self.slots[i * stride::<T>()].load(Ordering::SeqCst));
        }
        v
    }

    /// Loom models only: makes slot `slot` look held (`WRITING` if `writing`, else `READING`)
    /// in lap `lap` by a registered process that is dead, and sets the position hints.
    #[cfg(feature = "loom")]
    #[doc(hidden)]
    pub fn loom_stage_dead_owner(
        &self,
        slot: usize,
        writing: bool,
        lap: u32,
        head: u64,
        tail: u64,
    ) {
        self.m.registry[1].store(LOOM_DEAD_WORD, Ordering::Relaxed);
        let st = if writing { WRITING } else { READING };
        self.slots[slot * stride::<T>()].store(state_word(lap, st, 1), Ordering::Relaxed);
        self.h.head.store(head, Ordering::Relaxed);
        self.h.tail.store(tail, Ordering::Relaxed);
    }

    /// Pushes `value` if there is room, without waiting.
    ///
    /// # Errors
    /// `Full(value)`, `Closed(value)`, or `Corrupted(value)` when the shared words are
    /// impossible.
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        let core = self.core();
        let me = core.me();
        core.try_push_with(me, |item| store_pod(item, &value))
            .map_err(|e| push_error(e, value))
    }

    /// Pops the oldest item if there is one, without waiting.
    ///
    /// # Errors
    /// `Empty`; `Closed` once the ring is closed and drained; `Corrupted`.
    pub fn try_pop(&self) -> Result<T, PopError> {
        let core = self.core();
        let me = core.me();
        core.try_pop_with(me, |item| load_pod(item))
            .map_err(pop_error)
    }

    /// Pushes `value`, waiting as long as the ring is full.
    ///
    /// # Errors
    /// `Closed(value)`, `Corrupted(value)`.
    pub fn push(&self, value: T) -> Result<(), PushError<T>> {
        self.push_until(value, None)
    }

    /// Pushes `value`, waiting at most `timeout` while the ring is full.
    ///
    /// # Errors
    /// `Timeout(value)`, `Closed(value)`, `Corrupted(value)`.
    pub fn push_timeout(&self, value: T, timeout: Duration) -> Result<(), PushError<T>> {
        self.push_until(value, Some(timeout))
    }

    fn push_until(&self, value: T, timeout: Option<Duration>) -> Result<(), PushError<T>> {
        self.core()
            .push_with(timeout, |item| store_pod(item, &value))
            .map_err(|e| push_error(e, value))
    }

    /// Pops the oldest item, waiting as long as the ring is empty.
    ///
    /// # Errors
    /// `Closed` once closed and drained; `Corrupted`.
    pub fn pop(&self) -> Result<T, PopError> {
        self.pop_until(None)
    }

    /// Pops the oldest item, waiting at most `timeout` while the ring is empty.
    ///
    /// # Errors
    /// `Timeout`, `Closed` (closed and drained), `Corrupted`.
    pub fn pop_timeout(&self, timeout: Duration) -> Result<T, PopError> {
        self.pop_until(Some(timeout))
    }

    fn pop_until(&self, timeout: Option<Duration>) -> Result<T, PopError> {
        self.core()
            .pop_with(timeout, |item| load_pod(item))
            .map_err(pop_error)
    }
}

fn push_error<T>(e: Stop, value: T) -> PushError<T> {
    match e {
        Stop::Wait(_) => PushError::Full(value),
        Stop::Closed => PushError::Closed(value),
        Stop::Timeout => PushError::Timeout(value),
        Stop::Corrupted => PushError::Corrupted(value),
    }
}

pub(super) fn pop_error(e: Stop) -> PopError {
    match e {
        Stop::Wait(_) => PopError::Empty,
        Stop::Closed => PopError::Closed,
        Stop::Timeout => PopError::Timeout,
        Stop::Corrupted => PopError::Corrupted,
    }
}

impl<T: Pod> core::fmt::Debug for MpmcRing<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MpmcRing")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .field("lost", &self.lost())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::segment::object::{Kind, Object, TypeTag};
    use crate::words::words_for;
    use core::alloc::Layout;
    use core::ptr::NonNull;

    /// Largest element size accepted in a tag read from shared memory.
    const MAX_ELEM: u32 = 1 << 20;

    fn stride_of(tag: &TypeTag) -> Option<usize> {
        (tag.elem_size > 0 && tag.elem_size <= MAX_ELEM)
            .then(|| 1 + words_for(tag.elem_size as usize))
    }

    // SAFETY: MpmcRing<T> is #[repr(C)]: a RingHead and an MpmcMeta of atomics, then
    // `tag.len * stride` AtomicU64 words (any bits valid; any bytes are a valid T because T:
    // Pod). `layout` and `cast` take the word count from the same local tag. No pointers, no
    // Drop.
    unsafe impl<T: Pod + Send + Sync> Object for MpmcRing<T> {
        type Params = u64;
        fn element() -> TypeTag {
            #[allow(clippy::let_unit_value)]
            let () = Self::SIZED;
            TypeTag::of::<T>(Kind::MPMC)
        }
        fn tag(capacity: &u64) -> TypeTag {
            Self::element().with_dims(*capacity, 0)
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            mpmc_layout(tag.len, stride_of(tag)?)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, _: u64) {
            // SAFETY: per the trait contract ptr is aligned and sized for layout(tag); the ring
            // is all atomics, written through them.
            let r = unsafe { Self::cast(ptr, tag).as_ref() };
            r.h.reset();
            r.m.reset();
            for w in r.slots.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            let n = stride_of(tag).map_or(0, |s| (tag.len as usize).saturating_mul(s));
            let p = MpmcRing::<T>::fat(ptr.as_ptr(), n);
            // SAFETY: derived from a non-null pointer.
            unsafe { NonNull::new_unchecked(p) }
        }
    }

    impl crate::Segment {
        /// Finds or creates the [`MpmcRing`] `name` with room for `capacity` items, rounded up
        /// to a power of two, at least 2 (an existing ring must have the same element type and
        /// rounded capacity).
        ///
        /// # Errors
        /// [`Error::InvalidCapacity`] for 0 or more than [`MAX_CAPACITY`](super::super::MAX_CAPACITY);
        /// as [`Segment::object`](crate::Segment::object).
        pub fn mpmc<T: Pod + Send + Sync>(
            &self,
            name: &str,
            capacity: u64,
        ) -> Result<crate::Handle<MpmcRing<T>>> {
            let cap = mpmc_capacity(capacity).ok_or_else(|| bad_capacity(capacity))?;
            self.object::<MpmcRing<T>>(name, cap)
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
#[path = "mpmc_tests.rs"]
mod tests;
