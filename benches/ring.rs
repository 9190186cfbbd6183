//! Benchmark `ring`: shmkit's rings against in-process queues, other IPC crates and Python.
//!
//! Run: `cargo bench --bench ring` (about 3 minutes, plus about 2 minutes the first time to
//! build the heavy peers); a smoke: `cargo bench --bench ring -- --warm-up-time 1
//! --measurement-time 2`; one group or id: `cargo bench --bench ring -- pingpong-latency/raw`.
//!
//! # Groups and ids
//!
//! Every item is a `u64`; every ring or queue holds `CAP` = 1024 items. Workers (processes or
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
//! | `shmkit-spsc-futex` | the same rings with the blocking `push`/`pop`, and the pinging side pausing `FUTEX_GAP` (200 µs) (a busy wait, not timed) before each ping so that the echoing side has given up spinning and sleeps on the ring's futex: each round trip is a futex wake of the echoing side, plus one of the pinging side if the answer outlasts its own spin phase (on the reference VM it does: ~90 µs per wake; see the README's "Measured"). Only the round trips are timed (push to the answer's pop) |
//! | `shmkit-mpmc-spin` | as `shmkit-spsc-spin` through two `MpmcRing<u64>`s (sequence word and item share a slot), for comparison |
//! | `raw-atomic-pingpong` | 2 processes bounce one `AtomicU64` in a `/dev/shm` file (store odd, wait for even): the hardware floor |
//! | `raw-atomic-2line` | the same with one word per direction, a cache line apart: the floor of any pair of channels (each hop also takes ownership of the line the other side polls), printed beside the ratio to `raw-atomic-pingpong` |
//! | `raw-futex-pingpong` | the floor of the sleeping path, for `shmkit-spsc-futex`: 2 processes, one futex word each in a `/dev/shm` file; every hop stores the round number and `FUTEX_WAKE`s, and the other side sleeps in `FUTEX_WAIT` (never spins) until its word holds it; the pinger pauses `FUTEX_GAP` before each ping, as `shmkit-spsc-futex` does |
//! | `iceoryx2` | 2 processes, two iceoryx2 0.10 publish-subscribe services of `u64` (`send_copy`, busy-polled `receive`), in `benches/peers` |
//! | `ipc-channel` | 2 processes, two `ipc::channel::<u64>()`s, blocking `recv` |
//! | `python-mp-pipe` | 2 Python processes, `multiprocessing.Pipe()` `send`/`recv` |
//!
//! The spinning sides (`-spin`, `raw-atomic-pingpong`, `iceoryx2`) busy-wait with `spin_loop`
//! for 4096 failed tries, then `yield_now` between tries: on an idle machine a round trip never
//! gets there; on a busy one a side that lost its CPU gets it back sooner. Even so, a spinning
//! side that is preempted stalls a round trip for a time slice, and such rare stalls dominate
//! criterion's means on a loaded machine: the medians of the latency pass are the figures to
//! quote there.
//!
//! After the groups, a separate measured pass times every ping-pong id that ran, one round
//! trip at a time (`CLOCK_MONOTONIC` before the ping and after the answer, so each sample also
//! holds about one clock read), into an HDR histogram, and prints median and p99 (and the
//! median's ratio to its floor: `raw-futex-pingpong` for `shmkit-spsc-futex`,
//! `raw-atomic-pingpong` for the others) to stdout and to
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
//! # Files
//!
//! `benches/ring_bench/workers.rs` (the worker processes and the waits), `benches/ring_bench/
//! peers.rs` (driving `benches/peers` and `benches/python/ring.py`), `benches/common/mod.rs`
//! (process and thread pools, start barrier).
//!
//! On a 2-CPU machine each worker has a CPU to itself only because the bench's own process sleeps
//! while a round runs; run it on a quiet machine.

#[cfg(not(feature = "loom"))]
mod common;
#[cfg(not(feature = "loom"))]
#[path = "ring_bench/peers.rs"]
mod peers;
#[cfg(not(feature = "loom"))]
#[path = "ring_bench/workers.rs"]
mod workers;

#[cfg(not(feature = "loom"))]
fn main() {
    // Worker processes re-execute this binary; they must not reach criterion.
    if let Some(worker) = common::Worker::from_env() {
        workers::worker(worker);
        return;
    }
    bench::run();
}

/// The benches need the real atomics: under the `loom` feature there is nothing to run.
#[cfg(feature = "loom")]
fn main() {
    eprintln!("the ring bench does not run under the `loom` feature");
}

#[cfg(not(feature = "loom"))]
mod bench {
    use crate::common::{unique_name, ProcessPool, SharedFile, ThreadPool};
    use crate::peers::*;
    use crate::workers::*;
    use criterion::measurement::WallTime;
    use criterion::{BenchmarkGroup, Criterion, Throughput};
    use crossbeam_queue::ArrayQueue;
    use shmkit::Segment;
    use std::fmt::Write as _;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

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
        raw_pingpong(&mut g, "raw-atomic-pingpong", ROLE_PP_RAW, &mut ran);
        raw_pingpong(&mut g, "raw-atomic-2line", ROLE_PP_RAW_2LINE, &mut ran);
        raw_pingpong(&mut g, "raw-futex-pingpong", ROLE_PP_RAW_FUTEX, &mut ran);
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

    /// A zeroed `/dev/shm` file and the two workers of `role` (one of the raw floors) on it.
    fn raw_pool(role: &str, samples: Option<&Path>) -> (SharedFile, ProcessPool) {
        let mut file = SharedFile::create("raw", 4096);
        let path = file.path().to_str().expect("UTF-8 path").to_owned();
        let pool = match samples.and_then(Path::to_str) {
            Some(p) => ProcessPool::spawn(role, 2, &[(ENV_TARGET, &path), (ENV_SAMPLES, p)]),
            None => ProcessPool::spawn(role, 2, &[(ENV_TARGET, &path)]),
        };
        file.unlink();
        (file, pool)
    }

    /// One of the raw floors (`id`), run by two workers of `role`.
    fn raw_pingpong(
        g: &mut BenchmarkGroup<'_, WallTime>,
        id: &'static str,
        role: &str,
        ran: &mut Ran,
    ) {
        let mut state: Option<(SharedFile, ProcessPool)> = None;
        let mut did = false;
        g.bench_function(id, |b| {
            did = true;
            let (_, pool) = state.get_or_insert_with(|| raw_pool(role, None));
            b.iter_custom(|iters| pool.run(&[iters, iters]));
        });
        if did {
            ran.push(id);
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
            "shmkit-spsc-spin"
            | "shmkit-mpmc-spin"
            | "raw-atomic-pingpong"
            | "raw-atomic-2line"
            | "iceoryx2" => 100_000,
            "ipc-channel" => 20_000,
            // ~0.5 ms per sample (gap included).
            "shmkit-spsc-futex" | "raw-futex-pingpong" => 2_000,
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
            "raw-atomic-pingpong" | "raw-atomic-2line" | "raw-futex-pingpong" => {
                let role = match id {
                    "raw-atomic-pingpong" => ROLE_PP_RAW,
                    "raw-atomic-2line" => ROLE_PP_RAW_2LINE,
                    _ => ROLE_PP_RAW_FUTEX,
                };
                let file = sample_file(n);
                let (_raw, mut pool) = raw_pool(role, Some(file.path()));
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
        // The floor of an id: raw-futex-pingpong for the sleeping ids, raw-atomic-pingpong
        // for every other.
        let median_of = |floor: &str| rows.iter().find(|r| r.0 == floor).map(|r| r.2);
        let (atomic, futex, two_lines) = (
            median_of("raw-atomic-pingpong"),
            median_of("raw-futex-pingpong"),
            median_of("raw-atomic-2line"),
        );
        let mut out = String::new();
        let _ = writeln!(
            out,
            "pingpong-latency, one round trip per sample (HDR histogram; median/floor = ratio of \
             medians to raw-futex-pingpong for the -futex ids, to raw-atomic-pingpong otherwise; \
             /2-line = to raw-atomic-2line, the floor with one line per direction)"
        );
        let _ = writeln!(
            out,
            "{:<22} {:>8} {:>12} {:>12} {:>12} {:>8}",
            "id", "samples", "median", "p99", "median/floor", "/2-line"
        );
        for (id, n, p50, p99) in &rows {
            let floor = if id.ends_with("-futex") || *id == "raw-futex-pingpong" {
                futex
            } else {
                atomic
            };
            let ratio_to = |floor: Option<u64>| {
                floor.map_or("-".to_owned(), |f| {
                    format!("{:.2}x", *p50 as f64 / f as f64)
                })
            };
            let ratio = ratio_to(floor);
            let to_two = if id.contains("futex") {
                "-".to_owned()
            } else {
                ratio_to(two_lines)
            };
            let _ = writeln!(
                out,
                "{id:<22} {n:>8} {:>12} {:>12} {ratio:>12} {to_two:>8}",
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
