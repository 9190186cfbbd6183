//! [`Semaphore`]: a process-shared counting semaphore, optionally bounded, that knows which
//! processes hold its permits, and stays exact when any of them is killed at any instruction.
//!
//! # The protocol
//!
//! There is no internal lock (a lock held by a stopped peer would block every caller, `try_`
//! and `_timeout` calls included). The free permits and the *last operation* share one 64-bit
//! state word; every operation is one CAS on it, which both takes or returns permits and names
//! the holder slot whose count must follow:
//!
//! | bits   | field                                                                        |
//! | ------ | ---------------------------------------------------------------------------- |
//! | 0..24  | free permits                                                                 |
//! | 24..29 | slot of the last operation (`0..16` processes, `16` untracked; others: none) |
//! | 29..32 | kind of the last operation: 1 acquire (+1), 2 release (−1), 3 reclaim (→ 0)  |
//! | 32..64 | sequence number of the last operation                                        |
//!
//! A holder slot counts the permits of one process (its owner word, claimed with one CAS) in a
//! word `count | applied << 32`, where `applied` is the sequence number of the last operation
//! applied to it. After the CAS on the state word, the operation is *applied* to its slot with a
//! CAS that sets `applied`; until then the state word names it, and every operation first
//! applies the one the state word names (anyone may, exactly once: `applied` tells). So a
//! process killed between any two steps leaves either nothing done or a committed operation the
//! next caller completes: no permit is ever duplicated or leaked.
//!
//! A waiter that finds no free permit sleeps at most [`LIVENESS_PERIOD`] at a time and then
//! *reclaims* the permits of slots whose process died (one more operation of the same kind),
//! then frees their slot.

use super::owner::{claim_alive, claim_word, step, LIVENESS_PERIOD};
use super::raw::{Fail, Wait};
use crate::sync::{futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering};
use crate::{Error, Result};
use std::time::Duration;

/// Processes whose permits are tracked individually; permits of further processes are counted
/// as untracked (not reclaimable). A process keeps its slot until it exits.
#[cfg(not(feature = "loom"))]
pub const HOLDER_SLOTS: usize = 16;
/// Under loom: few slots, so that models explore schedules rather than scans.
#[cfg(feature = "loom")]
pub const HOLDER_SLOTS: usize = 3;

/// The untracked pseudo-slot: permits of processes that found no free slot.
const UNTRACKED: usize = HOLDER_SLOTS;
const SLOTS: usize = HOLDER_SLOTS + 1;

/// Most free permits a semaphore can count (24 bits of the state word).
pub const MAX_PERMITS: u32 = (1 << 24) - 1;

const FREE_MASK: u64 = MAX_PERMITS as u64;
const SLOT_SHIFT: u32 = 24;
const SLOT_MASK: u64 = 0x1f;
const KIND_SHIFT: u32 = 29;
const KIND_MASK: u64 = 0x7;
const SEQ_SHIFT: u32 = 32;

const ACQUIRE: u64 = 1;
const RELEASE: u64 = 2;
const RECLAIM: u64 = 3;

/// The fields of a state word.
#[derive(Clone, Copy)]
struct State {
    word: u64,
}

impl State {
    fn free(self) -> u32 {
        (self.word & FREE_MASK) as u32
    }
    fn seq(self) -> u32 {
        (self.word >> SEQ_SHIFT) as u32
    }
    /// The last operation: (slot, kind, sequence), if it names a valid slot and kind.
    fn op(self) -> Option<(usize, u64, u32)> {
        let slot = ((self.word >> SLOT_SHIFT) & SLOT_MASK) as usize;
        let kind = (self.word >> KIND_SHIFT) & KIND_MASK;
        (slot < SLOTS && (ACQUIRE..=RECLAIM).contains(&kind)).then_some((slot, kind, self.seq()))
    }
    /// The next state: `free` permits after operation `kind` on `slot`. Sequence numbers skip 0,
    /// the `applied` mark of a slot no operation has touched.
    fn next(self, free: u32, slot: usize, kind: u64) -> u64 {
        let seq = self.seq().wrapping_add(1).max(1);
        (u64::from(free) & FREE_MASK)
            | ((slot as u64 & SLOT_MASK) << SLOT_SHIFT)
            | ((kind & KIND_MASK) << KIND_SHIFT)
            | (u64::from(seq) << SEQ_SHIFT)
    }
}

/// The permits of one process.
#[repr(C)]
struct Holder {
    /// The process's owner word ([`crate::process::my_word`]; 0: free slot). Claimed with one
    /// CAS; freed only after its process died and its permits were reclaimed.
    owner: AtomicU64,
    /// `count | applied << 32`: permits held, and the sequence number of the last operation
    /// applied to this slot.
    held: AtomicU64,
}

/// A counting semaphore shared by threads and processes (Python's `Semaphore`, and
/// `BoundedSemaphore` when created with [`bounded`](Semaphore::bounded)).
///
/// # Guarantees
///
/// - **Dead holders' permits come back.** Each process's holdings are recorded (its owner word:
///   pid, start time, pid namespace). A waiter that finds no permit sleeps at most 10 ms at a
///   time, then looks for holders that died: their permits are **reclaimed** (counted in
///   [`reclaimed`](Semaphore::reclaimed)), not silently lost. A holder in another pid namespace
///   is never judged dead (its pid means nothing here): its permits come back only when it
///   releases them, or when a process of its own namespace reclaims them.
/// - **Exact under `SIGKILL`.** Every operation is one CAS that commits it, and a bookkeeping
///   step that any later caller completes (see the module source for the protocol). A process
///   killed at any instruction never duplicates or leaks a permit.
/// - **Never blocked by a peer.** There is no internal lock: `try_acquire` returns at once,
///   `acquire_timeout` by its deadline and `release` without waiting, whatever a peer does
///   (stopped with `SIGSTOP` in the middle of an operation, or writing garbage into the shared
///   words; garbage gives wrong counts, never a panic or a hang).
///
/// # Limits
///
/// - A permit is assumed to be released by the process that acquired it, as with a lock; a
///   permit handed to another process to release is accounted to the acquirer until then.
/// - [`HOLDER_SLOTS`](crate::limits::HOLDER_SLOTS) processes are tracked; a process keeps its slot until it exits. Permits
///   of further processes are untracked: not reclaimed if they die holding them.
/// - At most [`MAX_PERMITS`] permits can be free (2²⁴ − 1).
///
/// ```
/// let s = shmkit::Semaphore::bounded(2, 2);
/// s.acquire().unwrap();
/// assert!(s.try_acquire().is_ok());
/// assert!(s.try_acquire().is_err());
/// s.release().unwrap();
/// s.release().unwrap();
/// assert!(s.release().is_err(), "a bounded semaphore refuses an extra release");
/// ```
#[repr(C)]
pub struct Semaphore {
    /// The state word (see the module docs).
    state: AtomicU64,
    /// The futex word sleepers wait on: `sleepers | releases << 16` (both wrapping).
    wake: AtomicU32,
    /// Reserved (zero).
    _reserved: AtomicU32,
    /// Most permits that may be free (0: unbounded).
    bound: AtomicU64,
    /// Permits reclaimed from dead holders, in all (a statistic: a sweeper killed in the middle
    /// of a reclaim may not have counted it).
    reclaimed: AtomicU64,
    holders: [Holder; SLOTS],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Semaphore, [u64; 4 + 2 * SLOTS]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Semaphore, u64);

const ONE_SLEEPER: u32 = 1;
const SLEEPERS_MASK: u32 = 0xffff;
const ONE_RELEASE: u32 = 1 << 16;

impl Semaphore {
    /// An unbounded semaphore on the heap with `permits` free permits (at most [`MAX_PERMITS`]).
    pub fn new(permits: u32) -> Self {
        Self::with_bound(permits, 0)
    }

    /// A bounded semaphore on the heap: `permits` free, and a `release` that would make more than
    /// `bound` free fails with [`Error::SemaphoreOverRelease`].
    pub fn bounded(permits: u32, bound: u32) -> Self {
        Self::with_bound(permits, bound.max(1))
    }

    fn with_bound(permits: u32, bound: u32) -> Self {
        Semaphore {
            state: AtomicU64::new(u64::from(permits.min(MAX_PERMITS))),
            wake: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            bound: AtomicU64::new(u64::from(bound.min(MAX_PERMITS))),
            reclaimed: AtomicU64::new(0),
            holders: core::array::from_fn(|_| Holder {
                owner: AtomicU64::new(0),
                held: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a permit, waiting as long as needed (reclaiming the permits of dead holders).
    ///
    /// # Errors
    /// None in practice; the signature leaves room for the errors of the timed forms.
    pub fn acquire(&self) -> Result<()> {
        self.acquire_inner(Wait::For(None))
    }

    /// Takes a permit if one is free now (or can be reclaimed from a dead holder now).
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when none is free.
    pub fn try_acquire(&self) -> Result<()> {
        self.acquire_inner(Wait::Try)
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_inner(Wait::For(Some(timeout)))
    }

    /// Returns a permit and wakes one waiter. Never waits.
    ///
    /// # Errors
    /// [`Error::SemaphoreOverRelease`] for a bounded semaphore whose free permits are at the
    /// bound, or any semaphore at [`MAX_PERMITS`].
    pub fn release(&self) -> Result<()> {
        let me = claim_word();
        let bound = self.bound_now();
        loop {
            let st = self.settled();
            let free = st.free();
            if free >= bound {
                return Err(Error::SemaphoreOverRelease { bound });
            }
            // The permit comes off this process's count, if it holds any (read after the
            // state word: a change of it since would have moved the state word too).
            let slot = match self.find(me) {
                Some(i) if held_count(self.holders[i].held.load(Ordering::Acquire)) != 0 => i,
                _ => UNTRACKED,
            };
            let next = st.next(free + 1, slot, RELEASE);
            if self.commit(st, next) {
                if step("semaphore.release.committed") {
                    return Ok(());
                }
                self.apply(State { word: next });
                if step("semaphore.release.applied") {
                    return Ok(());
                }
                self.wake_after_release(1);
                return Ok(());
            }
        }
    }

    /// Free permits now.
    pub fn available(&self) -> u32 {
        self.load().free()
    }

    /// The bound (`None`: unbounded).
    pub fn bound(&self) -> Option<u32> {
        match self.bound.load(Ordering::Relaxed) {
            0 => None,
            b => Some(b.min(u64::from(MAX_PERMITS)) as u32),
        }
    }

    /// Permits reclaimed from processes that died holding them, in all.
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Permits held per process now: `(pid, count)`, plus `(0, n)` for untracked holders.
    pub fn holders(&self) -> Vec<(u32, u64)> {
        self.apply(self.load());
        let mut v: Vec<(u32, u64)> = self.holders[..HOLDER_SLOTS]
            .iter()
            .filter_map(|h| {
                let w = h.owner.load(Ordering::Relaxed) & !crate::process::FLAG;
                let n = held_count(h.held.load(Ordering::Relaxed));
                (w != 0 && n != 0).then_some((crate::process::word_pid(w), u64::from(n)))
            })
            .collect();
        let u = held_count(self.holders[UNTRACKED].held.load(Ordering::Relaxed));
        if u != 0 {
            v.push((0, u64::from(u)));
        }
        v
    }

    fn load(&self) -> State {
        State {
            word: self.state.load(Ordering::Acquire),
        }
    }

    /// The most free permits allowed: the bound, or [`MAX_PERMITS`].
    fn bound_now(&self) -> u32 {
        match self.bound.load(Ordering::Relaxed) {
            0 => MAX_PERMITS,
            b => b.min(u64::from(MAX_PERMITS)) as u32,
        }
    }

    /// The state word, with the operation it names applied to its slot.
    fn settled(&self) -> State {
        let st = self.load();
        self.apply(st);
        st
    }

    /// Commits an operation: one CAS of the state word from `st` to `next`.
    fn commit(&self, st: State, next: u64) -> bool {
        self.state
            .compare_exchange(st.word, next, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Applies the operation named by `st` to its slot, unless that was done already (by its
    /// committer or another helper) or `st` is no longer the state (then it was done before the
    /// state moved on).
    fn apply(&self, st: State) {
        let Some((slot, kind, seq)) = st.op() else {
            return;
        };
        let h = &self.holders[slot].held;
        let mut cur = h.load(Ordering::Acquire);
        loop {
            if (cur >> 32) as u32 == seq {
                return; // applied
            }
            // Read after `cur`: if the state still names the operation, `cur` predates it being
            // applied, and the CAS below applies it at most once.
            if self.state.load(Ordering::Acquire) != st.word {
                return; // applied before the state moved on
            }
            let count = held_count(cur);
            let count = match kind {
                ACQUIRE => count.wrapping_add(1),
                RELEASE => count.saturating_sub(1),
                _ => 0,
            };
            match h.compare_exchange(
                cur,
                u64::from(count) | (u64::from(seq) << 32),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                // Our `cur` was stale, or a helper applied it first: look again.
                Err(now) => cur = now,
            }
        }
    }

    /// The slot owned by the process with owner word `me`, if any.
    fn find(&self, me: u64) -> Option<usize> {
        self.holders[..HOLDER_SLOTS]
            .iter()
            .position(|h| h.owner.load(Ordering::Acquire) == me)
    }

    /// The slot of the process `me`, claimed (one CAS) if it has none; [`UNTRACKED`] if every
    /// slot is taken.
    fn claim(&self, me: u64) -> usize {
        if let Some(i) = self.find(me) {
            return i;
        }
        for (i, h) in self.holders[..HOLDER_SLOTS].iter().enumerate() {
            if h.owner.load(Ordering::Relaxed) == 0
                && h.owner
                    .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return i;
            }
        }
        // Lost every race for a free slot (or none was free): maybe a thread of this process
        // claimed one meanwhile.
        self.find(me).unwrap_or(UNTRACKED)
    }

    fn acquire_inner(&self, wait: Wait) -> Result<()> {
        let (deadline, total) = match wait {
            Wait::For(d) => (Deadline::after(d), d.unwrap_or(Duration::MAX)),
            Wait::Try => (Deadline::after(Some(Duration::ZERO)), Duration::ZERO),
        };
        let me = claim_word();
        let slot = self.claim(me);
        if step("semaphore.acquire.claimed") {
            return Ok(());
        }
        // A try looks for dead holders at once; a wait after each nap that found nothing.
        let mut sweep = matches!(wait, Wait::Try);
        loop {
            let st = self.settled();
            let free = st.free();
            if free > 0 {
                let next = st.next(free - 1, slot, ACQUIRE);
                if self.commit(st, next) {
                    if step("semaphore.acquire.committed") {
                        return Ok(());
                    }
                    self.apply(State { word: next });
                    let _ = step("semaphore.acquire.applied");
                    return Ok(());
                }
                continue;
            }
            if sweep {
                sweep = false;
                match self.sweep() {
                    Some(true) => continue,
                    Some(false) => {}
                    None => return Ok(()), // died at a step (loom)
                }
            }
            // (A try gives up here explicitly: under loom deadlines never expire.)
            if matches!(wait, Wait::Try) || deadline.expired() {
                return Err(match wait {
                    Wait::Try => Fail::WouldBlock,
                    Wait::For(_) => Fail::Timeout(total),
                }
                .into_error("semaphore"));
            }
            // Announce a sleeper in the futex word, then look again: a release either sees the
            // announcement (and wakes) or changed the word before (and the wait returns).
            let seen = self
                .wake
                .fetch_add(ONE_SLEEPER, Ordering::AcqRel)
                .wrapping_add(ONE_SLEEPER);
            if self.settled().free() == 0 {
                let nap = deadline
                    .remaining()
                    .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
                futex_wait(&self.wake, seen, Some(nap));
                // Still nothing free after a nap: look for dead holders next time.
                sweep = self.load().free() == 0;
            }
            self.wake.fetch_sub(ONE_SLEEPER, Ordering::Relaxed);
        }
    }

    /// Wakes up to `n` sleepers after permits were returned.
    fn wake_after_release(&self, n: u32) {
        let old = self.wake.fetch_add(ONE_RELEASE, Ordering::AcqRel);
        if old & SLEEPERS_MASK != 0 {
            futex_wake(&self.wake, n);
        }
    }

    /// Reclaims the permits of every holder that died and frees its slot; whether any permit
    /// came back (`None`: this thread died at a step, under loom). Costs a liveness check (a
    /// `/proc` read) per occupied slot.
    fn sweep(&self) -> Option<bool> {
        let mut any = false;
        for slot in 0..HOLDER_SLOTS {
            let w = self.holders[slot].owner.load(Ordering::Acquire);
            if w == 0 || claim_alive(w) {
                continue;
            }
            any |= self.reclaim(slot, w)? != 0;
        }
        Some(any)
    }

    /// Returns the permits of dead process `w` in `slot` to the free permits and frees the slot;
    /// how many came back (`None`: this thread died at a step, under loom).
    fn reclaim(&self, slot: usize, w: u64) -> Option<u32> {
        let h = &self.holders[slot];
        let back = loop {
            let st = self.settled();
            // Read after the state word: every operation on this slot is applied, and none can
            // follow (its process is dead) but another reclaim, which moves the state word.
            if h.owner.load(Ordering::Acquire) != w {
                return Some(0); // reclaimed by another sweeper
            }
            let count = held_count(h.held.load(Ordering::Acquire));
            if count == 0 {
                break 0;
            }
            let free = st.free();
            let back = count.min(self.bound_now().saturating_sub(free));
            let next = st.next(free + back, slot, RECLAIM);
            if self.commit(st, next) {
                if step("semaphore.reclaim.committed") {
                    return None;
                }
                self.apply(State { word: next });
                if step("semaphore.reclaim.applied") {
                    return None;
                }
                self.reclaimed.fetch_add(u64::from(back), Ordering::Relaxed);
                break back;
            }
        };
        // The slot holds nothing and its process is gone: free it. A second sweeper that read
        // the same dead word frees nothing more (the word never comes back).
        let _ = h
            .owner
            .compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed);
        if back != 0 {
            self.wake_after_release(u32::MAX);
        }
        Some(back)
    }
}

/// The permit count of a holder word.
fn held_count(w: u64) -> u32 {
    w as u32
}

impl core::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("bound", &self.bound())
            .field("reclaimed", &self.reclaimed())
            .finish_non_exhaustive()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Semaphore is #[repr(C)], made only of atomics (valid for any bits); fixed layout;
    // no pointers, no Drop.
    unsafe impl Object for Semaphore {
        /// (free permits, bound; 0 = unbounded)
        type Params = (u32, u32);
        fn element() -> TypeTag {
            TypeTag::plain(Kind::SEMAPHORE)
        }
        fn tag(p: &(u32, u32)) -> TypeTag {
            Self::element().with_dims(u64::from(p.1), 0)
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Semaphore>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, (permits, bound): (u32, u32)) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Semaphore.
            unsafe {
                ptr.cast::<Semaphore>()
                    .as_ptr()
                    .write(Semaphore::with_bound(permits, bound))
            }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
