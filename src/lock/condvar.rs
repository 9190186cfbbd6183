//! [`Condvar`]: a process-shared condition variable used with a [`Mutex`].

use super::mutex::MutexGuard;
use super::{LockError, LockResult};
use crate::sync::{futex_wait, futex_wake, AtomicU32, Deadline, Ordering};
use bytemuck::Pod;
use std::time::Duration;

/// A condition variable in shared memory, paired with a [`Mutex`](crate::Mutex): threads of any
/// process wait until another changes the protected data and notifies.
///
/// Like `std`'s `Condvar`, waits may wake spuriously: wait in a loop, or use
/// [`wait_while`](Condvar::wait_while). A notify reaches only threads already waiting (it is not
/// remembered). `notify_*` make a system call only when a waiter announced itself.
///
/// Waiting releases the mutex and retakes it before returning, also after a timeout. If the
/// mutex's owner died in the meantime, the wait returns [`LockError::OwnerDied`] with the guard
/// (see [`Mutex`](crate::Mutex)); a guard that came from `OwnerDied` and was not marked consistent
/// is released by the wait with the mutex still inconsistent, so the wait (or another locker)
/// gets `OwnerDied` again when it retakes it.
///
/// ```
/// use std::sync::Arc;
/// let m: Arc<shmkit::Mutex<u32>> = Arc::from(shmkit::Mutex::new(0));
/// let cv = Arc::new(shmkit::Condvar::new());
/// let (m2, cv2) = (m.clone(), cv.clone());
/// let t = std::thread::spawn(move || {
///     *m2.lock().unwrap() = 7;
///     cv2.notify_all();
/// });
/// let g = cv.wait_while(m.lock().unwrap(), |v| *v == 0).unwrap();
/// assert_eq!(*g, 7);
/// # drop(g); t.join().unwrap();
/// ```
#[repr(C)]
pub struct Condvar {
    /// The futex word: bumped by every notify.
    seq: AtomicU32,
    /// How many threads are waiting or about to (a hint: a waiter that died leaves it high, which
    /// costs a spare `FUTEX_WAKE`, nothing more).
    waiters: AtomicU32,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Condvar, u64);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Condvar, u32);

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl Condvar {
    /// A condition variable on the heap (for one process, tests and models).
    pub fn new() -> Self {
        Condvar {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Releases the guard's mutex, sleeps until notified (or spuriously), retakes the mutex.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (the guard is inside) or [`LockError::Error`] with
    /// [`NotRecoverable`](crate::Error::NotRecoverable) when retaking the mutex.
    pub fn wait<'a, T: Pod>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        self.wait_inner(guard, None)
            .map(|(g, _)| g)
            .map_err(guard_only)
    }

    /// As [`wait`](Condvar::wait), for at most `timeout`; the `bool` is `true` when the time ran
    /// out (the mutex is retaken in either case).
    ///
    /// Returns within `timeout` plus the time to retake the mutex, which is bounded too: at most
    /// the rest of `timeout`, or 100 ms after the wake-up if that is later. Unlike `std`'s, this
    /// wait therefore returns even while another thread or process holds the mutex for good
    /// (stopped with `SIGSTOP`, say): with [`Timeout`](crate::Error::Timeout), and without the
    /// guard.
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait); an `OwnerDied` holds `(guard, timed_out)`;
    /// [`Timeout`](crate::Error::Timeout) when the mutex could not be retaken in time (it is not
    /// held then).
    pub fn wait_timeout<'a, T: Pod>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        self.wait_inner(guard, Some(timeout))
    }

    /// Waits while `condition` holds for the protected value (checked first, and after every
    /// wake-up).
    ///
    /// # Errors
    /// As [`wait`](Condvar::wait).
    pub fn wait_while<'a, T: Pod>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        while condition(&mut guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// As [`wait_while`](Condvar::wait_while), for at most `timeout` in all (plus the bounded time
    /// to retake the mutex, see [`wait_timeout`](Condvar::wait_timeout)); the `bool` is `true`
    /// when the time ran out with the condition still holding.
    ///
    /// # Errors
    /// As [`wait_timeout`](Condvar::wait_timeout).
    pub fn wait_while_timeout<'a, T: Pod>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: impl FnMut(&mut T) -> bool,
    ) -> Result<(MutexGuard<'a, T>, bool), LockError<MutexGuard<'a, T>>> {
        let deadline = Deadline::after(Some(timeout));
        while condition(&mut guard) {
            let left = deadline.remaining().unwrap_or(timeout);
            if deadline.expired() {
                return Ok((guard, true));
            }
            guard = self.wait_inner(guard, Some(left)).map_err(guard_only)?.0;
        }
        Ok((guard, false))
    }

    /// The non-blocking twin: `true` if a notify arrived since `since` (a value of
    /// [`generation`](Condvar::generation) read earlier).
    pub fn try_wait(&self, since: u32) -> bool {
        self.seq.load(Ordering::Acquire) != since
    }

    /// Waits until a notify arrives after `since` (a [`generation`](Condvar::generation) read
    /// earlier), at most `timeout` (`None`: no limit); returns whether one arrived. No mutex is
    /// involved: for a lock the caller manages itself (Python's `Condition` over an `RLock`,
    /// or a lock held across calls). Read `generation()` while holding the lock, release it,
    /// `wait_since`, retake it: a notify made under the lock after the read is never missed.
    /// Every waiter of the same `since` sees a notify, so a wait for one may return for a
    /// `notify_one` meant for another (a spurious wake-up: check the condition in a loop).
    pub fn wait_since(&self, since: u32, timeout: Option<Duration>) -> bool {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        if self.seq.load(Ordering::SeqCst) == since {
            futex_wait(&self.seq, since, timeout);
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        self.seq.load(Ordering::Acquire) != since
    }

    /// Wakes up to `n` waiting threads (of any process); `notify_n(0)` does nothing.
    pub fn notify_n(&self, n: u32) {
        if n != 0 {
            self.notify(n);
        }
    }

    /// The notify counter (wrapping); see [`try_wait`](Condvar::try_wait).
    pub fn generation(&self) -> u32 {
        self.seq.load(Ordering::Acquire)
    }

    /// Wakes one waiting thread (of any process), if any.
    pub fn notify_one(&self) {
        self.notify(1);
    }

    /// Wakes every waiting thread.
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }

    /// Threads waiting now (a hint: it counts waiters that died while waiting).
    pub fn waiters(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    fn notify(&self, n: u32) {
        self.seq.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) != 0 {
            futex_wake(&self.seq, n);
        }
    }

    fn wait_inner<'a, T: Pod>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Option<Duration>,
    ) -> LockResult<(MutexGuard<'a, T>, bool)> {
        let deadline = Deadline::after(timeout);
        // Announce, then read the counter, both before the unlock: a notify that follows the
        // unlock either sees the announcement or bumps the counter past `seen`.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let seen = self.seq.load(Ordering::SeqCst);
        guard.release();
        futex_wait(&self.seq, seen, timeout);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        let timed_out = self.seq.load(Ordering::Acquire) == seen && deadline.expired();
        // A timed wait retakes the mutex within its deadline, or within RELOCK_GRACE after the
        // wake-up if that is later: a peer that holds the mutex (even stopped) cannot make it
        // wait for ever.
        let relock = timeout.map(|_| {
            deadline
                .remaining()
                .unwrap_or(Duration::ZERO)
                .max(RELOCK_GRACE)
        });
        match guard.reacquire(relock) {
            Ok(true) => Ok((guard, timed_out)),
            Ok(false) => Err(LockError::OwnerDied((guard, timed_out))),
            Err(e) => {
                // The lock is not held: nothing to release.
                core::mem::forget(guard);
                Err(LockError::Error(e))
            }
        }
    }
}

/// The least time a timed wait gives itself to retake the mutex after waking, so that a wake-up
/// at the very end of the timeout does not fail for want of a few microseconds.
const RELOCK_GRACE: Duration = Duration::from_millis(100);

/// `OwnerDied((guard, _))` → `OwnerDied(guard)`.
fn guard_only<G>(e: LockError<(G, bool)>) -> LockError<G> {
    match e {
        LockError::OwnerDied((g, _)) => LockError::OwnerDied(g),
        LockError::Error(e) => LockError::Error(e),
    }
}

impl core::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Condvar")
            .field("generation", &self.generation())
            .field("waiters", &self.waiters())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Condvar is #[repr(C)], two AtomicU32 (valid for any bits); fixed layout; no
    // pointers, no Drop.
    unsafe impl Object for Condvar {
        type Params = ();
        fn element() -> TypeTag {
            TypeTag::plain(Kind::CONDVAR)
        }
        fn tag(_: &()) -> TypeTag {
            Self::element()
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Condvar>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, _: ()) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Condvar.
            unsafe { ptr.cast::<Condvar>().as_ptr().write(Condvar::new()) }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wait_since_sees_a_notify_made_before_or_during_the_wait() {
        let cv = Condvar::new();
        let g = cv.generation();
        let t = Instant::now();
        assert!(!cv.wait_since(g, Some(Duration::from_millis(20))));
        assert!(t.elapsed() >= Duration::from_millis(15));
        cv.notify_n(1);
        assert!(
            cv.wait_since(g, None),
            "a notify before the wait is seen at once"
        );
        let g = cv.generation();
        std::thread::scope(|s| {
            let w = s.spawn(|| cv.wait_since(g, Some(Duration::from_secs(20))));
            while cv.waiters() == 0 {
                std::thread::yield_now();
            }
            cv.notify_n(1);
            assert!(w.join().unwrap());
        });
        let g = cv.generation();
        cv.notify_n(0);
        assert_eq!(cv.generation(), g, "notify_n(0) notifies nobody");
    }
}
