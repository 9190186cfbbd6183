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
    if loom_futex::exact() {
        return loom_futex::wait_exact(word, expected);
    }
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
///
/// [`set_exact(true)`](loom_futex::set_exact) is stricter still: a `futex_wake(word, n)` wakes
/// at most `n` of the waiters sleeping on that word (as the kernel does), so a model can also
/// tell when a protocol wakes one sleeper and forgets the others.
#[cfg(feature = "loom")]
pub mod loom_futex {
    use crate::sync::{AtomicU32, Ordering};

    std::thread_local! {
        // Per OS thread: loom runs a model's threads as coroutines on the thread that called
        // `loom::model`, and the test harness runs tests on several threads.
        static STRICT: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
        static EXACT: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    }

    /// Exact mode: per word address, (address, waiters asleep, wake-ups granted and not yet
    /// taken).
    type Words = Vec<(usize, u32, u32)>;

    loom::lazy_static! {
        static ref FUTEX: (loom::sync::Mutex<()>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(()), loom::sync::Condvar::new());
        static ref WORDS: (loom::sync::Mutex<Words>, loom::sync::Condvar) =
            (loom::sync::Mutex::new(Vec::new()), loom::sync::Condvar::new());
    }

    /// Turns strict futex waits on or off for the models that this (OS) thread runs next.
    pub fn set_strict(on: bool) {
        STRICT.with(|s| s.set(on));
    }

    /// Turns exact futex wakes (at most `n` waiters of the word; waits never time out) on or
    /// off for the models that this (OS) thread runs next.
    pub fn set_exact(on: bool) {
        EXACT.with(|s| s.set(on));
    }

    pub(crate) fn strict() -> bool {
        STRICT.with(|s| s.get())
    }

    pub(crate) fn exact() -> bool {
        EXACT.with(|s| s.get())
    }

    /// The entry of the word at `addr` in `words` (added if missing).
    fn entry(words: &mut Words, addr: usize) -> &mut (usize, u32, u32) {
        let i = match words.iter().position(|e| e.0 == addr) {
            Some(i) => i,
            None => {
                words.push((addr, 0, 0));
                words.len() - 1
            }
        };
        &mut words[i]
    }

    pub(crate) fn wait_exact(word: &AtomicU32, expected: u32) {
        let (m, cv) = &*WORDS;
        let addr = word as *const AtomicU32 as usize;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        entry(&mut g, addr).1 += 1;
        loop {
            g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            let e = entry(&mut g, addr);
            if e.2 > 0 {
                e.2 -= 1;
                e.1 -= 1;
                return;
            }
        }
    }

    pub(crate) fn wake_exact(word: &AtomicU32, n: u32) -> usize {
        let (m, cv) = &*WORDS;
        let addr = word as *const AtomicU32 as usize;
        let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
        let e = entry(&mut g, addr);
        let woken = n.min(e.1 - e.2);
        e.2 += woken;
        cv.notify_all();
        drop(g);
        woken as usize
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
/// mode, see [`loom_futex`], it wakes every strict waiter; in exact mode at most `n` waiters
/// of `word`).
#[cfg(feature = "loom")]
pub fn futex_wake(word: &AtomicU32, n: u32) -> usize {
    if loom_futex::exact() {
        return loom_futex::wake_exact(word, n);
    }
    if loom_futex::strict() {
        loom_futex::wake();
    }
    0
}
