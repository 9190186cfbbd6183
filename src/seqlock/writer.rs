//! The writer lock of a seqlock: serializes writers across processes, detects a dead holder,
//! refuses a thread that already holds it, and lets waiters sleep.
//!
//! Three words on one 128-byte line:
//!
//! | word            | value                      | meaning                                             |
//! | --------------- | -------------------------- | --------------------------------------------------- |
//! | `owner` (u64)   | `0`                        | free                                                |
//! |                 | owner word                 | held by that process (pid, start tag, pid namespace: [`crate::process`]) |
//! | `thread` (u32)  | a thread token or `0`      | which thread of the owner process holds it (meaningful only when `owner` is this process's word) |
//! | `wake` (u32)    | bit 31: [`SLEEPERS`]       | a waiter may sleep on `wake`                        |
//! |                 | bits 0..31: a sequence     | bumped by every release that found `SLEEPERS`       |
//!
//! The claim and the owner's identity go in one CAS (`0 → me`), so a writer killed at any point
//! leaves either a free lock or a lock naming it: never a lock nobody can identify. The liveness
//! rule is the crate's one ([`process::word_alive`]): a reused pid is told apart by its start
//! time, and a holder in another pid namespace is never taken for dead.
//!
//! # Waiting
//!
//! A waiting writer spins a little ([`FIRST_CHECK`] attempts, a few microseconds), checks once
//! whether the holder is alive (a read of `/proc/<pid>/stat`), then sleeps on the `wake` futex,
//! for at most [`LIVENESS_PERIOD`] at a time:
//!
//! ```text
//! waiter                                   releaser
//! ──────────────────────────────────       ─────────────────────────────────
//! w = wake.fetch_or(SLEEPERS)              owner.store(0, Release)
//! heavy_barrier()  (membarrier)            light_barrier()  (compiler barrier)
//! owner.load() still the holder?           wake.load() has SLEEPERS?
//!   → futex_wait(wake, w | SLEEPERS)         → clear it, bump the sequence, futex_wake(all)
//! ```
//!
//! The two barriers ([`crate::sync::asym`]) act as a pair of `SeqCst` fences: either the release
//! sees the waiter's flag and wakes it, or the waiter sees the release and does not sleep. The
//! cost of the handshake sits with the side about to sleep; the uncontended release is a load,
//! two plain stores and a load of a word on the same line, with no read-modify-write and no
//! system call. A sleeper that wakes to an unchanged owner word rechecks the holder's liveness,
//! so a dead holder (whose release never comes) is taken over within about one period, and a
//! `_timeout` call returns by its deadline whatever a live holder does (stopped, or a hostile
//! value written into `owner`). A waiter that left (timed out, or died) leaves the flag set:
//! the next release makes one needless wake call and clears it.
//!
//! A dead holder is replaced by one CAS (`dead → me`), and the winner resynchronizes the data
//! (see [`latch`](super::latch)) before writing.
//!
//! # The same thread twice
//!
//! Threads of one process share an owner word, so the holding thread's token goes in `thread`
//! right after the claim and is cleared right before the release. A thread that finds `owner`
//! naming its own process and `thread` holding its own token already holds the lock: waiting
//! would never end, so it gets [`Error::WouldDeadlock`]. Another thread of the process never
//! reads its own token there (it stored 0 over it when it released), so it waits as it should.
//!
//! # Guards across `fork()`
//!
//! A writer guard remembers the fork generation it was taken in ([`generation`]). A copy
//! inherited by a `fork()`ed child is inert, as the lock family's guards are: its writes change
//! nothing and return [`Error::InheritedGuard`] (the lock, and the right to write, stay with the
//! parent), and its release leaves the parent's lock alone (a release only frees a lock that
//! names this process, and the child is another process, another word).

use crate::process;
use crate::sync::{asym, futex_wait, futex_wake, AtomicU32, AtomicU64, Deadline, Ordering, Spin};
use crate::{Error, Result};
use crossbeam_utils::CachePadded;
use std::time::Duration;

/// Failed lock attempts (spinning, then yielding) before a waiter first checks whether the
/// holder is alive and then sleeps.
pub const FIRST_CHECK: u32 = if cfg!(feature = "loom") { 1 } else { 16 };

/// How long a sleeping waiter sleeps before it looks at the holder's liveness again: bounds the
/// time to take over from a holder that died (whose release never comes).
pub const LIVENESS_PERIOD: Duration = Duration::from_millis(10);

/// What the errors call this lock.
const WHAT: &str = "the seqlock writer lock";

/// The flag of the `wake` word: a waiter may sleep on it.
pub const SLEEPERS: u32 = 1 << 31;

/// The longest sleep when the asymmetric barrier failed (the release may have missed the
/// waiter's flag).
const UNFENCED_NAP: Duration = Duration::from_millis(1);

/// The words of the lock (see the module docs).
#[repr(C)]
struct Words {
    owner: AtomicU64,
    thread: AtomicU32,
    wake: AtomicU32,
}

/// The cross-process writer lock (see the module docs for its encoding).
#[repr(C)]
pub(crate) struct WriterLock {
    w: CachePadded<Words>,
}

#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(WriterLock, CachePadded<u64>);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_align!(WriterLock, CachePadded<u64>);
#[cfg(not(feature = "loom"))]
static_assertions::assert_eq_size!(Words, [u64; 2]);

/// What acquiring the lock found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acquired {
    /// The pid of a dead holder whose lock was taken over (the data must be resynchronized).
    pub took_over_from: Option<u32>,
}

/// Why the lock was not taken (small, so that the fast path returns in registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The calling thread holds the lock.
    WouldDeadlock,
    /// A live process (with this pid) holds it (`Wait::Try`).
    Busy(u32),
    /// A live holder kept it until the deadline.
    Timeout,
}

impl Fail {
    /// The public error, for an acquisition that waited as `wait` allowed.
    #[cold]
    pub(crate) fn into_error(self, wait: Wait) -> Error {
        match self {
            Fail::WouldDeadlock => Error::WouldDeadlock { what: WHAT },
            Fail::Busy(pid) => Error::WriterBusy { pid },
            Fail::Timeout => Error::Timeout {
                what: WHAT,
                waited: match wait {
                    Wait::For(Some(d)) => d,
                    _ => Duration::ZERO,
                },
            },
        }
    }
}

/// How long an acquisition may wait.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// Not at all (`try_`): a few attempts and one liveness check.
    Try,
    /// At most this long from the call (`None`: as long as the holder lives).
    For(Option<Duration>),
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

/// The fork generation of this process: a writer guard taken in another generation (its
/// parent's, before a `fork()`) is inert in this one. One relaxed load.
#[inline]
pub(crate) fn generation() -> u64 {
    #[cfg(not(feature = "loom"))]
    return process::fork_generation();
    #[cfg(feature = "loom")]
    return 0; // no fork() under loom
}

/// The error of a write through a guard inherited through `fork()` (see the module docs).
#[cold]
pub(crate) fn inherited() -> Error {
    Error::InheritedGuard { what: WHAT }
}

/// The pid of an owner word.
pub(crate) fn pid_of(word: u64) -> u32 {
    process::word_pid(word)
}

/// This process's owner word.
#[inline]
pub(crate) fn me() -> u64 {
    process::my_word()
}

/// Whether the process named by owner word `word` still runs (the crate's one liveness rule;
/// the flag bit [`process::FLAG`] is ignored).
pub(crate) fn alive(word: u64) -> bool {
    process::word_alive(word)
}

/// The calling thread's token: unique among the live threads of this process, never 0, no
/// system call after the first.
#[cfg(not(feature = "loom"))]
#[inline]
pub(crate) fn thread_token() -> u32 {
    use std::cell::Cell;
    static NEXT: AtomicU32 = AtomicU32::new(1);
    thread_local! {
        static TOKEN: Cell<u32> = const { Cell::new(0) };
    }
    TOKEN.with(|t| {
        let mut v = t.get();
        if v == 0 {
            // 0 is "no thread": skipped when the counter wraps (after 2³² threads).
            v = NEXT.fetch_add(1, Ordering::Relaxed);
            if v == 0 {
                v = NEXT.fetch_add(1, Ordering::Relaxed);
            }
            t.set(v);
        }
        v
    })
}

/// Loom stand-in for the thread token: the model thread's id (loom runs every model thread on
/// one OS thread, and its statics cannot hold loom atomics).
#[cfg(feature = "loom")]
pub(crate) fn thread_token() -> u32 {
    crate::sync::thread_id()
}

impl WriterLock {
    /// A free lock (heap).
    pub(crate) fn new() -> Self {
        WriterLock {
            w: CachePadded::new(Words {
                owner: AtomicU64::new(0),
                thread: AtomicU32::new(0),
                wake: AtomicU32::new(0),
            }),
        }
    }

    /// Marks the lock free (object initialization in shared memory).
    pub(crate) fn init_free(&self) {
        self.w.thread.store(0, Ordering::Relaxed);
        self.w.wake.store(0, Ordering::Relaxed);
        self.w.owner.store(0, Ordering::Release);
    }

    /// The current owner word (0 = free).
    #[inline]
    pub(crate) fn owner(&self) -> u64 {
        self.w.owner.load(Ordering::Acquire)
    }

    /// Claims the lock for this thread of this process (see [`acquire_as`](Self::acquire_as)).
    #[inline]
    pub(crate) fn acquire(&self, wait: Wait) -> core::result::Result<Acquired, Fail> {
        self.acquire_as(me(), thread_token(), wait)
    }

    /// Claims the lock as owner word `me` and thread `token`: a free lock at once, a dead
    /// holder's by taking it over, a live holder's after it releases (waiting as `wait` allows).
    ///
    /// # Errors
    /// [`Fail::WouldDeadlock`] when thread `token` of `me` already holds it; [`Fail::Busy`]
    /// (`Wait::Try`) or [`Fail::Timeout`] when a live holder keeps it.
    #[inline]
    pub(crate) fn acquire_as(
        &self,
        me: u64,
        token: u32,
        wait: Wait,
    ) -> core::result::Result<Acquired, Fail> {
        let o = &self.w.owner;
        if o.load(Ordering::Relaxed) == 0
            && o.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            self.w.thread.store(token, Ordering::Relaxed);
            return Ok(Acquired {
                took_over_from: None,
            });
        }
        self.acquire_slow(me, token, wait)
    }

    #[cold]
    fn acquire_slow(
        &self,
        me: u64,
        token: u32,
        wait: Wait,
    ) -> core::result::Result<Acquired, Fail> {
        let o = &self.w.owner;
        let deadline = match wait {
            Wait::For(d) => Some(Deadline::after(d)),
            Wait::Try => None,
        };
        let mut spin = Spin::new();
        let mut failures = 0u32;
        // The holder last judged alive, with nothing since suggesting it stopped: judged again
        // only when a whole nap passed without a change of the owner word.
        let mut judged: Option<u64> = None;
        loop {
            let cur = o.load(Ordering::Acquire);
            if cur == 0 {
                if o.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    self.w.thread.store(token, Ordering::Relaxed);
                    return Ok(Acquired {
                        took_over_from: None,
                    });
                }
                failures = failures.saturating_add(1);
                if deadline.is_none() && failures > 8 {
                    return Err(Fail::Busy(pid_of(self.owner())));
                }
                continue;
            }
            // Token 0 is no thread (a holder recorded by no thread of ours, as the test hook
            // `__abandon_write` records a dead writer): never "this thread".
            if cur == me && token != 0 && self.w.thread.load(Ordering::Relaxed) == token {
                return Err(Fail::WouldDeadlock);
            }
            failures = failures.saturating_add(1);
            let Some(deadline) = deadline else {
                // try_: judge the holder once, take over a dead one, else report it.
                if let Some(a) = self.take_if_dead(cur, me, token) {
                    return Ok(a);
                }
                if o.load(Ordering::Relaxed) == cur || failures > 8 {
                    return Err(Fail::Busy(pid_of(cur)));
                }
                continue;
            };
            if failures < FIRST_CHECK && !deadline.expired() {
                if cfg!(feature = "loom") {
                    crate::sync::yield_now();
                } else {
                    spin.snooze();
                }
                continue;
            }
            if judged != Some(cur) {
                if let Some(a) = self.take_if_dead(cur, me, token) {
                    return Ok(a);
                }
                judged = Some(cur);
                // The check read /proc: look at the word again before sleeping on it.
                continue;
            }
            if deadline.expired() {
                return Err(Fail::Timeout);
            }
            // Announce a sleeper (an RMW of its own, even when the flag is set already: the
            // barrier pairs this waiter's store with the release's load), then look at the
            // owner once more (see the module docs).
            let want = self.w.wake.fetch_or(SLEEPERS, Ordering::Relaxed) | SLEEPERS;
            let fenced = asym::heavy_barrier();
            if o.load(Ordering::Relaxed) != cur {
                continue;
            }
            let mut nap = deadline
                .remaining()
                .map_or(LIVENESS_PERIOD, |r| r.min(LIVENESS_PERIOD));
            if !fenced {
                nap = nap.min(UNFENCED_NAP);
            }
            futex_wait(&self.w.wake, want, Some(nap));
            // Woken, timed out or spurious. A word unchanged for a whole nap: judge its holder
            // again. A new holder made progress: no need to look at it yet.
            let now = o.load(Ordering::Relaxed);
            judged = if now == cur { None } else { Some(now) };
        }
    }

    /// If the holder named by the word `cur` is dead, takes the lock over from it (one CAS from
    /// exactly `cur`).
    #[cold]
    fn take_if_dead(&self, cur: u64, me: u64, token: u32) -> Option<Acquired> {
        if cur == 0 || alive(cur) {
            return None;
        }
        self.w
            .owner
            .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        self.w.thread.store(token, Ordering::Relaxed);
        Some(Acquired {
            took_over_from: Some(pid_of(cur)),
        })
    }

    /// Frees the lock if this process (owner word `me`) holds it, waking the sleepers if one
    /// announced itself. A lock that names another process (taken over by a peer that judged
    /// this one dead, a hostile value, or a guard inherited by a forked child) is left alone.
    #[inline]
    pub(crate) fn release(&self, me: u64) {
        let o = &self.w.owner;
        if o.load(Ordering::Relaxed) != me {
            return;
        }
        self.w.thread.store(0, Ordering::Relaxed);
        o.store(0, Ordering::Release);
        asym::light_barrier();
        if self.w.wake.load(Ordering::Relaxed) & SLEEPERS != 0 {
            self.wake_sleepers();
        }
    }

    /// Clears the sleepers' flag, bumps the sequence (so that a waiter about to sleep does not)
    /// and wakes every sleeper; those that lose the race for the lock announce themselves again.
    #[cold]
    fn wake_sleepers(&self) {
        let _ = self
            .w
            .wake
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some((w & !SLEEPERS).wrapping_add(1) & !SLEEPERS)
            });
        futex_wake(&self.w.wake, u32::MAX);
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
        let a = l.acquire(Wait::Try).unwrap();
        assert!(a.took_over_from.is_none());
        assert!(matches!(l.acquire(Wait::Try), Err(Fail::WouldDeadlock)));
        assert!(matches!(
            l.acquire(Wait::For(Some(Duration::from_secs(10)))),
            Err(Fail::WouldDeadlock)
        ));
        // Another thread of this process: busy, not a deadlock.
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(
                    l.acquire(Wait::Try),
                    Err(Fail::Busy(pid)) if pid == process::pid()
                ));
                let t = std::time::Instant::now();
                assert!(matches!(
                    l.acquire(Wait::For(Some(Duration::from_millis(30)))),
                    Err(Fail::Timeout)
                ));
                assert!(t.elapsed() >= Duration::from_millis(30));
            });
        });
        l.check().unwrap();
        l.release(me());
        assert_eq!(l.owner(), 0);
        // A pid that cannot exist is dead: its lock is taken over.
        let dead = pack((1 << 22) - 3, 1);
        l.acquire_as(dead, 1, Wait::Try).unwrap();
        assert!(matches!(l.check(), Err(Error::WriterDied { pid }) if pid == pid_of(dead)));
        // Releasing in the name of another process leaves it alone.
        l.release(me());
        assert_eq!(l.owner(), dead);
        let a = l.acquire(Wait::For(None)).unwrap();
        assert_eq!(a.took_over_from, Some(pid_of(dead)));
        l.release(me());
        // Our own pid with a wrong start time is not us.
        let impostor = pack(process::pid(), process::start_time() + 1);
        assert!(!alive(impostor));
        assert!(alive(me()));
    }

    /// A sleeping waiter is woken by the release (well before its liveness period would have
    /// woken it, many times over), and takes the lock.
    #[test]
    fn sleeper_is_woken_by_release() {
        let l = WriterLock::new();
        for _ in 0..20 {
            l.acquire(Wait::For(None)).unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::scope(|s| {
                s.spawn(|| {
                    tx.send(()).unwrap();
                    l.acquire(Wait::For(Some(Duration::from_secs(30)))).unwrap();
                    l.release(me());
                });
                rx.recv().unwrap();
                // Let the waiter spin out and announce itself.
                let t = std::time::Instant::now();
                while l.w.wake.load(Ordering::Relaxed) & SLEEPERS == 0 {
                    assert!(t.elapsed() < Duration::from_secs(30), "never slept");
                    std::thread::yield_now();
                }
                l.release(me());
            });
            assert_eq!(l.w.owner.load(Ordering::Relaxed), 0);
            assert_eq!(l.w.wake.load(Ordering::Relaxed) & SLEEPERS, 0);
        }
    }

    #[test]
    fn thread_tokens_differ() {
        let a = thread_token();
        assert_eq!(a, thread_token());
        let b = std::thread::spawn(thread_token).join().unwrap();
        assert_ne!(a, b);
        assert_ne!(b, 0);
    }
}
