//! The crate's one spin policy: how long a wait spins and yields before it sleeps (or, for the
//! waits that cannot sleep, before every further try yields the CPU). The ring family's wait
//! loop ([`crate::ring`]), the lock family, the seqlocks and the maps all use it.
//!
//! Tuned from the ping-pong benches (`cargo bench --bench ring -- pingpong-latency`, README
//! "Measured"): on the reference VM a `pause` costs ~37 ns and a `sched_yield` ~0.8 µs when
//! nothing else is runnable (a whole time slice when something is), and a futex hop
//! (`raw-futex-pingpong`, wake to wake) costs ~2 µs when the machine is quiet. The spin phase
//! is therefore about one hop: 63 pauses (~2.3 µs), then two yields. A longer phase lost in
//! the same runs: spinning 255 pauses (or 7 growing spins and 13 yields, the ring family's
//! earlier policy) made the sleeping round trip 1.3–2× slower, since a spinning side holds a
//! CPU that its woken peer could have run on.
//!
//! The lock family waits for another *holder*, not for a peer's next message, and spins
//! differently ([`Spin::for_lock`]): its first look at the word comes after 8 pauses, then 16,
//! 32 and 64 (120 pauses, ~4.4 µs), then the same two yields. Every look of a waiter pulls the
//! lock's cache line away from the holder, which must take it back to write its data and
//! unlock, so a waiter that looks often makes the holder slower and the lock change hands (a
//! cache transfer each time) more often. Measured between two threads and between two
//! processes incrementing one `u64` under the lock (`cargo bench --bench lock --
//! lock-contended`, and a driver alternating the phases, 2026-12-01, load 6–9, the bench run
//! under `chrt -f 1` so that no other task preempts its two sides): time per increment
//! 0.67–0.74× parking_lot's in the same run with this phase, 1.0–1.3× with the rings' phase
//! (1, 2, .. 32 pauses); 4 .. 64 pauses gave 0.8×, 8 .. 32 pauses 0.8–0.9×, 1 .. 128 pauses
//! 0.8–1.1×. Without `chrt` on that loaded machine both phases measured the scheduler (200–400
//! ns per increment, 0.9–1.3× parking_lot's either way). Spinning longer (7 yields, as
//! parking_lot does) changed nothing measurable.

use super::{spin_hint, yield_now};

// Under loom one snooze (a yield to the model) is the whole spin phase, for every family:
// fewer states.

/// Exponential spin steps: step `k` spins `2^k` pause hints, `2^SPIN_STEPS - 1` in all.
const SPIN_STEPS: u32 = if cfg!(feature = "loom") { 0 } else { 6 };
/// Yields after the spin steps before the spin phase is over.
const YIELD_STEPS: u32 = if cfg!(feature = "loom") { 1 } else { 2 };
/// The lock family's spin steps ([`Spin::for_lock`]): `LOCK_STEPS` steps from `2^LOCK_FIRST`
/// pauses (8, 16, 32, 64).
const LOCK_FIRST: u32 = if cfg!(feature = "loom") { 0 } else { 3 };
const LOCK_STEPS: u32 = if cfg!(feature = "loom") {
    SPIN_STEPS
} else {
    4
};

/// A wait's spin phase: exponentially longer spins, then a few yields, then (for a caller that
/// cannot sleep) a yield per call.
pub struct Spin {
    step: u32,
    /// Step `k` spins `2^(k + first)` pauses.
    first: u32,
    /// Spin steps before the yields.
    spins: u32,
}

impl Spin {
    /// A fresh spin phase.
    pub const fn new() -> Self {
        Spin {
            step: 0,
            first: 0,
            spins: SPIN_STEPS,
        }
    }

    /// A fresh spin phase for a lock's waiter: fewer, longer spins (see the [module
    /// docs](self)), then the same yields.
    pub const fn for_lock() -> Self {
        Spin {
            step: 0,
            first: LOCK_FIRST,
            spins: LOCK_STEPS,
        }
    }

    /// Waits a little: spins (growing) during the spin phase, yields the CPU after it.
    #[inline]
    pub fn snooze(&mut self) {
        if self.step < self.spins {
            for _ in 0..(1u32 << (self.step + self.first)) {
                spin_hint();
            }
        } else {
            yield_now();
        }
        if self.step < self.spins + YIELD_STEPS {
            self.step += 1;
        }
    }

    /// Whether the spin phase is over: a caller that can sleep should sleep now; one that
    /// cannot keeps calling [`snooze`](Spin::snooze), which then yields at every call.
    #[inline]
    pub fn over(&self) -> bool {
        self.step >= self.spins + YIELD_STEPS
    }
}

impl Default for Spin {
    fn default() -> Self {
        Spin::new()
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    /// The spin phase is bounded (a blocked call reaches its sleep) and short: well under a
    /// millisecond of spinning before the yields, whatever the load.
    #[test]
    fn spin_phase_is_bounded_and_short() {
        let mut s = Spin::new();
        let t = std::time::Instant::now();
        let mut snoozes = 0;
        while !s.over() {
            s.snooze();
            snoozes += 1;
            assert!(
                snoozes <= SPIN_STEPS + YIELD_STEPS,
                "the spin phase never ends"
            );
        }
        assert_eq!(snoozes, SPIN_STEPS + YIELD_STEPS);
        // 63 pauses and two yields: microseconds; a second means the budget grew by accident
        // (each yield may give the CPU away for a time slice on a loaded machine).
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        // A caller that cannot sleep keeps snoozing: it stays over, and each call returns.
        s.snooze();
        assert!(s.over());
    }

    /// The locks' phase is bounded and short too: four spin steps of 8 to 64 pauses (120 in
    /// all, microseconds), then the same yields.
    #[test]
    fn lock_spin_phase_is_bounded_and_short() {
        let mut s = Spin::for_lock();
        assert_eq!((s.first, s.spins), (LOCK_FIRST, LOCK_STEPS));
        let t = std::time::Instant::now();
        let mut snoozes = 0;
        while !s.over() {
            s.snooze();
            snoozes += 1;
            assert!(
                snoozes <= LOCK_STEPS + YIELD_STEPS,
                "the spin phase never ends"
            );
        }
        assert_eq!(snoozes, LOCK_STEPS + YIELD_STEPS);
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        s.snooze();
        assert!(s.over());
    }
}
