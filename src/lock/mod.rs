//! The futex lock family: a robust [`Mutex`] that knows its owner, and the other synchronization
//! types of Python's `multiprocessing` built on shared futex words: [`ReentrantMutex`],
//! [`Condvar`], [`Event`], [`Semaphore`] (optionally bounded) and [`Barrier`].
//!
//! Every lock word lives in shared memory and is waited on with *shared* futexes, so threads of
//! any process that maps the segment take part. Owners are identified by thread id, with pid and
//! process start time recorded to survive id reuse; a lock whose owner died is reported to the
//! next owner ([`LockError::OwnerDied`]) instead of blocking everyone forever.

mod barrier;
mod condvar;
mod event;
mod mutex;
pub(crate) mod owner;
mod raw;
mod reentrant;
mod semaphore;

pub use barrier::{Barrier, PARTY_SLOTS};
pub use condvar::Condvar;
pub use event::Event;
pub use mutex::{Mutex, MutexGuard};
#[cfg(feature = "loom")]
pub use owner::sim;
pub use raw::LockState;
pub use reentrant::{ReentrantGuard, ReentrantMutex};
pub use semaphore::{Semaphore, HOLDER_SLOTS};

use crate::Error;
use core::fmt;

/// The result of taking a lock: the guard, or a [`LockError`] (which may hold the guard).
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a lock call did not simply return its guard.
///
/// Like `std`'s `PoisonError`, [`OwnerDied`](LockError::OwnerDied) is a success in disguise: the
/// caller holds the lock and must decide whether the data left by the dead owner can be repaired.
/// Converting it into [`crate::Error`] (for example with `?`) drops the guard unrepaired, which
/// makes the lock [not recoverable](crate::Error::NotRecoverable) for everyone: the POSIX
/// `EOWNERDEAD` contract.
pub enum LockError<G> {
    /// The previous owner died holding the lock. You hold it now (the guard); its data may be
    /// half-updated. Repair it and call `mark_consistent`, or drop the guard to declare the lock
    /// not recoverable.
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
    /// Drops an `OwnerDied` guard unrepaired (the lock becomes not recoverable) and reports
    /// [`Error::OwnerDied`].
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
