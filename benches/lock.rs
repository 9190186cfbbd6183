//! Locks compared: shmkit's robust futex mutex against parking_lot, std, a process-shared robust
//! pthread mutex, raw_sync and Python's `multiprocessing.Lock`.
//!
//! - `lock-uncontended`: one thread locks, increments a `u64`, unlocks.
//! - `lock-contended`: two sides increment the same `u64` under the lock, each `iters` times; the
//!   time reported per iteration is the wall time until both finished, divided by `iters`.
//!   Process-capable locks (shmkit, pthread, raw_sync, Python) run in two processes (this bench
//!   binary re-executed with `SHMKIT_LOCK_BENCH_ROLE`); in-process locks (parking_lot, std) in
//!   two threads. `shmkit-mutex-threads` is shmkit's lock (in a segment) between two threads,
//!   run exactly as parking_lot and std are: the like-for-like peer of their figures. Both sides
//!   start at a shared start flag; the timer runs from the flag to the moment the second side
//!   reports done.
//!
//! Run: `cargo bench --bench lock` (smoke: `-- --warm-up-time 1 --measurement-time 2`).

// Under `--features loom` the library's atomics are loom's, which only work inside a model: the
// bench is then an empty program.
#[cfg(feature = "loom")]
fn main() {}

#[cfg(not(feature = "loom"))]
fn main() {
    bench::main()
}

#[cfg(not(feature = "loom"))]
mod bench {
    use criterion::{BenchmarkId, Criterion};
    use std::hint::black_box;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    const ROLE: &str = "SHMKIT_LOCK_BENCH_ROLE";
    const NAME: &str = "SHMKIT_LOCK_BENCH_NAME";
    const ITERS: &str = "SHMKIT_LOCK_BENCH_ITERS";
    const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/python/mp_lock.py");

    pub fn main() {
        if let Ok(role) = std::env::var(ROLE) {
            child(&role);
            return;
        }
        let mut c = Criterion::default().configure_from_args();
        uncontended(&mut c);
        contended(&mut c);
        c.final_summary();
    }

    // ---------------------------------------------------------------------------------------------
    // Shared region for the pthread and raw_sync peers: a /dev/shm file with the lock at 0, the
    // protected counter at 256 and the start/ready/done flags after it.

    const LOCK_OFF: usize = 0;
    const DATA_OFF: usize = 256;
    const READY_OFF: usize = 320;
    const GO_OFF: usize = 384;
    const DONE_OFF: usize = 448;
    const REGION: u64 = 4096;

    struct Region {
        map: memmap2::MmapRaw,
        path: Option<std::path::PathBuf>,
    }

    impl Region {
        fn create(tag: &str) -> Region {
            let path = std::path::PathBuf::from(format!(
                "/dev/shm/shmkit-bench-{tag}-{}",
                std::process::id()
            ));
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .expect("create bench region");
            f.set_len(REGION).unwrap();
            let map = memmap2::MmapRaw::map_raw(&f).unwrap();
            Region {
                map,
                path: Some(path),
            }
        }

        fn open(path: &str) -> Region {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .expect("open bench region");
            Region {
                map: memmap2::MmapRaw::map_raw(&f).unwrap(),
                path: None,
            }
        }

        fn at(&self, off: usize) -> *mut u8 {
            // SAFETY: every offset used is below REGION, the mapping's size.
            unsafe { self.map.as_mut_ptr().add(off) }
        }

        fn flag(&self, off: usize) -> &AtomicU32 {
            // SAFETY: in bounds, 4-aligned (page-aligned base, offsets multiples of 64), shared
            // memory accessed only atomically at these offsets.
            unsafe { &*(self.at(off) as *const AtomicU32) }
        }

        fn name(&self) -> String {
            self.path.as_ref().unwrap().display().to_string()
        }
    }

    impl Drop for Region {
        fn drop(&mut self) {
            if let Some(p) = &self.path {
                let _ = std::fs::remove_file(p);
            }
        }
    }

    /// A process-shared, robust pthread mutex in shared memory.
    struct PthreadMutex(*mut libc::pthread_mutex_t);

    impl PthreadMutex {
        /// # Safety
        /// `p` points to shared memory for a pthread_mutex_t that outlives the value.
        unsafe fn init(p: *mut u8) -> PthreadMutex {
            let m = p as *mut libc::pthread_mutex_t;
            // SAFETY: attr is initialized before use and destroyed after; m is valid per contract.
            unsafe {
                let mut attr: libc::pthread_mutexattr_t = core::mem::zeroed();
                assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
                assert_eq!(
                    libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
                    0
                );
                assert_eq!(
                    libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
                    0
                );
                assert_eq!(libc::pthread_mutex_init(m, &attr), 0);
                libc::pthread_mutexattr_destroy(&mut attr);
            }
            PthreadMutex(m)
        }

        #[inline]
        fn with(&self, f: impl FnOnce()) {
            // SAFETY: the mutex was initialized by `init` (here or in the parent process).
            unsafe {
                let r = libc::pthread_mutex_lock(self.0);
                if r == libc::EOWNERDEAD {
                    libc::pthread_mutex_consistent(self.0);
                } else {
                    assert_eq!(r, 0);
                }
                f();
                libc::pthread_mutex_unlock(self.0);
            }
        }
    }

    /// Adds one to the plain u64 at `p` (called under a lock).
    #[inline]
    fn bump(p: *mut u8) {
        // SAFETY: callers hold the lock that protects the aligned u64 at p.
        unsafe {
            let p = p as *mut u64;
            p.write_volatile(p.read_volatile() + 1);
        }
    }

    fn raw_sync_mutex(r: &Region, existing: bool) -> Box<dyn raw_sync::locks::LockImpl> {
        use raw_sync::locks::{LockInit, Mutex};
        // SAFETY: the region outlives the lock; the lock area (256 bytes) is larger than a
        // pthread_mutex_t; the data pointer is the protected counter.
        let res = unsafe {
            if existing {
                Mutex::from_existing(r.at(LOCK_OFF), r.at(DATA_OFF))
            } else {
                Mutex::new(r.at(LOCK_OFF), r.at(DATA_OFF))
            }
        };
        res.expect("raw_sync mutex").0
    }

    // ---------------------------------------------------------------------------------------------
    // Child processes.

    fn child(role: &str) {
        let name = std::env::var(NAME).unwrap();
        let iters: u64 = std::env::var(ITERS).unwrap().parse().unwrap();
        match role {
            "shmkit" => {
                let seg = shmkit::Segment::open(&name).unwrap();
                let m = seg.mutex("m", 0u64).unwrap();
                let ready = seg.counter("ready").unwrap();
                let go = seg.counter("go").unwrap();
                let done = seg.counter("done").unwrap();
                ready.inc();
                while go.load() == 0 {
                    std::hint::spin_loop();
                }
                for _ in 0..iters {
                    *m.lock().unwrap() += 1;
                }
                done.inc();
            }
            "pthread" | "raw_sync" => {
                let r = Region::open(&name);
                let lock = if role == "raw_sync" {
                    Some(raw_sync_mutex(&r, true))
                } else {
                    None
                };
                let pm = PthreadMutex(r.at(LOCK_OFF) as *mut libc::pthread_mutex_t);
                r.flag(READY_OFF).fetch_add(1, Ordering::SeqCst);
                while r.flag(GO_OFF).load(Ordering::Acquire) == 0 {
                    std::hint::spin_loop();
                }
                for _ in 0..iters {
                    match &lock {
                        Some(l) => {
                            let g = l.lock().unwrap();
                            bump(*g);
                        }
                        None => pm.with(|| bump(r.at(DATA_OFF))),
                    }
                }
                r.flag(DONE_OFF).fetch_add(1, Ordering::SeqCst);
            }
            other => panic!("unknown role {other}"),
        }
    }

    fn spawn_child(role: &str, name: &str, iters: u64) -> std::process::Child {
        Command::new(std::env::current_exe().unwrap())
            .env(ROLE, role)
            .env(NAME, name)
            .env(ITERS, iters.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn bench child")
    }

    /// Runs the Python script; returns the time it measured (ns on its last stdout line).
    fn python(mode: &str, iters: u64) -> Option<Duration> {
        let out = Command::new("python3")
            .args([PY, mode, &iters.to_string()])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8_lossy(&out.stdout);
        let ns: u64 = s.lines().last()?.trim().parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    fn python_available() -> bool {
        let ok = python("uncontended", 10).is_some();
        if !ok {
            eprintln!("skipping python-mp-lock: python3 with multiprocessing did not run {PY}");
        }
        ok
    }

    // ---------------------------------------------------------------------------------------------

    fn uncontended(c: &mut Criterion) {
        let mut g = c.benchmark_group("lock-uncontended");

        let seg_name = format!("shmkit-bench-lock-u-{}", std::process::id());
        let seg = shmkit::Segment::create(&seg_name, 1 << 16).unwrap();
        let m = seg.mutex("m", 0u64).unwrap();
        g.bench_function("shmkit-mutex", |b| {
            b.iter(|| {
                *m.lock().unwrap() += 1;
            })
        });
        black_box(*m.lock().unwrap());
        drop(m);
        let _ = seg.unlink();
        // The same lock on the heap: tells the cost of the shared mapping apart from the algorithm.
        let hm = shmkit::Mutex::new(0u64);
        g.bench_function("shmkit-mutex-heap", |b| {
            b.iter(|| {
                *hm.lock().unwrap() += 1;
            })
        });

        let pl = parking_lot::Mutex::new(0u64);
        g.bench_function("parking_lot-mutex", |b| b.iter(|| *pl.lock() += 1));

        let sm = std::sync::Mutex::new(0u64);
        g.bench_function("std-mutex", |b| b.iter(|| *sm.lock().unwrap() += 1));

        let r = Region::create("pthread-u");
        // SAFETY: the region is shared memory that outlives `pm`.
        let pm = unsafe { PthreadMutex::init(r.at(LOCK_OFF)) };
        g.bench_function("pthread-robust-mutex", |b| {
            b.iter(|| pm.with(|| bump(r.at(DATA_OFF))))
        });
        drop(r);

        let r = Region::create("rawsync-u");
        let l = raw_sync_mutex(&r, false);
        g.bench_function("raw_sync-mutex", |b| {
            b.iter(|| {
                let guard = l.lock().unwrap();
                bump(*guard);
            })
        });
        drop(l);
        drop(r);

        if python_available() {
            g.sample_size(10);
            g.bench_function("python-mp-lock", |b| {
                b.iter_custom(|iters| python("uncontended", iters).expect("python run"))
            });
        }
        g.finish();
    }

    /// Times `iters` increments on each of two sides: `mine` runs here once `start` is set; `done`
    /// says when the other side finished.
    fn timed(
        iters: u64,
        go: impl FnOnce(),
        mut mine: impl FnMut(),
        other_done: impl Fn() -> bool,
    ) -> Duration {
        let t = Instant::now();
        go();
        for _ in 0..iters {
            mine();
        }
        while !other_done() {
            std::hint::spin_loop();
        }
        t.elapsed()
    }

    /// Times `iters` calls of `inc` on each of two threads of this process (see [`timed`]).
    fn two_threads(iters: u64, inc: impl Fn() + Sync) -> Duration {
        let go = AtomicU32::new(0);
        let done = AtomicU32::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                while go.load(Ordering::Acquire) == 0 {
                    std::hint::spin_loop();
                }
                for _ in 0..iters {
                    inc();
                }
                done.store(1, Ordering::Release);
            });
            timed(
                iters,
                || go.store(1, Ordering::Release),
                &inc,
                || done.load(Ordering::Acquire) == 1,
            )
        })
    }

    fn contended(c: &mut Criterion) {
        let mut g = c.benchmark_group("lock-contended");
        g.sample_size(20);

        g.bench_function(BenchmarkId::from_parameter("shmkit-mutex"), |b| {
            b.iter_custom(|iters| {
                static N: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "shmkit-bench-lock-c-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                let seg = shmkit::Segment::create(&name, 1 << 16).unwrap();
                let m = seg.mutex("m", 0u64).unwrap();
                let (ready, go, done) = (
                    seg.counter("ready").unwrap(),
                    seg.counter("go").unwrap(),
                    seg.counter("done").unwrap(),
                );
                let mut child = spawn_child("shmkit", &name, iters);
                while ready.load() == 0 {
                    std::thread::yield_now();
                }
                let d = timed(
                    iters,
                    || go.store(1),
                    || *m.lock().unwrap() += 1,
                    || done.load() == 1,
                );
                assert!(child.wait().unwrap().success());
                assert_eq!(*m.lock().unwrap(), 2 * iters);
                let _ = seg.unlink();
                d
            })
        });

        for peer in ["pthread-robust-mutex", "raw_sync-mutex"] {
            g.bench_function(BenchmarkId::from_parameter(peer), |b| {
                b.iter_custom(|iters| {
                    let r = Region::create("c");
                    let role = if peer == "raw_sync-mutex" {
                        "raw_sync"
                    } else {
                        "pthread"
                    };
                    let rs = (role == "raw_sync").then(|| raw_sync_mutex(&r, false));
                    let pm = if rs.is_none() {
                        // SAFETY: the region is shared memory that outlives `pm`.
                        unsafe { PthreadMutex::init(r.at(LOCK_OFF)) }
                    } else {
                        PthreadMutex(r.at(LOCK_OFF) as *mut libc::pthread_mutex_t)
                    };
                    let mut child = spawn_child(role, &r.name(), iters);
                    while r.flag(READY_OFF).load(Ordering::SeqCst) == 0 {
                        std::thread::yield_now();
                    }
                    let d = timed(
                        iters,
                        || r.flag(GO_OFF).store(1, Ordering::Release),
                        || match &rs {
                            Some(l) => {
                                let guard = l.lock().unwrap();
                                bump(*guard);
                            }
                            None => pm.with(|| bump(r.at(DATA_OFF))),
                        },
                        || r.flag(DONE_OFF).load(Ordering::Acquire) == 1,
                    );
                    assert!(child.wait().unwrap().success());
                    drop(rs);
                    d
                })
            });
        }

        // shmkit between two threads, run as parking_lot and std are below.
        let seg_name = format!("shmkit-bench-lock-t-{}", std::process::id());
        let seg = shmkit::Segment::create(&seg_name, 1 << 16).unwrap();
        let m = seg.mutex("m", 0u64).unwrap();
        g.bench_function(BenchmarkId::from_parameter("shmkit-mutex-threads"), |b| {
            b.iter_custom(|iters| two_threads(iters, || *m.lock().unwrap() += 1))
        });
        drop(m);
        let _ = seg.unlink();

        let pl = parking_lot::Mutex::new(0u64);
        let sm = std::sync::Mutex::new(0u64);
        g.bench_function(BenchmarkId::from_parameter("parking_lot-mutex"), |b| {
            b.iter_custom(|iters| two_threads(iters, || *pl.lock() += 1))
        });
        g.bench_function(BenchmarkId::from_parameter("std-mutex"), |b| {
            b.iter_custom(|iters| two_threads(iters, || *sm.lock().unwrap() += 1))
        });

        if python_available() {
            g.sample_size(10);
            g.bench_function(BenchmarkId::from_parameter("python-mp-lock"), |b| {
                b.iter_custom(|iters| python("contended", iters).expect("python run"))
            });
        }
        g.finish();
    }
}
