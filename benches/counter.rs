//! Benchmark `counter`: two workers increment one shared counter, for each way of sharing it.
//!
//! Run: `cargo bench --bench counter` (the whole group takes about 1–2 minutes; a quick smoke:
//! `cargo bench --bench counter -- --warm-up-time 1 --measurement-time 2`; one id:
//! `cargo bench --bench counter -- shmkit-counter`).
//!
//! Every id runs the same workload: 2 workers (processes or threads, kept alive across iterations)
//! do the increments of one criterion iteration between them, so the reported time is **per
//! increment**, wall-clock, with both workers running at once (throughput: increments per second
//! for the pair). Only the increment loops are timed: the workers meet at a start barrier, each
//! reads `CLOCK_MONOTONIC` around its loop, and the iteration's time is last end minus first start
//! (see `benches/common/mod.rs`). After every iteration the counter is checked to hold exactly the
//! number of increments, so a broken counter cannot post a good time.
//!
//! | id | what it measures |
//! | --- | --- |
//! | `shmkit-counter` | 2 processes, `Counter::inc` on one `Counter` in a named shmkit segment |
//! | `shmkit-sharded` | 2 processes, `ShardedCounter::inc` on one `ShardedCounter` (each process on its own stripe unless their pids collide, which is printed) |
//! | `std-mutex-threads` | 2 threads, `*Mutex<u64>::lock() += 1` (the usual in-process answer) |
//! | `std-atomic-threads` | 2 threads, `AtomicU64::fetch_add` on one word: the in-process floor |
//! | `raw-fetch-add` | 2 processes, bare `AtomicU64::fetch_add` on a word of a `/dev/shm` file mapped with memmap2 (no shmkit types): the hardware floor for one shared word |
//! | `python-mp-value-lock` | 2 Python processes, `with v.get_lock(): v.value += 1` on `multiprocessing.Value('Q', 0)` (`benches/python/counter.py`), the way users do it today; skipped with a printed reason when `python3` is missing |
//!
//! Settings: 20 samples, 2 s warm-up, 8 s measurement per id (command-line flags override them),
//! so the group takes about 70 s. With Python at a few µs per increment its samples hold roughly
//! 10k–250k increments each, far above the ~0.2 ms of barrier skew of one round.
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
    eprintln!("the counter bench does not run under the `loom` feature");
}

#[cfg(not(feature = "loom"))]
mod bench {
    use crate::common::{unique_name, ProcessPool, SharedFile, ThreadPool, Worker};
    use criterion::measurement::WallTime;
    use criterion::{BenchmarkGroup, Criterion, Throughput};
    use shmkit::{Counter, Handle, Segment, ShardedCounter};
    use std::io::{BufRead, BufReader, Write};
    use std::path::PathBuf;
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const WORKERS: usize = 2;
    /// Environment variable naming the shmkit segment (or the raw file) for worker processes.
    const ENV_TARGET: &str = "SHMKIT_BENCH_TARGET";
    const ROLE_COUNTER: &str = "shmkit-counter";
    const ROLE_SHARDED: &str = "shmkit-sharded";
    const ROLE_RAW: &str = "raw-fetch-add";
    /// Name of the object in the bench segment.
    const OBJECT: &str = "c";

    /// Entry point of a worker process: opens what its role increments and serves rounds.
    pub fn worker(w: Worker) {
        let target = w.env(ENV_TARGET);
        match w.role() {
            ROLE_COUNTER => {
                let seg = Segment::open(&target).expect("worker: open segment");
                let c = seg.counter(OBJECT).expect("worker: open counter");
                w.serve(|n| {
                    for _ in 0..n {
                        c.inc();
                    }
                });
            }
            ROLE_SHARDED => {
                let seg = Segment::open(&target).expect("worker: open segment");
                let c = seg
                    .sharded_counter(OBJECT)
                    .expect("worker: open sharded counter");
                w.serve(|n| {
                    for _ in 0..n {
                        c.inc();
                    }
                });
            }
            ROLE_RAW => {
                let file = SharedFile::open(&target);
                // SAFETY: the parent placed exactly one AtomicU64 at offset 0 of this file.
                let word = unsafe { file.get::<AtomicU64>(0) };
                w.serve(|n| {
                    for _ in 0..n {
                        word.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            other => panic!("counter bench: unknown worker role {other:?}"),
        }
    }

    /// The criterion side: group `counter`, one id per system.
    pub fn run() {
        let mut c = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(8))
            .configure_from_args();
        let mut g = c.benchmark_group("counter");
        // One iteration is one increment (of the pair's total), so criterion's time is per
        // increment and its throughput is increments per second.
        g.throughput(Throughput::Elements(1));
        shmkit_counter(&mut g);
        shmkit_sharded(&mut g);
        std_mutex_threads(&mut g);
        std_atomic_threads(&mut g);
        raw_fetch_add(&mut g);
        python_mp_value_lock(&mut g);
        g.finish();
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

    /// A fresh named segment holding one object, its guard, and the worker pool on it. The
    /// segment name is unlinked as soon as the workers have it mapped.
    fn segment_pool<P: shmkit::Object + ?Sized>(
        role: &str,
        tag: &str,
        make: impl FnOnce(&Segment) -> shmkit::Result<Handle<P>>,
    ) -> (Handle<P>, ProcessPool, SegmentGuard) {
        let name = unique_name(tag);
        let seg = Segment::create(&name, 1 << 16).expect("create bench segment");
        let guard = SegmentGuard(name.clone());
        let object = make(&seg).expect("create bench object");
        let pool = ProcessPool::spawn(role, WORKERS, &[(ENV_TARGET, &name)]);
        seg.unlink().expect("unlink bench segment");
        (object, pool, guard)
    }

    fn shmkit_counter(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(Handle<Counter>, ProcessPool, SegmentGuard)> = None;
        g.bench_function(ROLE_COUNTER, |b| {
            let (c, pool, _) = state.get_or_insert_with(|| {
                segment_pool(ROLE_COUNTER, "counter", |s| s.counter(OBJECT))
            });
            b.iter_custom(|iters| {
                let t = pool.run_split(iters);
                assert_eq!(c.reset(), iters, "shmkit Counter lost increments");
                t
            });
        });
    }

    fn shmkit_sharded(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(Handle<ShardedCounter>, ProcessPool, SegmentGuard)> = None;
        let mut stripes_reported = false;
        g.bench_function(ROLE_SHARDED, |b| {
            let (c, pool, _) = state.get_or_insert_with(|| {
                segment_pool(ROLE_SHARDED, "sharded", |s| s.sharded_counter(OBJECT))
            });
            b.iter_custom(|iters| {
                let t = pool.run_split(iters);
                if !stripes_reported && iters >= WORKERS as u64 {
                    stripes_reported = true;
                    let used: Vec<usize> = (0..shmkit::internals::SHARDS)
                        .filter(|&i| c.stripes()[i] != 0)
                        .collect();
                    if used.len() < WORKERS {
                        println!(
                            "note: shmkit-sharded: the {WORKERS} worker processes share a \
                             stripe (pid collision): this run measures contended adds"
                        );
                    } else {
                        println!("shmkit-sharded: workers on stripes {used:?}");
                    }
                }
                assert_eq!(c.reset(), iters, "shmkit ShardedCounter lost increments");
                t
            });
        });
    }

    fn std_mutex_threads(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(Arc<Mutex<u64>>, ThreadPool)> = None;
        g.bench_function("std-mutex-threads", |b| {
            let (m, pool) = state.get_or_insert_with(|| {
                let m = Arc::new(Mutex::new(0u64));
                let shared = m.clone();
                let pool = ThreadPool::spawn(WORKERS, move |_, n| {
                    for _ in 0..n {
                        *shared.lock().unwrap() += 1;
                    }
                });
                (m, pool)
            });
            b.iter_custom(|iters| {
                let t = pool.run_split(iters);
                let total = std::mem::take(&mut *m.lock().unwrap());
                assert_eq!(total, iters, "Mutex<u64> lost increments");
                t
            });
        });
    }

    fn std_atomic_threads(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(Arc<AtomicU64>, ThreadPool)> = None;
        g.bench_function("std-atomic-threads", |b| {
            let (a, pool) = state.get_or_insert_with(|| {
                let a = Arc::new(AtomicU64::new(0));
                let shared = a.clone();
                let pool = ThreadPool::spawn(WORKERS, move |_, n| {
                    for _ in 0..n {
                        shared.fetch_add(1, Ordering::Relaxed);
                    }
                });
                (a, pool)
            });
            b.iter_custom(|iters| {
                let t = pool.run_split(iters);
                assert_eq!(
                    a.swap(0, Ordering::Relaxed),
                    iters,
                    "AtomicU64 lost increments"
                );
                t
            });
        });
    }

    fn raw_fetch_add(g: &mut BenchmarkGroup<'_, WallTime>) {
        let mut state: Option<(SharedFile, ProcessPool)> = None;
        g.bench_function(ROLE_RAW, |b| {
            let (file, pool) = state.get_or_insert_with(|| {
                let mut file = SharedFile::create("raw", 4096);
                let path = file.path().to_str().expect("UTF-8 path").to_owned();
                let pool = ProcessPool::spawn(ROLE_RAW, WORKERS, &[(ENV_TARGET, &path)]);
                file.unlink();
                (file, pool)
            });
            // SAFETY: this file holds exactly one AtomicU64, at offset 0.
            let word = unsafe { file.get::<AtomicU64>(0) };
            b.iter_custom(|iters| {
                let t = pool.run_split(iters);
                assert_eq!(
                    word.swap(0, Ordering::Relaxed),
                    iters,
                    "raw word lost increments"
                );
                t
            });
        });
    }

    /// `benches/python/counter.py --serve`: persistent Python workers fed one count per line.
    struct PythonServer {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
    }

    impl PythonServer {
        fn script() -> PathBuf {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/counter.py")
        }

        /// `Err(reason)` when python3 cannot be run.
        fn available() -> Result<(), String> {
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

        fn start() -> PythonServer {
            let mut child = Command::new("python3")
                .arg(Self::script())
                .arg("--serve")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("start python3 benches/python/counter.py");
            let stdin = child.stdin.take();
            let stdout = BufReader::new(child.stdout.take().expect("python stdout"));
            let mut server = PythonServer {
                child,
                stdin,
                stdout,
            };
            let line = server.line();
            assert_eq!(line.trim(), "ready", "counter.py did not start: {line:?}");
            server
        }

        fn line(&mut self) -> String {
            let mut line = String::new();
            self.stdout
                .read_line(&mut line)
                .expect("read from counter.py");
            assert!(!line.is_empty(), "counter.py exited (see its error above)");
            line
        }

        /// One round of `total` increments: (time, final value).
        fn run(&mut self, total: u64) -> (Duration, u64) {
            let stdin = self.stdin.as_mut().expect("python stdin");
            writeln!(stdin, "{total}").expect("write to counter.py");
            stdin.flush().expect("write to counter.py");
            let line = self.line();
            let mut it = line.split_whitespace().map(|f| f.parse::<u64>());
            match (it.next(), it.next()) {
                (Some(Ok(ns)), Some(Ok(value))) => (Duration::from_nanos(ns), value),
                _ => panic!("counter.py answered {line:?}"),
            }
        }
    }

    impl Drop for PythonServer {
        fn drop(&mut self) {
            // EOF on stdin stops the script, which stops its workers.
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

    fn python_mp_value_lock(g: &mut BenchmarkGroup<'_, WallTime>) {
        const ID: &str = "python-mp-value-lock";
        if let Err(reason) = PythonServer::available() {
            println!("counter/{ID}: skipped: {reason}");
            return;
        }
        let mut server: Option<PythonServer> = None;
        g.bench_function(ID, |b| {
            let server = server.get_or_insert_with(PythonServer::start);
            b.iter_custom(|iters| {
                let (t, value) = server.run(iters);
                assert_eq!(value, iters, "multiprocessing.Value lost increments");
                t
            });
        });
    }
}
