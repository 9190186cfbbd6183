//! The futex lock family: a robust [`Mutex`] that knows its owner, and the other synchronization
//! types of Python's `multiprocessing` built on shared futex words: [`ReentrantMutex`],
//! [`Condvar`], [`Event`], [`Semaphore`] (optionally bounded) and [`Barrier`].
//!
//! Every lock word lives in shared memory and is waited on with *shared* futexes, so threads of
//! any process that maps the segment take part.
//!
//! # Guarantees, and their limits
//!
//! - **A dead owner is reported, not waited for.** A mutex's lock word names its owner thread
//!   (thread id and a tag of its pid namespace) in the same CAS that takes it, and the owner
//!   records its process (pid, start time, namespace) next to it. A lock whose owner died is
//!   handed to the next locker as [`LockError::OwnerDied`] with the guard; sleeping waiters look
//!   at the owner's liveness every 10 ms. A semaphore's permits held by a dead process are
//!   reclaimed; a barrier party that died without arriving breaks the barrier.
//! - **Rust's poison convention, not POSIX's.** An `OwnerDied` guard dropped without
//!   `mark_consistent` (for example by `?`) leaves the lock *inconsistent*: the next locker is
//!   told `OwnerDied` again, until someone repairs the data. Only `mark_not_recoverable` makes a
//!   lock permanently unusable ([`Error::NotRecoverable`]). (A POSIX robust mutex becomes
//!   `ENOTRECOVERABLE` as soon as an `EOWNERDEAD` holder unlocks it without
//!   `pthread_mutex_consistent`.)
//! - **Exact at every instruction.** Every multi-step protocol is crash-consistent: a mutex is
//!   claimed with its owner in one CAS; a semaphore operation is committed by one CAS and its
//!   bookkeeping completed exactly once by whoever comes next; a barrier arrival is one CAS. A
//!   process killed anywhere duplicates no permit, leaks none, and never miscounts an arrival.
//!   (Named kill points, compiled in with the `test-hooks` feature, prove it in `tests/`.)
//! - **Deadlines all the way down.** There is no internal lock: every `try_` call returns at
//!   once and every `_timeout` call by its deadline, whatever a peer does (stopped with
//!   `SIGSTOP` inside an operation, or writing a live thread id or any other garbage into the
//!   shared words). A timed [`Condvar`] wait retakes its mutex within a bound too. Blocking
//!   calls without a timeout wait for a live peer for as long as it lives.
//! - **Hostile memory gives errors or wrong values, never a panic or a hang**: no arithmetic
//!   on a shared value can overflow, every index read from shared memory is bounded.
//! - **Other pid namespaces.** An owner, permit holder or barrier party in another pid namespace
//!   (a container sharing `/dev/shm`) is never judged dead: its pid means nothing here. Its
//!   claims come back only when it releases them, or when a process of its own namespace finds
//!   it dead. (The lock word's namespace tag has 8 bits: two namespaces share it 1 time in 254;
//!   the owner record then tells them apart, except in the instant between an owner's CAS and
//!   its record.)
//! - **`fork()`.** A guard inherited by a forked child is inert there (dropping it neither
//!   writes back nor unlocks: the lock is the parent's thread's). A forked child is a process of
//!   its own: its claims stand while it lives and are recovered once it dies.
//!
//! Limits: a permit is accounted to the process that acquired it; [`HOLDER_SLOTS`] processes'
//! permits and [`PARTY_SLOTS`] barrier parties are tracked (further ones are not recovered if
//! they die); a process that dies before it ever arrived at a barrier is unknown to it.

mod barrier;
mod condvar;
mod event;
mod mutex;
pub(crate) mod owner;
mod raw;
mod reentrant;
mod semaphore;

pub use barrier::{Barrier, MAX_PARTIES, PARTY_SLOTS};
pub use condvar::Condvar;
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
#[cfg(feature = "loom")]
pub use owner::sim;
pub use raw::LockState;
pub use reentrant::{ReentrantGuard, ReentrantMutex};
pub use semaphore::{Semaphore, HOLDER_SLOTS, MAX_PERMITS};

use crate::Error;
use core::fmt;

/// The result of taking a lock: the guard, or a [`LockError`] (which may hold the guard).
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a lock call did not simply return its guard.
///
/// Like `std`'s `PoisonError`, [`OwnerDied`](LockError::OwnerDied) is a success in disguise: the
/// caller holds the lock and must decide whether the data left by the dead owner can be repaired.
/// Converting it into [`crate::Error`] (for example with `?`) drops the guard unrepaired, which
/// leaves the lock *inconsistent*, not broken: the next locker gets `OwnerDied` again, until
/// someone repairs the data and calls `mark_consistent` (Rust's poison convention; POSIX would
/// make the lock `ENOTRECOVERABLE` here, for every process, for good).
pub enum LockError<G> {
    /// The previous owner died holding the lock. You hold it now (the guard); its data may be
    /// half-updated. Repair it and call `mark_consistent`; dropping the guard without that hands
    /// `OwnerDied` to the next locker; `mark_not_recoverable` declares the data beyond repair.
    OwnerDied(G),
    /// The lock was not taken: [`NotRecoverable`](crate::Error::NotRecoverable),
    /// [`WouldBlock`](crate::Error::WouldBlock) (`try_` calls), [`Timeout`](crate::Error::Timeout)
    /// (`_timeout` calls) or [`WouldDeadlock`](crate::Error::WouldDeadlock).
    Error(Error),
}

impl<G> LockError<G> {
    /// The guard of an [`OwnerDied`](LockError::OwnerDied), if this is one.
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            LockError::Error(_) => None,
        }
    }

    /// Whether this is an [`OwnerDied`](LockError::OwnerDied).
    pub fn is_owner_died(&self) -> bool {
        matches!(self, LockError::OwnerDied(_))
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the previous owner died holding the lock; the data may be inconsistent \
                 (repair it and call mark_consistent)",
            ),
            LockError::Error(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

impl<G> From<LockError<G>> for Error {
    /// Drops an `OwnerDied` guard unrepaired (the lock stays inconsistent: the next locker gets
    /// `OwnerDied` too) and reports [`Error::OwnerDied`].
    fn from(e: LockError<G>) -> Error {
        match e {
            LockError::OwnerDied(g) => {
                drop(g);
                Error::OwnerDied { what: "lock" }
            }
            LockError::Error(e) => e,
        }
    }
}
