//! Process-shared futex waits and wakes (see the [module docs](super)), and their loom
//! stand-ins.

use super::AtomicU32;
#[cfg(feature = "loom")]
use super::Ordering;
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (forever when `None`).
///
/// Returns when woken, when the word differs, on a signal, at the timeout, or spuriously: callers
/// re-check their condition in a loop. The wait is process-shared (the word may live in shared
/// memory mapped at different addresses in different processes).
#[cfg(not(feature = "loom"))]
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(core::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call; FUTEX_WAIT
    // only reads it (and compares with `expected`); `ts_ptr` is null or points to a timespec that
    // outlives the call. A relative timeout is what FUTEX_WAIT takes.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            core::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Loom stand-in for [`futex_wait`]: a spurious wake-up after a yield; or, in a model that
/// turned on [`loom_futex::set_strict`], a real block until a [`futex_wake`].
#[cfg(feature = "loom")]
pub fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
    if loom_futex::strict() {
        return loom_futex::wait(word, expected);
    }
    if word.load(Ordering::SeqCst) == expected {
        loom::thread::yield_now();
    }
}

/// A faithful futex for loom models that check for lost wake-ups.
///
/// By default the loom futex never blocks (every wait is a spurious wake-up), so a model cannot
/// tell whether a waker forgot to wake. With [`set_strict(true)`](loom_futex::set_strict) (at the
/// start of a model iteration), `futex_wait` blocks until some `futex_wake` (on any word: extra
/// wake-ups are allowed) and never times out, so a forgotten wake shows up as a loom deadlock.
/// Models whose waiters rely on timeouts (dead owners) keep the default.
#[cfg(feature = "loom")]
pub mod loom_futex {
    use crate::sync::{AtomicU32, Ordering};

    std::thread_local! {
        // Per OS thread: loom runs a model's threads as coroutines on the thread that called
        // `loom::model`, and the test harness runs tests on several threads.
        static STRICT: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    }

    loom::lazy_static! {
        static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
    }

    /// Turns strict futex waits on or off for the models that this (OS) thread runs next.
    pub fn set_strict(on: bool) {
        STRICT.with(|s| s.set(on));
    }

    pub(crate) fn strict() -> bool {
        STRICT.with(|s| s.get())
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32) {
        let (m, cv) = &*FUTEX;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        if word.load(Ordering::SeqCst) == expected {
            drop(cv.wait(g).unwrap_or_else(|e| e.into_inner()));
        }
    }

    pub(crate) fn wake() {
        let (m, cv) = &*FUTEX;
        let g = m.lock().unwrap_or_else(|e| e.into_inner());
        cv.notify_all();
        drop(g);
    }
}

/// Wakes up to `n` waiters sleeping on `word` (in any process). Returns how many were woken.
#[cfg(not(feature = "loom"))]
pub fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as i32;
    // SAFETY: FUTEX_WAKE does not access the word's memory beyond keying on its address, which is
    // valid and aligned for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            0u32,
        )
    };
    r.max(0) as usize
}

/// Loom stand-in for [`futex_wake`]: waiters re-check on their own, nothing to do (in strict
/// mode, see [`loom_futex`], it wakes every strict waiter).
#[cfg(feature = "loom")]
pub fn futex_wake(_word: &AtomicU32, _n: u32) -> usize {
    if loom_futex::strict() {
        loom_futex::wake();
    }
    0
}
