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
//! - `seqlock-read`, ids `64B-2-readers` and `4KiB-2-readers`: the many-readers case a seqlock is
//!   for. Two readers (one timed, one reading continuously next to it) while a writer rewrites
//!   the value every 100 µs, *sleeping* in between so that the two readers have the two CPUs of
//!   this machine. A lock's readers write the lock word, so two of them bounce its cache line
//!   between the cores; a seqlock's readers write nothing.
//! - `seqlock-write`: the writer's throughput, alone and with one reader reading continuously
//!   (`shmkit-seqlock` and `raw_sync-rwlock` in processes, the RwLocks in threads): a seqlock
//!   writer never waits for readers, a lock's writer waits for every reader to leave.
//!   `shmkit-seqlock` writes through a held `Writer`; `shmkit-seqlock-lock-per-write` takes and
//!   releases the (uncontended) writer lock around every write (`SeqLock::write`).
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
#[path = "common/python_peer.rs"]
mod python_peer;

#[cfg(not(feature = "loom"))]
mod bench {
    use super::python_peer::PythonPeer;
    use criterion::{BenchmarkId, Criterion};
    use shmkit::{Counter, Handle, Segment};
    use std::hint::black_box;
    use std::process::{Child, Command};
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    const ROLE: &str = "SHMKIT_BENCH_SEQLOCK_ROLE";
    const SEG: &str = "SHMKIT_BENCH_SEQLOCK_SEG";
    const WORDS: &str = "SHMKIT_BENCH_SEQLOCK_WORDS";
    const RAW: &str = "SHMKIT_BENCH_SEQLOCK_RAW";
    const PACE: &str = "SHMKIT_BENCH_SEQLOCK_PACE";

    /// The realistic writer rate of the paced `seqlock-read` cases.
    const PACED: Pace = Pace::Spin(Duration::from_micros(10));
    /// The writer of the two-reader cases: it sleeps between writes, leaving both CPUs to the
    /// readers.
    const SLEEPY: Pace = Pace::Sleep(Duration::from_micros(100));

    /// How a writer paces its writes.
    #[derive(Clone, Copy, Debug)]
    enum Pace {
        /// As fast as it can.
        Continuous,
        /// One write per period, spinning on the clock in between (keeps its CPU).
        Spin(Duration),
        /// A write, then a sleep of the period (gives its CPU away).
        Sleep(Duration),
    }

    impl Pace {
        /// The form passed to a child (`PACE`) and to the Python peer.
        fn encode(self) -> String {
            match self {
                Pace::Continuous => "0".into(),
                Pace::Spin(d) => d.as_nanos().to_string(),
                Pace::Sleep(d) => format!("sleep:{}", d.as_nanos()),
            }
        }

        fn decode(s: &str) -> Self {
            let ns = |x: &str| Duration::from_nanos(x.parse().expect("pace in ns"));
            match s.strip_prefix("sleep:") {
                Some(x) => Pace::Sleep(ns(x)),
                None if s == "0" => Pace::Continuous,
                None => Pace::Spin(ns(s)),
            }
        }
    }

    pub fn main() {
        if let Ok(role) = std::env::var(ROLE) {
            child(&role);
            return;
        }
        let mut c = Criterion::default().configure_from_args();
        {
            let mut g = c.benchmark_group("seqlock-read");
            read_group::<8>(&mut g, "64B", Pace::Continuous, 1);
            read_group::<512>(&mut g, "4KiB", Pace::Continuous, 1);
            read_group::<8>(&mut g, "64B-write-every-10us", PACED, 1);
            read_group::<512>(&mut g, "4KiB-write-every-10us", PACED, 1);
            read_group::<8>(&mut g, "64B-2-readers", SLEEPY, 2);
            read_group::<512>(&mut g, "4KiB-2-readers", SLEEPY, 2);
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
        /// The writers' pace.
        pace: Pace,
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
                pace: Pace::Continuous,
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
            cmd.env(PACE, self.pace.encode());
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
            ("raw-readloop", _) => raw::readloop(&seg, words),
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

    /// Paces a writer: `wait` returns at once when continuous, spins on the clock until the next
    /// write is due (one write every period; a writer that fell behind starts afresh), or sleeps
    /// for the period.
    struct Pacer {
        pace: Pace,
        next: Instant,
    }

    impl Pacer {
        fn new(pace: Pace) -> Self {
            Pacer {
                pace,
                next: Instant::now(),
            }
        }

        /// The pace a child was started with (`PACE`).
        fn from_env() -> Self {
            Pacer::new(Pace::decode(&std::env::var(PACE).expect("pace")))
        }

        #[inline]
        fn wait(&mut self) {
            let every = match self.pace {
                Pace::Continuous => return,
                Pace::Sleep(d) => return std::thread::sleep(d),
                Pace::Spin(d) => d,
            };
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
        let mut w = v.writer().unwrap();
        let mut pace = Pacer::from_env();
        seg.counter("ready").unwrap().inc();
        let mut k = 0u64;
        while stop.load() == 0 {
            k += 1;
            pace.wait();
            w.write(&[k; N]).unwrap();
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
                check(v.read());
            }
        });
    }

    /// What every peer's reader does with a snapshot: checks it is not torn, and keeps it.
    #[inline]
    fn check<const N: usize>(x: [u64; N]) {
        assert!(uniform(&x), "torn read");
        black_box(x);
    }

    /// Runs `read` (one snapshot, checked) until the `stop` control word is set: the reader that
    /// runs next to the timed one, or against the timed writer.
    fn read_until_stopped(seg: &Segment, mut read: impl FnMut()) {
        let stop = seg.counter("stop").unwrap();
        seg.counter("ready").unwrap().inc();
        while stop.load() == 0 {
            for _ in 0..64 {
                read();
            }
        }
    }

    fn shmkit_readloop<const N: usize>(seg: &Segment)
    where
        [u64; N]: bytemuck::Pod,
    {
        let v = seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
        read_until_stopped(seg, || check(v.read()));
    }

    // ---------- seqlock-read ----------

    /// One `seqlock-read` case for every peer: a writer at `pace`, `readers` readers of which the
    /// first is timed.
    fn read_group<const N: usize>(g: &mut Group<'_>, label: &str, pace: Pace, readers: usize)
    where
        [u64; N]: bytemuck::Pod,
    {
        {
            let mut p = Procs::new("read");
            p.pace = pace;
            p.seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
            p.spawn("writer", N);
            p.spawn("reader", N);
            for _ in 1..readers {
                p.spawn("readloop", N);
            }
            p.wait_ready(1 + readers as u64);
            g.bench_function(BenchmarkId::new("shmkit-seqlock", label), |b| {
                b.iter_custom(|iters| p.measure(iters))
            });
        }
        threads_peer::<N, _>(
            g,
            "std-rwlock-threads",
            label,
            (pace, readers),
            std::sync::RwLock::new([0u64; N]),
            |l, v| *l.write().unwrap() = v,
            |l| *l.read().unwrap(),
        );
        threads_peer::<N, _>(
            g,
            "parking_lot-rwlock-threads",
            label,
            (pace, readers),
            parking_lot::RwLock::new([0u64; N]),
            |l, v| *l.write() = v,
            |l| *l.read(),
        );
        raw::bench(g, label, N, pace, readers);
        python_peer(g, label, N, pace, readers);
    }

    /// Background threads, stopped and joined on drop.
    struct Threads {
        stop: Arc<AtomicBool>,
        handles: Vec<std::thread::JoinHandle<()>>,
    }

    impl Threads {
        fn new() -> Self {
            Threads {
                stop: Arc::new(AtomicBool::new(false)),
                handles: Vec::new(),
            }
        }

        /// Runs `f` over and over on a new thread until dropped.
        fn spawn(&mut self, mut f: impl FnMut() + Send + 'static) {
            let stop = self.stop.clone();
            self.handles.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    f();
                }
            }));
        }
    }

    impl Drop for Threads {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
        }
    }

    /// A writer thread rewrites the value at `pace`, `readers − 1` threads read it
    /// continuously, and the bench thread reads it.
    fn threads_peer<const N: usize, L: Send + Sync + 'static>(
        g: &mut Group<'_>,
        id: &str,
        label: &str,
        (pace, readers): (Pace, usize),
        lock: L,
        write: fn(&L, [u64; N]),
        read: fn(&L) -> [u64; N],
    ) {
        let lock = Arc::new(lock);
        let mut bg = Threads::new();
        {
            let (lock, mut pace, mut k) = (lock.clone(), Pacer::new(pace), 0u64);
            bg.spawn(move || {
                k += 1;
                pace.wait();
                write(&lock, [k; N]);
            });
        }
        for _ in 1..readers {
            let lock = lock.clone();
            bg.spawn(move || check(read(&lock)));
        }
        g.bench_function(BenchmarkId::new(id, label), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    check(read(&lock));
                }
                t.elapsed()
            })
        });
    }

    /// The writer's side for a lock peer in threads: the bench thread writes, `readers` threads
    /// read continuously.
    fn threads_write_peer<const N: usize, L: Send + Sync + 'static>(
        g: &mut Group<'_>,
        id: &str,
        label: &str,
        readers: usize,
        lock: L,
        write: fn(&L, [u64; N]),
        read: fn(&L) -> [u64; N],
    ) {
        let lock = Arc::new(lock);
        let mut bg = Threads::new();
        for _ in 0..readers {
            let lock = lock.clone();
            bg.spawn(move || check(read(&lock)));
        }
        let mut k = 0u64;
        g.bench_function(BenchmarkId::new(id, label), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    k += 1;
                    write(&lock, black_box([k; N]));
                }
                t.elapsed()
            })
        });
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

        /// A fresh mapping with an initialized process-shared rwlock, its control segment and
        /// the lock's handle in this process; `None` (with a message) when the lock cannot be
        /// initialized here.
        fn setup(
            label: &str,
            words: usize,
        ) -> Option<(Procs, memmap2::MmapMut, Box<dyn LockImpl>)> {
            let mut p = Procs::new("raw");
            let path = format!("/dev/shm/{}-raw", p.name);
            let mut m = map(&path, words, true);
            p.raw_file = Some(path);
            let base = m.as_mut_ptr();
            assert!(RwLock::size_of(Some(base)) <= DATA);
            // SAFETY: fresh zeroed mapping large enough for the lock (checked) and the data.
            match unsafe { RwLock::new(base, base.add(DATA)) } {
                Ok((lock, _)) => Some((p, m, lock)),
                Err(e) => {
                    println!("raw_sync-rwlock/{label}: skipped, the pthread rwlock failed to initialize: {e}");
                    None
                }
            }
        }

        pub fn bench(g: &mut Group<'_>, label: &str, words: usize, pace: Pace, readers: usize) {
            let Some((mut p, m, lock)) = setup(label, words) else {
                return;
            };
            p.pace = pace;
            p.spawn("raw-writer", words);
            p.spawn("raw-reader", words);
            for _ in 1..readers {
                p.spawn("raw-readloop", words);
            }
            p.wait_ready(1 + readers as u64);
            g.bench_function(BenchmarkId::new("raw_sync-rwlock", label), |b| {
                b.iter_custom(|iters| p.measure(iters))
            });
            drop(p);
            drop((lock, m));
        }

        /// The writer's throughput: this process writes, `readers` reader processes read
        /// continuously.
        pub fn write_bench(g: &mut Group<'_>, id: &str, words: usize, readers: usize) {
            let Some((mut p, m, lock)) = setup(id, words) else {
                return;
            };
            for _ in 0..readers {
                p.spawn("raw-readloop", words);
            }
            p.wait_ready(readers as u64);
            let mut k = 0u64;
            g.bench_function(BenchmarkId::new("raw_sync-rwlock", id), |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    for _ in 0..iters {
                        k += 1;
                        write(&*lock, words, black_box(k));
                    }
                    t.elapsed()
                })
            });
            drop(p);
            drop((lock, m));
        }

        /// Fills the data with `k` under the write lock.
        #[inline]
        fn write(lock: &dyn LockImpl, words: usize, k: u64) {
            let g = lock.lock().unwrap();
            let data = (*g).cast::<u64>();
            for i in 0..words {
                // SAFETY: the write lock is held; `data` points to `words` u64s in the mapping.
                unsafe { data.add(i).write(k) };
            }
        }

        /// Copies the data out under the read lock and checks it.
        #[inline]
        fn read(lock: &dyn LockImpl, buf: &mut [u64]) {
            let g = lock.rlock().unwrap();
            let data = (*g).cast::<u64>();
            // SAFETY: the read lock is held; `data` points to `buf.len()` u64s in the mapping.
            unsafe { core::ptr::copy_nonoverlapping(data, buf.as_mut_ptr(), buf.len()) };
            drop(g);
            assert!(uniform(buf), "torn read");
            black_box(&buf);
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
                write(&*lock, words, k);
            }
        }

        pub fn reader(seg: &Segment, words: usize) {
            let mut m = map(&std::env::var(RAW).unwrap(), words, false);
            let lock = open(&mut m);
            let mut buf = vec![0u64; words];
            serve(seg, |n| {
                for _ in 0..n {
                    read(&*lock, &mut buf);
                }
            });
        }

        pub fn readloop(seg: &Segment, words: usize) {
            let mut m = map(&std::env::var(RAW).unwrap(), words, false);
            let lock = open(&mut m);
            let mut buf = vec![0u64; words];
            read_until_stopped(seg, || read(&*lock, &mut buf));
        }
    }

    // ---------- python3 multiprocessing.Array with its lock ----------

    fn python_peer(g: &mut Group<'_>, label: &str, words: usize, pace: Pace, readers: usize) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/python/seqlock_peer.py"
        );
        let args = [words.to_string(), pace.encode(), readers.to_string()];
        let peer = format!("python-mp-array-lock/{label}");
        let Some(mut py) = PythonPeer::start(&peer, script, &args) else {
            return;
        };
        g.bench_function(BenchmarkId::new("python-mp-array-lock", label), |b| {
            b.iter_custom(|iters| py.run(iters))
        });
    }

    // ---------- seqlock-write ----------

    fn write_group<const N: usize>(g: &mut Group<'_>, label: &str)
    where
        [u64; N]: bytemuck::Pod,
    {
        for readers in [0usize, 1] {
            let id = if readers == 0 {
                format!("{label}-no-readers")
            } else {
                format!("{label}-{readers}-reader")
            };
            {
                let mut p = Procs::new("write");
                let v = p.seg.seqlock::<[u64; N]>("v", [0; N]).unwrap();
                for _ in 0..readers {
                    p.spawn("readloop", N);
                }
                p.wait_ready(readers as u64);
                let mut k = 0u64;
                // The writer lock taken and released around every write (uncontended).
                g.bench_function(
                    BenchmarkId::new("shmkit-seqlock-lock-per-write", &id),
                    |b| {
                        b.iter_custom(|iters| {
                            let t = Instant::now();
                            for _ in 0..iters {
                                k += 1;
                                v.write(black_box(&[k; N])).unwrap();
                            }
                            t.elapsed()
                        })
                    },
                );
                let mut w = v.writer().unwrap();
                g.bench_function(BenchmarkId::new("shmkit-seqlock", &id), |b| {
                    b.iter_custom(|iters| {
                        let t = Instant::now();
                        for _ in 0..iters {
                            k += 1;
                            w.write(black_box(&[k; N])).unwrap();
                        }
                        t.elapsed()
                    })
                });
            }
            threads_write_peer::<N, _>(
                g,
                "std-rwlock-threads",
                &id,
                readers,
                std::sync::RwLock::new([0u64; N]),
                |l, v| *l.write().unwrap() = v,
                |l| *l.read().unwrap(),
            );
            threads_write_peer::<N, _>(
                g,
                "parking_lot-rwlock-threads",
                &id,
                readers,
                parking_lot::RwLock::new([0u64; N]),
                |l, v| *l.write() = v,
                |l| *l.read(),
            );
            raw::write_bench(g, &id, N, readers);
        }
    }
}
