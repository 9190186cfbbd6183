//! [`ReentrantMutex`]: a robust, process-shared lock that its owner thread may take again
//! (Python's `RLock`).

use super::owner::{me, Held};
use super::raw::{Acquired, Fail, LockState, RawMutex, Wait};
use super::{LockError, LockResult};
use crate::sync::{AtomicU64, Ordering};
use core::marker::PhantomData;
use std::time::Duration;

/// A lock that the thread holding it can take again; it is released when every guard is dropped.
/// Like Python's `RLock` it protects code, not data (put shared data in atomics or a
/// [`Mutex`](crate::Mutex)).
///
/// It is robust like [`Mutex`](crate::Mutex), with the same poison convention: the lock word
/// names the owner thread, a lock whose owner died is handed to the next thread with
/// [`LockError::OwnerDied`], and releasing it (the last guard) without
/// [`mark_consistent`](ReentrantGuard::mark_consistent) hands `OwnerDied` to the next locker
/// again; only [`mark_not_recoverable`](ReentrantGuard::mark_not_recoverable) makes the lock
/// permanently unusable. The depth of the dead owner is forgotten: the new owner starts at
/// depth 1.
///
/// ```
/// let m = shmkit::ReentrantMutex::new();
/// let a = m.lock().unwrap();
/// let b = m.lock().unwrap(); // the same thread: no deadlock
/// assert_eq!(m.depth(), 2);
/// drop(b);
/// drop(a);
/// assert_eq!(m.state().owner_tid, None);
/// ```
#[repr(C)]
pub struct ReentrantMutex {
    raw: RawMutex,
    /// How many guards the owner holds (written only by the owner, under the lock).
    depth: AtomicU64,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(ReentrantMutex, [u64; 4]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(ReentrantMutex, u64);

impl Default for ReentrantMutex {
    fn default() -> Self {
        ReentrantMutex::new()
    }
}

impl ReentrantMutex {
    /// An unlocked reentrant mutex on the heap.
    pub fn new() -> Self {
        ReentrantMutex {
            raw: RawMutex::new(),
            depth: AtomicU64::new(0),
        }
    }

    /// Locks (again, if this thread holds it already), waiting as long as needed.
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (you hold it); [`LockError::Error`] with
    /// [`NotRecoverable`](crate::Error::NotRecoverable).
    pub fn lock(&self) -> LockResult<ReentrantGuard<'_>> {
        self.acquire(Wait::For(None))
    }

    /// Locks if possible without waiting.
    ///
    /// # Errors
    /// As [`lock`](ReentrantMutex::lock), plus [`WouldBlock`](crate::Error::WouldBlock).
    pub fn try_lock(&self) -> LockResult<ReentrantGuard<'_>> {
        self.acquire(Wait::Try)
    }

    /// Locks, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`lock`](ReentrantMutex::lock), plus [`Timeout`](crate::Error::Timeout).
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<ReentrantGuard<'_>> {
        self.acquire(Wait::For(Some(timeout)))
    }

    /// Locks (again, if this thread holds it already) if no other thread holds it now, without
    /// [`try_lock`](ReentrantMutex::try_lock)'s liveness check of a holder (a `/proc` read): for
    /// polling in a spin loop. A lock held by a dead owner stays
    /// [`WouldBlock`](crate::Error::WouldBlock) here; the other ways to lock take it over.
    ///
    /// ```
    /// let m = shmkit::ReentrantMutex::new();
    /// let a = m.try_lock_if_free().unwrap();
    /// let b = m.try_lock_if_free().unwrap(); // this thread again
    /// assert_eq!(m.depth(), 2);
    /// # drop((b, a));
    /// ```
    ///
    /// # Errors
    /// As [`try_lock`](ReentrantMutex::try_lock).
    pub fn try_lock_if_free(&self) -> LockResult<ReentrantGuard<'_>> {
        self.acquire_with(|| self.raw.lock_if_free())
    }

    /// The owner's depth (0 when unlocked; meaningful to the owner).
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }

    /// The lock word's state, for tools.
    pub fn state(&self) -> LockState {
        self.raw.state()
    }

    fn acquire(&self, wait: Wait) -> LockResult<ReentrantGuard<'_>> {
        self.acquire_with(|| self.raw.lock(wait))
    }

    /// Takes one more level if this thread holds the lock, else the lock with `take`.
    #[inline(always)]
    fn acquire_with(
        &self,
        take: impl FnOnce() -> Result<(Held, Acquired), Fail>,
    ) -> LockResult<ReentrantGuard<'_>> {
        let me = me();
        if self.raw.held_by(&me) {
            let d = self.depth.load(Ordering::Relaxed);
            self.depth.store(d.saturating_add(1), Ordering::Relaxed);
            return Ok(ReentrantGuard {
                mutex: self,
                me: me.held(),
                _not_send: PhantomData,
            });
        }
        let (me, how) = take().map_err(|f| LockError::Error(f.into_error("reentrant mutex")))?;
        self.depth.store(1, Ordering::Relaxed);
        let g = ReentrantGuard {
            mutex: self,
            me,
            _not_send: PhantomData,
        };
        match how {
            Acquired::Clean => Ok(g),
            Acquired::OwnerDied => Err(LockError::OwnerDied(g)),
        }
    }
}

impl core::fmt::Debug for ReentrantMutex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReentrantMutex")
            .field("state", &self.state())
            .field("depth", &self.depth())
            .finish()
    }
}

/// One level of a held [`ReentrantMutex`]. Not `Send`.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let r = seg.reentrant_mutex("r")?;
/// let outer = r.lock().unwrap();
/// let inner = r.lock().unwrap(); // the same thread again: depth 2, no deadlock
/// assert_eq!(r.depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert_eq!(r.depth(), 0);
/// # Ok(()) }
/// ```
pub struct ReentrantGuard<'a> {
    mutex: &'a ReentrantMutex,
    /// The owner, as of the lock (inert in a `fork()`ed child).
    me: Held,
    _not_send: PhantomData<*const ()>,
}

impl ReentrantGuard<'_> {
    /// Declares the protected state repaired after [`LockError::OwnerDied`].
    pub fn mark_consistent(&mut self) {
        if self.me.is_current() {
            self.mutex.raw.mark_consistent(&self.me);
        }
    }

    /// `false` while the owner-died mark is on the lock.
    pub fn is_consistent(&self) -> bool {
        !self.mutex.raw.owner_died_marked()
    }

    /// Declares the protected state beyond repair and releases the lock whatever the depth: every
    /// present and future lock fails with [`NotRecoverable`](crate::Error::NotRecoverable).
    /// Other guards of this thread still alive release nothing when dropped.
    pub fn mark_not_recoverable(self) {
        let (m, me) = (self.mutex, self.me);
        core::mem::forget(self);
        if me.is_current() {
            m.depth.store(0, Ordering::Relaxed);
            m.raw.give_up(&me);
        }
    }
}

impl Drop for ReentrantGuard<'_> {
    fn drop(&mut self) {
        if !self.me.is_current() {
            return; // a copy inherited by a `fork()`ed child: the lock is the parent's
        }
        let m = self.mutex;
        let d = m.depth.load(Ordering::Relaxed);
        if d > 1 {
            m.depth.store(d - 1, Ordering::Relaxed);
            return;
        }
        m.depth.store(0, Ordering::Relaxed);
        m.raw.unlock(&self.me);
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: ReentrantMutex is #[repr(C)], made only of atomics (valid for any bits); fixed
    // layout; no pointers, no Drop.
    unsafe impl Object for ReentrantMutex {
        type Params = ();
        fn element() -> TypeTag {
            TypeTag::plain(Kind::REENTRANT_MUTEX)
        }
        fn tag(_: &()) -> TypeTag {
            Self::element()
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<ReentrantMutex>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, _: ()) {
            // SAFETY: per the trait contract ptr is aligned and sized for a ReentrantMutex.
            unsafe {
                ptr.cast::<ReentrantMutex>()
                    .as_ptr()
                    .write(ReentrantMutex::new())
            }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}
