//! The spin-then-yield policy of short waits.

use super::{spin_hint, yield_now};

/// A bounded spin-then-yield helper for waits whose other side is expected to finish quickly.
pub struct Spin {
    step: u32,
}

impl Spin {
    /// A fresh helper: the first calls spin, later ones yield the CPU.
    pub const fn new() -> Self {
        Spin { step: 0 }
    }

    /// Waits a little: exponentially longer spins, then `yield_now`.
    pub fn snooze(&mut self) {
        if self.step < 7 {
            for _ in 0..(1u32 << self.step) {
                spin_hint();
            }
            self.step += 1;
        } else {
            yield_now();
        }
    }
}

impl Default for Spin {
    fn default() -> Self {
        Spin::new()
    }
}
