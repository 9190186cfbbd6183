//! Asymmetric barriers for Dekker-style handshakes between a hot side and a rare side.
//!
//! A ring's producer publishes a position and then reads "does the consumer sleep?"; the
//! consumer announces that it sleeps and then reads the position. Each side needs a StoreLoad
//! barrier between its store and its load, or both can miss the other and the consumer sleeps
//! through a push. A `SeqCst` fence costs ~20 ns on the reference machine, on every push and pop.
//!
//! With Linux's `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` the cost moves to the rare side:
//! the hot side issues only a compiler barrier ([`light_barrier`]), and the side about to sleep
//! issues [`heavy_barrier`], which makes every running thread of every process registered with
//! `MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED` execute a full memory barrier before it returns (a
//! thread not running passes one when it is switched out). Either the hot side's load comes after
//! that barrier and sees the sleeper's flag, or its store was already visible to the sleeper's
//! load: the same argument as two `SeqCst` fences (this is liburcu's and folly's asymmetric
//! fence). A process registers on first use (and again in a forked child). Where the kernel lacks
//! the command, both sides fall back to `SeqCst` fences. Under loom both are `SeqCst` fences,
//! which is what the models check.

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
    let m = if q >= 0 && q & needed == needed && membarrier(CMD_REGISTER_GLOBAL_EXPEDITED) == 0 {
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
    LightBarrier::get().issue();
}

/// The light barrier with this process's mode read once, for a hot path that issues two (one
/// load and branch fewer for the second). Get it, then issue it; do not keep it across a `fork`.
#[derive(Clone, Copy)]
pub(crate) struct LightBarrier {
    #[cfg(not(feature = "loom"))]
    compiler_only: bool,
}

impl LightBarrier {
    /// This process's light barrier (registers it for membarriers on first use).
    #[inline]
    pub(crate) fn get() -> Self {
        LightBarrier {
            #[cfg(not(feature = "loom"))]
            compiler_only: mode() == ASYMMETRIC,
        }
    }

    /// Issues it: a compiler barrier if this process was registered for global expedited
    /// membarriers when [`get`](Self::get) ran, a `SeqCst` fence otherwise.
    #[inline]
    pub(crate) fn issue(self) {
        #[cfg(not(feature = "loom"))]
        {
            if self.compiler_only {
                core::sync::atomic::compiler_fence(Ordering::SeqCst);
            } else {
                core::sync::atomic::fence(Ordering::SeqCst);
            }
        }
        #[cfg(feature = "loom")]
        loom::sync::atomic::fence(loom::sync::atomic::Ordering::SeqCst);
    }
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
