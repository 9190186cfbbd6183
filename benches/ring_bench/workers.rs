//! The worker processes of `benches/ring.rs` (this bench binary re-executed by
//! `common::ProcessPool`), the bounded waits every Rust system of the bench uses, and the
//! per-producer order check.

use crate::common::{now_ns, SharedFile, Span, Worker};
use shmkit::PopError;
use shmkit::Segment;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Capacity of every ring and queue in the throughput groups.
pub(crate) const CAP: u64 = 1024;

/// The pause before each ping of `shmkit-spsc-futex`, long enough for the echoing side to be
/// asleep.
pub(crate) const FUTEX_GAP: Duration = Duration::from_micros(200);

/// Environment variable naming the segment (or raw file) for worker processes.
pub(crate) const ENV_TARGET: &str = "SHMKIT_BENCH_TARGET";
/// Environment variable naming the `/dev/shm` file a pinger records round trips into.
pub(crate) const ENV_SAMPLES: &str = "SHMKIT_BENCH_SAMPLES";
pub(crate) const ROLE_SPSC: &str = "spsc";
pub(crate) const ROLE_SPSC_BATCH: &str = "spsc-batch";
pub(crate) const ROLE_MPMC: &str = "mpmc";
pub(crate) const ROLE_PP_SPIN: &str = "pp-spin";
pub(crate) const ROLE_PP_MPMC: &str = "pp-mpmc";
pub(crate) const ROLE_PP_FUTEX: &str = "pp-futex";
pub(crate) const ROLE_PP_RAW: &str = "pp-raw";
pub(crate) const ROLE_PP_RAW_2LINE: &str = "pp-raw-2line";
pub(crate) const ROLE_PP_RAW_FUTEX: &str = "pp-raw-futex";
/// Items per `push_slice`/`pop_into` call of `shmkit-spsc-batch`.
const BATCH: usize = 64;
/// Capacity of each ping-pong ring (one item is ever in flight).
pub(crate) const PP_CAP: u64 = 8;
/// Producer `p` of an MPMC run sends `p << PRODUCER_SHIFT | k`.
pub(crate) const PRODUCER_SHIFT: u32 = 40;
/// Failed tries a spinning ping-pong side busy-waits before it yields between tries (a few
/// microseconds; a round trip on an idle machine takes well under one).
const SPIN_TRIES: u32 = 1 << 12;
/// A wait that sees no progress for this long means items were lost: the worker panics
/// (and the parent reports it) instead of hanging the bench.
const STALL: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------
// Waiting

/// Bounded waiting for one operation: call [`Wait::spin`] or [`Wait::backoff`] after every
/// failed try. Checks the clock only every 65536 failures.
pub(crate) struct Wait {
    fails: u32,
    since: Option<Instant>,
}

impl Wait {
    #[inline]
    pub(crate) fn new() -> Wait {
        Wait {
            fails: 0,
            since: None,
        }
    }

    /// Busy-waits (the ping-pong's spinning mode): `spin_loop` for [`SPIN_TRIES`] tries,
    /// then `yield_now` between tries, so that a peer that lost its CPU to another process
    /// gets it back within a scheduler pass instead of a time slice.
    #[inline]
    pub(crate) fn spin(&mut self, what: &str) {
        self.fails = self.fails.wrapping_add(1);
        if self.fails < SPIN_TRIES {
            spin_loop();
        } else {
            if self.fails & 0xFFFF == 0 {
                self.check(what);
            }
            std::thread::yield_now();
        }
    }

    /// Spins 64 times, then yields between tries (the throughput groups).
    #[inline]
    pub(crate) fn backoff(&mut self, what: &str) {
        self.fails = self.fails.wrapping_add(1);
        if self.fails < 64 {
            spin_loop();
        } else {
            if self.fails & 0xFFFF == 0 {
                self.check(what);
            }
            std::thread::yield_now();
        }
    }

    #[cold]
    pub(crate) fn check(&mut self, what: &str) {
        let now = Instant::now();
        match self.since {
            None => self.since = Some(now),
            Some(t) if now - t > STALL => {
                panic!("ring bench: {what} made no progress for {STALL:?}: items lost?")
            }
            Some(_) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// Worker processes

/// Entry point of a worker process.
pub fn worker(w: Worker) {
    let target = w.env(ENV_TARGET);
    match w.role() {
        ROLE_SPSC | ROLE_SPSC_BATCH => spsc_worker(w, &target),
        ROLE_MPMC => mpmc_worker(w, &target),
        ROLE_PP_SPIN | ROLE_PP_FUTEX => pingpong_worker(w, &target),
        ROLE_PP_MPMC => mpmc_pingpong_worker(w, &target),
        ROLE_PP_RAW => raw_pingpong_worker(w, &target, 0),
        ROLE_PP_RAW_2LINE => raw_pingpong_worker(w, &target, RAW_FUTEX_PONG),
        ROLE_PP_RAW_FUTEX => raw_futex_pingpong_worker(w, &target),
        other => panic!("ring bench: unknown worker role {other:?}"),
    }
}

fn spsc_worker(w: Worker, target: &str) {
    let seg = Segment::open(target).expect("worker: open segment");
    let ring = seg.spsc::<u64>("ring", CAP).expect("worker: open ring");
    let batch = w.role() == ROLE_SPSC_BATCH;
    // Items count up across rounds: 1, 2, 3, ...
    let mut next = 1u64;
    if w.index() == 0 {
        let mut tx = ring.producer().expect("worker: claim producer");
        if batch {
            let mut buf = [0u64; BATCH];
            w.serve(|n| {
                let mut left = n;
                while left > 0 {
                    let k = (left as usize).min(BATCH);
                    for (i, v) in buf[..k].iter_mut().enumerate() {
                        *v = next + i as u64;
                    }
                    let mut sent = 0;
                    let mut wait = Wait::new();
                    while sent < k {
                        match tx.push_slice(&buf[sent..k]) {
                            Ok(0) => wait.backoff("shmkit-spsc-batch producer"),
                            Ok(m) => sent += m,
                            Err(e) => panic!("push_slice: {e:?}"),
                        }
                    }
                    next += k as u64;
                    left -= k as u64;
                }
            });
        } else {
            w.serve(|n| {
                for _ in 0..n {
                    let mut v = next;
                    let mut wait = Wait::new();
                    loop {
                        match tx.try_push(v) {
                            Ok(()) => break,
                            Err(shmkit::PushError::Full(back)) => {
                                v = back;
                                wait.backoff("shmkit-spsc producer");
                            }
                            Err(e) => panic!("try_push: {e:?}"),
                        }
                    }
                    next += 1;
                }
            });
        }
    } else {
        let mut rx = ring.consumer().expect("worker: claim consumer");
        if batch {
            let mut buf = [0u64; BATCH];
            w.serve(|n| {
                let mut left = n;
                let mut wait = Wait::new();
                while left > 0 {
                    let want = (left as usize).min(BATCH);
                    match rx.pop_into(&mut buf[..want]) {
                        Ok(0) => wait.backoff("shmkit-spsc-batch consumer"),
                        Ok(m) => {
                            for &v in &buf[..m] {
                                assert_eq!(v, next, "shmkit-spsc-batch: out of order");
                                next += 1;
                            }
                            left -= m as u64;
                            wait = Wait::new();
                        }
                        Err(e) => panic!("pop_into: {e:?}"),
                    }
                }
            });
        } else {
            w.serve(|n| {
                for _ in 0..n {
                    let mut wait = Wait::new();
                    let v = loop {
                        match rx.try_pop() {
                            Ok(v) => break v,
                            Err(PopError::Empty) => wait.backoff("shmkit-spsc consumer"),
                            Err(e) => panic!("try_pop: {e:?}"),
                        }
                    };
                    assert_eq!(v, next, "shmkit-spsc: out of order");
                    next += 1;
                }
            });
        }
    }
}

fn mpmc_worker(w: Worker, target: &str) {
    let seg = Segment::open(target).expect("worker: open segment");
    let ring = seg.mpmc::<u64>("ring", CAP).expect("worker: open ring");
    let index = w.index() as u64;
    if index < 2 {
        let mut k = 0u64;
        w.serve(|n| {
            for _ in 0..n {
                let mut v = index << PRODUCER_SHIFT | k;
                let mut wait = Wait::new();
                loop {
                    match ring.try_push(v) {
                        Ok(()) => break,
                        Err(shmkit::PushError::Full(back)) => {
                            v = back;
                            wait.backoff("shmkit-mpmc producer");
                        }
                        Err(e) => panic!("try_push: {e:?}"),
                    }
                }
                k += 1;
            }
        });
    } else {
        let mut order = ProducerOrder::default();
        w.serve(|n| {
            for _ in 0..n {
                let mut wait = Wait::new();
                let v = loop {
                    match ring.try_pop() {
                        Ok(v) => break v,
                        Err(PopError::Empty) => wait.backoff("shmkit-mpmc consumer"),
                        Err(e) => panic!("try_pop: {e:?}"),
                    }
                };
                order.check(v, "shmkit-mpmc");
            }
        });
    }
}

/// What one consumer saw of each of the two producers: their items must come in order.
#[derive(Default)]
pub(crate) struct ProducerOrder {
    next: [u64; 2],
}

impl ProducerOrder {
    #[inline]
    pub(crate) fn check(&mut self, v: u64, what: &str) {
        let p = (v >> PRODUCER_SHIFT) as usize;
        let k = v & ((1 << PRODUCER_SHIFT) - 1);
        assert!(p < 2, "{what}: item {v:#x} from no producer");
        assert!(
            k >= self.next[p],
            "{what}: producer {p}'s item {k} after {}",
            self.next[p]
        );
        self.next[p] = k + 1;
    }
}

/// The pinger's sample buffer: `n` `AtomicU64`s in a `/dev/shm` file, when the parent asked
/// for samples (the latency pass).
struct Samples {
    file: SharedFile,
    len: usize,
}

impl Samples {
    pub(crate) fn from_env() -> Option<Samples> {
        let path = std::env::var(ENV_SAMPLES).ok()?;
        let file = SharedFile::open(path);
        let len = file_len(&file) / 8;
        Some(Samples { file, len })
    }

    /// Records sample `i` (ignored past the end).
    #[inline]
    pub(crate) fn record(&self, i: u64, ns: u64) {
        if (i as usize) < self.len {
            // SAFETY: the file holds only AtomicU64s (made by `latency_pool`), and `i` is
            // in bounds.
            unsafe { self.file.get::<AtomicU64>(i as usize * 8) }.store(ns, Ordering::Relaxed);
        }
    }
}

fn file_len(file: &SharedFile) -> usize {
    std::fs::metadata(file.path()).map_or(0, |m| m.len() as usize)
}

fn pingpong_worker(w: Worker, target: &str) {
    let seg = Segment::open(target).expect("worker: open segment");
    let ping = seg.spsc::<u64>("ping", PP_CAP).expect("worker: open ping");
    let pong = seg.spsc::<u64>("pong", PP_CAP).expect("worker: open pong");
    let futex = w.role() == ROLE_PP_FUTEX;
    let samples = Samples::from_env();
    let mut k = 0u64;
    if w.index() == 0 {
        let mut tx = ping.producer().expect("worker: claim ping producer");
        let mut rx = pong.consumer().expect("worker: claim pong consumer");
        w.serve_timed(|n| {
            let mut total = 0u64;
            for i in 0..n {
                k += 1;
                if futex {
                    let until = now_ns() + FUTEX_GAP.as_nanos() as u64;
                    while now_ns() < until {
                        spin_loop();
                    }
                }
                let t0 = now_ns();
                let v = if futex {
                    tx.push(k).expect("push");
                    rx.pop().expect("pop")
                } else {
                    spin_push(&mut tx, k);
                    spin_pop(&mut rx)
                };
                let t1 = now_ns();
                assert_eq!(v, k, "ping-pong: wrong answer");
                total += t1 - t0;
                if let Some(s) = &samples {
                    s.record(i, t1 - t0);
                }
            }
            Span::Measured(total)
        });
    } else {
        let mut rx = ping.consumer().expect("worker: claim ping consumer");
        let mut tx = pong.producer().expect("worker: claim pong producer");
        w.serve_timed(|n| {
            for _ in 0..n {
                if futex {
                    let v = rx.pop().expect("pop");
                    tx.push(v).expect("push");
                } else {
                    let v = spin_pop(&mut rx);
                    spin_push(&mut tx, v);
                }
            }
            Span::Untimed
        });
    }
}

#[inline]
fn spin_push(tx: &mut shmkit::Producer<u64>, mut v: u64) {
    let mut wait = Wait::new();
    loop {
        match tx.try_push(v) {
            Ok(()) => return,
            Err(shmkit::PushError::Full(back)) => {
                v = back;
                wait.spin("ping-pong push");
            }
            Err(e) => panic!("try_push: {e:?}"),
        }
    }
}

#[inline]
fn spin_pop(rx: &mut shmkit::Consumer<u64>) -> u64 {
    let mut wait = Wait::new();
    loop {
        match rx.try_pop() {
            Ok(v) => return v,
            Err(PopError::Empty) => wait.spin("ping-pong pop"),
            Err(e) => panic!("try_pop: {e:?}"),
        }
    }
}

/// `shmkit-mpmc-spin`: the spinning ping-pong through two `MpmcRing`s (one producer and one
/// consumer each), for comparison with the SPSC rings.
fn mpmc_pingpong_worker(w: Worker, target: &str) {
    let seg = Segment::open(target).expect("worker: open segment");
    let ping = seg.mpmc::<u64>("ping", PP_CAP).expect("worker: open ping");
    let pong = seg.mpmc::<u64>("pong", PP_CAP).expect("worker: open pong");
    let samples = Samples::from_env();
    let (tx, rx) = if w.index() == 0 {
        (&ping, &pong)
    } else {
        (&pong, &ping)
    };
    let push = |mut v: u64| {
        let mut wait = Wait::new();
        loop {
            match tx.try_push(v) {
                Ok(()) => return,
                Err(shmkit::PushError::Full(back)) => {
                    v = back;
                    wait.spin("ping-pong push");
                }
                Err(e) => panic!("try_push: {e:?}"),
            }
        }
    };
    let pop = || {
        let mut wait = Wait::new();
        loop {
            match rx.try_pop() {
                Ok(v) => return v,
                Err(PopError::Empty) => wait.spin("ping-pong pop"),
                Err(e) => panic!("try_pop: {e:?}"),
            }
        }
    };
    let mut k = 0u64;
    if w.index() == 0 {
        w.serve_timed(|n| {
            let mut total = 0u64;
            for i in 0..n {
                k += 1;
                let t0 = now_ns();
                push(k);
                let v = pop();
                let t1 = now_ns();
                assert_eq!(v, k, "ping-pong: wrong answer");
                total += t1 - t0;
                if let Some(s) = &samples {
                    s.record(i, t1 - t0);
                }
            }
            Span::Measured(total)
        });
    } else {
        w.serve_timed(|n| {
            for _ in 0..n {
                push(pop());
            }
            Span::Untimed
        });
    }
}

/// `raw-atomic-pingpong` (`pong` = 0: the answer comes back in the ping's word) and
/// `raw-atomic-2line` (`pong` = [`RAW_FUTEX_PONG`]: the answer is stored in a word a line away,
/// one line per direction as any pair of queues has).
fn raw_pingpong_worker(w: Worker, target: &str, pong: usize) {
    let file = SharedFile::open(target);
    // SAFETY: the parent's file is 4096 zeroed bytes: an AtomicU64 at offset 0 and at `pong`
    // (0 or 64), both aligned and in bounds.
    let (ping_word, pong_word) = unsafe { (file.get::<AtomicU64>(0), file.get::<AtomicU64>(pong)) };
    let samples = Samples::from_env();
    // Round trip k: the pinger stores 2k - 1, the echo stores 2k.
    let mut k = 0u64;
    if w.index() == 0 {
        w.serve_timed(|n| {
            let mut total = 0;
            for i in 0..n {
                k += 1;
                let t0 = now_ns();
                ping_word.store(2 * k - 1, Ordering::Release);
                let mut wait = Wait::new();
                while pong_word.load(Ordering::Acquire) != 2 * k {
                    wait.spin("raw ping");
                }
                let t1 = now_ns();
                total += t1 - t0;
                if let Some(s) = &samples {
                    s.record(i, t1 - t0);
                }
            }
            Span::Measured(total)
        });
    } else {
        w.serve_timed(|n| {
            for _ in 0..n {
                k += 1;
                let mut wait = Wait::new();
                while ping_word.load(Ordering::Acquire) != 2 * k - 1 {
                    wait.spin("raw pong");
                }
                pong_word.store(2 * k, Ordering::Release);
            }
            Span::Untimed
        });
    }
}

/// Offset of the pinger's futex word in the `raw-futex-pingpong` file (the echo's is at 0): a
/// cache line apart.
pub(crate) const RAW_FUTEX_PONG: usize = 64;

/// A process-shared `FUTEX_WAIT` while `*word == expected` (no timeout: the bench's parent
/// kills a stuck worker).
fn raw_futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: `word` is a live, aligned 32-bit atomic in a shared mapping for the whole call;
    // FUTEX_WAIT only reads it; the timeout pointer is null.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            std::ptr::null::<libc::timespec>(),
        );
    }
}

/// A process-shared `FUTEX_WAKE` of one waiter on `word`.
fn raw_futex_wake(word: &AtomicU32) {
    // SAFETY: as above; FUTEX_WAKE does not touch the word.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, 1);
    }
}

/// `raw-futex-pingpong`, the floor of the sleeping path: one futex word per direction; every
/// hop stores the round number, always `FUTEX_WAKE`s, and the other side waits in `FUTEX_WAIT`
/// (never spinning) until its word holds it. The pinger pauses [`FUTEX_GAP`] before each ping,
/// as `shmkit-spsc-futex` does.
fn raw_futex_pingpong_worker(w: Worker, target: &str) {
    let file = SharedFile::open(target);
    // SAFETY: the parent made this file 4096 zeroed bytes; offsets 0 and 64 are aligned
    // AtomicU32s used only as such.
    let (ping, pong) = unsafe {
        (
            file.get::<AtomicU32>(0),
            file.get::<AtomicU32>(RAW_FUTEX_PONG),
        )
    };
    let samples = Samples::from_env();
    let wait_for = |word: &AtomicU32, k: u32| loop {
        let v = word.load(Ordering::Acquire);
        if v == k {
            return;
        }
        raw_futex_wait(word, v);
    };
    let mut k = 0u32;
    if w.index() == 0 {
        w.serve_timed(|n| {
            let mut total = 0u64;
            for i in 0..n {
                k = k.wrapping_add(1);
                let until = now_ns() + FUTEX_GAP.as_nanos() as u64;
                while now_ns() < until {
                    spin_loop();
                }
                let t0 = now_ns();
                ping.store(k, Ordering::Release);
                raw_futex_wake(ping);
                wait_for(pong, k);
                let t1 = now_ns();
                total += t1 - t0;
                if let Some(s) = &samples {
                    s.record(i, t1 - t0);
                }
            }
            Span::Measured(total)
        });
    } else {
        w.serve_timed(|n| {
            for _ in 0..n {
                k = k.wrapping_add(1);
                wait_for(ping, k);
                pong.store(k, Ordering::Release);
                raw_futex_wake(pong);
            }
            Span::Untimed
        });
    }
}
