//! Seqlock benchmarks, every peer in the same run.
//!
//! - `seqlock-read`: a reader takes snapshots of a 64-byte and a 4 KiB value while a writer
//!   rewrites it continuously (ids `64B`, `4KiB`), and while a writer rewrites it at a realistic
//!   rate, one write every 10 µs paced by spinning on the clock (ids `64B-write-every-10us`,
//!   `4KiB-write-every-10us`). shmkit and the process-shared peers run reader and writer in
//!   separate PROCESSES (this binary re-executed with a role); the in-process peers use threads.
//!   Only the reader's loop is timed, by the reader itself, started by a command word in shared
//!   memory (`iter_custom`). (Python's writer cannot rewrite 4 KiB in 10 µs: paced, it writes as
//!   fast as it can.)
//! - `seqlock-write`: the writer's throughput on a `SeqLock`, alone and with a reader process
//!   reading continuously.
//!
//! Peers: `std-rwlock-threads`, `parking_lot-rwlock-threads`, `raw_sync-rwlock` (a process-shared
//! pthread rwlock over a shared file mapping), `python-mp-array-lock` (`multiprocessing.Array`
//! with its lock; `benches/python/seqlock_peer.py`; skipped with a message if `python3` is
//! missing).
//!
//! Run: `cargo bench --bench seqlock` (smoke: `-- --warm-up-time 1 --measurement-time 2`).

// The library's atomics are loom's under the `loom` feature: nothing to measure then.
fn main() {
    #[cfg(not(feature = "loom"))]
    bench::main();
}

#[cfg(not(feature = "loom"))]
mod bench {
    use criterion::{BenchmarkId, Criterion};
    use shmkit::{Counter, Handle, Segment};
    use std::hint::black_box;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const ROLE: &str = "SHMKIT_BENCH_SEQLOCK_ROLE";
    const SEG: &str = "SHMKIT_BENCH_SEQLOCK_SEG";
    const WORDS: &str = "SHMKIT_BENCH_SEQLOCK_WORDS";
    const RAW: &str = "SHMKIT_BENCH_SEQLOCK_RAW";
    const PACE: &str = "SHMKIT_BENCH_SEQLOCK_PACE_NS";

    /// The realistic writer rate of the paced `seqlock-read` cases.
    const PACED: Duration = Duration::from_micros(10);

    pub fn main() {
        if let Ok(role) = std::env::var(ROLE) {
            child(&role);
            return;
        }
        let mut c = Criterion::default().configure_from_args();
        {
            let mut g = c.benchmark_group("seqlock-read");
            read_group::<8>(&mut g, "64B", None);
            read_group::<512>(&mut g, "4KiB", None);
            read_group::<8>(&mut g, "64B-write-every-10us", Some(PACED));
            read_group::<512>(&mut g, "4KiB-write-every-10us", Some(PACED));
            g.finish();
        }
        {
            let mut g = c.benchmark_group("seqlock-write");
            write_group::<8>(&mut g, "64B");
            write_group::<512>(&mut g, "4KiB");
            g.finish();
        }
        c.final_summary();
    }

    type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

    // ---------- processes: a segment for control, children killed and reaped on drop ----------

    struct Procs {
        name: String,
        seg: Segment,
        children: Vec<Child>,
        raw_file: Option<String>,
        /// The writers' pace (`None`: continuous).
        pace: Option<Duration>,
    }

    impl Procs {
        fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let name = format!(
                "shmkit-bench-seqlock-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let seg = Segment::create(&name, 1 << 20).expect("create bench segment");
            Procs {
                name,
                seg,
                children: Vec::new(),
                raw_file: None,
                pace: None,
            }
        }

        fn ctl(&self, what: &str) -> Handle<Counter> {
            self.seg.counter(what).unwrap()
        }

        fn spawn(&mut self, role: &str, words: usize) {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.env(ROLE, role)
                .env(SEG, &self.name)
                .env(WORDS, words.to_string());
            if let Some(f) = &self.raw_file {
                cmd.env(RAW, f);
            }
            if let Some(p) = self.pace {
                cmd.env(PACE, p.as_nanos().to_string());
            }
            self.children.push(cmd.spawn().expect("spawn bench child"));
        }

        /// Waits until `n` children announced themselves.
        fn wait_ready(&self, n: u64) {
            let ready = self.ctl("ready");
            let t = Instant::now();
            while ready.load() < n {
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "bench children did not start"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }

        /// Has the measuring child run `iters` iterations; returns the time it measured.
        fn measure(&self, iters: u64) -> Duration {
            self.ctl("iters").store(iters);
            let epoch = self.ctl("epoch").fetch_add(1) + 1;
            let done = self.ctl("done");
            // Poll by sleeping: the child times itself, and a spinning parent would take a CPU
            // from the writer and the reader (this machine has two).
            while done.load() != epoch {
                std::thread::sleep(Duration::from_micros(100));
            }
            Duration::from_nanos(self.ctl("ns").load())
        }
    }

    impl Drop for Procs {
        fn drop(&mut self) {
            self.ctl("stop").store(1);
            let t = Instant::now();
            for c in &mut self.children {
                while t.elapsed() < Duration::from_secs(2) {
                    if matches!(c.try_wait(), Ok(Some(_))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = Segment::remove(&self.name);
            if let Some(f) = &self.raw_file {
                let _ = std::fs::remove_file(f);
            }
        }
    }

    // ---------- children ----------

    fn child(role: &str) {
        let seg = Segment::open(&std::env::var(SEG).unwrap()).unwrap();
        let words: usize = std::env::var(WORDS).unwrap().parse().unwrap();
        match (role, words) {
            ("writer", 8) => shmkit_writer::<8>(&seg),
            ("writer", 512) => shmkit_writer::<512>(&seg),
            ("reader", 8) => shmkit_reader::<8>(&seg),
            ("reader", 512) => shmkit_reader::<512>(&seg),
            ("readloop", 8) => shmkit_readloop::<8>(&seg),
            ("readloop", 512) => shmkit_readloop::<512>(&seg),
            ("raw-writer", _) => raw::writer(&seg, words),
            ("raw-reader", _) => raw::reader(&seg, words),
            _ => panic!("unknown bench role {role} / {words}"),
        }
    }

    /// Whether every word equals the first (the torn-read check every peer's reader makes). A
    /// branch-free fold, which vectorizes: `all` with its early exit cost about as much as a
    /// 4 KiB seqlock read itself, a floor that hid the differences between the peers.
    #[inline]
    fn uniform(v: &[u64]) -> bool {
        let first = v.first().copied().unwrap_or(0);
        v.iter().fold(0, |acc, &x| acc | (x ^ first)) == 0
    }

    /// Paces a writer: `wait` returns at once when continuous, else spins on the clock until the
    /// next write is due (one write every `every`; a writer that fell behind starts afresh).
    struct Pacer {
        every: Option<Duration>,
        next: Instant,
    }

    impl Pacer {
        fn new(every: Option<Duration>) -> Self {
            Pacer {
                every,
                next: Instant::now(),
            }
        }

        /// The pace a child was started with (`PACE`, nanoseconds).
        fn from_env() -> Self {
            let every = std::env::var(PACE)
                .ok()
                .map(|ns| Duration::from_nanos(ns.parse().expect("pace in ns")));
            Pacer::new(every)
        }

        #[inline]
        fn wait(&mut self) {
            let Some(every) = self.every else { return };
            self.next += every;
            let mut now = Instant::now();
            while now < self.next {
                std::hint::spin_loop();
                now = Instant::now();
            }
            if now > self.next + every {
                self.next = now;
            }
        }
    }

    fn shmkit_writer<const N: usize>(seg: &Segment)
    where
        [u64; N]: bytemuck::Pod,
    {
        let v = seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
        let stop = seg.counter("stop").unwrap();
        let mut w = v.writer();
        let mut pace = Pacer::from_env();
        seg.counter("ready").unwrap().inc();
        let mut k = 0u64;
        while stop.load() == 0 {
            k += 1;
            pace.wait();
            w.write(&[k; N]);
        }
    }

    /// Serves timing commands: waits for a new epoch, runs `body(iters)`, reports the time.
    fn serve(seg: &Segment, mut body: impl FnMut(u64)) {
        let (epoch, iters, done, ns, stop) = (
            seg.counter("epoch").unwrap(),
            seg.counter("iters").unwrap(),
            seg.counter("done").unwrap(),
            seg.counter("ns").unwrap(),
            seg.counter("stop").unwrap(),
        );
        seg.counter("ready").unwrap().inc();
        let mut seen = 0;
        loop {
            let mut idle = 0u32;
            while epoch.load() == seen {
                if stop.load() != 0 {
                    return;
                }
                idle += 1;
                if idle > 1000 {
                    std::thread::sleep(Duration::from_micros(50));
                } else {
                    std::thread::yield_now();
                }
            }
            seen = epoch.load();
            let n = iters.load();
            let t = Instant::now();
            body(n);
            ns.store(t.elapsed().as_nanos() as u64);
            done.store(seen);
        }
    }

    fn shmkit_reader<const N: usize>(seg: &Segment)
    where
        [u64; N]: bytemuck::Pod,
    {
        let v = seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
        serve(seg, |n| {
            for _ in 0..n {
                let x = v.read();
                assert!(uniform(&x), "torn read");
                black_box(x);
            }
        });
    }

    fn shmkit_readloop<const N: usize>(seg: &Segment)
    where
        [u64; N]: bytemuck::Pod,
    {
        let v = seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
        let stop = seg.counter("stop").unwrap();
        seg.counter("ready").unwrap().inc();
        while stop.load() == 0 {
            for _ in 0..64 {
                black_box(v.read());
            }
        }
    }

    // ---------- seqlock-read ----------

    fn read_group<const N: usize>(g: &mut Group<'_>, label: &str, pace: Option<Duration>)
    where
        [u64; N]: bytemuck::Pod,
    {
        {
            let mut p = Procs::new("read");
            p.pace = pace;
            p.seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
            p.spawn("writer", N);
            p.spawn("reader", N);
            p.wait_ready(2);
            g.bench_function(BenchmarkId::new("shmkit-seqlock", label), |b| {
                b.iter_custom(|iters| p.measure(iters))
            });
        }
        threads_peer::<N, _>(
            g,
            "std-rwlock-threads",
            label,
            pace,
            std::sync::RwLock::new([0u64; N]),
            |l, v| *l.write().unwrap() = v,
            |l| *l.read().unwrap(),
        );
        threads_peer::<N, _>(
            g,
            "parking_lot-rwlock-threads",
            label,
            pace,
            parking_lot::RwLock::new([0u64; N]),
            |l, v| *l.write() = v,
            |l| *l.read(),
        );
        raw::bench(g, label, N, pace);
        python_peer(g, label, N, pace);
    }

    /// A writer thread rewrites the value (continuously or paced); the bench thread reads it.
    fn threads_peer<const N: usize, L: Send + Sync + 'static>(
        g: &mut Group<'_>,
        id: &str,
        label: &str,
        pace: Option<Duration>,
        lock: L,
        write: fn(&L, [u64; N]),
        read: fn(&L) -> [u64; N],
    ) {
        let lock = Arc::new(lock);
        let stop = Arc::new(AtomicBool::new(false));
        let w = {
            let (lock, stop) = (lock.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut pace = Pacer::new(pace);
                let mut k = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    k += 1;
                    pace.wait();
                    write(&lock, [k; N]);
                }
            })
        };
        g.bench_function(BenchmarkId::new(id, label), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    let x = read(&lock);
                    assert!(uniform(&x));
                    black_box(x);
                }
                t.elapsed()
            })
        });
        stop.store(true, Ordering::Relaxed);
        w.join().unwrap();
    }

    // ---------- raw_sync: a process-shared pthread rwlock over a shared file mapping ----------

    mod raw {
        use super::*;
        use raw_sync::locks::{LockImpl, LockInit, RwLock};

        /// Offset of the data behind the lock in the mapping.
        const DATA: usize = 256;

        fn map(path: &str, words: usize, create: bool) -> memmap2::MmapMut {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(path)
                .unwrap();
            if create {
                f.set_len((DATA + 8 * words) as u64).unwrap();
            }
            // SAFETY: the file is private to this benchmark (unique name) and keeps its size while
            // mapped; all access to the mapping goes through the pthread lock below.
            unsafe { memmap2::MmapMut::map_mut(&f).unwrap() }
        }

        fn open(m: &mut memmap2::MmapMut) -> Box<dyn LockImpl> {
            let base = m.as_mut_ptr();
            // SAFETY: the parent initialized a process-shared rwlock at `base` (RwLock::new) before
            // starting this child; the data pointer lies inside the mapping.
            unsafe { RwLock::from_existing(base, base.add(DATA)).unwrap().0 }
        }

        pub fn bench(g: &mut Group<'_>, label: &str, words: usize, pace: Option<Duration>) {
            let mut p = Procs::new("raw");
            p.pace = pace;
            let path = format!("/dev/shm/{}-raw", p.name);
            let mut m = map(&path, words, true);
            let base = m.as_mut_ptr();
            assert!(RwLock::size_of(Some(base)) <= DATA);
            // SAFETY: fresh zeroed mapping large enough for the lock (checked) and the data.
            if let Err(e) = unsafe { RwLock::new(base, base.add(DATA)) } {
                println!(
                "raw_sync-rwlock/{label}: skipped, the pthread rwlock failed to initialize: {e}"
            );
                return;
            }
            p.raw_file = Some(path);
            p.spawn("raw-writer", words);
            p.spawn("raw-reader", words);
            p.wait_ready(2);
            g.bench_function(BenchmarkId::new("raw_sync-rwlock", label), |b| {
                b.iter_custom(|iters| p.measure(iters))
            });
            drop(m);
        }

        pub fn writer(seg: &Segment, words: usize) {
            let mut m = map(&std::env::var(RAW).unwrap(), words, false);
            let lock = open(&mut m);
            let stop = seg.counter("stop").unwrap();
            let mut pace = Pacer::from_env();
            seg.counter("ready").unwrap().inc();
            let mut k = 0u64;
            while stop.load() == 0 {
                k += 1;
                pace.wait();
                let g = lock.lock().unwrap();
                let data = (*g).cast::<u64>();
                for i in 0..words {
                    // SAFETY: the write lock is held; `data` points to `words` u64s in the mapping.
                    unsafe { data.add(i).write(k) };
                }
            }
        }

        pub fn reader(seg: &Segment, words: usize) {
            let mut m = map(&std::env::var(RAW).unwrap(), words, false);
            let lock = open(&mut m);
            let mut buf = vec![0u64; words];
            serve(seg, |n| {
                for _ in 0..n {
                    let g = lock.rlock().unwrap();
                    let data = (*g).cast::<u64>();
                    // SAFETY: the read lock is held; `data` points to `words` u64s in the mapping.
                    unsafe { core::ptr::copy_nonoverlapping(data, buf.as_mut_ptr(), words) };
                    drop(g);
                    assert!(uniform(&buf));
                    black_box(&buf);
                }
            });
        }
    }

    // ---------- python3 multiprocessing.Array with its lock ----------

    struct Python {
        child: Child,
        stdin: ChildStdin,
        stdout: BufReader<ChildStdout>,
    }

    impl Drop for Python {
        fn drop(&mut self) {
            let _ = writeln!(self.stdin, "quit");
            let _ = self.stdin.flush();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    fn python_peer(g: &mut Group<'_>, label: &str, words: usize, pace: Option<Duration>) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/python/seqlock_peer.py"
        );
        let child = Command::new("python3")
            .arg(script)
            .arg(words.to_string())
            .arg(pace.map_or(0, |p| p.as_nanos()).to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                println!("python-mp-array-lock/{label}: skipped, cannot run python3: {e}");
                return;
            }
        };
        let mut py = Python {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        };
        let mut line = String::new();
        py.stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "python peer did not start");
        g.bench_function(BenchmarkId::new("python-mp-array-lock", label), |b| {
            b.iter_custom(|iters| {
                writeln!(py.stdin, "{iters}").unwrap();
                py.stdin.flush().unwrap();
                let mut line = String::new();
                py.stdout.read_line(&mut line).unwrap();
                Duration::from_nanos(line.trim().parse().expect("python reports nanoseconds"))
            })
        });
    }

    // ---------- seqlock-write ----------

    fn write_group<const N: usize>(g: &mut Group<'_>, label: &str)
    where
        [u64; N]: bytemuck::Pod,
    {
        for readers in [0usize, 1] {
            let mut p = Procs::new("write");
            let v = p.seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
            for _ in 0..readers {
                p.spawn("readloop", N);
            }
            p.wait_ready(readers as u64);
            let mut w = v.writer();
            let mut k = 0u64;
            let id = if readers == 0 {
                format!("{label}-no-readers")
            } else {
                format!("{label}-{readers}-reader-process")
            };
            g.bench_function(BenchmarkId::new("shmkit-seqlock", id), |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        k += 1;
                        w.write(black_box(&[k; N]));
                    }
                    t.elapsed()
                })
            });
        }
    }
}
