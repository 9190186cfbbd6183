//! [`Barrier`]: a reusable, process-shared barrier that breaks instead of hanging.

use super::owner::{me, LIVENESS_PERIOD};
use super::raw::{Acquired, RawMutex, Wait};
use crate::sync::{futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering};
use crate::{Error, Result};
use std::time::Duration;

/// Processes whose participation is recorded (for detecting a party that died).
pub const PARTY_SLOTS: usize = 64;

#[repr(C)]
struct Party {
    /// Process id (0: free slot).
    pid: AtomicU64,
    /// Its start time.
    start: AtomicU64,
    /// 1 + the generation it last arrived in.
    arrived: AtomicU64,
}

/// A barrier for `parties` threads (of any processes), reusable generation after generation
/// (Python's `multiprocessing.Barrier`).
///
/// [`wait`](Barrier::wait) returns `Ok(true)` to exactly one party per generation, the leader
/// (the last to arrive). Instead of hanging, the barrier **breaks**: when a `wait_timeout` runs
/// out, or when a process that took part in an earlier generation died without arriving in the
/// current one (waiters check every 10 ms; a process that stops taking part and exits counts as
/// dead too). Every present and future wait then fails with [`Error::BarrierBroken`] until
/// [`reset`](Barrier::reset). A process that dies before it ever arrived is not known to the
/// barrier: use `wait_timeout` for the first generation. Up to [`PARTY_SLOTS`] processes are
/// recorded.
///
/// ```
/// let b = shmkit::Barrier::new(2);
/// let leaders = std::thread::scope(|s| {
///     let t = s.spawn(|| b.wait().unwrap());
///     let me = b.wait().unwrap();
///     me as u32 + t.join().unwrap() as u32
/// });
/// assert_eq!(leaders, 1);
/// assert_eq!(b.generation(), 1);
/// ```
#[repr(C)]
pub struct Barrier {
    /// Guards every field below.
    lock: RawMutex,
    /// The futex word: the current generation (bumped when one completes or breaks).
    generation: AtomicU32,
    /// Parties that arrived in the current generation.
    arrived: AtomicU32,
    /// Number of parties (at least 1).
    parties: AtomicU32,
    /// 1 when broken (until `reset`).
    broken: AtomicU32,
    /// Threads sleeping (or about to) on `generation` (a hint).
    sleepers: AtomicU32,
    /// 1 + the last generation that broke (kept by `reset`, so its waiters still see it).
    broke: AtomicU32,
    slots: [Party; PARTY_SLOTS],
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Barrier, [u64; 3 + 3 + 3 * PARTY_SLOTS]);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(Barrier, u64);

/// What one pass under the lock decided.
enum Step {
    Leader,
    Sleep(u32),
    Broken,
}

impl Barrier {
    /// A barrier on the heap for `parties` parties (at least 1).
    pub fn new(parties: u32) -> Self {
        Barrier {
            lock: RawMutex::new(),
            generation: AtomicU32::new(0),
            arrived: AtomicU32::new(0),
            parties: AtomicU32::new(parties.max(1)),
            broken: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            broke: AtomicU32::new(0),
            slots: core::array::from_fn(|_| Party {
                pid: AtomicU64::new(0),
                start: AtomicU64::new(0),
                arrived: AtomicU64::new(0),
            }),
        }
    }

    /// Arrives and waits for the other parties. `Ok(true)` for the generation's leader.
    ///
    /// # Errors
    /// [`Error::BarrierBroken`].
    pub fn wait(&self) -> Result<bool> {
        self.wait_inner(None)
    }

    /// As [`wait`](Barrier::wait), for at most `timeout`; running out breaks the barrier.
    ///
    /// # Errors
    /// [`Error::BarrierBroken`] (also for the party that timed out).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_inner(Some(timeout))
    }

    /// Arrives only if that completes the generation (then `Ok(true)`); otherwise does not count
    /// as arrived.
    ///
    /// # Errors
    /// [`Error::WouldBlock`] when other parties are still missing; [`Error::BarrierBroken`].
    pub fn try_wait(&self) -> Result<bool> {
        let done = self.locked(|b| {
            if b.broken.load(Ordering::Relaxed) != 0 {
                return Err(b.broken_error());
            }
            if b.arrived.load(Ordering::Relaxed) + 1 < b.parties.load(Ordering::Relaxed) {
                return Err(Error::WouldBlock { what: "barrier" });
            }
            b.note_arrival(b.generation.load(Ordering::Relaxed));
            b.complete();
            Ok(())
        });
        done.map(|()| {
            futex_wake(&self.generation, u32::MAX);
            true
        })
    }

    /// Repairs a broken barrier for a new generation; parties waiting now get
    /// [`Error::BarrierBroken`].
    pub fn reset(&self) -> Result<()> {
        self.locked(|b| {
            let g = b.generation.load(Ordering::Relaxed);
            if b.arrived.load(Ordering::Relaxed) != 0 {
                b.broke.store(g.wrapping_add(1).max(1), Ordering::Relaxed);
            }
            b.generation.store(g.wrapping_add(1), Ordering::Release);
            b.arrived.store(0, Ordering::Relaxed);
            b.broken.store(0, Ordering::Relaxed);
            for slot in &b.slots {
                slot.pid.store(0, Ordering::Relaxed);
            }
            Ok(())
        })?;
        futex_wake(&self.generation, u32::MAX);
        Ok(())
    }

    /// The number of completed (or broken) generations (wrapping).
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Parties that arrived in the current generation.
    pub fn arrived(&self) -> u32 {
        self.arrived.load(Ordering::Relaxed)
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire) != 0
    }

    fn broken_error(&self) -> Error {
        Error::BarrierBroken {
            parties: self.parties(),
        }
    }

    fn locked<R>(&self, f: impl FnOnce(&Self) -> Result<R>) -> Result<R> {
        let (me, how) = self
            .lock
            .lock(Wait::For(None))
            .map_err(|e| e.into_error("barrier"))?;
        if how == Acquired::OwnerDied {
            // A party died inside: the count cannot be trusted.
            self.break_now();
            self.lock.mark_consistent(&me);
        }
        let r = f(self);
        self.lock.unlock(&me, true);
        r
    }

    /// Breaks the current generation and wakes everyone (under the lock).
    fn break_now(&self) {
        let g = self.generation.load(Ordering::Relaxed);
        self.broken.store(1, Ordering::Relaxed);
        self.broke
            .store(g.wrapping_add(1).max(1), Ordering::Relaxed);
        self.arrived.store(0, Ordering::Relaxed);
        self.generation.store(g.wrapping_add(1), Ordering::Release);
        futex_wake(&self.generation, u32::MAX);
    }

    /// Starts the next generation (under the lock).
    fn complete(&self) {
        let g = self.generation.load(Ordering::Relaxed);
        self.arrived.store(0, Ordering::Relaxed);
        self.generation.store(g.wrapping_add(1), Ordering::Release);
    }

    /// Records this process's arrival in generation `g` (under the lock).
    fn note_arrival(&self, g: u32) {
        let me = me();
        let mut free = None;
        for s in &self.slots {
            let pid = s.pid.load(Ordering::Relaxed);
            if pid == u64::from(me.pid) && s.start.load(Ordering::Relaxed) == me.start {
                s.arrived.store(u64::from(g) + 1, Ordering::Relaxed);
                return;
            }
            if pid == 0 && free.is_none() {
                free = Some(s);
            }
        }
        if let Some(s) = free {
            s.start.store(me.start, Ordering::Relaxed);
            s.arrived.store(u64::from(g) + 1, Ordering::Relaxed);
            s.pid.store(u64::from(me.pid), Ordering::Relaxed);
        }
    }

    /// Whether a recorded party died without arriving in generation `g`; forgets the dead
    /// (under the lock).
    fn party_died(&self, g: u32) -> bool {
        let mut died = false;
        for s in &self.slots {
            let pid = s.pid.load(Ordering::Relaxed);
            if pid != 0
                && s.arrived.load(Ordering::Relaxed) != u64::from(g) + 1
                && (pid > u64::from(u32::MAX)
                    || !party_alive(pid as u32, s.start.load(Ordering::Relaxed)))
            {
                s.pid.store(0, Ordering::Relaxed);
                died = true;
            }
        }
        died
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = Deadline::after(timeout);
        let step = self.locked(|b| {
            if b.broken.load(Ordering::Relaxed) != 0 {
                return Ok(Step::Broken);
            }
            let g = b.generation.load(Ordering::Relaxed);
            b.note_arrival(g);
            let n = b.arrived.load(Ordering::Relaxed) + 1;
            if n >= b.parties.load(Ordering::Relaxed) {
                b.complete();
                return Ok(Step::Leader);
            }
            b.arrived.store(n, Ordering::Relaxed);
            b.sleepers.fetch_add(1, Ordering::Relaxed);
            Ok(Step::Sleep(g))
        })?;
        let g = match step {
            Step::Broken => return Err(self.broken_error()),
            Step::Leader => {
                futex_wake(&self.generation, u32::MAX);
                return Ok(true);
            }
            Step::Sleep(g) => g,
        };
        let r = loop {
            let nap = deadline
                .remaining()
                .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
            futex_wait(&self.generation, g, Some(nap));
            if self.generation.load(Ordering::Acquire) != g {
                // Our generation ended: completed, or broken (then `broken` names it).
                let broke = self.broke.load(Ordering::Acquire);
                break if broke == g.wrapping_add(1).max(1) {
                    Err(self.broken_error())
                } else {
                    Ok(false)
                };
            }
            let expired = deadline.expired();
            // Still waiting: a timeout or a dead party breaks this generation.
            let broke = self.locked(|b| {
                if b.generation.load(Ordering::Relaxed) != g {
                    return Ok(false);
                }
                if expired || b.party_died(g) {
                    b.break_now();
                    return Ok(true);
                }
                Ok(false)
            })?;
            if broke {
                break Err(self.broken_error());
            }
        };
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
        r
    }
}

#[cfg(not(feature = "loom"))]
fn party_alive(pid: u32, start: u64) -> bool {
    crate::process::owner_alive(pid, start)
}

/// Under loom every party is one process: alive.
#[cfg(feature = "loom")]
fn party_alive(_pid: u32, _start: u64) -> bool {
    true
}

impl core::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("arrived", &self.arrived())
            .field("generation", &self.generation())
            .field("broken", &self.is_broken())
            .finish()
    }
}

#[cfg(not(feature = "loom"))]
mod object {
    use super::*;
    use crate::object::{Kind, Object, TypeTag};
    use core::alloc::Layout;
    use core::ptr::NonNull;

    // SAFETY: Barrier is #[repr(C)], made only of atomics (valid for any bits); fixed layout; no
    // pointers, no Drop.
    unsafe impl Object for Barrier {
        type Params = u32;
        fn element() -> TypeTag {
            TypeTag::plain(Kind::BARRIER)
        }
        fn tag(parties: &u32) -> TypeTag {
            Self::element().with_dims(u64::from(*parties), 0)
        }
        fn layout(_: &TypeTag) -> Option<Layout> {
            Some(Layout::new::<Barrier>())
        }
        unsafe fn init(ptr: NonNull<u8>, _: &TypeTag, parties: u32) {
            // SAFETY: per the trait contract ptr is aligned and sized for a Barrier.
            unsafe { ptr.cast::<Barrier>().as_ptr().write(Barrier::new(parties)) }
        }
        fn cast(ptr: NonNull<u8>, _: &TypeTag) -> NonNull<Self> {
            ptr.cast()
        }
    }
}
