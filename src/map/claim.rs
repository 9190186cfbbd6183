//! The lock word of a map stripe and of a list: one `AtomicU64` holding 0 (free) or the holder's
//! owner word ([`process::my_word`]), taken by one CAS, taken over from a dead holder by one CAS,
//! and waited for until the caller's deadline.
//!
//! A waiting process spins briefly, then sleeps in short steps; it checks the holder's liveness
//! after [`FIRST_CHECK`] failed attempts and every [`CHECK_EVERY`] after that (and at once when the
//! deadline has already passed, so that a `try_` call still takes a dead holder's lock over). A
//! holder in another pid namespace is never taken for dead (the crate's one liveness rule).

use crate::process;
use crate::sync::{AtomicU64, Deadline, Ordering, Spin};
use crate::{Error, Result};
use std::time::Duration;

/// Failed attempts before a waiting process first checks whether the holder is alive.
pub(crate) const FIRST_CHECK: u32 = 32;
/// Failed attempts between later liveness checks.
pub(crate) const CHECK_EVERY: u32 = 256;
/// Attempts that spin before a waiting process starts sleeping.
const SPINS: u32 = 64;
/// Longest sleep between two attempts.
const MAX_NAP: Duration = Duration::from_micros(500);

/// Takes the lock `word` in the name of owner word `me`, waiting until `deadline` for a live
/// holder. Returns the dead holder's owner word when the lock was taken over from one (the
/// caller must then repair what the lock protects).
///
/// # Errors
/// [`Error::Timeout`] (`what`, `waited`) at the deadline.
#[inline]
pub(crate) fn acquire(
    word: &AtomicU64,
    me: u64,
    deadline: Deadline,
    what: &'static str,
    waited: Duration,
) -> Result<Option<u64>> {
    // Every value but 0 is a holder here, so `Other` never comes back.
    Ok(
        match acquire_from(word, 0, me, |_| true, deadline, what, waited)? {
            Got::FromDead(dead) => Some(dead),
            Got::Idle | Got::Other(_) => None,
        },
    )
}

/// What [`acquire_from`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Got {
    /// The word held the idle value; it now holds `me`.
    Idle,
    /// The word held this dead holder's owner word; it now holds `me`.
    FromDead(u64),
    /// The word holds this value, neither idle nor a holder to wait for: nothing was taken.
    Other(u64),
}

/// [`acquire`] for a word whose idle value is `idle` and whose holders are the values for which
/// `holder` is true (owner words): waits for a live holder until `deadline`, takes a dead
/// one's place by one CAS, and gives up at once on any other value.
///
/// # Errors
/// [`Error::Timeout`] (`what`, `waited`) at the deadline.
#[inline]
pub(crate) fn acquire_from(
    word: &AtomicU64,
    idle: u64,
    me: u64,
    holder: impl Fn(u64) -> bool,
    deadline: Deadline,
    what: &'static str,
    waited: Duration,
) -> Result<Got> {
    let mut failures = 0u32;
    let mut spin = Spin::new();
    loop {
        let cur = word.load(Ordering::Relaxed);
        if cur == idle {
            if word
                .compare_exchange(idle, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(Got::Idle);
            }
            continue;
        }
        if !holder(cur) {
            return Ok(Got::Other(cur));
        }
        failures = failures.saturating_add(1);
        let expired = deadline.expired();
        let check = failures == FIRST_CHECK
            || (failures > FIRST_CHECK && (failures - FIRST_CHECK) % CHECK_EVERY == 0)
            || (expired && failures == 1);
        if check && !process::word_alive(cur) {
            if let Some(dead) = take_over(word, cur, me) {
                return Ok(Got::FromDead(dead));
            }
            continue;
        }
        if expired {
            return Err(Error::Timeout { what, waited });
        }
        if failures < SPINS || cfg!(feature = "loom") {
            spin.snooze();
        } else {
            std::thread::sleep(MAX_NAP.min(deadline.remaining().unwrap_or(MAX_NAP)));
        }
    }
}

/// Takes the lock over from the dead holder `dead` (one CAS; `None` if someone else did).
#[cold]
pub(crate) fn take_over(word: &AtomicU64, dead: u64, me: u64) -> Option<u64> {
    word.compare_exchange(dead, me, Ordering::AcqRel, Ordering::Relaxed)
        .ok()
        .map(|_| dead)
}

/// The deadline and the reported wait of an optional timeout.
pub(crate) fn deadline_of(timeout: Option<Duration>) -> (Deadline, Duration) {
    (Deadline::after(timeout), timeout.unwrap_or(Duration::MAX))
}
