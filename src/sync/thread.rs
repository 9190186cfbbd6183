//! Per-thread numbers: a stripe for spreading writers and the thread id of lock owner words.

#[cfg(not(feature = "loom"))]
use super::{AtomicUsize, Ordering};

/// A small per-thread number, stable for the thread's life, used to spread writers over stripes.
#[cfg(not(feature = "loom"))]
#[inline]
pub fn thread_stripe() -> usize {
    use std::cell::Cell;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut v = s.get();
        if v == usize::MAX {
            // Threads of one process take consecutive stripes; processes start at a point
            // scattered by their pid, so two single-threaded processes rarely collide.
            let pid = std::process::id() as usize;
            let base = pid.wrapping_mul(0x9E37_79B9) >> 7;
            v = base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) & (usize::MAX >> 1);
            s.set(v);
        }
        v
    })
}

/// Loom stand-in for [`thread_stripe`]: the model thread's number (0 for the model's main
/// thread, then 1, 2, … in spawn order), so threads take consecutive stripes as they do outside
/// loom.
///
/// It must be the same in every execution of a model: loom replays schedules and assumes the
/// model is deterministic. (Hashing loom's `ThreadId` is not: its `Hash` includes the execution's
/// id, so stripes changed from one execution to the next and loom reported impossible results,
/// such as a lost `fetch_add`.) Its `Debug` form, `ThreadId(N)`, shows only the stable number.
#[cfg(feature = "loom")]
pub fn thread_stripe() -> usize {
    let id = format!("{:?}", loom::thread::current().id());
    id.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0) // another format: every thread on stripe 0, still deterministic
}

/// The calling thread's identity for lock owner words: its kernel thread id (`gettid`), unique
/// system-wide while the thread lives. Under loom: 1 + the model thread's index (loom runs every
/// model thread on one OS thread, so `gettid` would not tell them apart).
#[cfg(not(feature = "loom"))]
pub fn thread_id() -> u32 {
    crate::process::tid()
}

/// Loom stand-in for [`thread_id`]: 1 + the model thread's index (0 is never returned).
#[cfg(feature = "loom")]
pub fn thread_id() -> u32 {
    // loom's ThreadId only shows its index through Debug: "ThreadId(N)".
    let s = format!("{:?}", loom::thread::current().id());
    let n: u32 = s
        .trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0);
    n + 1
}
