//! Owner identity and liveness shared by the lock family: who am I, who holds a lock word, and
//! is that thread still alive.
//!
//! A lock word names its owner by kernel thread id (`gettid`), claimed in the same CAS that takes
//! the lock, so a process killed at any instruction never leaves a lock without an owner. Next to
//! the word, the owner records its process id and the process's start time ([`OwnerMeta`]): the
//! kernel reuses ids, and (pid, start time) identifies a process for good. A thread is taken for
//! dead when its process is gone (or is another process now), or when its
//! `/proc/<pid>/task/<tid>` entry is gone (a dead thread of a live process counts too).

use crate::sync::{AtomicU64, Ordering};

/// Bit 31 of a lock word: some thread may sleep on the word; the unlocker must wake.
pub(crate) const WAITERS: u32 = 1 << 31;
/// Bit 30 of a lock word: the previous owner died holding the lock and the protected data has
/// not been marked consistent since.
pub(crate) const OWNER_DIED: u32 = 1 << 30;
/// Bits 0..=29 of a lock word: the owner's thread id (0: unlocked).
pub(crate) const TID_MASK: u32 = (1 << 30) - 1;
/// The tid field of a lock that is permanently unusable (no real thread id is this large: Linux
/// caps ids at 2²²).
pub(crate) const NOT_RECOVERABLE: u32 = TID_MASK;

/// How long a waiter sleeps before it looks at the owner's liveness. Bounds the time to detect a
/// dead owner when no unlock will ever wake the waiters.
pub(crate) const LIVENESS_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);

/// The calling thread's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    /// Kernel thread id (or loom model id), never 0, below [`NOT_RECOVERABLE`].
    pub tid: u32,
    /// Process id.
    pub pid: u32,
    /// Process start time (clock ticks since boot; 0 if unknown).
    pub start: u64,
}

#[cfg(not(feature = "loom"))]
mod ident {
    use super::Me;
    use std::cell::Cell;

    thread_local! {
        static CACHE: Cell<Option<(u64, Me)>> = const { Cell::new(None) };
    }

    /// This thread's identity; cached per thread (no system call on the lock fast path) and
    /// recomputed after `fork()` ([`crate::process::fork_generation`]).
    #[inline]
    pub(crate) fn me() -> Me {
        let gen = crate::process::fork_generation();
        match CACHE.with(|c| c.get()) {
            Some((g, m)) if g == gen => m,
            _ => refresh(),
        }
    }

    #[cold]
    fn refresh() -> Me {
        // `process::me` registers the fork handler: read the generation after it.
        let id = crate::process::me();
        let gen = crate::process::fork_generation();
        let m = Me {
            tid: crate::sync::thread_id(),
            pid: id.pid,
            start: id.start,
        };
        CACHE.with(|c| c.set(Some((gen, m))));
        m
    }
}

#[cfg(feature = "loom")]
mod ident {
    use super::Me;

    /// This model thread's identity.
    pub(crate) fn me() -> Me {
        Me {
            tid: crate::sync::thread_id(),
            pid: crate::process::pid(),
            start: 1,
        }
    }
}

pub(crate) use ident::me;

/// Who holds a lock word, recorded by the owner right after its claiming CAS.
///
/// | field   | contents                                        |
/// | ------- | ----------------------------------------------- |
/// | `id`    | `tid << 32 \| pid` of the last owner to record  |
/// | `start` | start time of that owner's process (0: unknown) |
///
/// `start` is written before `id` (release), so a reader that loads `id` (acquire) and finds the
/// tid of the lock word sees that owner's start time. A reader whose lock word names a tid that
/// `id` does not (the owner was killed between its CAS and this record, or is about to write it)
/// judges by the tid alone.
#[repr(C)]
pub(crate) struct OwnerMeta {
    id: AtomicU64,
    start: AtomicU64,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(OwnerMeta, [u64; 2]);

impl OwnerMeta {
    /// No owner recorded.
    pub(crate) fn new() -> Self {
        OwnerMeta {
            id: AtomicU64::new(0),
            start: AtomicU64::new(0),
        }
    }

    /// Records `me` as the owner (after the CAS that made it so).
    #[inline]
    pub(crate) fn record(&self, me: &Me) {
        let id = (u64::from(me.tid) << 32) | u64::from(me.pid);
        if self.id.load(Ordering::Relaxed) == id && self.start.load(Ordering::Relaxed) == me.start {
            return; // the same thread relocking: the record is already right
        }
        self.start.store(me.start, Ordering::Relaxed);
        self.id.store(id, Ordering::Release);
    }

    /// The recorded owner: (tid, pid, start).
    pub(crate) fn get(&self) -> (u32, u32, u64) {
        let id = self.id.load(Ordering::Acquire);
        let start = self.start.load(Ordering::Relaxed);
        ((id >> 32) as u32, id as u32, start)
    }

    /// The process id recorded for thread `tid`, if the record is about it.
    pub(crate) fn pid_of(&self, tid: u32) -> Option<u32> {
        let (t, p, _) = self.get();
        (t == tid && p != 0).then_some(p)
    }

    /// Whether the thread `tid` that a lock word names is alive.
    pub(crate) fn alive(&self, tid: u32) -> bool {
        if tid == 0 || tid >= NOT_RECOVERABLE {
            return false;
        }
        let (t, pid, start) = self.get();
        alive::thread_alive(tid, (t == tid).then_some((pid, start)))
    }

    /// Whether the word's owner `tid` is the calling thread itself (a relock that would
    /// deadlock).
    pub(crate) fn is_me(&self, tid: u32, me: &Me) -> bool {
        let (t, pid, start) = self.get();
        tid == me.tid && t == me.tid && pid == me.pid && start == me.start
    }
}

/// This process's owner word for the claims of the semaphore and barrier slots
/// ([`crate::process::my_word`]). Under loom every model thread is a process of its own, so that
/// a model can kill one ([`sim::die`]) and check that the others recover its claims.
#[inline]
pub(crate) fn claim_word() -> u64 {
    #[cfg(not(feature = "loom"))]
    return crate::process::my_word();
    #[cfg(feature = "loom")]
    // pid = the model thread's id, start tag 1: never 0, never FLAG.
    return u64::from(crate::sync::thread_id()) | (1 << 22);
}

/// Whether the holder of claim word `w` lives, by the crate's one liveness rule
/// ([`crate::process::word_alive`]: a holder in another pid namespace is alive). Under loom: not
/// marked dead with [`sim::die`].
pub(crate) fn claim_alive(w: u64) -> bool {
    #[cfg(not(feature = "loom"))]
    return crate::process::word_alive(w);
    #[cfg(feature = "loom")]
    return w & !crate::process::FLAG != 0
        && !sim::is_dead(crate::process::word_pid(w & !crate::process::FLAG));
}

/// A named point between two steps of a multi-step protocol (`<family>.<op>.<where>`).
///
/// With the `test-hooks` feature a process may be killed or stopped here ([`crate::hooks::at`]).
/// Under loom, a model thread that armed this point with [`sim::die_at`] dies here: the call
/// returns `true` and the caller must return at once, abandoning its operation exactly as a
/// process killed at this instruction would. Otherwise `false` (and nothing at all without
/// either feature).
#[inline(always)]
#[must_use]
pub(crate) fn step(point: &'static str) -> bool {
    crate::hooks::at(point);
    #[cfg(feature = "loom")]
    return sim::reached(point);
    #[cfg(not(feature = "loom"))]
    false
}

#[cfg(not(feature = "loom"))]
mod alive {
    /// Whether thread `tid` lives; `rec` is its recorded (pid, start time) when known.
    pub(crate) fn thread_alive(tid: u32, rec: Option<(u32, u64)>) -> bool {
        match rec {
            Some((pid, start)) if pid != 0 => {
                crate::process::owner_alive(pid, start) && task_alive(pid, tid)
            }
            // Not recorded: any live thread with this id counts (a thread's id is a valid
            // /proc entry too).
            _ => crate::process::pid_alive(tid),
        }
    }

    /// Whether thread `tid` of process `pid` still exists (not a zombie).
    fn task_alive(pid: u32, tid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) {
            Ok(stat) => match stat.rfind(')') {
                Some(i) => !matches!(
                    stat[i + 1..].split_ascii_whitespace().next(),
                    Some("Z") | Some("X") | Some("x")
                ),
                None => true,
            },
            // Without /proc at all we cannot tell: the process check above decides.
            Err(_) => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        }
    }
}

#[cfg(feature = "loom")]
mod alive {
    /// Under loom a thread is dead only when a model said so with [`super::sim::die`].
    pub(crate) fn thread_alive(tid: u32, _rec: Option<(u32, u64)>) -> bool {
        !super::sim::is_dead(tid)
    }
}

/// Simulated thread death for the loom models: a model thread that "dies" holding a lock calls
/// [`die`] (after `mem::forget` of its guard); the liveness check then reports it dead.
#[cfg(feature = "loom")]
pub mod sim {
    use std::cell::RefCell;

    std::thread_local! {
        // Per OS thread: loom runs a model's threads as coroutines on the test's thread.
        static DEAD: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
        // Model threads armed to die at a named step: (thread, point).
        static ARMED: RefCell<Vec<(u32, &'static str)>> = const { RefCell::new(Vec::new()) };
    }

    /// Forgets every simulated death and armed point (call at the start of each model
    /// iteration).
    pub fn reset() {
        DEAD.with(|d| d.borrow_mut().clear());
        ARMED.with(|a| a.borrow_mut().clear());
    }

    /// Marks the calling model thread dead.
    pub fn die() {
        let me = crate::sync::thread_id();
        DEAD.with(|d| d.borrow_mut().push(me));
    }

    /// Arms the calling model thread to die when it reaches the named step of a protocol (the
    /// names of the `test-hooks` kill points, e.g. `semaphore.acquire.committed`): the operation
    /// returns at once from there, and the thread counts as dead. The thread must do nothing
    /// more with the object afterwards (check [`is_dead_me`]).
    pub fn die_at(point: &'static str) {
        let me = crate::sync::thread_id();
        ARMED.with(|a| a.borrow_mut().push((me, point)));
    }

    /// Whether the calling model thread has died (at an armed step, or by [`die`]).
    pub fn is_dead_me() -> bool {
        is_dead(crate::sync::thread_id())
    }

    /// The calling thread reached `point`: dies there if armed for it.
    pub(crate) fn reached(point: &'static str) -> bool {
        let me = crate::sync::thread_id();
        let armed = ARMED.with(|a| a.borrow().iter().any(|&(t, p)| t == me && p == point));
        if armed {
            die();
        }
        armed
    }

    /// Whether model thread `tid` was marked dead.
    pub fn is_dead(tid: u32) -> bool {
        DEAD.with(|d| d.borrow().contains(&tid))
    }
}
