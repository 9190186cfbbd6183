//! [`Mutex<T>`]: a robust, process-shared futex mutex around plain data.

use super::owner::Held;
use super::raw::{Acquired, Fail, LockState, RawMutex, Wait};
use super::{LockError, LockResult};
use crate::sync::AtomicU64;
use crate::words::{load_pod, store_pod, words_for_type};
use bytemuck::Pod;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use std::time::Duration;

/// A mutual-exclusion lock around a plain value `T`, shared by threads and processes, that knows
/// its owner.
///
/// - **Fast**: an uncontended `lock` is one CAS on the lock word, `unlock` another; no system call.
///   A contended lock spins briefly, then sleeps on a shared futex; `unlock` makes the `FUTEX_WAKE`
///   call only when a waiter announced itself in the word.
/// - **Robust**: the lock word holds the owner's thread id, set by the same CAS that takes the
///   lock, and the owner records its pid and process start time next to it. If the owner dies
///   holding the lock (even by `SIGKILL`), the next thread to lock it gets
///   [`LockError::OwnerDied`] *with the guard inside*: it holds the lock and can repair the data.
///   Waiters never hang on a dead owner: a sleeping waiter wakes every 10 ms to check the owner's
///   liveness, so death is detected within that bound even when nobody was waiting at the time.
/// - **Rust's poison convention, not POSIX's**: after `OwnerDied`, call
///   [`MutexGuard::mark_consistent`] once the data is repaired, and the mutex is normal again.
///   Dropping that guard *without* `mark_consistent` (for example through `?` or `unwrap` on the
///   [`LockError`]) unlocks the mutex but keeps it *inconsistent*: the next locker, in any
///   process, gets `OwnerDied` with the guard again, until someone repairs the data and calls
///   `mark_consistent`. If the thread that got `OwnerDied` dies too, the next one gets
///   `OwnerDied` again. Only an explicit [`MutexGuard::mark_not_recoverable`] makes the mutex
///   permanently unusable (every present and future `lock` fails with
///   [`Error::NotRecoverable`](crate::Error::NotRecoverable); remove the object and create it
///   again). This differs from POSIX robust mutexes, which become `ENOTRECOVERABLE` as soon as
///   an `EOWNERDEAD` holder unlocks without `pthread_mutex_consistent`: there, ordinary error
///   handling that unwinds past the guard bricks the lock for every process.
///
/// The value lives in shared memory as atomic words. The guard copies it out when the lock is
/// taken and, if it was borrowed mutably, back in just before the unlock; a guard of a large `T`
/// therefore costs a copy of `T` each way. A peer that writes the words without the lock can make
/// the value wrong, never undefined behaviour.
///
/// Relocking from the thread that holds the lock returns
/// [`Error::WouldDeadlock`](crate::Error::WouldDeadlock) instead of hanging. A guard cannot be
/// sent to another thread (the lock belongs to a thread).
///
/// ```
/// let m = shmkit::Mutex::new(5u64);
/// {
///     let mut g = m.lock().unwrap();
///     *g += 1;
/// }
/// assert_eq!(*m.try_lock().unwrap(), 6);
/// ```
///
/// Recovering from a dead owner:
///
/// ```no_run
/// # let seg = shmkit::Segment::open("app").unwrap();
/// let m = seg.mutex("state", [0u64; 2])?;
/// let mut g = match m.lock() {
///     Ok(g) => g,
///     Err(shmkit::LockError::OwnerDied(mut g)) => {
///         g[1] = g[0]; // repair the invariant the dead owner may have broken
///         g.mark_consistent();
///         g
///     }
///     Err(shmkit::LockError::Error(e)) => return Err(e),
/// };
/// g[0] += 1;
/// g[1] += 1;
/// # Ok::<(), shmkit::Error>(())
/// ```
#[repr(C)]
pub struct Mutex<T> {
    raw: RawMutex,
    _t: PhantomData<T>,
    /// `T`'s bytes in `words_for_type::<T>()` (or more) words.
    data: [AtomicU64],
}

// SAFETY: every field is atomic (or a marker); T is Pod (Copy, no references), held only as bits.
unsafe impl<T: Pod> Sync for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Pod> Send for Mutex<T> {}

impl<T: Pod> Mutex<T> {
    /// A mutex on the heap (for one process, tests and models), holding `value`.
    pub fn new(value: T) -> Box<Self> {
        let n = words_for_type::<T>();
        let layout = layout_for(n).expect("a Mutex<T> layout fits in memory");
        // SAFETY: the layout has a non-zero size (the lock word alone is 24 bytes).
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: p is a fresh allocation of `layout_for(n)`, aligned for it.
        unsafe { init_in_place::<T>(p, n, value) };
        // SAFETY: p holds an initialized Mutex<T> with n data words, allocated by the global
        // allocator with exactly the layout of that value (layout_for follows #[repr(C)]).
        unsafe { Box::from_raw(fat::<T>(p, n)) }
    }

    /// Locks, waiting as long as needed. See the type's docs for [`LockError::OwnerDied`].
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (you hold the lock); [`LockError::Error`] with
    /// [`NotRecoverable`](crate::Error::NotRecoverable) or
    /// [`WouldDeadlock`](crate::Error::WouldDeadlock).
    #[inline]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.acquire(Wait::For(None))
    }

    /// Locks if that is possible without waiting. A lock held by a dead owner is taken over
    /// ([`LockError::OwnerDied`]); a failed attempt costs a liveness check of the owner (a
    /// `/proc` read).
    ///
    /// # Errors
    /// As [`lock`](Mutex::lock), plus [`WouldBlock`](crate::Error::WouldBlock) when a live
    /// thread holds the lock.
    #[inline]
    pub fn try_lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.acquire(Wait::Try)
    }

    /// Locks, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`lock`](Mutex::lock), plus [`Timeout`](crate::Error::Timeout).
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> LockResult<MutexGuard<'_, T>> {
        self.acquire(Wait::For(Some(timeout)))
    }

    /// Locks if no thread holds the lock now, without [`try_lock`](Mutex::try_lock)'s liveness
    /// check of a holder (a `/proc` read): for polling in a spin loop. A lock held by a dead
    /// owner stays [`WouldBlock`](crate::Error::WouldBlock) here; [`lock`](Mutex::lock),
    /// [`lock_timeout`](Mutex::lock_timeout) and `try_lock` take it over. A lock left
    /// unrepaired by a dead owner (free, with the owner-died mark) is taken with
    /// [`LockError::OwnerDied`], as by the others.
    ///
    /// ```
    /// # fn main() -> shmkit::Result<()> {
    /// let seg = shmkit::Segment::anonymous(1 << 16)?;
    /// let m = seg.mutex("m", 0u32)?;
    /// let g = m.try_lock_if_free().unwrap();
    /// assert!(matches!(
    ///     m.try_lock_if_free(),
    ///     Err(shmkit::LockError::Error(shmkit::Error::WouldDeadlock { .. }))
    /// ));
    /// drop(g);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`LockError::OwnerDied`] (you hold the lock); [`LockError::Error`] with
    /// [`WouldBlock`](crate::Error::WouldBlock) (held, or lost the race for it),
    /// [`WouldDeadlock`](crate::Error::WouldDeadlock) (this thread holds it) or
    /// [`NotRecoverable`](crate::Error::NotRecoverable).
    #[inline]
    pub fn try_lock_if_free(&self) -> LockResult<MutexGuard<'_, T>> {
        self.guard(self.raw.lock_if_free())
    }

    /// The lock word's current state (owner, waiters, owner-died and not-recoverable marks), for
    /// tools. Stale as soon as it is returned.
    pub fn state(&self) -> LockState {
        self.raw.state()
    }

    #[inline(always)]
    fn acquire(&self, wait: Wait) -> LockResult<MutexGuard<'_, T>> {
        self.guard(self.raw.lock(wait))
    }

    /// The guard (or error) of a lock attempt's result.
    #[inline(always)]
    fn guard(&self, r: Result<(Held, Acquired), Fail>) -> LockResult<MutexGuard<'_, T>> {
        let (me, how) = match r {
            Ok(x) => x,
            Err(f) => return Err(LockError::Error(f.into_error("mutex"))),
        };
        let guard = MutexGuard {
            mutex: self,
            me,
            value: load_pod(&self.data),
            dirty: false,
            consistent: how == Acquired::Clean,
            _not_send: PhantomData,
        };
        match how {
            Acquired::Clean => Ok(guard),
            Acquired::OwnerDied => Err(LockError::OwnerDied(guard)),
        }
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mutex")
            .field("state", &self.raw.state())
            .finish_non_exhaustive()
    }
}

/// Layout of a `Mutex<T>` with `n` data words (as `#[repr(C)]` lays it out).
fn layout_for(n: usize) -> Option<Layout> {
    let (l, _) = Layout::new::<RawMutex>()
        .extend(Layout::array::<AtomicU64>(n).ok()?)
        .ok()?;
    Some(l.pad_to_align())
}

/// The fat pointer to a `Mutex<T>` with `n` data words at `p`.
fn fat<T>(p: *mut u8, n: usize) -> *mut Mutex<T> {
    core::ptr::slice_from_raw_parts_mut(p, n) as *mut Mutex<T>
}

/// Writes an unlocked mutex holding `value` at `p`.
///
/// # Safety
/// `p` is valid for writes of `layout_for(n)` bytes and aligned for it; `n >= words_for_type::<T>()`.
unsafe fn init_in_place<T: Pod>(p: *mut u8, n: usize, value: T) {
    let m = fat::<T>(p, n);
    // SAFETY: per the contract, the raw lock and each data word are in bounds and aligned
    // (addr_of_mut! computes the #[repr(C)] field places without forming references).
    unsafe {
        core::ptr::addr_of_mut!((*m).raw).write(RawMutex::new());
        let data = core::ptr::addr_of_mut!((*m).data) as *mut AtomicU64;
        for i in 0..n {
            data.add(i).write(AtomicU64::new(0));
        }
        store_pod(&(*m).data, &value);
    }
}

/// The lock held: derefs to a copy of the value, written back (if borrowed mutably) at drop,
/// just before the unlock. Not `Send`: the lock belongs to the thread that took it.
///
/// ```
/// # fn main() -> shmkit::Result<()> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let m = seg.mutex("pair", [0u64; 2])?;
/// {
///     let mut g = m.lock().unwrap();
///     g[0] += 1; // changes the guard's copy...
///     g[1] += 1;
/// } // ...written back at drop, just before the unlock
/// assert_eq!(*m.lock().unwrap(), [1, 1]);
/// # Ok(()) }
/// ```
pub struct MutexGuard<'a, T: Pod> {
    mutex: &'a Mutex<T>,
    me: Held,
    value: T,
    dirty: bool,
    consistent: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only gives `&T`, and T is Pod (Sync).
unsafe impl<T: Pod> Sync for MutexGuard<'_, T> {}

impl<T: Pod> MutexGuard<'_, T> {
    /// Declares the data repaired after [`LockError::OwnerDied`]: the mutex returns to normal use.
    /// Does nothing on a guard that was acquired normally.
    pub fn mark_consistent(&mut self) {
        if !self.consistent && self.me.is_current() {
            self.mutex.raw.mark_consistent(&self.me);
            self.consistent = true;
        }
    }

    /// Declares the data beyond repair and unlocks: the mutex becomes permanently unusable, and
    /// every present and future `lock`, in every process, fails with
    /// [`Error::NotRecoverable`](crate::Error::NotRecoverable) (POSIX `ENOTRECOVERABLE`). The
    /// guard's changes are not written back. Remove the object and create it again to start
    /// over. (Merely dropping an unrepaired guard does *not* do this; see [`Mutex`].)
    pub fn mark_not_recoverable(self) {
        let me = self.me;
        let mutex = self.mutex;
        core::mem::forget(self);
        if me.is_current() {
            mutex.raw.give_up(&me);
        }
    }

    /// `false` for a guard from [`LockError::OwnerDied`] until
    /// [`mark_consistent`](MutexGuard::mark_consistent).
    pub fn is_consistent(&self) -> bool {
        self.consistent
    }

    /// The mutex this guard locks.
    pub fn mutex(&self) -> &Mutex<T> {
        self.mutex
    }

    /// Writes the value back (if changed) and releases the lock, keeping the guard for a later
    /// [`reacquire`](Self::reacquire): for condition variables.
    pub(crate) fn release(&mut self) {
        if !self.me.is_current() {
            return; // a forked child's copy: the lock is the parent's
        }
        if self.dirty {
            store_pod(&self.mutex.data, &self.value);
            self.dirty = false;
        }
        self.mutex.raw.unlock(&self.me);
    }

    /// Retakes the lock after [`release`](Self::release), waiting at most `timeout` (`None`: as
    /// long as needed), and reloads the value. `Ok(false)`: taken over from a dead owner (not
    /// consistent). On an error the lock is not held.
    pub(crate) fn reacquire(&mut self, timeout: Option<Duration>) -> Result<bool, crate::Error> {
        let (me, how) = self
            .mutex
            .raw
            .lock(Wait::For(timeout))
            .map_err(|f| f.into_error("mutex"))?;
        self.me = me;
        self.consistent = how == Acquired::Clean;
        self.value = load_pod(&self.mutex.data);
        Ok(self.consistent)
    }
}

impl<T: Pod> Deref for MutexGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: Pod> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        self.dirty = true;
        &mut self.value
    }
}

impl<T: Pod> Drop for MutexGuard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        if !self.me.is_current() {
            // A copy inherited by a `fork()`ed child: the lock (and the right to write the data)
            // belongs to the thread of the parent that took it. Do nothing.
            return;
        }
        if self.dirty {
            store_pod(&self.mutex.data, &self.value);
            crate::hooks::at("mutex.unlock.written");
        }
        self.mutex.raw.unlock(&self.me);
    }
}

impl<T: Pod + core::fmt::Debug> core::fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MutexGuard")
            .field("value", &self.value)
            .field("consistent", &self.consistent)
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use crate::words::words_for;
    use core::ptr::NonNull;

    fn words_of(tag: &TypeTag) -> usize {
        words_for(tag.elem_size as usize)
    }

    // SAFETY: Mutex<T> is #[repr(C)], made of atomics only (valid for any bits); layout() and
    // cast() both size the data from the local tag's element size, which is at least T's (checked
    // in layout, and equal to T's for typed opens); no pointers, no Drop.
    unsafe impl<T: Pod> Object for Mutex<T> {
        type Params = T;
        fn element() -> TypeTag {
            TypeTag::of::<T>(Kind::MUTEX)
        }
        fn tag(_: &T) -> TypeTag {
            Self::element()
        }
        fn layout(tag: &TypeTag) -> Option<Layout> {
            let n = words_of(tag);
            if n < words_for_type::<T>() {
                return None;
            }
            layout_for(n)
        }
        unsafe fn init(ptr: NonNull<u8>, tag: &TypeTag, init: T) {
            // SAFETY: per the trait contract ptr is writable and aligned for layout(tag), which
            // is layout_for(words_of(tag)) with words_of(tag) >= words_for_type::<T>().
            unsafe { init_in_place::<T>(ptr.as_ptr(), words_of(tag), init) }
        }
        fn cast(ptr: NonNull<u8>, tag: &TypeTag) -> NonNull<Self> {
            // SAFETY: fat() keeps the (non-null) address of ptr.
            unsafe { NonNull::new_unchecked(fat::<T>(ptr.as_ptr(), words_of(tag))) }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn layout_matches_the_compiler() {
        let m = Mutex::new([1u8; 13]);
        assert_eq!(
            core::mem::size_of_val(&*m),
            layout_for(words_for_type::<[u8; 13]>()).unwrap().size()
        );
        assert_eq!(*m.lock().unwrap(), [1u8; 13]);
        let z = Mutex::new(());
        assert_eq!(core::mem::size_of_val(&*z), 24);
        drop(z.lock().unwrap());
    }

    #[test]
    fn lock_try_timeout_relock() {
        let m = Mutex::new(0u64);
        let mut g = m.lock().unwrap();
        *g = 7;
        assert!(matches!(
            m.try_lock(),
            Err(LockError::Error(Error::WouldDeadlock { .. }))
        ));
        assert!(m.state().owner_tid.is_some());
        drop(g);
        assert_eq!(m.state().owner_tid, None);
        std::thread::scope(|s| {
            let g = m.lock().unwrap();
            s.spawn(|| {
                assert!(matches!(
                    m.try_lock(),
                    Err(LockError::Error(Error::WouldBlock { .. }))
                ));
                let t = std::time::Instant::now();
                assert!(matches!(
                    m.lock_timeout(Duration::from_millis(30)),
                    Err(LockError::Error(Error::Timeout { .. }))
                ));
                assert!(t.elapsed() >= Duration::from_millis(30));
            })
            .join()
            .unwrap();
            drop(g);
        });
        assert_eq!(*m.lock_timeout(Duration::from_millis(1)).unwrap(), 7);
    }

    #[test]
    fn threads_exclusive() {
        let m = Mutex::new([0u64; 3]);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..5000 {
                        let mut g = m.lock().unwrap();
                        g[0] += 1;
                        g[2] = g[0] * 2;
                    }
                });
            }
        });
        assert_eq!(*m.lock().unwrap(), [20000, 0, 40000]);
    }

    /// Returns `OwnerDied` from `m` (after a thread exited holding it); the exited thread may
    /// linger in /proc for a moment, so a `WouldBlock` is retried.
    fn owner_died(m: &Mutex<u32>) -> MutexGuard<'_, u32> {
        let t = std::time::Instant::now();
        loop {
            match m.try_lock() {
                Err(LockError::OwnerDied(g)) => return g,
                Err(LockError::Error(Error::WouldBlock { .. }))
                    if t.elapsed() < Duration::from_secs(5) =>
                {
                    std::thread::sleep(Duration::from_millis(1))
                }
                other => panic!("expected OwnerDied, got {other:?}"),
            }
        }
    }

    #[test]
    fn unrepaired_drop_hands_owner_died_to_the_next_locker() {
        let m = Mutex::new(1u32);
        std::thread::scope(|s| {
            s.spawn(|| core::mem::forget(m.lock().unwrap()));
        });
        let mut g = owner_died(&m);
        assert!(!g.is_consistent());
        assert!(m.state().owner_died);
        *g = 2;
        drop(g); // not repaired: unlocked, still inconsistent
        let s = m.state();
        assert!(
            s.owner_died && !s.not_recoverable && s.owner_tid.is_none(),
            "{s:?}"
        );
        // `?` on the error does the same: the guard is dropped, nothing is bricked.
        let via_question_mark = || -> Result<u32, Error> { Ok(*m.lock()?) };
        assert!(matches!(via_question_mark(), Err(Error::OwnerDied { .. })));
        for _ in 0..2 {
            match m.lock() {
                Err(LockError::OwnerDied(g)) => assert_eq!(*g, 2, "the change was written back"),
                other => panic!("expected OwnerDied again, got {other:?}"),
            }
        }
        let mut g = m.try_lock().unwrap_err().into_guard().unwrap();
        g.mark_consistent();
        drop(g);
        assert_eq!(*m.lock().unwrap(), 2);
        assert!(!m.state().owner_died);
    }

    #[test]
    fn mark_not_recoverable_is_for_good() {
        let m = Mutex::new(1u32);
        std::thread::scope(|s| {
            s.spawn(|| core::mem::forget(m.lock().unwrap()));
        });
        let mut g = owner_died(&m);
        *g = 5;
        g.mark_not_recoverable();
        assert!(m.state().not_recoverable);
        for r in [
            m.lock(),
            m.try_lock(),
            m.lock_timeout(Duration::from_millis(1)),
        ] {
            assert!(matches!(
                r,
                Err(LockError::Error(Error::NotRecoverable { .. }))
            ));
        }
        // A healthy guard can give up too.
        let h = Mutex::new(0u8);
        h.lock().unwrap().mark_not_recoverable();
        assert!(h.state().not_recoverable);
    }

    #[test]
    fn mark_consistent_restores() {
        let m = Mutex::new(1u32);
        std::thread::scope(|s| {
            s.spawn(|| core::mem::forget(m.lock().unwrap()));
        });
        let mut g = owner_died(&m);
        g.mark_consistent();
        *g += 1;
        drop(g);
        assert_eq!(*m.lock().unwrap(), 2);
        assert!(!m.state().owner_died);
    }
}
