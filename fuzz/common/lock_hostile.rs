//! The `lock_hostile` fuzz check, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/lock_hostile.rs`) and the regression test that replays saved inputs under
//! plain `cargo test` (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! A `Semaphore`, a `Barrier`, an `Event`, a `Condvar` with its `Mutex<u64>`, and a
//! `ReentrantMutex` live in memory a hostile or crashed peer overwrites between operations: any
//! word of any of them is set, nudged by a small delta, or copied from another word (word
//! indices are taken modulo the object's size, with no knowledge of the layout, so the check
//! survives layout changes): permit counts, operation descriptors, holder slots and their
//! owner words, generations and arrival counts, futex words, waiter counts, lock words, owner
//! records, depths.
//!
//! Operations may fail or return wrong values; they must never panic, touch memory out of
//! bounds, or wait longer than their timeout (at most 2 ms, plus the bounded time a condvar
//! wait gives itself to retake its mutex, plus slack for a loaded machine). Reported values stay
//! within their documented ranges.

use arbitrary::Arbitrary;
use shmkit::limits::{MAX_PARTIES, MAX_PERMITS};
use shmkit::{Barrier, Condvar, Error, Event, LockError, Mutex, ReentrantMutex, Semaphore};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// At most this many operations are applied.
pub const MAX_OPS: usize = 96;
/// Slack allowed past a bound before a call counts as hanging (the machine may be loaded).
const SLACK: Duration = Duration::from_secs(3);
/// What a condvar wait may add to retake its mutex (`RELOCK_GRACE` in `src/lock/condvar.rs`).
const RELOCK: Duration = Duration::from_millis(100);

/// One fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// The semaphore's free permits and bound (0: unbounded).
    pub permits: u8,
    /// Its bound.
    pub bound: u8,
    /// The barrier's parties.
    pub parties: u8,
    /// Operations and overwrites, in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// The objects.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The semaphore.
    Semaphore,
    /// The barrier.
    Barrier,
    /// The event (one 32-bit word).
    Event,
    /// The condvar (two 32-bit words).
    Condvar,
    /// The condvar's mutex.
    Mutex,
    /// The reentrant mutex.
    Reentrant,
}

/// A timeout of 0, 1 µs, 100 µs or 2 ms (`n % 4`).
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Tiny(pub u8);

impl Tiny {
    fn get(self) -> Duration {
        match self.0 % 4 {
            0 => Duration::ZERO,
            1 => Duration::from_micros(1),
            2 => Duration::from_micros(100),
            _ => Duration::from_millis(2),
        }
    }
}

/// How a word is overwritten.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Write {
    /// Set to this value.
    Set(u64),
    /// Add a small delta (wrapping): near-valid counts, sequences, generations.
    Add(i16),
    /// Copy another word of the same object (an owner word into a lock word…).
    Copy(u16),
    /// All ones (counts at their maximum, every flag set).
    Ones,
    /// This process's owner word (a live holder of a slot).
    Mine,
    /// This thread's id, in both halves of a 64-bit word (a live lock owner).
    MyTid,
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    /// Overwrite word `word` (modulo the object's words) of `target`.
    Scribble {
        /// The object.
        target: Target,
        /// Word index.
        word: u16,
        /// The write.
        how: Write,
    },
    /// `Semaphore::try_acquire`.
    SemTry,
    /// `Semaphore::acquire_timeout`.
    SemTimeout(Tiny),
    /// `Semaphore::release`.
    SemRelease,
    /// `Barrier::try_wait`.
    BarTry,
    /// `Barrier::wait_timeout`.
    BarTimeout(Tiny),
    /// `Barrier::reset`.
    BarReset,
    /// `Event::set` (`true`) or `clear`.
    EvSet(bool),
    /// `Event::wait_timeout`.
    EvTimeout(Tiny),
    /// `Condvar::notify_all` (`true`) or `notify_one`.
    CvNotify(bool),
    /// Lock the mutex (`try_lock`), then `Condvar::wait_timeout`; `repair` marks an `OwnerDied`
    /// guard consistent.
    CvWait {
        /// The wait.
        timeout: Tiny,
        /// Mark consistent.
        repair: bool,
    },
    /// Take the reentrant mutex `depth % 4 + 1` times (`try_lock`, or `lock_timeout` when
    /// `timeout` is set), then release every guard (or give up on it).
    Reentrant {
        /// Nesting depth.
        depth: u8,
        /// `lock_timeout` instead of `try_lock`.
        timeout: Option<Tiny>,
        /// Mark an `OwnerDied` guard consistent.
        repair: bool,
        /// `mark_not_recoverable` instead of dropping the outermost guard.
        give_up: bool,
    },
    /// Read every observer (`available`, `holders`, `generation`, `state`, `Debug`…).
    Inspect,
}

/// What a run did (for the deterministic regression tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Operations that returned `Ok` (or `true`).
    pub ok: u32,
    /// Operations that returned an error (or `false`).
    pub failed: u32,
    /// Words overwritten.
    pub scribbles: u32,
}

struct Objects {
    sem: Semaphore,
    bar: Barrier,
    ev: Event,
    cv: Condvar,
    m: Box<Mutex<u64>>,
    r: ReentrantMutex,
}

/// The 64-bit words of `v`, an object with 8-byte alignment.
fn words64<T: ?Sized>(v: &T) -> &[AtomicU64] {
    assert_eq!(core::mem::align_of_val(v) % 8, 0);
    let n = core::mem::size_of_val(v) / 8;
    // SAFETY: `v` is a live object made only of atomics and 8-aligned (checked): viewing its
    // bytes as AtomicU64 words is in bounds and aligned, and every bit pattern is valid for the
    // atomics the library reads them as (the point of this check). The borrow keeps it alive.
    unsafe { core::slice::from_raw_parts(v as *const T as *const AtomicU64, n) }
}

/// The 32-bit words of `v`, an object made of `AtomicU32`s (Event, Condvar).
fn words32<T>(v: &T) -> &[AtomicU32] {
    assert_eq!(core::mem::align_of::<T>() % 4, 0);
    let n = core::mem::size_of::<T>() / 4;
    // SAFETY: as in `words64`, with 4-byte words of a 4-aligned object.
    unsafe { core::slice::from_raw_parts(v as *const T as *const AtomicU32, n) }
}

/// The value `how` writes over `cur`, a word of `bits` bits (`from`: the copied word).
fn value(how: Write, cur: u64, from: u64, bits: u32) -> u64 {
    let tid = u64::from(shmkit::process::tid());
    let v = match how {
        Write::Set(v) => v,
        Write::Add(d) => cur.wrapping_add(d as i64 as u64),
        Write::Copy(_) => from,
        Write::Ones => u64::MAX,
        Write::Mine => shmkit::process::my_word(),
        Write::MyTid => tid | (tid << 32),
    };
    if bits == 32 {
        v & 0xffff_ffff
    } else {
        v
    }
}

fn scribble(o: &Objects, target: Target, word: u16, how: Write) {
    let at = |len: usize, i: u16| usize::from(i) % len;
    match target {
        Target::Event | Target::Condvar => {
            let words = if target == Target::Event {
                words32(&o.ev)
            } else {
                words32(&o.cv)
            };
            let w = &words[at(words.len(), word)];
            let from = match how {
                Write::Copy(i) => words[at(words.len(), i)].load(Ordering::Relaxed),
                _ => 0,
            };
            let v = value(
                how,
                u64::from(w.load(Ordering::Relaxed)),
                u64::from(from),
                32,
            );
            w.store(v as u32, Ordering::Relaxed);
        }
        _ => {
            let words = match target {
                Target::Semaphore => words64(&o.sem),
                Target::Barrier => words64(&o.bar),
                Target::Mutex => words64(&*o.m),
                _ => words64(&o.r),
            };
            let w = &words[at(words.len(), word)];
            let from = match how {
                Write::Copy(i) => words[at(words.len(), i)].load(Ordering::Relaxed),
                _ => 0,
            };
            w.store(
                value(how, w.load(Ordering::Relaxed), from, 64),
                Ordering::Relaxed,
            );
        }
    }
}

/// Runs one case; panics on a violated property (a panic of the library itself fails too).
pub fn run(input: &Input) -> Outcome {
    let bound = u32::from(input.bound);
    let o = Objects {
        sem: if bound == 0 {
            Semaphore::new(u32::from(input.permits))
        } else {
            Semaphore::bounded(u32::from(input.permits), bound)
        },
        bar: Barrier::new(u32::from(input.parties)),
        ev: Event::new(),
        cv: Condvar::new(),
        m: Mutex::new(0u64),
        r: ReentrantMutex::new(),
    };
    let mut out = Outcome::default();
    for op in input.ops.iter().take(MAX_OPS) {
        let t = Instant::now();
        let bound = step(&o, op, &mut out);
        let took = t.elapsed();
        assert!(
            took <= bound + SLACK,
            "{op:?} took {took:?} (bound {bound:?})"
        );
    }
    observe(&o);
    out
}

fn count<T, E>(out: &mut Outcome, r: &Result<T, E>) {
    if r.is_ok() {
        out.ok += 1;
    } else {
        out.failed += 1;
    }
}

/// Applies `op`; returns the longest it may take.
fn step(o: &Objects, op: &Op, out: &mut Outcome) -> Duration {
    match *op {
        Op::Scribble { target, word, how } => {
            scribble(o, target, word, how);
            out.scribbles += 1;
            Duration::ZERO
        }
        Op::SemTry => {
            let r = o.sem.try_acquire();
            assert!(matches!(r, Ok(()) | Err(Error::WouldBlock { .. })), "{r:?}");
            count(out, &r);
            Duration::ZERO
        }
        Op::SemTimeout(t) => {
            let r = o.sem.acquire_timeout(t.get());
            assert!(matches!(r, Ok(()) | Err(Error::Timeout { .. })), "{r:?}");
            count(out, &r);
            t.get()
        }
        Op::SemRelease => {
            let r = o.sem.release();
            assert!(
                matches!(r, Ok(()) | Err(Error::SemaphoreOverRelease { .. })),
                "{r:?}"
            );
            count(out, &r);
            Duration::ZERO
        }
        Op::BarTry => {
            let r = o.bar.try_wait();
            assert!(
                matches!(
                    r,
                    Ok(true) | Err(Error::WouldBlock { .. } | Error::BarrierBroken { .. })
                ),
                "{r:?}"
            );
            count(out, &r);
            Duration::ZERO
        }
        Op::BarTimeout(t) => {
            let r = o.bar.wait_timeout(t.get());
            assert!(
                matches!(r, Ok(_) | Err(Error::BarrierBroken { .. })),
                "{r:?}"
            );
            count(out, &r);
            t.get()
        }
        Op::BarReset => {
            let r = o.bar.reset();
            count(out, &r);
            Duration::ZERO
        }
        Op::EvSet(set) => {
            if set {
                o.ev.set();
            } else {
                o.ev.clear();
            }
            Duration::ZERO
        }
        Op::EvTimeout(t) => {
            let set = o.ev.wait_timeout(t.get());
            count(out, &if set { Ok(()) } else { Err(()) });
            t.get()
        }
        Op::CvNotify(all) => {
            if all {
                o.cv.notify_all();
            } else {
                o.cv.notify_one();
            }
            Duration::ZERO
        }
        Op::CvWait { timeout, repair } => {
            let g = match o.m.try_lock() {
                Ok(g) => g,
                Err(LockError::OwnerDied(mut g)) => {
                    if repair {
                        g.mark_consistent();
                    }
                    g
                }
                Err(LockError::Error(_)) => {
                    out.failed += 1;
                    return Duration::ZERO;
                }
            };
            match o.cv.wait_timeout(g, timeout.get()) {
                Ok((mut g, _)) | Err(LockError::OwnerDied((mut g, _))) => {
                    *g = g.wrapping_add(1);
                    out.ok += 1;
                }
                Err(LockError::Error(e)) => {
                    assert!(
                        matches!(
                            e,
                            Error::Timeout { .. }
                                | Error::NotRecoverable { .. }
                                | Error::WouldDeadlock { .. }
                        ),
                        "{e}"
                    );
                    out.failed += 1;
                }
            }
            timeout.get() + RELOCK.max(timeout.get())
        }
        Op::Reentrant {
            depth,
            timeout,
            repair,
            give_up,
        } => {
            let mut guards = Vec::new();
            for _ in 0..=depth % 4 {
                let r = match timeout {
                    Some(t) => o.r.lock_timeout(t.get()),
                    None => o.r.try_lock(),
                };
                match r {
                    Ok(g) => guards.push(g),
                    Err(LockError::OwnerDied(mut g)) => {
                        if repair {
                            g.mark_consistent();
                        }
                        guards.push(g);
                    }
                    Err(LockError::Error(e)) => {
                        assert!(
                            matches!(
                                e,
                                Error::WouldBlock { .. }
                                    | Error::Timeout { .. }
                                    | Error::NotRecoverable { .. }
                                    | Error::WouldDeadlock { .. }
                            ),
                            "{e}"
                        );
                        break;
                    }
                }
            }
            let n = guards.len();
            count(out, &if n > 0 { Ok(()) } else { Err(()) });
            if give_up {
                if let Some(g) = guards.pop() {
                    g.mark_not_recoverable();
                }
            }
            drop(guards);
            // Every attempt may wait its timeout.
            timeout.map_or(Duration::ZERO, |t| t.get() * (u32::from(depth % 4) + 1))
        }
        Op::Inspect => {
            observe(o);
            Duration::ZERO
        }
    }
}

/// Reads every observer; values stay within their documented ranges.
fn observe(o: &Objects) {
    assert!(o.sem.available() <= MAX_PERMITS);
    if let Some(b) = o.sem.bound() {
        assert!(b <= MAX_PERMITS);
    }
    let _ = (o.sem.holders(), o.sem.reclaimed(), format!("{:?}", o.sem));
    assert!((1..=MAX_PARTIES).contains(&o.bar.parties()));
    assert!(o.bar.arrived() <= 0xffff);
    let _ = (
        o.bar.generation(),
        o.bar.is_broken(),
        format!("{:?}", o.bar),
    );
    let _ = (
        o.ev.is_set(),
        o.ev.try_wait(),
        o.ev.waiters(),
        format!("{:?}", o.ev),
    );
    let _ = (
        o.cv.generation(),
        o.cv.waiters(),
        o.cv.try_wait(0),
        format!("{:?}", o.cv),
    );
    let _ = (o.m.state(), format!("{:?}", o.m));
    let _ = (o.r.state(), o.r.depth(), format!("{:?}", o.r));
}
