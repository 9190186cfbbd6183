//! [`Semaphore`]: a process-shared counting semaphore, optionally bounded, that knows which
//! processes hold its permits.

use super::owner::{me, LIVENESS_PERIOD};
use super::raw::{Acquired, Fail, RawMutex, Wait};
use crate::sync::{futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering};
use crate::{Error, Result};
use std::time::Duration;

/// Processes whose permits are tracked individually; permits of further processes are counted
/// as `untracked` (not reclaimable).
pub const HOLDER_SLOTS: usize = 16;

/// Permits held by one process.
#[repr(C)]
struct Holder {
    /// The process id (0: free slot).
    pid: AtomicU64,
    /// Its start time.
    start: AtomicU64,
    /// Permits it holds.
    count: AtomicU64,
}

/// A counting semaphore shared by threads and processes (Python's `Semaphore`, and
/// `BoundedSemaphore` when created with [`bounded`](Semaphore::bounded)).
///
/// Each process's holdings are recorded (pid + start time). When a waiter finds no permit, it
/// sleeps at most 10 ms at a time and then looks for holders that died: their permits are
/// **reclaimed** (added back and counted in [`reclaimed`](Semaphore::reclaimed)), not silently
/// lost. This assumes a permit is released by the process that acquired it, as with a lock; a
/// permit handed to another process to release is accounted to the acquirer until then.
///
/// The bookkeeping is guarded by a small robust lock, so a process killed in the middle of an
/// `acquire` or `release` cannot leave it half-updated for good: the next operation takes the lock
/// over and sweeps the dead holders.
///
/// ```
/// let s = shmkit::Semaphore::bounded(2, 2);
/// s.acquire().unwrap();
/// assert!(s.try_acquire().is_ok());
/// assert!(s.try_acquire().is_err());
/// s.release().unwrap();
/// s.release().unwrap();
/// assert!(s.release().is_err(), "a bounded semaphore refuses an extra release");
/// ```
#[repr(C)]
pub struct Semaphore {
    /// Guards every field below.
    lock: RawMutex,
    /// The futex word: free permits.
    permits: AtomicU32,
    /// Threads sleeping (or about to) on `permits` (a hint).
    sleepers: AtomicU32,
    /// Most permits that may be free (0: unbounded).
    bound: AtomicU64,
    /// Permits reclaimed from dead holders, in all.
    reclaimed: AtomicU64,
    /// Permits held by processes that found no free holder slot.
    untracked: AtomicU64,
    holders: [Holder; HOLDER_SLOTS],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Semaphore, [u64; 3 + 4 + 3 * HOLDER_SLOTS]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Semaphore, u64);

impl Semaphore {
    /// An unbounded semaphore on the heap with `permits` free permits.
    pub fn new(permits: u32) -> Self {
        Self::with_bound(permits, 0)
    }

    /// A bounded semaphore on the heap: `permits` free, and a `release` that would make more than
    /// `bound` free fails with [`Error::SemaphoreOverRelease`].
    pub fn bounded(permits: u32, bound: u32) -> Self {
        Self::with_bound(permits, bound.max(1))
    }

    fn with_bound(permits: u32, bound: u32) -> Self {
        Semaphore {
            lock: RawMutex::new(),
            permits: AtomicU32::new(permits),
            sleepers: AtomicU32::new(0),
            bound: AtomicU64::new(u64::from(bound)),
            reclaimed: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            holders: core::array::from_fn(|_| Holder {
                pid: AtomicU64::new(0),
                start: AtomicU64::new(0),
                count: AtomicU64::new(0),
            }),
        }
    }

    /// Takes a permit, waiting as long as needed.
    ///
    /// # Errors
    /// [`Error::NotRecoverable`] if the internal lock was made unusable (only by a peer writing
    /// the shared memory).
    pub fn acquire(&self) -> Result<()> {
        self.acquire_inner(Wait::For(None))
    }

    /// Takes a permit if one is free now.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when none is free.
    pub fn try_acquire(&self) -> Result<()> {
        self.acquire_inner(Wait::Try)
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`].
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.acquire_inner(Wait::For(Some(timeout)))
    }

    /// Returns a permit and wakes one waiter.
    ///
    /// # Errors
    /// [`Error::SemaphoreOverRelease`] for a bounded semaphore whose free permits are at the
    /// bound.
    pub fn release(&self) -> Result<()> {
        self.locked(|s| {
            let free = s.permits.load(Ordering::Relaxed);
            let bound = s.bound.load(Ordering::Relaxed);
            if (bound != 0 && u64::from(free) >= bound) || free == u32::MAX {
                return Err(Error::SemaphoreOverRelease {
                    bound: bound.min(u64::from(u32::MAX)) as u32,
                });
            }
            s.permits.store(free + 1, Ordering::Release);
            s.forget_one_held();
            Ok(s.sleepers.load(Ordering::Relaxed) != 0)
        })
        .map(|wake| {
            if wake {
                futex_wake(&self.permits, 1);
            }
        })
    }

    /// Free permits now.
    pub fn available(&self) -> u32 {
        self.permits.load(Ordering::Acquire)
    }

    /// The bound (`None`: unbounded).
    pub fn bound(&self) -> Option<u32> {
        match self.bound.load(Ordering::Relaxed) {
            0 => None,
            b => Some(b.min(u64::from(u32::MAX)) as u32),
        }
    }

    /// Permits reclaimed from processes that died holding them, in all.
    pub fn reclaimed(&self) -> u64 {
        self.reclaimed.load(Ordering::Relaxed)
    }

    /// Permits held per process now: `(pid, count)`, plus `(0, n)` for untracked holders.
    pub fn holders(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self
            .holders
            .iter()
            .filter_map(|h| {
                let pid = h.pid.load(Ordering::Relaxed);
                let n = h.count.load(Ordering::Relaxed);
                (pid != 0 && n != 0).then_some((pid as u32, n))
            })
            .collect();
        let u = self.untracked.load(Ordering::Relaxed);
        if u != 0 {
            v.push((0, u));
        }
        v
    }

    /// Runs `f` under the internal lock; a lock taken over from a dead process is repaired by a
    /// sweep of dead holders first.
    fn locked<R>(&self, f: impl FnOnce(&Self) -> Result<R>) -> Result<R> {
        let (me, how) = self
            .lock
            .lock(Wait::For(None))
            .map_err(|e| e.into_error("semaphore"))?;
        if how == Acquired::OwnerDied {
            self.sweep();
            self.lock.mark_consistent(&me);
        }
        let r = f(self);
        self.lock.unlock(&me, true);
        r
    }

    fn acquire_inner(&self, wait: Wait) -> Result<()> {
        let (deadline, total) = match wait {
            Wait::For(d) => (Deadline::after(d), d.unwrap_or(Duration::MAX)),
            Wait::Try => (Deadline::after(Some(Duration::ZERO)), Duration::ZERO),
        };
        let mut sweep = matches!(wait, Wait::Try);
        loop {
            // Some(true): got a permit; Some(false): announced as a sleeper; None: out of time.
            let got = self.locked(|s| {
                if sweep && s.permits.load(Ordering::Relaxed) == 0 {
                    s.sweep();
                }
                let free = s.permits.load(Ordering::Relaxed);
                if free > 0 {
                    s.permits.store(free - 1, Ordering::Release);
                    s.note_held();
                    return Ok(Some(true));
                }
                if deadline.expired() {
                    return Ok(None);
                }
                s.sleepers.fetch_add(1, Ordering::Relaxed);
                Ok(Some(false))
            })?;
            match got {
                Some(true) => return Ok(()),
                Some(false) => {}
                None => {
                    return Err(match wait {
                        Wait::Try => Fail::WouldBlock,
                        Wait::For(_) => Fail::Timeout(total),
                    }
                    .into_error("semaphore"))
                }
            }
            let nap = deadline
                .remaining()
                .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
            futex_wait(&self.permits, 0, Some(nap));
            self.sleepers.fetch_sub(1, Ordering::Relaxed);
            // Still nothing free after a nap: look for dead holders next time.
            sweep = self.permits.load(Ordering::Relaxed) == 0;
        }
    }

    /// Records one more permit held by this process (under the lock).
    fn note_held(&self) {
        let me = me();
        let mut free_slot = None;
        for h in &self.holders {
            let pid = h.pid.load(Ordering::Relaxed);
            if pid == u64::from(me.pid) && h.start.load(Ordering::Relaxed) == me.start {
                h.count.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if pid == 0 && free_slot.is_none() {
                free_slot = Some(h);
            }
        }
        match free_slot {
            Some(h) => {
                h.start.store(me.start, Ordering::Relaxed);
                h.count.store(1, Ordering::Relaxed);
                h.pid.store(u64::from(me.pid), Ordering::Relaxed);
            }
            None => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records one permit less held by this process, if it holds any (under the lock).
    fn forget_one_held(&self) {
        let me = me();
        for h in &self.holders {
            if h.pid.load(Ordering::Relaxed) == u64::from(me.pid)
                && h.start.load(Ordering::Relaxed) == me.start
            {
                let n = h.count.load(Ordering::Relaxed);
                if n <= 1 {
                    h.count.store(0, Ordering::Relaxed);
                    h.pid.store(0, Ordering::Relaxed);
                } else {
                    h.count.store(n - 1, Ordering::Relaxed);
                }
                return;
            }
        }
        let u = self.untracked.load(Ordering::Relaxed);
        self.untracked.store(u.saturating_sub(1), Ordering::Relaxed);
    }

    /// Gives back the permits of holders that died (under the lock).
    fn sweep(&self) {
        for h in &self.holders {
            let pid = h.pid.load(Ordering::Relaxed);
            if pid == 0 {
                continue;
            }
            let start = h.start.load(Ordering::Relaxed);
            if pid > u64::from(u32::MAX) || !holder_alive(pid as u32, start) {
                let n = h.count.load(Ordering::Relaxed);
                let free = u64::from(self.permits.load(Ordering::Relaxed));
                let bound = self.bound.load(Ordering::Relaxed);
                let mut back = free.saturating_add(n).min(u64::from(u32::MAX));
                if bound != 0 {
                    back = back.min(bound);
                }
                self.permits.store(back as u32, Ordering::Release);
                self.reclaimed.fetch_add(n, Ordering::Relaxed);
                h.count.store(0, Ordering::Relaxed);
                h.pid.store(0, Ordering::Relaxed);
                if self.sleepers.load(Ordering::Relaxed) != 0 {
                    futex_wake(&self.permits, u32::MAX);
                }
            }
        }
    }
}

#[cfg(not(feature = "loom"))]
fn holder_alive(pid: u32, start: u64) -> bool {
    crate::process::owner_alive(pid, start)
}

/// Under loom every holder is one process: alive.
#[cfg(feature = "loom")]
fn holder_alive(_pid: u32, _start: u64) -> bool {
    true
}

impl core::fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("bound", &self.bound())
            .field("reclaimed", &self.reclaimed())
            .finish_non_exhaustive()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Semaphore is #[repr(C)], made only of atomics (valid for any bits); fixed layout;
    // no pointers, no Drop.
    unsafe impl Object for Semaphore {
        /// (free permits, bound; 0 = unbounded)
        type Params = (u32, u32);
        fn element() -> TypeTag {
            TypeTag::plain(Kind::SEMAPHORE)
        }
        fn tag(p: &(u32, u32)) -> TypeTag {
            Self::element().with_dims(u64::from(p.1), 0)
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Semaphore>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, (permits, bound): (u32, u32)) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Semaphore.
            unsafe {
                ptr.cast::<Semaphore>()
                    .as_ptr()
                    .write(Semaphore::with_bound(permits, bound))
            }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}
