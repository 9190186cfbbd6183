//! [`RawMutex`]: the robust futex lock word behind [`Mutex`](super::Mutex), without data.

use super::owner::{
    me, Held, Me, OwnerMeta, LIVENESS_PERIOD, NOT_RECOVERABLE, OWNER_DIED, OWNER_MASK, TID_MASK,
    WAITERS,
};
use crate::sync::{futex_wait, futex_wake, AtomicU32, Deadline, Ordering, Spin};
use crate::Error;
use std::time::Duration;

/// How a lock was acquired.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Acquired {
    /// Normally: the data is as the last owner left it.
    Clean,
    /// From (or after) an owner that died holding it: the data may be half-updated.
    OwnerDied,
}

/// How long an acquisition may wait.
#[derive(Clone, Copy)]
pub(crate) enum Wait {
    /// Not at all (`try_lock`): a few CAS attempts and one liveness check.
    Try,
    /// At most this long from the call (`None`: forever).
    For(Option<Duration>),
}

/// Why a lock was not taken (small, so the fast path returns in registers).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fail {
    NotRecoverable,
    WouldBlock,
    WouldDeadlock,
    Timeout(Duration),
}

impl Fail {
    /// The public error, naming the kind of lock.
    #[cold]
    pub(crate) fn into_error(self, what: &'static str) -> Error {
        match self {
            Fail::NotRecoverable => Error::NotRecoverable { what },
            Fail::WouldBlock => Error::WouldBlock { what },
            Fail::WouldDeadlock => Error::WouldDeadlock { what },
            Fail::Timeout(waited) => Error::Timeout { what, waited },
        }
    }
}

/// A robust, process-shared futex lock word with its owner record. 24 bytes.
#[repr(C)]
pub(crate) struct RawMutex {
    /// The lock word:
    ///
    /// | bits 31 / 30 / 29..0            | meaning                                                 |
    /// | ------------------------------- | ------------------------------------------------------- |
    /// | `0 / 0 / 0`                     | unlocked                                                |
    /// | `w / 0 / owner`                 | locked by `owner` (thread id in bits 0..22, its pid-namespace tag in bits 22..30); `w`: a waiter may sleep |
    /// | `w / 1 / owner`                 | locked by `owner`, which took it from a dead owner and has not called `mark_consistent` yet |
    /// | `w / 1 / 0`                     | unlocked but inconsistent: an `OwnerDied` guard was dropped unrepaired; the next locker gets `OwnerDied` too |
    /// | `w / d / 0x3fff_ffff`           | not recoverable: a holder gave up on the data ([`RawMutex::give_up`]); every lock fails |
    ///
    /// Claiming and naming the owner is one CAS, so a kill at any point leaves a lock that names
    /// a (dead) owner. A waiter that finds the named owner dead takes the lock over with one CAS
    /// from the exact word it judged, setting bit 30, and gets `OwnerDied`. An owner whose
    /// namespace tag differs from the waiter's is never judged dead (its thread id means
    /// nothing in the waiter's namespace).
    state: AtomicU32,
    /// How many waiters are inside their futex wait (incremented just before it, decremented
    /// just after). A hint only: a waiter that slept and then takes the lock keeps the waiters
    /// bit set for the others only when this is not zero, instead of always (which made every
    /// such owner's unlock a `FUTEX_WAKE` system call even when nobody slept). A waiter killed
    /// in its wait leaves it one too high for good: the lock then keeps the bit as it always
    /// did. Too low (a scribbled word) costs at most a sleeper's [`LIVENESS_PERIOD`] nap.
    sleepers: AtomicU32,
    /// The owner's pid and process start time (see [`OwnerMeta`]).
    meta: OwnerMeta,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(RawMutex, [u64; 3]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(RawMutex, u64);

/// A snapshot of a lock word, for tools.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let m = seg.mutex("m", 0u8)?;
/// assert_eq!(m.state().owner_tid, None);
/// let g = m.lock().unwrap();
/// let s = m.state();
/// assert_eq!(s.owner_pid, Some(std::process::id()));
/// assert!(s.owner_tid.is_some() && !s.owner_died && !s.not_recoverable);
/// drop(g);
/// assert_eq!(m.state().owner_tid, None);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LockState {
    /// Thread id of the owner (`None`: unlocked or not recoverable).
    pub owner_tid: Option<u32>,
    /// Process id of the owner, when its record is about this owner.
    pub owner_pid: Option<u32>,
    /// A waiter may be sleeping.
    pub waiters: bool,
    /// The data has not been marked consistent since an owner died holding the lock.
    pub owner_died: bool,
    /// The lock is permanently unusable.
    pub not_recoverable: bool,
}

impl RawMutex {
    /// An unlocked word.
    pub(crate) fn new() -> Self {
        RawMutex {
            state: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            meta: OwnerMeta::new(),
        }
    }

    /// Takes the lock for the calling thread.
    #[inline(always)]
    pub(crate) fn lock(&self, wait: Wait) -> Result<(Held, Acquired), Fail> {
        let me = me();
        if self.claim_unmarked(&me) {
            return Ok((me.held(), Acquired::Clean));
        }
        // The slow path looks the identity up again (the same: a thread's identity changes
        // only in a forked child), so that the fast path keeps `me` in registers.
        self.lock_slow(wait)
    }

    /// Takes the lock if its word names no owner now (a few CAS attempts while it does not);
    /// never judges a holder's liveness (no `/proc` read), so a lock held by a dead owner is
    /// `WouldBlock` here: [`lock`](Self::lock) takes it over. For callers that poll in a spin
    /// loop, where `Wait::Try`'s liveness check on every lost race would cost more than the
    /// wait.
    #[inline(always)]
    pub(crate) fn lock_if_free(&self) -> Result<(Held, Acquired), Fail> {
        let me = me();
        if self.claim_unmarked(&me) {
            return Ok((me.held(), Acquired::Clean));
        }
        self.lock_if_free_slow()
    }

    /// The fast path of [`lock`](Self::lock) and [`lock_if_free`](Self::lock_if_free): claims
    /// an unmarked free word for `me` (one CAS) and records the owner.
    #[inline(always)]
    fn claim_unmarked(&self, me: &Me) -> bool {
        if self
            .state
            .compare_exchange(0, me.owner, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            crate::hooks::at("mutex.lock.claimed");
            self.meta.record(me);
            true
        } else {
            false
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_if_free_slow(&self) -> Result<(Held, Acquired), Fail> {
        let me = me();
        let mut cur = self.state.load(Ordering::Relaxed);
        for _ in 0..8 {
            let owner = cur & OWNER_MASK;
            if owner == NOT_RECOVERABLE {
                return Err(Fail::NotRecoverable);
            }
            if owner != 0 {
                return Err(if self.meta.is_me(owner, &me) {
                    Fail::WouldDeadlock
                } else {
                    Fail::WouldBlock
                });
            }
            // As `lock_contended` claims a free word: the waiters and owner-died marks stay.
            let new = me.owner | (cur & (WAITERS | OWNER_DIED));
            match self
                .state
                .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    crate::hooks::at("mutex.lock.claimed");
                    self.meta.record(&me);
                    let how = if cur & OWNER_DIED != 0 {
                        Acquired::OwnerDied
                    } else {
                        Acquired::Clean
                    };
                    return Ok((me.held(), how));
                }
                Err(now) => cur = now,
            }
        }
        Err(Fail::WouldBlock)
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self, wait: Wait) -> Result<(Held, Acquired), Fail> {
        let me = me();
        self.lock_contended(&me, wait).map(|a| (me.held(), a))
    }

    fn lock_contended(&self, me: &Me, wait: Wait) -> Result<Acquired, Fail> {
        let deadline = match wait {
            Wait::For(d) => Some((Deadline::after(d), d.unwrap_or(Duration::MAX))),
            Wait::Try => None,
        };
        // The locks' spin phase before announcing a waiter and sleeping: fewer, longer spins
        // than the rings', so that the holder keeps the line between the waiter's looks.
        let mut spin = Spin::for_lock();
        // Whether this thread has slept: it then sets the waiters bit when it takes the lock if
        // others still sleep (one unlock wakes one sleeper and clears the bit).
        let mut slept = false;
        let mut tries = 0u32;
        let mut checked_liveness = false;
        loop {
            let cur = self.state.load(Ordering::Relaxed);
            let owner = cur & OWNER_MASK;
            if owner == NOT_RECOVERABLE {
                return Err(Fail::NotRecoverable);
            }
            if owner == 0 {
                let new = me.owner | (cur & (WAITERS | OWNER_DIED)) | self.announce(slept);
                if self
                    .state
                    .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    crate::hooks::at("mutex.lock.claimed");
                    self.meta.record(me);
                    return Ok(if cur & OWNER_DIED != 0 {
                        Acquired::OwnerDied
                    } else {
                        Acquired::Clean
                    });
                }
                tries += 1;
                if matches!(wait, Wait::Try) && tries > 8 {
                    return Err(Fail::WouldBlock);
                }
                continue;
            }
            if self.meta.is_me(owner, me) {
                return Err(Fail::WouldDeadlock);
            }
            let Some((deadline, total)) = deadline else {
                if let Some(a) = self.take_if_dead(cur, me, slept) {
                    return Ok(a);
                }
                tries += 1;
                if self.state.load(Ordering::Relaxed) == cur || tries > 8 {
                    return Err(Fail::WouldBlock);
                }
                continue;
            };
            if cur & WAITERS == 0 && !spin.over() {
                spin.snooze();
                continue;
            }
            let want = cur | WAITERS;
            if cur & WAITERS == 0
                && self
                    .state
                    .compare_exchange(cur, want, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            slept = true;
            if deadline.expired() {
                if !checked_liveness {
                    if let Some(a) = self.take_if_dead(want, me, slept) {
                        return Ok(a);
                    }
                }
                return Err(Fail::Timeout(total));
            }
            let nap = deadline
                .remaining()
                .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
            // Counted before the wait checks the word, so that a sleeper woken by the unlock
            // that changes the word (and takes the lock next) sees this one still asleep.
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            futex_wait(&self.state, want, Some(nap));
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            // Nothing changed while we slept: maybe nobody will ever unlock.
            if self.state.load(Ordering::Relaxed) == want {
                checked_liveness = true;
                if let Some(a) = self.take_if_dead(want, me, slept) {
                    return Ok(a);
                }
            } else {
                checked_liveness = false;
            }
        }
    }

    /// If the owner named by the word `cur` is dead, takes the lock over from it (one CAS from
    /// exactly `cur`) and returns `OwnerDied`.
    #[cold]
    fn take_if_dead(&self, cur: u32, me: &Me, slept: bool) -> Option<Acquired> {
        let owner = cur & OWNER_MASK;
        if owner == 0 || owner == NOT_RECOVERABLE || self.meta.alive(owner) {
            return None;
        }
        let new = me.owner | OWNER_DIED | (cur & WAITERS) | self.announce(slept);
        self.state
            .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        crate::hooks::at("mutex.lock.claimed");
        self.meta.record(me);
        Some(Acquired::OwnerDied)
    }

    /// The waiters bit a thread that `slept` sets in the word it takes: set while other
    /// threads sleep (or may be about to), since the unlock that woke this one cleared it.
    #[inline]
    fn announce(&self, slept: bool) -> u32 {
        if slept && self.sleepers.load(Ordering::SeqCst) != 0 {
            WAITERS
        } else {
            0
        }
    }

    /// Releases the lock held by `me`. The owner-died mark stays on the word: a lock taken from
    /// a dead owner and released without [`mark_consistent`](Self::mark_consistent) is handed
    /// to the next locker as `OwnerDied` again (Rust's poison convention, not POSIX's
    /// `ENOTRECOVERABLE`).
    #[inline(always)]
    pub(crate) fn unlock(&self, me: &Held) {
        if self
            .state
            .compare_exchange(me.owner, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow(*me);
    }

    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, me: Held) {
        if let Some(old) = self.release_with(&me, |cur| cur & OWNER_DIED) {
            if old & WAITERS != 0 {
                futex_wake(&self.state, 1);
            }
        }
    }

    /// Releases the lock held by `me` and makes it permanently not recoverable (POSIX
    /// `ENOTRECOVERABLE`): every present and future lock fails. Wakes every waiter to tell them.
    pub(crate) fn give_up(&self, me: &Held) {
        if self
            .release_with(me, |cur| (cur & OWNER_DIED) | NOT_RECOVERABLE)
            .is_some()
        {
            futex_wake(&self.state, u32::MAX);
        }
    }

    /// Replaces the word by `new(cur)` if `me` owns it; returns the word it replaced (`None`:
    /// not ours any more, because a peer judged us dead or scribbled on the word; then it is
    /// left alone).
    fn release_with(&self, me: &Held, new: impl Fn(u32) -> u32) -> Option<u32> {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & OWNER_MASK != me.owner {
                return None;
            }
            match self
                .state
                .compare_exchange(cur, new(cur), Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Some(cur),
                Err(now) => cur = now,
            }
        }
    }

    /// Clears the owner-died mark of a lock held by `me` (the data was repaired).
    pub(crate) fn mark_consistent(&self, me: &Held) {
        let mut cur = self.state.load(Ordering::Relaxed);
        while cur & OWNER_MASK == me.owner && cur & OWNER_DIED != 0 {
            match self.state.compare_exchange(
                cur,
                cur & !OWNER_DIED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Whether the calling thread `me` holds the lock now (stable for the caller: only the owner
    /// releases it).
    pub(crate) fn held_by(&self, me: &Me) -> bool {
        let owner = self.state.load(Ordering::Relaxed) & OWNER_MASK;
        self.meta.is_me(owner, me)
    }

    /// Whether the word carries the owner-died mark (the data was not marked consistent).
    pub(crate) fn owner_died_marked(&self) -> bool {
        self.state.load(Ordering::Relaxed) & OWNER_DIED != 0
    }

    /// The current state, for tools.
    pub(crate) fn state(&self) -> LockState {
        let cur = self.state.load(Ordering::Acquire);
        let owner = cur & OWNER_MASK;
        let not_recoverable = owner == NOT_RECOVERABLE;
        let held = owner != 0 && !not_recoverable;
        LockState {
            owner_tid: held.then_some(owner & TID_MASK),
            owner_pid: if held { self.meta.pid_of(owner) } else { None },
            waiters: cur & WAITERS != 0,
            owner_died: cur & OWNER_DIED != 0,
            not_recoverable,
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// A thread id that no live thread has any more.
    fn dead_tid() -> u32 {
        std::thread::spawn(crate::process::tid).join().unwrap()
    }

    #[test]
    fn owner_killed_before_recording_itself() {
        // The claiming CAS happened, the owner record was never written (killed in between).
        let r = RawMutex::new();
        r.state.store(dead_tid(), Ordering::Relaxed);
        let (me, how) = r.lock(Wait::For(Some(Duration::from_secs(5)))).unwrap();
        assert_eq!(how, Acquired::OwnerDied);
        assert!(r.state().owner_died);
        r.mark_consistent(&me);
        r.unlock(&me);
        assert_eq!(r.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn lock_if_free_never_takes_over_and_keeps_the_marks() {
        // A dead owner's lock is not taken (that is lock's job, with its liveness check).
        let r = RawMutex::new();
        r.state.store(dead_tid() | WAITERS, Ordering::Relaxed);
        assert_eq!(r.lock_if_free().unwrap_err(), Fail::WouldBlock);
        assert_eq!(r.state.load(Ordering::Relaxed) & WAITERS, WAITERS);
        // Free but unrepaired (owner-died mark): taken as OwnerDied, the waiters bit kept.
        r.state.store(OWNER_DIED | WAITERS, Ordering::Relaxed);
        let (me1, how) = r.lock_if_free().unwrap();
        assert_eq!(how, Acquired::OwnerDied);
        assert_eq!(
            r.state.load(Ordering::Relaxed),
            me1.owner | OWNER_DIED | WAITERS
        );
        // Held by this thread: WouldDeadlock, not a second claim.
        assert_eq!(r.lock_if_free().unwrap_err(), Fail::WouldDeadlock);
        r.mark_consistent(&me1);
        r.unlock(&me1);
        let (me2, how) = r.lock_if_free().unwrap();
        assert_eq!(how, Acquired::Clean);
        r.give_up(&me2);
        assert_eq!(r.lock_if_free().unwrap_err(), Fail::NotRecoverable);
    }

    /// This process's owner word with another start time: a process that reused our pid.
    fn reused_pid_word() -> u64 {
        let id = crate::process::me();
        crate::process::Identity {
            start: id.start + 12345,
            ..id
        }
        .word()
    }

    /// This thread's lock-word owner field with another thread id.
    fn owner_field(tid: u32) -> u32 {
        (me().owner & !TID_MASK) | tid
    }

    #[test]
    fn stale_record_of_a_reused_pid_is_not_taken_for_the_owner() {
        // The record names this very process but with another start time: not us, not alive.
        let r = RawMutex::new();
        let fake = Me::new(owner_field(dead_tid()), reused_pid_word(), 0);
        r.state.store(fake.owner | WAITERS, Ordering::Relaxed);
        r.meta.record(&fake);
        let (_, how) = r.lock(Wait::For(Some(Duration::from_secs(5)))).unwrap();
        assert_eq!(how, Acquired::OwnerDied);
        assert!(r.state().waiters, "the waiters bit is kept for sleepers");
    }

    #[test]
    fn a_record_torn_by_a_hand_off_is_not_believed() {
        // Issue 10, item 9: the owner record was two loads, so a reader could pair the live
        // owner's id with the next owner's start time and take a live owner for dead. Here the
        // lock word and the record's owner half name a live thread of this process, and the
        // process half is another (dead) process's: the pair is rejected, and the live thread
        // id decides.
        let r = RawMutex::new();
        std::thread::scope(|s| {
            let (tx, rx) = std::sync::mpsc::channel();
            let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
            s.spawn(move || {
                tx.send(me()).unwrap();
                let _ = done_rx.recv();
            });
            let live = rx.recv().unwrap();
            r.state.store(live.owner, Ordering::Relaxed);
            r.meta.record(&live);
            r.meta.proc.store(reused_pid_word(), Ordering::Relaxed);
            assert_eq!(r.meta.proc_of(live.owner), None);
            assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::WouldBlock);
            // The consistent record of the same thread: alive too.
            r.meta.record(&live);
            assert_eq!(r.meta.proc_of(live.owner), Some(live.proc));
            assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::WouldBlock);
            done_tx.send(()).unwrap();
        });
    }

    #[test]
    fn an_owner_in_another_pid_namespace_is_never_taken_for_dead() {
        let id = crate::process::me();
        let foreign_ns = crate::process::Identity {
            pid: (1 << 22) - 5, // no such process here
            start: 999,
            pid_ns: id.pid_ns + 1,
        };
        let tid = dead_tid();
        let mine = me().owner >> 22;
        assert_ne!(mine, 0, "this process's namespace tag is known");
        // The lock word's tag says so at once (before any record is written)...
        let r = RawMutex::new();
        let other = if mine == 254 { 1 } else { mine + 1 };
        r.state.store(tid | (other << 22), Ordering::Relaxed);
        assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::WouldBlock);
        let t = std::time::Instant::now();
        assert!(matches!(
            r.lock(Wait::For(Some(Duration::from_millis(30)))),
            Err(Fail::Timeout(_))
        ));
        assert!(t.elapsed() >= Duration::from_millis(30));
        // ...and when the 8-bit tags collide, the record's full namespace tag does.
        let r = RawMutex::new();
        let owner = owner_field(tid);
        r.state.store(owner, Ordering::Relaxed);
        r.meta.record(&Me::new(owner, foreign_ns.word(), 0));
        assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::WouldBlock);
        // The same record in our namespace: dead, taken over.
        let local = crate::process::Identity {
            pid_ns: id.pid_ns,
            ..foreign_ns
        };
        r.meta.record(&Me::new(owner, local.word(), 0));
        assert_eq!(r.lock(Wait::Try).unwrap().1, Acquired::OwnerDied);
    }

    #[test]
    fn try_lock_gives_up_on_a_live_owner() {
        let r = RawMutex::new();
        // pid 1 (init) is alive; its main thread's tid is 1.
        r.state.store(1, Ordering::Relaxed);
        assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::WouldBlock);
        let t = std::time::Instant::now();
        assert_eq!(
            r.lock(Wait::For(Some(Duration::from_millis(25))))
                .unwrap_err(),
            Fail::Timeout(Duration::from_millis(25))
        );
        assert!(t.elapsed() >= Duration::from_millis(25));
        r.state.store(NOT_RECOVERABLE, Ordering::Relaxed);
        assert_eq!(r.lock(Wait::Try).unwrap_err(), Fail::NotRecoverable);
    }
}
