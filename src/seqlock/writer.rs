//! The writer lock of a seqlock: serializes writers across processes and detects a dead holder.
//!
//! One `AtomicU64`, the owner word:
//!
//! | value        | meaning                                                              |
//! | ------------ | -------------------------------------------------------------------- |
//! | `0`          | free                                                                 |
//! | owner word   | held by that process (pid, start tag, pid namespace: [`crate::process`]) |
//!
//! The claim and the owner's identity go in one CAS (`0 → me`), so a writer killed at any point
//! leaves either a free lock or a lock naming it: never a lock nobody can identify. The liveness
//! rule is the crate's one ([`process::word_alive`]): a reused pid is told apart by its start time,
//! and a holder in another pid namespace is never taken for dead. Threads of one process share an
//! identity: the CAS still admits one of them at a time, and a live process is never taken for
//! dead.
//!
//! A waiting writer spins, then yields, and checks the holder's liveness (a read of
//! `/proc/<pid>/stat`) after [`FIRST_CHECK`] failed attempts and every [`CHECK_EVERY`] after that;
//! a dead holder is replaced by one CAS (`dead → me`), and the winner resynchronizes the data (see
//! [`latch`](super::latch)) before writing.

use crate::process;
use crate::sync::{AtomicU64, Ordering, Spin};
use crate::{Error, Result};
use crossbeam_utils::CachePadded;

/// Failed lock attempts before a waiting writer first checks whether the holder is alive.
pub const FIRST_CHECK: u32 = 16;
/// Failed lock attempts between later liveness checks.
pub const CHECK_EVERY: u32 = 256;

/// The cross-process writer lock (see the module docs for its encoding).
#[repr(C)]
pub(crate) struct WriterLock {
    owner: CachePadded<AtomicU64>,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(WriterLock, CachePadded<u64>);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(WriterLock, CachePadded<u64>);

/// What acquiring the lock found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acquired {
    /// The pid of a dead holder whose lock was taken over (the data must be resynchronized).
    pub took_over_from: Option<u32>,
}

/// The owner word of process `pid` started at `start`, in this pid namespace (never 0 for a
/// real pid).
pub(crate) fn pack(pid: u32, start: u64) -> u64 {
    process::Identity {
        pid,
        start,
        pid_ns: process::me().pid_ns,
    }
    .word()
}

/// The pid of an owner word.
pub(crate) fn pid_of(word: u64) -> u32 {
    process::word_pid(word)
}

/// This process's owner word.
pub(crate) fn me() -> u64 {
    process::my_word()
}

/// Whether the process named by owner word `word` still runs (the crate's one liveness rule).
pub(crate) fn alive(word: u64) -> bool {
    process::word_alive(word)
}

impl WriterLock {
    /// A free lock (heap).
    pub(crate) fn new() -> Self {
        WriterLock {
            owner: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// Marks the lock free (object initialization in shared memory).
    pub(crate) fn init_free(&self) {
        self.owner.store(0, Ordering::Release);
    }

    /// The current owner word (0 = free).
    #[inline]
    pub(crate) fn owner(&self) -> u64 {
        self.owner.load(Ordering::Acquire)
    }

    /// One attempt: claims a free lock, or takes over a dead holder's.
    ///
    /// # Errors
    /// [`Error::WriterBusy`] when a live process holds the lock.
    pub(crate) fn try_acquire_as(&self, me: u64) -> Result<Acquired> {
        match self.claim(me) {
            Ok(()) => Ok(Acquired {
                took_over_from: None,
            }),
            Err(held) => {
                if !alive(held) {
                    if let Some(a) = self.take_over(held, me) {
                        return Ok(a);
                    }
                }
                Err(Error::WriterBusy {
                    pid: pid_of(self.owner()),
                })
            }
        }
    }

    /// Claims the lock, waiting for a live holder and taking over from a dead one.
    pub(crate) fn acquire_as(&self, me: u64) -> Acquired {
        let mut spin = Spin::new();
        let mut failures = 0u32;
        loop {
            let held = match self.claim(me) {
                Ok(()) => {
                    return Acquired {
                        took_over_from: None,
                    }
                }
                Err(h) => h,
            };
            failures = failures.saturating_add(1);
            let check = failures == FIRST_CHECK
                || (failures > FIRST_CHECK && (failures - FIRST_CHECK) % CHECK_EVERY == 0);
            if check && !alive(held) {
                if let Some(a) = self.take_over(held, me) {
                    return a;
                }
            }
            if cfg!(feature = "loom") {
                crate::sync::yield_now();
            } else {
                spin.snooze();
            }
        }
    }

    #[inline]
    fn claim(&self, me: u64) -> core::result::Result<(), u64> {
        let cur = self.owner.load(Ordering::Relaxed);
        if cur != 0 {
            return Err(cur);
        }
        self.owner
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| ())
    }

    #[cold]
    fn take_over(&self, dead: u64, me: u64) -> Option<Acquired> {
        self.owner
            .compare_exchange(dead, me, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| Acquired {
                took_over_from: Some(pid_of(dead)),
            })
    }

    /// Frees the lock (the caller holds it).
    #[inline]
    pub(crate) fn release(&self) {
        self.owner.store(0, Ordering::Release);
    }

    /// `Err(WriterDied)` if the lock is held by a process that no longer runs. Reads
    /// `/proc` when the lock is held.
    pub(crate) fn check(&self) -> Result<()> {
        let held = self.owner();
        if held != 0 && !alive(held) {
            return Err(Error::WriterDied { pid: pid_of(held) });
        }
        Ok(())
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn claim_release_and_take_over() {
        let l = WriterLock::new();
        let a = l.try_acquire_as(me()).unwrap();
        assert!(a.took_over_from.is_none());
        assert!(matches!(
            l.try_acquire_as(me()),
            Err(Error::WriterBusy { .. })
        ));
        l.check().unwrap();
        l.release();
        // A pid that cannot exist is dead: its lock is taken over.
        let dead = pack((1 << 22) - 3, 1);
        l.try_acquire_as(dead).unwrap();
        assert!(matches!(l.check(), Err(Error::WriterDied { pid }) if pid == pid_of(dead)));
        let a = l.acquire_as(me());
        assert_eq!(a.took_over_from, Some(pid_of(dead)));
        // Our own pid with a wrong start time is not us.
        let impostor = pack(process::pid(), process::start_time() + 1);
        assert!(!alive(impostor));
        assert!(alive(me()));
    }
}
