//! What every ring shares: the spin-then-sleep protocol and the per-process side claims.
//!
//! A side that must wait spins briefly ([`spin`]), then [`arm`]s: it announces itself in a waiter
//! flag, issues a heavy barrier and reads the futex word; it re-checks its condition and sleeps on
//! the word. The other side, after publishing its position, calls [`notify`]: a light barrier,
//! then a read of the flag, and a [`wake`] only if it is set. The barriers pair like two `SeqCst`
//! fences (see [`crate::sync::asym`]: the light one is a compiler barrier where the kernel has
//! global expedited membarriers), so no wake-up is lost, and the fast path makes neither a system
//! call nor a fence.

use crate::error::{Error, Result};
use crate::sync::asym::{heavy_barrier, light_barrier};
use crate::sync::{futex_wake, AtomicU32, AtomicU64, Ordering};

/// Spin rounds before sleeping: 7 growing spins, then yields (DESIGN.md §8: waking a sleeping
/// CPU costs ~90 µs on the reference machine). Under loom: sleep at once (fewer states).
#[cfg(not(feature = "loom"))]
const SPIN_ROUNDS: u32 = 20;
#[cfg(feature = "loom")]
const SPIN_ROUNDS: u32 = 0;

/// Spins (or yields) once if round `round` is still in the spinning phase; `false` once it is
/// time to sleep.
#[allow(clippy::absurd_extreme_comparisons)]
pub(crate) fn spin(round: u32) -> bool {
    if round >= SPIN_ROUNDS {
        return false;
    }
    if round < 7 {
        for _ in 0..(1u32 << round) {
            crate::sync::spin_hint();
        }
    } else {
        crate::sync::yield_now();
    }
    true
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

#[cold]
pub(crate) fn wake(word: &AtomicU32) {
    word.fetch_add(1, Ordering::Release);
    futex_wake(word, u32::MAX);
}

/// Announces a sleeper on `waiting` and returns the futex value to sleep on; the caller must
/// re-check its condition before sleeping.
pub(crate) fn arm(waiting: &AtomicU32, word: &AtomicU32) -> u32 {
    waiting.store(1, Ordering::Relaxed);
    let paired = heavy_barrier();
    let seq = word.load(Ordering::Acquire);
    if paired {
        seq
    } else {
        // The membarrier failed: a notifier's light barrier may miss our flag. Return a value
        // the word does not hold, so the caller's sleep returns at once and it polls instead.
        seq.wrapping_add(1)
    }
}

/// Like [`arm`] for a waiter among many: adds one to the count of sleepers on `waiting` (undone
/// by [`disarm_many`]).
pub(crate) fn arm_many(waiting: &AtomicU32, word: &AtomicU32) -> u32 {
    waiting.fetch_add(1, Ordering::Relaxed);
    let paired = heavy_barrier();
    let seq = word.load(Ordering::Acquire);
    if paired {
        seq
    } else {
        seq.wrapping_add(1) // as in `arm`: poll instead of sleeping
    }
}

/// Withdraws a sleeper announced by [`arm_many`].
pub(crate) fn disarm_many(waiting: &AtomicU32) {
    waiting.fetch_sub(1, Ordering::Relaxed);
}
