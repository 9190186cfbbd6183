//! The one place atomics, fences, spin hints and futex calls come from.
//!
//! Every other module imports its atomics from here, never from `core::sync::atomic`, `std::sync`
//! or `loom` directly (the source-scanning test `tests/sync_shim.rs` enforces it; clippy's
//! `disallowed-types` cannot, as it sees through the re-export). Under the `loom` feature the same
//! names resolve to loom's model-checked versions, so every algorithm written against this module
//! can be model-checked unchanged.
//!
//! Futex: [`futex_wait`] and [`futex_wake`] use the *shared* futex operations (no
//! `FUTEX_PRIVATE_FLAG`): the kernel keys them on the physical page, so a waiter in one process is
//! woken by a waker in another. Under loom they degrade to a yield (a spurious wake-up), which every
//! caller must already tolerate.
//!
//! The shim's files:
//! - this file: the atomics and fences, [`spin_hint`] and [`yield_now`];
//! - [`asym`]: asymmetric barriers (membarrier) for Dekker-style handshakes;
//! - `futex.rs`: process-shared [`futex_wait`] and [`futex_wake`]; under loom their stand-ins
//!   and `loom_futex`;
//! - `thread.rs`: [`thread_stripe`] and [`thread_id`];
//! - `spin.rs`: [`Spin`], the crate's one spin policy (spin, then yield, then sleep or keep yielding);
//! - `deadline.rs`: [`Deadline`], the end of a bounded wait.

#[cfg(not(feature = "loom"))]
pub use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(feature = "loom")]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub mod asym;
mod deadline;
mod futex;
mod spin;
mod thread;

pub use deadline::Deadline;
#[cfg(feature = "loom")]
pub use futex::loom_futex;
pub use futex::{futex_wait, futex_wake};
/// loom's `thread_local!` (per model thread and per execution), for the per-thread caches that
/// must not carry state from one loom execution into the next (only under loom; elsewhere
/// `std::thread_local!` with a `const` initializer).
#[cfg(feature = "loom")]
pub use loom::thread_local as model_thread_local;
pub use spin::Spin;
pub use thread::{thread_id, thread_stripe};

/// Hint that the caller is spinning (a `pause` on x86). Under loom: a yield to the model.
#[inline]
pub fn spin_hint() {
    #[cfg(not(feature = "loom"))]
    core::hint::spin_loop();
    #[cfg(feature = "loom")]
    loom::thread::yield_now();
}

/// Give up the CPU. Under loom: a yield to the model (which lets other threads progress).
#[inline]
pub fn yield_now() {
    #[cfg(not(feature = "loom"))]
    std::thread::yield_now();
    #[cfg(feature = "loom")]
    loom::thread::yield_now();
}
