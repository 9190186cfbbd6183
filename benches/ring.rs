//! Benchmark `ring`: shmkit's rings against in-process queues, other IPC crates and Python.
//!
//! Run: `cargo bench --bench ring` (about 3 minutes, plus about 2 minutes the first time to
//! build the heavy peers); a smoke: `cargo bench --bench ring -- --warm-up-time 1
//! --measurement-time 2`; one group or id: `cargo bench --bench ring -- pingpong-latency/raw`.
//!
//! # Groups and ids
//!
//! Every item is a `u64`; every ring or queue holds [`CAP`] = 1024 items. Workers (processes or
//! threads) are started once per id and kept across iterations; only their loops are timed (a
//! start barrier, then `CLOCK_MONOTONIC` around each loop; see `benches/common/mod.rs`). Every
//! consumer checks what it receives (order, per-producer order), so a queue that loses or
//! reorders items cannot post a good time.
//!
//! **`spsc-throughput`**: one producer, one consumer; time per item (first start to last end of
//! a round of `iters` items, so criterion's throughput is items per second).
//!
//! | id | what |
//! | --- | --- |
//! | `shmkit-spsc` | 2 processes, `SpscRing<u64>` in a named segment, `try_push`/`try_pop` one item at a time |
//! | `shmkit-spsc-batch` | the same with `push_slice`/`pop_into` of up to 64 items (one position publish per batch) |
//! | `rtrb` | 2 threads, `rtrb::RingBuffer<u64>` (0.4), `push`/`pop` |
//! | `crossbeam-arrayqueue` | 2 threads, `crossbeam_queue::ArrayQueue<u64>` (0.3) |
//! | `ipc-channel` | 2 processes, `ipc_channel::ipc::channel::<u64>()` (0.23, bincode over a Unix socket), in `benches/peers` |
//! | `python-mp-queue` | 2 Python processes, `multiprocessing.Queue()` `put`/`get` (`benches/python/ring.py`) |
//!
//! **`mpmc-throughput`**: 2 producers and 2 consumers on one queue; time per item (of the
//! `iters` items of a round, split over the producers and over the consumers).
//!
//! | id | what |
//! | --- | --- |
//! | `shmkit-mpmc` | 4 processes, `MpmcRing<u64>`, `try_push`/`try_pop` |
//! | `crossbeam-arrayqueue` | 4 threads, `ArrayQueue<u64>` |
//! | `python-mp-queue` | 4 Python processes, one `multiprocessing.Queue()` |
//!
//! Waiting in the throughput groups is the same for every Rust system: on full or empty, spin
//! (`spin_loop`) 64 times, then `yield_now` between tries; no system sleeps on a futex there.
//! With 4 workers on a 2-CPU machine the MPMC figures depend on the scheduler as much as on the
//! queue.
//!
//! **`pingpong-latency`**: one process sends an item, the other sends it back through a second
//! channel; time per round trip (the pinging side's loop; the echoing side is not timed).
//!
//! | id | what |
//! | --- | --- |
//! | `shmkit-spsc-spin` | 2 processes, two `SpscRing<u64>`s; both sides busy-poll `try_pop` and use `try_push`: never a system call |
//! | `shmkit-spsc-futex` | the same rings with the blocking `push`/`pop`, and the pinging side pausing [`FUTEX_GAP`] (a busy wait, not timed) before each ping so that the echoing side has given up spinning and sleeps on the ring's futex: each round trip is a futex wake of the echoing side, plus one of the pinging side if the answer outlasts its own spin phase (on the reference VM it does: ~90 µs per wake, DESIGN.md §8). Only the round trips are timed (push to the answer's pop) |
//! | `shmkit-mpmc-spin` | as `shmkit-spsc-spin` through two `MpmcRing<u64>`s (sequence word and item share a slot), for comparison |
//! | `raw-atomic-pingpong` | 2 processes bounce one `AtomicU64` in a `/dev/shm` file (store odd, wait for even): the hardware floor |
//! | `iceoryx2` | 2 processes, two iceoryx2 0.10 publish-subscribe services of `u64` (`send_copy`, busy-polled `receive`), in `benches/peers` |
//! | `ipc-channel` | 2 processes, two `ipc::channel::<u64>()`s, blocking `recv` |
//! | `python-mp-pipe` | 2 Python processes, `multiprocessing.Pipe()` `send`/`recv` |
//!
//! After the groups, a separate measured pass times every ping-pong id that ran, one round
//! trip at a time (`CLOCK_MONOTONIC` before the ping and after the answer, so each sample also
//! holds about one clock read), into an HDR histogram, and prints median and p99 (and the
//! median's ratio to `raw-atomic-pingpong`) to stdout and to
//! `target/criterion/ring-latency.txt`.
//!
//! # Peers
//!
//! rtrb, crossbeam-queue and hdrhistogram are dev-dependencies. ipc-channel and iceoryx2 are
//! heavy: they live in `benches/peers/` (a cargo workspace of its own, one binary), which this
//! bench builds the first time it reaches one of their ids (`cargo build --release
//! --manifest-path benches/peers/Cargo.toml --target-dir target/ring-peers`; a no-op once up to
//! date, also when a filter leaves those ids out) and drives through stdin/stdout. If that build
//! fails, or `python3` is missing, the ids concerned print a `SKIPPED` line. iceoryx2 leaves
//! `/dev/shm/iox2_*` and `/tmp/iceoryx2` behind; the bench removes the entries that appeared
//! while its iceoryx2 peer ran (and nothing that was there before).
//!
//! On a 2-CPU machine each worker has a CPU to itself only because the bench's own process sleeps
//! while a round runs; run it on a quiet machine.

#[cfg(not(feature = "loom"))]
mod common;

#[cfg(not(feature = "loom"))]
fn main() {
    // Worker processes re-execute this binary; they must not reach criterion.
    if let Some(worker) = common::Worker::from_env() {
        bench::worker(worker);
        return;
    }
    bench::run();
}

/// The benches need the real atomics: under the `loom` feature there is nothing to run.
#[cfg(feature = "loom")]
fn main() {
    eprintln!("the ring bench does not run under the `loom` feature");
}

/// Capacity of every ring and queue in the throughput groups.
#[cfg(not(feature = "loom"))]
pub const CAP: u64 = 1024;

/// The pause before each ping of `shmkit-spsc-futex`, long enough for the echoing side to be
/// asleep.
#[cfg(not(feature = "loom"))]
pub const FUTEX_GAP: std::time::Duration = std::time::Duration::from_micros(200);

#[cfg(not(feature = "loom"))]
mod bench {
    use super::{CAP, FUTEX_GAP};
    use crate::common::{now_ns, unique_name, ProcessPool, SharedFile, Span, ThreadPool, Worker};
    use criterion::measurement::WallTime;
    use criterion::{BenchmarkGroup, Criterion, Throughput};
    use crossbeam_queue::ArrayQueue;
    use shmkit::ring::PopError;
    use shmkit::Segment;
    use std::collections::BTreeSet;
    use std::fmt::Write as _;
    use std::hint::spin_loop;
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// Environment variable naming the segment (or raw file) for worker processes.
    const ENV_TARGET: &str = "SHMKIT_BENCH_TARGET";
    /// Environment variable naming the `/dev/shm` file a pinger records round trips into.
    const ENV_SAMPLES: &str = "SHMKIT_BENCH_SAMPLES";
    const ROLE_SPSC: &str = "spsc";
    const ROLE_SPSC_BATCH: &str = "spsc-batch";
    const ROLE_MPMC: &str = "mpmc";
    const ROLE_PP_SPIN: &str = "pp-spin";
    const ROLE_PP_MPMC: &str = "pp-mpmc";
    const ROLE_PP_FUTEX: &str = "pp-futex";
    const ROLE_PP_RAW: &str = "pp-raw";
    /// Items per `push_slice`/`pop_into` call of `shmkit-spsc-batch`.
    const BATCH: usize = 64;
    /// Capacity of each ping-pong ring (one item is ever in flight).
    const PP_CAP: u64 = 8;
    /// Producer `p` of an MPMC run sends `p << PRODUCER_SHIFT | k`.
    const PRODUCER_SHIFT: u32 = 40;
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
    struct Wait {
        fails: u32,
        since: Option<Instant>,
    }

    impl Wait {
        #[inline]
        fn new() -> Wait {
            Wait {
                fails: 0,
                since: None,
            }
        }

        /// Busy-waits (the ping-pong's spinning mode): `spin_loop` for [`SPIN_TRIES`] tries,
        /// then `yield_now` between tries, so that a peer that lost its CPU to another process
        /// gets it back within a scheduler pass instead of a time slice.
        #[inline]
        fn spin(&mut self, what: &str) {
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
        fn backoff(&mut self, what: &str) {
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
        fn check(&mut self, what: &str) {
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
            ROLE_PP_RAW => raw_pingpong_worker(w, &target),
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
                                Err(shmkit::ring::PushError::Full(back)) => {
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
                            Err(shmkit::ring::PushError::Full(back)) => {
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
    struct ProducerOrder {
        next: [u64; 2],
    }

    impl ProducerOrder {
        #[inline]
        fn check(&mut self, v: u64, what: &str) {
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
        fn from_env() -> Option<Samples> {
            let path = std::env::var(ENV_SAMPLES).ok()?;
            let file = SharedFile::open(path);
            let len = file_len(&file) / 8;
            Some(Samples { file, len })
        }

        /// Records sample `i` (ignored past the end).
        #[inline]
        fn record(&self, i: u64, ns: u64) {
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
    fn spin_push(tx: &mut shmkit::Producer<'_, u64>, mut v: u64) {
        let mut wait = Wait::new();
        loop {
            match tx.try_push(v) {
                Ok(()) => return,
                Err(shmkit::ring::PushError::Full(back)) => {
                    v = back;
                    wait.spin("ping-pong push");
                }
                Err(e) => panic!("try_push: {e:?}"),
            }
        }
    }

    #[inline]
    fn spin_pop(rx: &mut shmkit::Consumer<'_, u64>) -> u64 {
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
                    Err(shmkit::ring::PushError::Full(back)) => {
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

    fn raw_pingpong_worker(w: Worker, target: &str) {
        let file = SharedFile::open(target);
        // SAFETY: the parent placed exactly one AtomicU64 at offset 0 of this file.
        let word = unsafe { file.get::<AtomicU64>(0) };
        let samples = Samples::from_env();
        // Round trip k: the pinger stores 2k - 1, the echo stores 2k.
        let mut k = 0u64;
        if w.index() == 0 {
            w.serve_timed(|n| {
                let mut total = 0;
                for i in 0..n {
                    k += 1;
                    let t0 = now_ns();
                    word.store(2 * k - 1, Ordering::Release);
                    let mut wait = Wait::new();
                    while word.load(Ordering::Acquire) != 2 * k {
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
                    while word.load(Ordering::Acquire) != 2 * k - 1 {
                        wait.spin("raw pong");
                    }
                    word.store(2 * k, Ordering::Release);
                }
                Span::Untimed
            });
        }
    }

    // ---------------------------------------------------------------------------------------
    // The criterion side

    /// Which ping-pong ids ran (criterion's filter may leave some out): the latency pass
    /// measures those.
    type Ran = Vec<&'static str>;

    /// The criterion side: three groups, then the latency pass.
    pub fn run() {
        let mut c = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(6))
            .configure_from_args();

        let mut g = c.benchmark_group("spsc-throughput");
        g.throughput(Throughput::Elements(1));
        shmkit_spsc(&mut g, ROLE_SPSC, "shmkit-spsc");
        shmkit_spsc(&mut g, ROLE_SPSC_BATCH, "shmkit-spsc-batch");
        rtrb_threads(&mut g);
        arrayqueue_threads(&mut g, 1, 1);
        peer_id(
            &mut g,
            "ipc-channel",
            Peer::Rust("ipc-spsc"),
            &mut Vec::new(),
        );
        peer_id(
            &mut g,
            "python-mp-queue",
            Peer::Python("spsc-queue"),
            &mut Vec::new(),
        );
        g.finish();

        let mut g = c.benchmark_group("mpmc-throughput");
        g.throughput(Throughput::Elements(1));
        shmkit_mpmc(&mut g);
        arrayqueue_threads(&mut g, 2, 2);
        peer_id(
            &mut g,
            "python-mp-queue",
            Peer::Python("mpmc-queue"),
            &mut Vec::new(),
        );
        g.finish();

        let mut ran = Ran::new();
        let mut g = c.benchmark_group("pingpong-latency");
        g.throughput(Throughput::Elements(1));
        shmkit_pingpong(&mut g, ROLE_PP_SPIN, "shmkit-spsc-spin", &mut ran);
        shmkit_pingpong(&mut g, ROLE_PP_MPMC, "shmkit-mpmc-spin", &mut ran);
        shmkit_pingpong(&mut g, ROLE_PP_FUTEX, "shmkit-spsc-futex", &mut ran);
        raw_pingpong(&mut g, &mut ran);
        peer_id(&mut g, "iceoryx2", Peer::Rust("iox2-pingpong"), &mut ran);
        peer_id(&mut g, "ipc-channel", Peer::Rust("ipc-pingpong"), &mut ran);
        peer_id(
            &mut g,
            "python-mp-pipe",
            Peer::Python("pipe-pingpong"),
            &mut ran,
        );
        g.finish();

        latency_pass(&ran);
        c.final_summary();
    }

    /// Removes a named segment when dropped (also on panic).
    struct SegmentGuard(String);

    impl Drop for SegmentGuard {
        fn drop(&mut self) {
            // Already unlinked once the workers attached; NotFound is expected then.
            let _ = Segment::remove(&self.0);
        }
    }

    /// A fresh named segment set up by `make`, and `workers` worker processes of `role` on it
    /// (with the extra environment `env`). The name is unlinked once the workers have it mapped.
    fn segment_pool(
        role: &str,
        workers: usize,
        make: impl FnOnce(&Segment),
        env: &[(&str, &str)],
    ) -> (Segment, ProcessPool, SegmentGuard) {
        let name = unique_name(role);
        let seg = Segment::create(&name, 1 << 20).expect("create bench segment");
        let guard = SegmentGuard(name.clone());
        make(&seg);
        let mut all = vec![(ENV_TARGET, name.as_str())];
        all.extend_from_slice(env);
        let pool = ProcessPool::spawn(role, workers, &all);
        seg.unlink().expect("unlink bench segment");
        (seg, pool, guard)
    }

    fn shmkit_spsc(g: &mut BenchmarkGroup<'_, WallTime>, role: &str, id: &str) {
        let mut state: Option<(Segment, ProcessPool, SegmentGuard)> = None;
        g.bench_function(id, |b| {
            let (_, pool, _) = state.get_or_insert_with(|| {
                let make = |s: &Segment| {
                    s.spsc::<u64>("ring", CAP).expect("create ring");
                };
                segment_pool(role, 2, make, &[])
            });
            b.iter_custom(|iters| pool.run(&[iters, iters]));
        });
    }

    fn shmkit_mpmc(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(Segment, ProcessPool, SegmentGuard)> = None;
        g.bench_function("shmkit-mpmc", |b| {
            let (_, pool, _) = state.get_or_insert_with(|| {
                let make = |s: &Segment| {
                    s.mpmc::<u64>("ring", CAP).expect("create ring");
                };
                segment_pool(ROLE_MPMC, 4, make, &[])
            });
            b.iter_custom(|iters| {
                let (p, c) = (
                    crate::common::split(iters, 2),
                    crate::common::split(iters, 2),
                );
                pool.run(&[p[0], p[1], c[0], c[1]])
            });
        });
    }

    fn rtrb_threads(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<ThreadPool> = None;
        g.bench_function("rtrb", |b| {
            let pool = state.get_or_insert_with(|| {
                let (tx, rx) = rtrb::RingBuffer::<u64>::new(CAP as usize);
                // Each side's handle and next item, locked once per round by its one thread.
                let tx = Mutex::new((tx, 1u64));
                let rx = Mutex::new((rx, 1u64));
                ThreadPool::spawn(2, move |i, n| {
                    if i == 0 {
                        let mut guard = tx.lock().unwrap();
                        let (tx, next) = &mut *guard;
                        for _ in 0..n {
                            let mut wait = Wait::new();
                            while tx.push(*next).is_err() {
                                wait.backoff("rtrb producer");
                            }
                            *next += 1;
                        }
                    } else {
                        let mut guard = rx.lock().unwrap();
                        let (rx, next) = &mut *guard;
                        for _ in 0..n {
                            let mut wait = Wait::new();
                            let v = loop {
                                match rx.pop() {
                                    Ok(v) => break v,
                                    Err(_) => wait.backoff("rtrb consumer"),
                                }
                            };
                            assert_eq!(v, *next, "rtrb: out of order");
                            *next += 1;
                        }
                    }
                })
            });
            b.iter_custom(|iters| pool.run(&[iters, iters]));
        });
    }

    /// `producers` + `consumers` threads on one `ArrayQueue<u64>` (1 + 1 or 2 + 2).
    fn arrayqueue_threads(
        g: &mut BenchmarkGroup<'_, WallTime>,
        producers: usize,
        consumers: usize,
    ) {
        let mut state: Option<ThreadPool> = None;
        g.bench_function("crossbeam-arrayqueue", |b| {
            let pool = state.get_or_insert_with(|| {
                let q = Arc::new(ArrayQueue::<u64>::new(CAP as usize));
                // Per producer: its next item; per consumer: what it saw of each producer.
                let sent: Vec<Mutex<u64>> = (0..producers).map(|_| Mutex::new(0)).collect();
                let seen: Vec<Mutex<ProducerOrder>> = (0..consumers)
                    .map(|_| Mutex::new(ProducerOrder::default()))
                    .collect();
                ThreadPool::spawn(producers + consumers, move |i, n| {
                    if i < producers {
                        let mut k = sent[i].lock().unwrap();
                        for _ in 0..n {
                            let mut v = (i as u64) << PRODUCER_SHIFT | *k;
                            let mut wait = Wait::new();
                            while let Err(back) = q.push(v) {
                                v = back;
                                wait.backoff("ArrayQueue producer");
                            }
                            *k += 1;
                        }
                    } else {
                        let mut order = seen[i - producers].lock().unwrap();
                        for _ in 0..n {
                            let mut wait = Wait::new();
                            let v = loop {
                                match q.pop() {
                                    Some(v) => break v,
                                    None => wait.backoff("ArrayQueue consumer"),
                                }
                            };
                            order.check(v, "crossbeam-arrayqueue");
                        }
                    }
                })
            });
            b.iter_custom(|iters| {
                let mut counts = crate::common::split(iters, producers);
                counts.extend(crate::common::split(iters, consumers));
                pool.run(&counts)
            });
        });
    }

    /// The segment, worker pool and (for the latency pass) sample file of a ping-pong id.
    type PingPongState = (Segment, ProcessPool, SegmentGuard);

    fn pingpong_pool(role: &str, samples: Option<&Path>) -> PingPongState {
        let make = |s: &Segment| {
            if role == ROLE_PP_MPMC {
                s.mpmc::<u64>("ping", PP_CAP).expect("create ping ring");
                s.mpmc::<u64>("pong", PP_CAP).expect("create pong ring");
            } else {
                s.spsc::<u64>("ping", PP_CAP).expect("create ping ring");
                s.spsc::<u64>("pong", PP_CAP).expect("create pong ring");
            }
        };
        match samples.and_then(Path::to_str) {
            Some(p) => segment_pool(role, 2, make, &[(ENV_SAMPLES, p)]),
            None => segment_pool(role, 2, make, &[]),
        }
    }

    fn shmkit_pingpong(
        g: &mut BenchmarkGroup<'_, WallTime>,
        role: &'static str,
        id: &'static str,
        ran: &mut Ran,
    ) {
        let mut state: Option<PingPongState> = None;
        let mut did = false;
        g.bench_function(id, |b| {
            did = true;
            let (_, pool, _) = state.get_or_insert_with(|| pingpong_pool(role, None));
            b.iter_custom(|iters| pool.run(&[iters, iters]));
        });
        if did {
            ran.push(id);
        }
    }

    fn raw_pool(samples: Option<&Path>) -> (SharedFile, ProcessPool) {
        let mut file = SharedFile::create("raw", 4096);
        let path = file.path().to_str().expect("UTF-8 path").to_owned();
        let pool = match samples.and_then(Path::to_str) {
            Some(p) => ProcessPool::spawn(ROLE_PP_RAW, 2, &[(ENV_TARGET, &path), (ENV_SAMPLES, p)]),
            None => ProcessPool::spawn(ROLE_PP_RAW, 2, &[(ENV_TARGET, &path)]),
        };
        file.unlink();
        (file, pool)
    }

    fn raw_pingpong(g: &mut BenchmarkGroup<'_, WallTime>, ran: &mut Ran) {
        const ID: &str = "raw-atomic-pingpong";
        let mut state: Option<(SharedFile, ProcessPool)> = None;
        let mut did = false;
        g.bench_function(ID, |b| {
            did = true;
            let (_, pool) = state.get_or_insert_with(|| raw_pool(None));
            b.iter_custom(|iters| pool.run(&[iters, iters]));
        });
        if did {
            ran.push(ID);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Peers driven through stdin/stdout: benches/peers (Rust) and benches/python/ring.py

    /// A peer program and its mode.
    #[derive(Clone, Copy)]
    enum Peer {
        /// `target/ring-peers/release/shmkit-ring-peers MODE`.
        Rust(&'static str),
        /// `python3 benches/python/ring.py MODE`.
        Python(&'static str),
    }

    fn target_dir() -> PathBuf {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
    }

    /// Builds `benches/peers` once per run; the binary, or why it cannot be had.
    fn peers_binary() -> Result<PathBuf, String> {
        static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                let manifest =
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/Cargo.toml");
                let target = target_dir().join("ring-peers");
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                println!(
                    "ring bench: building the ipc-channel and iceoryx2 peers ({}; about 2 minutes \
                     the first time)",
                    manifest.display()
                );
                let status = Command::new(cargo)
                    .args(["build", "--release", "--quiet", "--manifest-path"])
                    .arg(&manifest)
                    .arg("--target-dir")
                    .arg(&target)
                    .stdin(Stdio::null())
                    .status()
                    .map_err(|e| format!("cannot run cargo: {e}"))?;
                if !status.success() {
                    return Err(format!("building {} failed ({status})", manifest.display()));
                }
                Ok(target.join("release/shmkit-ring-peers"))
            })
            .clone()
    }

    fn python_available() -> Result<(), String> {
        match Command::new("python3")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("`python3 --version` failed ({s})")),
            Err(e) => Err(format!("python3 not found ({e})")),
        }
    }

    impl Peer {
        /// The command to start this peer, or why it cannot be started.
        fn command(self) -> Result<Command, String> {
            match self {
                Peer::Rust(mode) => {
                    let bin = peers_binary()?;
                    let mut c = Command::new(bin);
                    c.arg(mode);
                    Ok(c)
                }
                Peer::Python(mode) => {
                    python_available()?;
                    let script =
                        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/ring.py");
                    let mut c = Command::new("python3");
                    c.arg(script).arg(mode);
                    Ok(c)
                }
            }
        }

        fn is_iceoryx2(self) -> bool {
            matches!(self, Peer::Rust("iox2-pingpong"))
        }
    }

    /// A running peer speaking the line protocol (`ready`; `run N` → ns; `lat N` → samples).
    struct LinePeer {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
        what: String,
    }

    impl LinePeer {
        fn start(mut cmd: Command, what: &str) -> LinePeer {
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {what}: {e}"));
            let stdin = child.stdin.take();
            let stdout = BufReader::new(child.stdout.take().expect("peer stdout"));
            let mut peer = LinePeer {
                child,
                stdin,
                stdout,
                what: what.to_owned(),
            };
            let line = peer.line();
            assert_eq!(line.trim(), "ready", "{what} did not start: {line:?}");
            peer
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.stdout
                .read_line(&mut line)
                .unwrap_or_else(|e| panic!("reading from {}: {e}", self.what));
            assert!(
                !line.is_empty(),
                "{} exited (see its error above)",
                self.what
            );
            line
        }

        fn ask(&mut self, cmd: &str, n: u64) -> String {
            let stdin = self.stdin.as_mut().expect("peer stdin");
            writeln!(stdin, "{cmd} {n}")
                .and_then(|()| stdin.flush())
                .unwrap_or_else(|e| panic!("writing to {}: {e}", self.what));
            self.line()
        }

        /// One round of `n` units: the time the peer measured.
        fn run(&mut self, n: u64) -> Duration {
            let line = self.ask("run", n);
            let ns = line
                .trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{} answered {line:?}", self.what));
            Duration::from_nanos(ns)
        }

        /// `n` round trips, each timed by the peer.
        fn lat(&mut self, n: u64) -> Vec<u64> {
            let line = self.ask("lat", n);
            let v: Vec<u64> = line
                .split_whitespace()
                .map(|w| w.parse::<u64>())
                .collect::<Result<_, _>>()
                .unwrap_or_else(|_| panic!("{} answered a bad sample line", self.what));
            assert_eq!(v.len() as u64, n, "{}: wrong number of samples", self.what);
            v
        }
    }

    impl Drop for LinePeer {
        fn drop(&mut self) {
            // EOF on stdin stops the peer, which stops its child.
            drop(self.stdin.take());
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if matches!(self.child.try_wait(), Ok(None)) {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }

    /// The entries of `/dev/shm/iox2_*` and `/tmp/iceoryx2` that existed before an iceoryx2 peer
    /// ran; on drop, removes every such entry that appeared since (and only those).
    struct Iox2Leftovers {
        before: BTreeSet<PathBuf>,
        tmp_existed: bool,
    }

    const IOX2_TMP: &str = "/tmp/iceoryx2";

    fn iox2_entries() -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        if let Ok(dir) = std::fs::read_dir("/dev/shm") {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with("iox2_") {
                    out.insert(e.path());
                }
            }
        }
        fn walk(p: &Path, out: &mut BTreeSet<PathBuf>) {
            if let Ok(dir) = std::fs::read_dir(p) {
                for e in dir.flatten() {
                    let path = e.path();
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&path, out);
                    }
                    out.insert(path);
                }
            }
        }
        walk(Path::new(IOX2_TMP), &mut out);
        out
    }

    impl Iox2Leftovers {
        fn snapshot() -> Iox2Leftovers {
            Iox2Leftovers {
                before: iox2_entries(),
                tmp_existed: Path::new(IOX2_TMP).exists(),
            }
        }
    }

    impl Drop for Iox2Leftovers {
        fn drop(&mut self) {
            // Deepest first, so that directories are empty when their turn comes.
            let now = iox2_entries();
            let new: Vec<&PathBuf> = now.difference(&self.before).collect();
            for p in new.into_iter().rev() {
                if p.is_dir() {
                    let _ = std::fs::remove_dir(p);
                } else {
                    let _ = std::fs::remove_file(p);
                }
            }
            if !self.tmp_existed {
                let _ = std::fs::remove_dir(IOX2_TMP);
            }
        }
    }

    /// A started peer, with the cleanup its kind needs (dropped after the peer).
    struct PeerRun {
        peer: LinePeer,
        _leftovers: Option<Iox2Leftovers>,
    }

    impl PeerRun {
        fn start(cmd: Command, kind: Peer, what: &str) -> PeerRun {
            let leftovers = kind.is_iceoryx2().then(Iox2Leftovers::snapshot);
            PeerRun {
                peer: LinePeer::start(cmd, what),
                _leftovers: leftovers,
            }
        }
    }

    /// A criterion id run by a peer program; prints a `SKIPPED` line when the peer cannot be
    /// had.
    fn peer_id(g: &mut BenchmarkGroup<'_, WallTime>, id: &'static str, kind: Peer, ran: &mut Ran) {
        let group = g_name(kind);
        let cmd = match kind.command() {
            Ok(c) => c,
            Err(reason) => {
                println!("{group}/{id}: SKIPPED: {reason}");
                return;
            }
        };
        let mut cmd = Some(cmd);
        let mut state: Option<PeerRun> = None;
        let mut did = false;
        g.bench_function(id, |b| {
            did = true;
            let run = state.get_or_insert_with(|| {
                PeerRun::start(
                    cmd.take().expect("one start"),
                    kind,
                    &format!("{group}/{id}"),
                )
            });
            b.iter_custom(|iters| run.peer.run(iters));
        });
        // Stop the peer (and clean up after it) before the next id starts.
        drop(state);
        if did {
            ran.push(id);
        }
    }

    /// The group a peer mode belongs to (for messages).
    fn g_name(kind: Peer) -> &'static str {
        match kind {
            Peer::Rust("ipc-spsc") | Peer::Python("spsc-queue") => "spsc-throughput",
            Peer::Python("mpmc-queue") => "mpmc-throughput",
            _ => "pingpong-latency",
        }
    }

    // ---------------------------------------------------------------------------------------
    // The latency pass

    /// Round trips sampled per id in the latency pass (after a warm-up of a tenth as many).
    fn samples_for(id: &str) -> u64 {
        let n = match id {
            "shmkit-spsc-spin" | "shmkit-mpmc-spin" | "raw-atomic-pingpong" | "iceoryx2" => 100_000,
            "ipc-channel" => 20_000,
            // ~0.5 ms per sample (gap included).
            "shmkit-spsc-futex" => 2_000,
            _ => 5_000,
        };
        // Criterion's `--test` mode runs every id once: keep the pass short there too.
        if std::env::args().any(|a| a == "--test") {
            (n / 100).max(10)
        } else {
            n
        }
    }

    /// A `/dev/shm` file of `n` zeroed `AtomicU64`s for a pinger to record into.
    fn sample_file(n: u64) -> SharedFile {
        SharedFile::create("samples", (n as usize * 8).max(8))
    }

    fn read_samples(file: &SharedFile, n: u64) -> Vec<u64> {
        (0..n as usize)
            // SAFETY: the file holds only AtomicU64s; i * 8 is in bounds (n of them).
            .map(|i| unsafe { file.get::<AtomicU64>(i * 8) }.load(Ordering::Relaxed))
            .collect()
    }

    /// Samples of one ping-pong id, or why there are none.
    fn latency_samples(id: &str, n: u64) -> Result<Vec<u64>, String> {
        let warm = (n / 10).max(1);
        match id {
            "shmkit-spsc-spin" | "shmkit-spsc-futex" | "shmkit-mpmc-spin" => {
                let role = match id {
                    "shmkit-spsc-spin" => ROLE_PP_SPIN,
                    "shmkit-spsc-futex" => ROLE_PP_FUTEX,
                    _ => ROLE_PP_MPMC,
                };
                let file = sample_file(n);
                let (_seg, mut pool, _guard) = pingpong_pool(role, Some(file.path()));
                pool.run(&[warm, warm]);
                pool.run(&[n, n]);
                Ok(read_samples(&file, n))
            }
            "raw-atomic-pingpong" => {
                let file = sample_file(n);
                let (_raw, mut pool) = raw_pool(Some(file.path()));
                pool.run(&[warm, warm]);
                pool.run(&[n, n]);
                Ok(read_samples(&file, n))
            }
            _ => {
                let kind = match id {
                    "iceoryx2" => Peer::Rust("iox2-pingpong"),
                    "ipc-channel" => Peer::Rust("ipc-pingpong"),
                    "python-mp-pipe" => Peer::Python("pipe-pingpong"),
                    other => return Err(format!("no latency pass for {other}")),
                };
                let cmd = kind.command()?;
                let mut run = PeerRun::start(cmd, kind, &format!("latency pass {id}"));
                run.peer.run(warm);
                Ok(run.peer.lat(n))
            }
        }
    }

    /// Median and p99 of every ping-pong id that ran, printed and saved.
    fn latency_pass(ran: &Ran) {
        if ran.is_empty() {
            return;
        }
        let mut rows: Vec<(&str, u64, u64, u64)> = Vec::new();
        let mut skipped = Vec::new();
        for &id in ran {
            let n = samples_for(id);
            match latency_samples(id, n) {
                Ok(samples) => {
                    let mut h =
                        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                            .expect("histogram bounds");
                    for s in samples {
                        h.saturating_record(s.max(1));
                    }
                    rows.push((id, n, h.value_at_quantile(0.5), h.value_at_quantile(0.99)));
                }
                Err(reason) => skipped.push(format!("{id}: SKIPPED: {reason}")),
            }
        }
        let floor = rows
            .iter()
            .find(|r| r.0 == "raw-atomic-pingpong")
            .map(|r| r.2);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "pingpong-latency, one round trip per sample (HDR histogram; median/raw = ratio of \
             medians to raw-atomic-pingpong)"
        );
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>12} {:>12} {:>11}",
            "id", "samples", "median", "p99", "median/raw"
        );
        for (id, n, p50, p99) in &rows {
            let ratio = floor.map_or("-".to_owned(), |f| {
                format!("{:.2}x", *p50 as f64 / f as f64)
            });
            let _ = writeln!(
                out,
                "{id:<22} {n:>8} {:>12} {:>12} {ratio:>11}",
                fmt_ns(*p50),
                fmt_ns(*p99)
            );
        }
        for s in &skipped {
            let _ = writeln!(out, "{s}");
        }
        print!("\n{out}");
        let dir = target_dir().join("criterion");
        let path = dir.join("ring-latency.txt");
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &out)) {
            Ok(()) => println!("(saved to {})", path.display()),
            Err(e) => println!("(could not save {}: {e})", path.display()),
        }
    }

    fn fmt_ns(ns: u64) -> String {
        if ns < 10_000 {
            format!("{ns} ns")
        } else if ns < 10_000_000 {
            format!("{:.1} µs", ns as f64 / 1e3)
        } else {
            format!("{:.1} ms", ns as f64 / 1e6)
        }
    }
}
