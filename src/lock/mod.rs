//! The futex lock family: a robust [`Mutex`] that knows its owner, and the other synchronization
//! types of Python's `multiprocessing` built on shared futex words: [`ReentrantMutex`],
//! [`Condvar`], [`Event`], [`Semaphore`] (optionally bounded) and [`Barrier`].
//!
//! The long form (guarantees, layout, protocol) is the public guide page
//! [`crate::guide::locks`], written in `src/guide/locks.md`.

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
///
/// ```
/// use shmkit::{LockResult, Mutex, MutexGuard, Segment};
///
/// fn take(m: &Mutex<u32>) -> LockResult<MutexGuard<'_, u32>> {
///     m.try_lock()
/// }
///
/// // `?` converts it into shmkit::Error (an OwnerDied guard is then dropped unrepaired, and the
/// // next locker is told again).
/// fn get(m: &Mutex<u32>) -> shmkit::Result<u32> {
///     Ok(*m.lock()?)
/// }
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let m = seg.mutex("n", 7u32)?;
/// assert_eq!(*take(&m).unwrap(), 7);
/// assert_eq!(get(&m)?, 7);
/// # Ok(()) }
/// ```
pub type LockResult<G> = Result<G, LockError<G>>;

/// Why a lock call did not simply return its guard.
///
/// Like `std`'s `PoisonError`, [`OwnerDied`](LockError::OwnerDied) is a success in disguise: the
/// caller holds the lock and must decide whether the data left by the dead owner can be repaired.
/// Converting it into [`crate::Error`] (for example with `?`) drops the guard unrepaired, which
/// leaves the lock *inconsistent*, not broken: the next locker gets `OwnerDied` again, until
/// someone repairs the data and calls `mark_consistent` (Rust's poison convention; POSIX would
/// make the lock `ENOTRECOVERABLE` here, for every process, for good).
///
/// ```
/// use shmkit::{LockError, Mutex, Segment};
/// use std::time::Duration;
///
/// /// Adds to a balance; a holder that died left it whole (one word), so repair is to accept it.
/// fn deposit(m: &Mutex<i64>, amount: i64) -> shmkit::Result<i64> {
///     let mut g = match m.lock() {
///         Ok(g) => g,
///         Err(LockError::OwnerDied(mut g)) => {
///             g.mark_consistent();
///             g
///         }
///         Err(LockError::Error(e)) => return Err(e),
///     };
///     *g += amount;
///     Ok(*g)
/// }
///
/// # fn main() -> shmkit::Result<()> {
/// let seg = Segment::anonymous(1 << 16)?;
/// let m = seg.mutex("balance", 100i64)?;
/// assert_eq!(deposit(&m, 5)?, 105);
/// let _g = m.lock().unwrap();
/// // This thread holds it: asking again is an error, not a deadlock.
/// assert!(matches!(
///     m.lock_timeout(Duration::from_millis(10)),
///     Err(LockError::Error(shmkit::Error::WouldDeadlock { .. }))
/// ));
/// # Ok(()) }
/// ```
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
