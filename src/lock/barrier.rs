//! [`Barrier`]: a reusable, process-shared barrier that breaks instead of hanging, and counts
//! arrivals exactly when a party is killed at any instruction.
//!
//! # The protocol
//!
//! There is no internal lock (a lock held by a stopped peer would block every caller, `try_wait`
//! and `wait_timeout` included). The whole state is one 64-bit word, changed only by CAS:
//!
//! | bits   | field                                                              |
//! | ------ | ------------------------------------------------------------------ |
//! | 0..32  | generation (wrapping)                                              |
//! | 32..48 | parties arrived in this generation                                 |
//! | 61     | the previous generation ended broken (read by its late waiters)    |
//! | 62     | broken: every wait fails until [`Barrier::reset`]                  |
//!
//! Arriving is one CAS (`arrived + 1`, or the next generation for the last party), so a party
//! killed at any step has either arrived or not. Waiters sleep on a separate futex word that is
//! bumped after every change of generation; a waker killed before the bump costs the waiters at
//! most one [`LIVENESS_PERIOD`] nap.
//!
//! Each process records, in a slot claimed with one CAS, the last generation it arrived in,
//! *after* its arrival: a waiter that finds a recorded process dead without an arrival in the
//! current generation breaks the barrier (one CAS, racing fairly with the last arrival).

use super::owner::{claim_alive, claim_word, step, LIVENESS_PERIOD};
use crate::sync::{futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering};
use crate::{Error, Result};
use std::time::Duration;

/// Processes whose participation is recorded (for detecting a party that died).
#[cfg(not(feature = "loom"))]
pub const PARTY_SLOTS: usize = 64;
/// Under loom: few slots, so that models explore schedules rather than scans.
#[cfg(feature = "loom")]
pub const PARTY_SLOTS: usize = 3;

/// Most parties a barrier can have (16 bits of the state word).
pub const MAX_PARTIES: u32 = 0xffff;

const ARRIVED_SHIFT: u32 = 32;
const ARRIVED_MASK: u64 = 0xffff;
const PREV_BROKEN: u64 = 1 << 61;
const BROKEN: u64 = 1 << 62;

/// The fields of a state word.
#[derive(Clone, Copy, PartialEq, Eq)]
struct State(u64);

impl State {
    fn generation(self) -> u32 {
        self.0 as u32
    }
    fn arrived(self) -> u32 {
        ((self.0 >> ARRIVED_SHIFT) & ARRIVED_MASK) as u32
    }
    fn broken(self) -> bool {
        self.0 & BROKEN != 0
    }
    /// Generation `g` with `arrived` parties and `flags`.
    fn of(g: u32, arrived: u32, flags: u64) -> State {
        State(u64::from(g) | ((u64::from(arrived) & ARRIVED_MASK) << ARRIVED_SHIFT) | flags)
    }
    /// The state after generation `self` ends, broken or not.
    fn ended(self, broken: bool) -> State {
        let flags = if broken { BROKEN | PREV_BROKEN } else { 0 };
        State::of(self.generation().wrapping_add(1), 0, flags)
    }
}

#[repr(C)]
struct Party {
    /// The process's owner word ([`crate::process::my_word`]; 0: free slot).
    owner: AtomicU64,
    /// 1 + the generation it last arrived in (0: none yet).
    arrived: AtomicU64,
}

/// A barrier for `parties` threads (of any processes), reusable generation after generation
/// (Python's `multiprocessing.Barrier`).
///
/// [`wait`](Barrier::wait) returns `Ok(true)` to exactly one party per generation, the leader
/// (the last to arrive). Instead of hanging, the barrier **breaks**: when a `wait_timeout` runs
/// out, or when a process that took part in an earlier generation died without arriving in the
/// current one (waiters check every 10 ms; a process that stops taking part and exits counts as
/// dead too). Every present and future wait then fails with [`Error::BarrierBroken`] until
/// [`reset`](Barrier::reset).
///
/// # Guarantees
///
/// - **Exact arrivals under `SIGKILL`**: arriving is one atomic step, so a party killed at any
///   instruction has arrived or not, never half; the generation completes only with `parties`
///   real arrivals.
/// - **Never blocked by a peer**: there is no internal lock. `try_wait` returns at once and
///   `wait_timeout` by its deadline whatever a peer does (stopped with `SIGSTOP` anywhere, or
///   writing garbage into the shared words: wrong counts or a broken barrier, never a panic or a
///   hang).
///
/// # Limits
///
/// - A process that dies before it ever arrived is not known to the barrier: use `wait_timeout`
///   for the first generation. Up to [`PARTY_SLOTS`](crate::limits::PARTY_SLOTS) processes are recorded.
/// - A party killed right after its arrival, before recording it, is taken for a party that died
///   without arriving: the generation breaks instead of completing.
/// - A party in another pid namespace is never judged dead (its pid means nothing here).
/// - At most [`MAX_PARTIES`] parties.
/// - A waiter that has not yet woken from its generation when the barrier is reset, or when a
///   later generation ends, may get the outcome wrong if more than one generation ends broken
///   in the meantime.
///
/// ```
/// let b = shmkit::Barrier::new(2);
/// let leaders = std::thread::scope(|s| {
///     let t = s.spawn(|| b.wait().unwrap());
///     let me = b.wait().unwrap();
///     me as u32 + t.join().unwrap() as u32
/// });
/// assert_eq!(leaders, 1);
/// assert_eq!(b.generation(), 1);
/// ```
#[repr(C)]
pub struct Barrier {
    /// The state word (see the module docs).
    state: AtomicU64,
    /// The futex word: bumped after every change of generation.
    wake: AtomicU32,
    /// Number of parties (1..=[`MAX_PARTIES`]).
    parties: AtomicU32,
    /// 1 + the last generation that ended broken (for waiters that wake after later
    /// generations).
    broke: AtomicU32,
    /// Reserved (zero).
    _reserved: AtomicU32,
    slots: [Party; PARTY_SLOTS],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Barrier, [u64; 3 + 2 * PARTY_SLOTS]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Barrier, u64);

impl Barrier {
    /// A barrier on the heap for `parties` parties (1..=[`MAX_PARTIES`]; clamped).
    pub fn new(parties: u32) -> Self {
        Barrier {
            state: AtomicU64::new(0),
            wake: AtomicU32::new(0),
            parties: AtomicU32::new(parties.clamp(1, MAX_PARTIES)),
            broke: AtomicU32::new(0),
            _reserved: AtomicU32::new(0),
            slots: core::array::from_fn(|_| Party {
                owner: AtomicU64::new(0),
                arrived: AtomicU64::new(0),
            }),
        }
    }

    /// Arrives and waits for the other parties. `Ok(true)` for the generation's leader.
    ///
    /// # Errors
    /// [`Error::BarrierBroken`].
    pub fn wait(&self) -> Result<bool> {
        self.wait_inner(None)
    }

    /// As [`wait`](Barrier::wait), for at most `timeout`; running out breaks the barrier.
    ///
    /// # Errors
    /// [`Error::BarrierBroken`] (also for the party that timed out).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_inner(Some(timeout))
    }

    /// Arrives only if that completes the generation (then `Ok(true)`); otherwise does not count
    /// as arrived. Never waits.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when other parties are still missing; [`Error::BarrierBroken`].
    pub fn try_wait(&self) -> Result<bool> {
        let me = claim_word();
        let parties = self.parties();
        let mut st = self.load();
        loop {
            if st.broken() {
                return Err(self.broken_error());
            }
            if st.arrived().saturating_add(1) < parties {
                return Err(Error::WouldBlock { what: "barrier" });
            }
            match self.cas(st, st.ended(false)) {
                Ok(()) => break,
                Err(now) => st = now,
            }
        }
        if let Some(slot) = self.claim(me) {
            self.record(slot, st.generation());
        }
        self.wake_all();
        Ok(true)
    }

    /// Repairs a broken barrier for a new generation; parties waiting now get
    /// [`Error::BarrierBroken`], and the processes recorded so far are forgotten.
    ///
    /// # Errors
    /// None in practice; the signature leaves room for future ones.
    pub fn reset(&self) -> Result<()> {
        let mut st = self.load();
        loop {
            // Waiters of this generation (if it is not already broken) must learn it broke.
            let strand = st.arrived() != 0 && !st.broken();
            let next = State::of(
                st.generation().wrapping_add(1),
                0,
                if strand { PREV_BROKEN } else { 0 },
            );
            match self.cas(st, next) {
                Ok(()) => {
                    if strand {
                        self.broke
                            .store(st.generation().wrapping_add(1).max(1), Ordering::Release);
                    }
                    break;
                }
                Err(now) => st = now,
            }
        }
        for slot in &self.slots {
            slot.owner.store(0, Ordering::Relaxed);
        }
        self.wake_all();
        Ok(())
    }

    /// The number of completed (or broken) generations (wrapping).
    pub fn generation(&self) -> u32 {
        self.load().generation()
    }

    /// Parties that arrived in the current generation.
    pub fn arrived(&self) -> u32 {
        self.load().arrived()
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed).clamp(1, MAX_PARTIES)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.load().broken()
    }

    fn broken_error(&self) -> Error {
        Error::BarrierBroken {
            parties: self.parties(),
        }
    }

    fn load(&self) -> State {
        State(self.state.load(Ordering::Acquire))
    }

    /// One CAS of the state word; the current state on failure.
    fn cas(&self, from: State, to: State) -> core::result::Result<(), State> {
        self.state
            .compare_exchange(from.0, to.0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(State)
    }

    /// Wakes every waiter after a change of generation.
    fn wake_all(&self) {
        self.wake.fetch_add(1, Ordering::AcqRel);
        futex_wake(&self.wake, u32::MAX);
    }

    /// Ends generation `st` broken (one CAS); whether this call broke it.
    fn break_generation(&self, st: State) -> bool {
        if self.cas(st, st.ended(true)).is_err() {
            return false;
        }
        if !step("barrier.break.broken") {
            self.broke
                .store(st.generation().wrapping_add(1).max(1), Ordering::Release);
            self.wake_all();
        }
        true
    }

    /// The slot of the process `me`, claimed with one CAS if it has none (`None`: all taken).
    fn claim(&self, me: u64) -> Option<usize> {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.owner.load(Ordering::Acquire) == me)
        {
            return Some(i);
        }
        let i = self.slots.iter().position(|s| {
            s.owner.load(Ordering::Relaxed) == 0
                && s.owner
                    .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        })?;
        // A record left by the slot's previous process is not ours.
        self.slots[i].arrived.store(0, Ordering::Release);
        Some(i)
    }

    /// Records that the process of `slot` arrived in generation `g`.
    fn record(&self, slot: usize, g: u32) {
        self.slots[slot]
            .arrived
            .store(u64::from(g) + 1, Ordering::Release);
    }

    /// Whether a recorded process died without arriving in generation `g`; frees the slots of
    /// the dead.
    fn party_died(&self, g: u32) -> bool {
        let mut died = false;
        for s in &self.slots {
            let w = s.owner.load(Ordering::Acquire);
            // A dead process that arrived in `g` is kept: it will be missing from the next.
            if w != 0 && s.arrived.load(Ordering::Acquire) != u64::from(g) + 1 && !claim_alive(w) {
                died = true;
                let _ = s
                    .owner
                    .compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed);
            }
        }
        died
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_as(timeout, &mut || false)
            .map(|(_, leader)| leader)
    }

    /// As [`wait_timeout`](Barrier::wait_timeout) (`None`: no limit), returning the arrival's
    /// index in its generation (0 for the first to arrive, `parties() - 1` for the leader; what
    /// Python's `Barrier.wait` returns), and giving up as soon as `give_up()` returns `true`:
    /// it is called between the waiter's naps (at least every 10 ms) and breaks the barrier as a
    /// timeout does (Python's `threading.Barrier` breaks when a wait is interrupted). For
    /// callers that must react to something outside the barrier while they wait, such as a
    /// signal.
    ///
    /// # Errors
    /// [`Error::BarrierBroken`] (also for the party that timed out or gave up).
    pub fn wait_interruptible(
        &self,
        timeout: Option<Duration>,
        mut give_up: impl FnMut() -> bool,
    ) -> Result<u32> {
        self.wait_as(timeout, &mut give_up).map(|(index, _)| index)
    }

    /// Breaks the barrier now (Python's `Barrier.abort`): parties waiting get
    /// [`Error::BarrierBroken`], and so does every wait until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        loop {
            let st = self.load();
            if st.broken() || self.break_generation(st) {
                return;
            }
        }
    }

    /// Arrives and waits; `(arrival index, leader)`.
    fn wait_as(
        &self,
        timeout: Option<Duration>,
        give_up: &mut dyn FnMut() -> bool,
    ) -> Result<(u32, bool)> {
        let deadline = Deadline::after(timeout);
        let parties = self.parties();
        let slot = self.claim(claim_word());
        if step("barrier.wait.claimed") {
            return Ok((0, false));
        }
        // Arrive: one CAS.
        let mut st = self.load();
        let (g, index, leader) = loop {
            if st.broken() {
                return Err(self.broken_error());
            }
            let n = st.arrived() + 1;
            let leader = n >= parties;
            let next = if leader {
                st.ended(false)
            } else {
                State::of(st.generation(), n, 0)
            };
            match self.cas(st, next) {
                Ok(()) => break (st.generation(), st.arrived(), leader),
                Err(now) => st = now,
            }
        };
        if step("barrier.wait.arrived") {
            return Ok((index, false));
        }
        if let Some(slot) = slot {
            self.record(slot, g);
        }
        if step("barrier.wait.recorded") {
            return Ok((index, false));
        }
        if leader {
            self.wake_all();
            return Ok((index, true));
        }
        loop {
            // The futex word before the state: a change of generation after this read bumps it,
            // so the wait below returns.
            let seen = self.wake.load(Ordering::Acquire);
            let st = self.load();
            if st.generation() != g {
                return self.outcome(st, g).map(|_| (index, false));
            }
            if deadline.expired() || give_up() {
                if self.break_generation(st) {
                    return Err(self.broken_error());
                }
                continue;
            }
            let nap = deadline
                .remaining()
                .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
            futex_wait(&self.wake, seen, Some(nap));
            let st = self.load();
            // Still waiting after a nap: a party that died without arriving breaks it.
            if st.generation() == g && self.party_died(g) && self.break_generation(st) {
                return Err(self.broken_error());
            }
        }
    }

    /// How generation `g` ended, seen from state `st` of a later generation.
    fn outcome(&self, st: State, g: u32) -> Result<bool> {
        let broken = if st.generation() == g.wrapping_add(1) {
            st.0 & PREV_BROKEN != 0
        } else {
            // Later generations ended since: the last broken one tells.
            self.broke.load(Ordering::Acquire) == g.wrapping_add(1).max(1)
        };
        if broken {
            Err(self.broken_error())
        } else {
            Ok(false)
        }
    }
}

impl core::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("arrived", &self.arrived())
            .field("generation", &self.generation())
            .field("broken", &self.is_broken())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Barrier is #[repr(C)], made only of atomics (valid for any bits); fixed layout; no
    // pointers, no Drop.
    unsafe impl Object for Barrier {
        type Params = u32;
        fn element() -> TypeTag {
            TypeTag::plain(Kind::BARRIER)
        }
        fn tag(parties: &u32) -> TypeTag {
            Self::element().with_dims(u64::from(*parties), 0)
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Barrier>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, parties: u32) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Barrier.
            unsafe { ptr.cast::<Barrier>().as_ptr().write(Barrier::new(parties)) }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests;
