//! Owner identity and liveness shared by the lock family: who am I, who holds a lock word, and
//! is that thread still alive.
//!
//! A lock word names its owner by kernel thread id (`gettid`) and an 8-bit tag of the owner's
//! pid namespace, claimed in the same CAS that takes the lock, so a process killed at any
//! instruction never leaves a lock without an owner, and a waiter in another pid namespace knows
//! at once that the owner's thread id means nothing to it. Next to the word, the owner records
//! its process's owner word ([`crate::process::my_word`]: pid, start time, namespace) in
//! [`OwnerMeta`], read back consistently. A thread is taken for dead when its process is gone
//! (or is another process now), or when its `/proc/<pid>/task/<tid>` entry is gone (a dead
//! thread of a live process counts too). An owner in another pid namespace is never taken for
//! dead (see [`crate::process`]).

use crate::sync::{AtomicU64, Ordering};

/// Bit 31 of a lock word: some thread may sleep on the word; the unlocker must wake.
pub(crate) const WAITERS: u32 = 1 << 31;
/// Bit 30 of a lock word: the previous owner died holding the lock and the protected data has
/// not been marked consistent since.
pub(crate) const OWNER_DIED: u32 = 1 << 30;
/// Bits 0..=29 of a lock word: the owner (0: unlocked): thread id in bits 0..22 (Linux caps
/// ids below 2²²), pid-namespace tag in bits 22..30 ([`ns_tag8`]; 0: unknown).
pub(crate) const OWNER_MASK: u32 = (1 << 30) - 1;
/// The thread-id bits of a lock word.
pub(crate) const TID_MASK: u32 = (1 << 22) - 1;
const NS_SHIFT: u32 = 22;
/// The owner field of a lock that is permanently unusable (no owner has it: namespace tags stop
/// at 254).
pub(crate) const NOT_RECOVERABLE: u32 = OWNER_MASK;

/// How long a waiter sleeps before it looks at the owner's liveness. Bounds the time to detect a
/// dead owner when no unlock will ever wake the waiters.
pub(crate) const LIVENESS_PERIOD: std::time::Duration = std::time::Duration::from_millis(10);

/// The 8-bit pid-namespace tag of lock words, folded from the 20-bit tag of owner words
/// ([`crate::process::my_ns_tag`]): `1..=254`, or 0 when unknown. Two namespaces share a tag with
/// a chance of 1 in 254; the owner record ([`OwnerMeta`]) then tells them apart, except in the
/// instant between an owner's CAS and its record.
#[inline]
#[cfg_attr(feature = "loom", allow(dead_code))]
pub(crate) fn ns_tag8(tag20: u32) -> u32 {
    if tag20 == 0 {
        0
    } else {
        tag20 % 254 + 1
    }
}

/// The calling thread's identity (cached per thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Me {
    /// Its lock-word owner field: thread id (or loom model id) and namespace tag; never 0, never
    /// [`NOT_RECOVERABLE`].
    pub owner: u32,
    /// The fork generation it was computed in (truncated).
    pub gen: u32,
    /// Its process's owner word ([`crate::process::my_word`]).
    pub proc: u64,
    /// Its [`OwnerMeta`] record word: `owner << 32 | fold(proc)`.
    pub record: u64,
}

impl Me {
    pub(crate) fn new(owner: u32, proc: u64, gen: u32) -> Me {
        Me {
            owner,
            gen,
            proc,
            record: (u64::from(owner) << 32) | u64::from(fold(proc)),
        }
    }

    /// What a guard keeps of it.
    #[inline]
    pub(crate) fn held(&self) -> Held {
        Held {
            owner: self.owner,
            gen: self.gen,
        }
    }
}

/// The owner of a held lock, as its guard keeps it (8 bytes: guards stay small).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    /// The lock-word owner field.
    pub owner: u32,
    /// The fork generation the lock was taken in: a guard taken before a `fork()` is inert in
    /// the child ([`Held::is_current`]).
    pub gen: u32,
}

impl Held {
    /// Whether the lock was taken by the calling process (false in a `fork()`ed child, for a
    /// guard its parent took: there the lock is the parent's thread's).
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        self.gen == ident::generation() as u32
    }
}

#[cfg(not(feature = "loom"))]
mod ident {
    use super::Me;
    use std::cell::Cell;

    thread_local! {
        // Owner 0 (never a thread's owner field): not computed yet.
        static CACHE: Cell<Me> = const { Cell::new(Me { owner: 0, gen: 0, proc: 0, record: 0 }) };
    }

    /// The fork generation: changes in a child after each `fork()`.
    #[inline]
    pub(crate) fn generation() -> u64 {
        crate::process::fork_generation()
    }

    /// This thread's identity; cached per thread (no system call on the lock fast path) and
    /// recomputed after `fork()` ([`crate::process::fork_generation`]).
    #[inline]
    pub(crate) fn me() -> Me {
        let gen = generation() as u32;
        let m = CACHE.with(|c| c.get());
        if m.gen == gen && m.owner != 0 {
            m
        } else {
            refresh()
        }
    }

    #[cold]
    fn refresh() -> Me {
        // `process::me` registers the fork handler: read the generation after it.
        let proc = crate::process::my_word();
        let gen = generation() as u32;
        let tid = crate::sync::thread_id() & super::TID_MASK;
        let owner = tid | (super::ns_tag8(crate::process::my_ns_tag()) << super::NS_SHIFT);
        let m = Me::new(owner, proc, gen);
        CACHE.with(|c| c.set(m));
        m
    }
}

#[cfg(feature = "loom")]
mod ident {
    use super::Me;

    /// No `fork()` under loom.
    pub(crate) fn generation() -> u64 {
        0
    }

    /// This model thread's identity: each model thread is a process of its own.
    pub(crate) fn me() -> Me {
        Me::new(crate::sync::thread_id(), super::claim_word(), 0)
    }
}

pub(crate) use ident::me;

/// Who holds a lock word, recorded by the owner right after its claiming CAS.
///
/// | field   | contents                                                                       |
/// | ------- | ------------------------------------------------------------------------------ |
/// | `proc`  | the owner's process owner word ([`crate::process::my_word`])                   |
/// | `owner` | the lock-word owner field of that owner `<< 32`, and a 32-bit fold of `proc`   |
///
/// `proc` is written before `owner` (release). A reader loads `owner` (acquire), then `proc`,
/// and accepts the pair only if `owner` names the thread its lock word names and the fold
/// matches `proc`: a `proc` written by a later owner (a hand-off between the two loads) does not
/// pass for this owner's. A reader whose lock word names an owner the record does not (killed
/// between its CAS and the record, or about to write it) judges by the thread id alone.
#[repr(C)]
pub(crate) struct OwnerMeta {
    pub(super) proc: AtomicU64,
    pub(super) owner: AtomicU64,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(OwnerMeta, [u64; 2]);

/// The 32-bit check of a process owner word in [`OwnerMeta`].
#[inline]
fn fold(proc: u64) -> u32 {
    (proc ^ (proc >> 32)) as u32
}

impl OwnerMeta {
    /// No owner recorded.
    pub(crate) fn new() -> Self {
        OwnerMeta {
            proc: AtomicU64::new(0),
            owner: AtomicU64::new(0),
        }
    }

    /// Records `me` as the owner (after the CAS that made it so).
    #[inline]
    pub(crate) fn record(&self, me: &Me) {
        // Unconditionally: two stores to the cache line the claiming CAS just took are cheaper
        // than the loads and compares that would skip them when the record is already right.
        self.proc.store(me.proc, Ordering::Relaxed);
        self.owner.store(me.record, Ordering::Release);
    }

    /// The process owner word recorded for lock-word owner `owner`, if the record is about it
    /// and consistent.
    pub(crate) fn proc_of(&self, owner: u32) -> Option<u64> {
        for _ in 0..4 {
            let o = self.owner.load(Ordering::Acquire);
            let p = self.proc.load(Ordering::Relaxed);
            if (o >> 32) as u32 != owner {
                return None; // about another owner
            }
            if fold(p) == o as u32 {
                return Some(p);
            }
            // A record being rewritten under us (or scribbled): look again.
            crate::sync::spin_hint();
        }
        None
    }

    /// The process id recorded for lock-word owner `owner`, if known.
    pub(crate) fn pid_of(&self, owner: u32) -> Option<u32> {
        self.proc_of(owner)
            .map(crate::process::word_pid)
            .filter(|&p| p != 0)
    }

    /// Whether the owner that a lock word names (its owner field) is alive.
    pub(crate) fn alive(&self, owner: u32) -> bool {
        if owner == 0 || owner >= NOT_RECOVERABLE {
            return false;
        }
        let tag = owner >> NS_SHIFT;
        let mine = me().owner >> NS_SHIFT;
        if tag != 0 && mine != 0 && tag != mine {
            return true; // another pid namespace: its thread id means nothing here
        }
        alive::thread_alive(owner & TID_MASK, self.proc_of(owner))
    }

    /// Whether the word's owner `owner` is the calling thread itself (a relock that would
    /// deadlock).
    pub(crate) fn is_me(&self, owner: u32, me: &Me) -> bool {
        owner == me.owner && self.proc_of(owner) == Some(me.proc)
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
    /// Whether thread `tid` lives; `proc` is its process's recorded owner word when known.
    pub(crate) fn thread_alive(tid: u32, proc: Option<u64>) -> bool {
        match proc {
            // Recorded from another pid namespace: alive, by the one liveness rule.
            Some(w) if crate::process::word_is_foreign(w) => true,
            Some(w) if crate::process::word_pid(w) != 0 => {
                crate::process::word_alive(w) && task_alive(crate::process::word_pid(w), tid)
            }
            // Not recorded: any live thread with this id counts (a thread's id is a valid
            // /proc entry too). Under Miri thread ids name no host thread: alive.
            _ => cfg!(miri) || crate::process::pid_alive(tid),
        }
    }

    /// Whether thread `tid` of process `pid` still exists (not a zombie).
    fn task_alive(pid: u32, tid: u32) -> bool {
        // Miri's thread ids are its own (pid + thread index), not threads of the host process
        // whose /proc it reads: only the process check means anything there.
        if cfg!(miri) {
            return true;
        }
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
    pub(crate) fn thread_alive(tid: u32, _proc: Option<u64>) -> bool {
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
