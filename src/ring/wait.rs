//! The ring family's one wait loop and the per-process side claims.
//!
//! A side that must wait spins briefly (the crate's one spin policy, [`Spin`]), then
//! [`arm`](Sleeper::arm)s: it announces itself in a waiter flag, issues a heavy barrier and reads
//! the futex word; it re-checks its condition and sleeps on the word. The other side, after publishing its position, calls
//! [`notify`]: a light barrier, then a read of the flag, and a [`wake`] only if it is set. The
//! barriers pair like two `SeqCst` fences (see [`crate::sync::asym`]: the light one is a compiler
//! barrier where the kernel has global expedited membarriers), so no wake-up is lost, and the fast
//! path makes neither a system call nor a fence.
//!
//! Every face (SPSC, byte ring, pipe, MPMC, MPMC bytes) waits through [`block`]: one loop, one
//! spin policy, one sleep bound and one recheck period ([`RECHECK`]). A sleep never lasts longer
//! than [`RECHECK`], and once per period the face is told that a recheck is due: SPSC, byte ring
//! and pipe then look at their peer's claim ([`peer_gone`]), MPMC at the owner of the slot in its
//! way. A peer killed at any instruction (even between publishing and waking) is therefore
//! noticed within about one period of waiting, never waited on forever.

use crate::error::{Error, Result};
use crate::sync::asym::{heavy_barrier, light_barrier};
use crate::sync::{futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering, Spin};
use std::time::Duration;

/// The longest single futex sleep of a blocked call, and the period at which it rechecks the
/// liveness of whoever it waits on (the first recheck comes one period after the spin phase).
pub(crate) const RECHECK: Duration = Duration::from_millis(10);

/// When a blocked call is due to recheck liveness: one [`RECHECK`] after its spin phase, then
/// once per period. Under loom at every look after the spin phase (time does not pass there, and
/// a model must be deterministic).
struct Recheck {
    #[cfg(not(feature = "loom"))]
    next: Option<std::time::Instant>,
}

impl Recheck {
    fn new() -> Self {
        Recheck {
            #[cfg(not(feature = "loom"))]
            next: None,
        }
    }

    /// Whether a recheck is due now (the spin phase is over).
    fn due(&mut self) -> bool {
        #[cfg(not(feature = "loom"))]
        {
            let now = std::time::Instant::now();
            match self.next {
                None => {
                    self.next = Some(now + RECHECK);
                    false
                }
                Some(t) if now >= t => {
                    self.next = Some(now + RECHECK);
                    true
                }
                Some(_) => false,
            }
        }
        #[cfg(feature = "loom")]
        true
    }
}

/// Where a blocked side sleeps: the futex word it sleeps on and the flag (or count) by which it
/// announces itself to the side that wakes it.
#[derive(Clone, Copy)]
pub(crate) struct Sleeper<'a> {
    waiting: &'a AtomicU32,
    word: &'a AtomicU32,
    /// Many sleepers share `waiting` (MPMC): it counts them instead of being a flag.
    many: bool,
}

impl<'a> Sleeper<'a> {
    /// The only sleeper on `word` (one side of an SPSC ring or byte lane).
    pub(crate) fn one(waiting: &'a AtomicU32, word: &'a AtomicU32) -> Self {
        Sleeper {
            waiting,
            word,
            many: false,
        }
    }

    /// One of many sleepers on `word` (MPMC).
    pub(crate) fn many(waiting: &'a AtomicU32, word: &'a AtomicU32) -> Self {
        Sleeper {
            waiting,
            word,
            many: true,
        }
    }

    /// Announces the sleeper and returns the futex value to sleep on; the caller must re-check
    /// its condition before sleeping.
    fn arm(&self) -> u32 {
        if self.many {
            self.waiting.fetch_add(1, Ordering::Relaxed);
        } else {
            self.waiting.store(1, Ordering::Relaxed);
        }
        let paired = heavy_barrier();
        let seq = self.word.load(Ordering::Acquire);
        if paired {
            seq
        } else {
            // The membarrier failed: a notifier's light barrier may miss our flag. Return a
            // value the word does not hold, so the sleep returns at once and the caller polls.
            seq.wrapping_add(1)
        }
    }

    /// Withdraws the announcement of [`arm`](Sleeper::arm).
    fn disarm(&self) {
        if self.many {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.waiting.store(0, Ordering::Relaxed);
        }
    }
}

/// What one look at a blocked call's condition found.
pub(crate) enum Look<R> {
    /// Done: return this.
    Ready(R),
    /// Nothing yet: keep waiting.
    Wait,
    /// Something changed (a dead owner's slot was reaped): look again at once.
    Again,
}

/// The one wait loop. Calls `look` until it is [`Look::Ready`]: spins ([`Spin`]) between the
/// first looks, then sleeps on the futex of `at` for at most [`RECHECK`] at a time (announcing
/// itself, and looking once more after announcing, so no wake-up is lost). `look(true)` means a
/// liveness recheck is due (see [`RECHECK`]). Returns `None` once `deadline` has passed.
pub(crate) fn block<R>(
    at: Sleeper<'_>,
    deadline: Deadline,
    mut look: impl FnMut(bool) -> Look<R>,
) -> Option<R> {
    let mut spin = Spin::new();
    // Under loom the spin phase is empty (fewer states to explore).
    let mut spinning = !cfg!(feature = "loom");
    let mut recheck = Recheck::new();
    let mut armed: Option<u32> = None;
    loop {
        let due = !spinning && recheck.due();
        match look(due) {
            Look::Ready(r) => {
                if armed.is_some() {
                    at.disarm();
                }
                return Some(r);
            }
            Look::Again => {
                if armed.take().is_some() {
                    at.disarm();
                }
                continue;
            }
            Look::Wait => {}
        }
        if let Some(seq) = armed.take() {
            if !deadline.expired() {
                let t = deadline.remaining().map_or(RECHECK, |r| r.min(RECHECK));
                futex_wait(at.word, seq, Some(t));
            }
            at.disarm();
            continue;
        }
        if deadline.expired() {
            return None;
        }
        if spinning {
            if !spin.over() {
                spin.snooze();
                continue;
            }
            // The spin phase is over: start the recheck clock, look once more, then sleep.
            spinning = false;
            recheck.due();
            continue;
        }
        armed = Some(at.arm());
    }
}

/// Whether the peer recorded in claim word `peer` held it and died (a released or never claimed
/// side is not gone: another process may still take it). Under loom every peer is a thread of
/// the model, alive.
pub(crate) fn peer_gone(peer: &AtomicU64) -> bool {
    #[cfg(feature = "loom")]
    {
        let _ = peer;
        false
    }
    #[cfg(not(feature = "loom"))]
    {
        let w = peer.load(Ordering::Acquire);
        w != 0 && !crate::process::word_alive(w)
    }
}

/// The claim word of this process: its owner word ([`crate::process`]).
pub(crate) fn my_claim() -> u64 {
    crate::process::my_word()
}

/// Whether the holder recorded in claim word `w` is still running (the crate's one liveness
/// rule, [`crate::process::word_alive`]).
pub(crate) fn holder_alive(w: u64) -> bool {
    crate::process::word_alive(w)
}

/// Claims a side (one CAS of this process's owner word into `word`); a side whose holder died
/// is taken over.
pub(crate) fn claim(word: &AtomicU64, side: &'static str) -> Result<()> {
    let me = my_claim();
    let mut cur = word.load(Ordering::Acquire);
    loop {
        if cur != 0 && (cur == me || holder_alive(cur)) {
            return Err(Error::RingSideTaken {
                side,
                pid: crate::process::word_pid(cur),
            });
        }
        match word.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(now) => cur = now,
        }
    }
}

/// Releases a side claimed by [`claim`] (if this process still holds it).
pub(crate) fn release(word: &AtomicU64) {
    let _ = word.compare_exchange(my_claim(), 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// After publishing a position: wake the other side if it announced that it sleeps.
#[inline]
pub(crate) fn notify(waiting: &AtomicU32, word: &AtomicU32) {
    light_barrier();
    if waiting.load(Ordering::Relaxed) != 0 {
        wake(word);
    }
}

/// Wakes every sleeper on `word`.
#[cold]
pub(crate) fn wake(word: &AtomicU32) {
    word.fetch_add(1, Ordering::Release);
    futex_wake(word, u32::MAX);
}
