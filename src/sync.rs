//! The one place atomics, fences, spin hints and futex calls come from.
//!
//! Every other module imports its atomics from here, never from `core::sync::atomic`, `std::sync`
//! or `loom` directly (clippy's `disallowed-types` in `clippy.toml` enforces it). Under the `loom`
//! feature the same names resolve to loom's model-checked versions, so every algorithm written
//! against this module can be model-checked unchanged.
//!
//! Futex: [`futex_wait`] and [`futex_wake`] use the *shared* futex operations (no
//! `FUTEX_PRIVATE_FLAG`): the kernel keys them on the physical page, so a waiter in one process is
//! woken by a waker in another. Under loom they degrade to a yield (a spurious wake-up), which every
//! caller must already tolerate.

#[cfg(not(feature = "loom"))]
pub use core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(feature = "loom")]
pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use std::time::Duration;

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

/// Asymmetric barriers for Dekker-style handshakes between a hot side and a rare side.
///
/// A ring's producer publishes a position and then reads "does the consumer sleep?"; the
/// consumer announces that it sleeps and then reads the position. Each side needs a StoreLoad
/// barrier between its store and its load, or both can miss the other and the consumer sleeps
/// through a push. A `SeqCst` fence costs ~20 ns on the reference machine, on every push and pop.
///
/// With Linux's `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` the cost moves to the rare side:
/// the hot side issues only a compiler barrier ([`light_barrier`](asym::light_barrier)), and the side about to sleep
/// issues [`heavy_barrier`](asym::heavy_barrier), which makes every running thread of every process registered with
/// `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` execute a full memory barrier before it returns (a
/// thread not running passes one when it is switched out). Either the hot side's load comes after
/// that barrier and sees the sleeper's flag, or its store was already visible to the sleeper's
/// load: the same argument as two `SeqCst` fences (this is liburcu's and folly's asymmetric
/// fence). A process registers on first use (and again in a forked child). Where the kernel lacks
/// the command, both sides fall back to `SeqCst` fences. Under loom both are `SeqCst` fences,
/// which is what the models check.
pub mod asym {
    #[cfg(not(feature = "loom"))]
    use core::sync::atomic::{AtomicU8, Ordering};

    /// Not yet known / light barriers are compiler barriers / light barriers are fences.
    #[cfg(not(feature = "loom"))]
    const UNKNOWN: u8 = 0;
    #[cfg(not(feature = "loom"))]
    const ASYMMETRIC: u8 = 1;
    #[cfg(not(feature = "loom"))]
    const SYMMETRIC: u8 = 2;
    #[cfg(not(feature = "loom"))]
    static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

    #[cfg(not(feature = "loom"))]
    extern "C" fn after_fork_in_child() {
        // The child is a new mm: it must register again before it may use light barriers.
        MODE.store(UNKNOWN, Ordering::Relaxed);
    }

    #[cfg(not(feature = "loom"))]
    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // Miri cannot run this system call (it models fences, not membarrier): report it
        // missing, as an old kernel would, so that both sides use fences.
        if cfg!(miri) {
            return -1;
        }
        // SAFETY: membarrier takes two integer arguments and touches no user memory.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    #[cfg(not(feature = "loom"))]
    const CMD_QUERY: libc::c_int = 0;
    #[cfg(not(feature = "loom"))]
    const CMD_GLOBAL_EXPEDITED: libc::c_int = 1 << 1;
    #[cfg(not(feature = "loom"))]
    const CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_int = 1 << 2;

    #[cfg(not(feature = "loom"))]
    #[inline]
    fn mode() -> u8 {
        match MODE.load(Ordering::Relaxed) {
            UNKNOWN => init(),
            m => m,
        }
    }

    #[cfg(not(feature = "loom"))]
    #[cold]
    fn init() -> u8 {
        static AT_FORK: std::sync::Once = std::sync::Once::new();
        AT_FORK.call_once(|| {
            // Miri runs no `fork` (and has no `pthread_atfork`).
            if cfg!(miri) {
                return;
            }
            // SAFETY: registers a handler that only does an atomic store (async-signal-safe).
            unsafe {
                libc::pthread_atfork(None, None, Some(after_fork_in_child));
            }
        });
        let q = membarrier(CMD_QUERY);
        let needed = (CMD_GLOBAL_EXPEDITED | CMD_REGISTER_GLOBAL_EXPEDITED) as libc::c_long;
        let m = if q >= 0 && q & needed == needed && membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) == 0
        {
            ASYMMETRIC
        } else {
            SYMMETRIC
        };
        MODE.store(m, Ordering::Relaxed);
        m
    }

    /// Registers this process for light barriers now (otherwise done on first use).
    pub fn prepare() {
        #[cfg(not(feature = "loom"))]
        mode();
    }

    /// The hot side's StoreLoad barrier: a compiler barrier when this process is registered
    /// for global expedited membarriers, a `SeqCst` fence otherwise.
    #[inline]
    pub fn light_barrier() {
        #[cfg(not(feature = "loom"))]
        {
            if mode() == ASYMMETRIC {
                core::sync::atomic::compiler_fence(Ordering::SeqCst);
            } else {
                core::sync::atomic::fence(Ordering::SeqCst);
            }
        }
        #[cfg(feature = "loom")]
        loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
    }

    /// The rare side's StoreLoad barrier, pairing with [`light_barrier`] in any process: a
    /// `SeqCst` fence and, where the kernel has it, a global expedited membarrier. Returns
    /// `false` if the membarrier was needed but failed: the caller must then not sleep for long
    /// (a peer's light barrier may have missed its announcement).
    #[must_use]
    pub fn heavy_barrier() -> bool {
        #[cfg(not(feature = "loom"))]
        {
            core::sync::atomic::fence(Ordering::SeqCst);
            // Peers may be registered even if this process is not: issue it whenever the
            // kernel has the command.
            static QUERY: std::sync::OnceLock<libc::c_long> = std::sync::OnceLock::new();
            let q = *QUERY.get_or_init(|| membarrier(CMD_QUERY));
            if q >= 0 && q & CMD_GLOBAL_EXPEDITED as libc::c_long != 0 {
                return membarrier(CMD_GLOBAL_EXPEDITED) == 0;
            }
            true
        }
        #[cfg(feature = "loom")]
        {
            loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
            true
        }
    }
}

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
    use super::{AtomicU32, Ordering};

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

/// A point in time after which a bounded wait gives up. Under loom time does not pass, so a
/// deadline never expires there (the model explores the schedules instead).
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    #[cfg(not(feature = "loom"))]
    at: Option<std::time::Instant>,
}

impl Deadline {
    /// A deadline `d` from now; `None` waits forever.
    pub fn after(d: Option<Duration>) -> Self {
        #[cfg(feature = "loom")]
        let _ = d;
        Deadline {
            #[cfg(not(feature = "loom"))]
            at: d.and_then(|d| std::time::Instant::now().checked_add(d)),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        #[cfg(not(feature = "loom"))]
        return self.at.is_some_and(|t| std::time::Instant::now() >= t);
        #[cfg(feature = "loom")]
        false
    }

    /// Time left before the deadline (`None` = unbounded); zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        #[cfg(not(feature = "loom"))]
        return self
            .at
            .map(|t| t.saturating_duration_since(std::time::Instant::now()));
        #[cfg(feature = "loom")]
        None
    }
}
