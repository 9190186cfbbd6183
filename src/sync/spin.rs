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

use super::{spin_hint, yield_now};

/// Exponential spin steps: step `k` spins `2^k` pause hints, `2^SPIN_STEPS - 1` in all.
#[cfg(not(feature = "loom"))]
const SPIN_STEPS: u32 = 6;
/// Yields after the spin steps before the spin phase is over.
#[cfg(not(feature = "loom"))]
const YIELD_STEPS: u32 = 2;

/// The spin phase of the real atomics: (`SPIN_STEPS`, `YIELD_STEPS`).
#[cfg(not(feature = "loom"))]
const fn tune() -> (u32, u32) {
    (SPIN_STEPS, YIELD_STEPS)
}

/// Under loom one snooze (a yield to the model) is the whole spin phase: fewer states.
#[cfg(feature = "loom")]
const fn tune() -> (u32, u32) {
    (0, 1)
}

/// A wait's spin phase: exponentially longer spins, then a few yields, then (for a caller that
/// cannot sleep) a yield per call.
pub struct Spin {
    step: u32,
}

impl Spin {
    /// A fresh spin phase.
    pub const fn new() -> Self {
        Spin { step: 0 }
    }

    /// Waits a little: spins (growing) during the spin phase, yields the CPU after it.
    #[inline]
    pub fn snooze(&mut self) {
        let (spin, yields) = tune();
        if self.step < spin {
            for _ in 0..(1u32 << self.step) {
                spin_hint();
            }
        } else {
            yield_now();
        }
        if self.step < spin + yields {
            self.step += 1;
        }
    }

    /// Whether the spin phase is over: a caller that can sleep should sleep now; one that
    /// cannot keeps calling [`snooze`](Spin::snooze), which then yields at every call.
    #[inline]
    pub fn over(&self) -> bool {
        let (spin, yields) = tune();
        self.step >= spin + yields
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
}
