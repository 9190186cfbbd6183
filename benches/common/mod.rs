//! Shared machinery for benchmarks whose workers are separate processes (or threads): persistent
//! worker pools, a start barrier in shared memory, and per-worker timing on the system-wide
//! monotonic clock. Written for `benches/counter.rs` and meant for the seqlock, ring and lock
//! benches too.
//!
//! # The protocol
//!
//! Spawning two processes costs about a millisecond, far more than the work of one criterion
//! sample, so the workers are spawned once per benchmark id and kept alive across iterations. The
//! parent and its workers share a [`Control`] block (a small `/dev/shm` file mapped with memmap2
//! for processes, a heap allocation for threads). One *round* (one `iter_custom` call) goes:
//!
//! 1. the parent writes each worker's element count into its slot, bumps `cmd` to the round number
//!    and wakes the workers (futex), then sleeps on `done` — it does not spin, so on a small
//!    machine it takes no CPU away from the workers;
//! 2. each worker reads its count and arrives at the start barrier (`arrived` reaches
//!    `round × workers`), spinning there so that all workers leave it within nanoseconds;
//! 3. each worker reads `CLOCK_MONOTONIC`, does its work, reads the clock again, stores both
//!    instants in its slot and bumps `done`;
//! 4. the parent returns `max(end) − min(start)`: from the first worker starting to the last one
//!    finishing. Spawning, waking and the barrier lie outside the timed region; the timed region
//!    holds only the workers' own loops.
//!
//! The bench then checks the result of the round (e.g. that a counter holds exactly the number of
//! increments) before it hands the duration to criterion.
//!
//! # Using it in a new bench
//!
//! ```ignore
//! mod common;
//! use common::{ProcessPool, Worker};
//!
//! fn main() {
//!     // Children: the bench binary re-executes itself with the role in the environment.
//!     // This must come before criterion parses the command line.
//!     if let Some(worker) = Worker::from_env() {
//!         let seg = shmkit::Segment::open(&worker.env("SEG")).unwrap();
//!         let c = seg.counter("c").unwrap();
//!         match worker.role() {
//!             "my-role" => worker.serve(|n| (0..n).for_each(|_| c.inc())),
//!             other => panic!("unknown role {other}"),
//!         }
//!         return;
//!     }
//!     // Parent: one pool per bench id, created lazily inside the bench closure.
//!     let mut pool = ProcessPool::spawn("my-role", 2, &[("SEG", &name)]);
//!     let elapsed = pool.run_split(iters); // one round, `iters` split over the workers
//! }
//! ```
//!
//! [`ThreadPool`] runs the same protocol with threads, so in-process baselines are timed the
//! same way. [`SharedFile`] maps a `/dev/shm` file directly (no shmkit types), for raw baselines.
//! Everything is cleaned up on drop: workers are told to quit, then killed if they do not, and
//! reaped; files are removed. Workers exit by themselves when their parent dies.

// Not every bench uses every helper.
#![allow(dead_code)]

use crossbeam_utils::CachePadded;
use memmap2::{MmapOptions, MmapRaw};
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Most workers a [`Control`] block has slots for.
pub const MAX_WORKERS: usize = 16;

const ENV_ROLE: &str = "SHMKIT_BENCH_ROLE";
const ENV_CONTROL: &str = "SHMKIT_BENCH_CONTROL";
const ENV_INDEX: &str = "SHMKIT_BENCH_WORKER";
const ENV_WORKERS: &str = "SHMKIT_BENCH_WORKERS";
const QUIT: u32 = u32::MAX;
/// How long a pool waits for its workers to attach before giving up.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(30);

/// A name no other bench run or test uses: `shmkit-bench-<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "shmkit-bench-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Nanoseconds on `CLOCK_MONOTONIC`, the same clock in every process of the machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps while `*word == expected`, at most `timeout`: shmkit's own shared futex wait (this
/// module is compiled only without the `loom` feature, where its atomics are core's).
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    shmkit::sync::futex_wait(word, expected, Some(timeout));
}

/// Wakes every sleeper on `word`.
fn futex_wake_all(word: &AtomicU32) {
    shmkit::sync::futex_wake(word, u32::MAX);
}

/// What a worker's part of a round counts as in the round's time.
pub enum Span {
    /// Its whole work call, on the clock around it (what [`Worker::serve`] uses).
    Wall,
    /// Nanoseconds the worker measured itself (e.g. only the timed parts of a loop that also
    /// pauses): its span is its start plus this.
    Measured(u64),
    /// Not timed: the round's time comes from the other workers (e.g. an echoing peer).
    Untimed,
}

/// One worker's part of a round.
#[repr(C)]
struct Slot {
    /// Elements to process in this round (written by the parent before `cmd`).
    count: AtomicU64,
    /// `CLOCK_MONOTONIC` ns when the worker left the start barrier.
    start: AtomicU64,
    /// `CLOCK_MONOTONIC` ns when it finished its work.
    end: AtomicU64,
}

/// The block a parent and its workers share. All atomics: valid for any bytes, so a zero-filled
/// mapping is a fresh block.
#[repr(C)]
pub struct Control {
    /// The current round number (1, 2, …), or [`QUIT`]. Futex word the workers sleep on.
    cmd: CachePadded<AtomicU32>,
    /// Start barrier: arrivals so far; round `r` opens when it reaches `r × workers`.
    arrived: CachePadded<AtomicU32>,
    /// Completions so far; round `r` is over at `r × workers`. Futex word the parent sleeps on.
    done: CachePadded<AtomicU32>,
    /// Workers ready to serve (set up their own state). Futex word.
    attached: CachePadded<AtomicU32>,
    slots: [CachePadded<Slot>; MAX_WORKERS],
}

static_assertions::const_assert!(std::mem::size_of::<Control>() <= 4096);

impl Control {
    fn new() -> Self {
        // SAFETY: Control is made only of atomics, for which all-zero bytes are valid values.
        unsafe { std::mem::zeroed() }
    }

    /// Parent: runs round `round` with `counts[i]` elements for worker `i`; sleeps (no spinning)
    /// until every worker is done, calling `check` every 100 ms so a dead worker is reported
    /// instead of waited on forever. Returns first start to last end.
    fn run_round(&self, round: u32, counts: &[u64], mut check: impl FnMut()) -> Duration {
        let workers = counts.len() as u32;
        for (slot, &n) in self.slots.iter().zip(counts) {
            slot.count.store(n, Ordering::Relaxed);
        }
        self.cmd.store(round, Ordering::Release);
        futex_wake_all(&self.cmd);
        let target = round * workers;
        loop {
            let d = self.done.load(Ordering::Acquire);
            if d >= target {
                break;
            }
            futex_wait(&self.done, d, Duration::from_millis(100));
            check();
        }
        let slots = &self.slots[..counts.len()];
        let start = slots
            .iter()
            .map(|s| s.start.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        let end = slots
            .iter()
            .map(|s| s.end.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0);
        Duration::from_nanos(end.saturating_sub(start))
    }

    /// Parent: waits until `workers` workers attached, calling `check` every 100 ms.
    fn wait_attached(&self, workers: u32, mut check: impl FnMut()) {
        let deadline = Instant::now() + ATTACH_TIMEOUT;
        loop {
            let a = self.attached.load(Ordering::Acquire);
            if a >= workers {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "bench workers did not start within {ATTACH_TIMEOUT:?} ({a} of {workers} attached)"
            );
            futex_wait(&self.attached, a, Duration::from_millis(100));
            check();
        }
    }

    /// Worker `index` of `workers`: announces itself, then serves rounds until told to quit or
    /// until `parent_alive` says the parent is gone.
    fn serve(
        &self,
        index: usize,
        workers: u32,
        mut work: impl FnMut(u64) -> Span,
        parent_alive: impl Fn() -> bool,
    ) {
        assert!(index < MAX_WORKERS && (index as u32) < workers);
        self.attached.fetch_add(1, Ordering::Release);
        futex_wake_all(&self.attached);
        let mut last = 0;
        loop {
            let round = loop {
                let c = self.cmd.load(Ordering::Acquire);
                if c != last {
                    break c;
                }
                futex_wait(&self.cmd, c, Duration::from_secs(1));
                if !parent_alive() {
                    return;
                }
            };
            if round == QUIT {
                return;
            }
            last = round;
            let slot = &self.slots[index];
            let n = slot.count.load(Ordering::Relaxed);

            // Start barrier: spin (the parent sleeps meanwhile), yielding after a while in case
            // a worker is not on a CPU yet.
            self.arrived.fetch_add(1, Ordering::AcqRel);
            let target = round * workers;
            let mut spins = 0u32;
            while self.arrived.load(Ordering::Acquire) < target {
                spins = spins.wrapping_add(1);
                if spins < 1 << 12 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                    // A peer that never arrives (it died): leave when the pool quits or the
                    // parent is gone rather than spin forever.
                    if spins % 1024 == 0
                        && (self.cmd.load(Ordering::Acquire) == QUIT || !parent_alive())
                    {
                        return;
                    }
                }
            }

            let start = now_ns();
            let span = work(n);
            let end = now_ns();
            let (start, end) = match span {
                Span::Wall => (start, end),
                Span::Measured(ns) => (start, start + ns),
                // Left out of the round's min(start)/max(end).
                Span::Untimed => (u64::MAX, 0),
            };
            slot.start.store(start, Ordering::Relaxed);
            slot.end.store(end, Ordering::Relaxed);
            self.done.fetch_add(1, Ordering::Release);
            futex_wake_all(&self.done);
        }
    }

    fn quit(&self) {
        self.cmd.store(QUIT, Ordering::Release);
        futex_wake_all(&self.cmd);
    }
}

/// Splits `total` elements over `workers` as evenly as possible (the first ones take the rest).
pub fn split(total: u64, workers: usize) -> Vec<u64> {
    let w = workers as u64;
    (0..w)
        .map(|i| total / w + u64::from(i < total % w))
        .collect()
}

/// A `/dev/shm` file mapped shared with memmap2 (no shmkit types involved). The creator removes
/// the file on drop; the mapping stays valid until dropped.
pub struct SharedFile {
    map: MmapRaw,
    path: PathBuf,
    owner: bool,
}

impl SharedFile {
    /// Creates `/dev/shm/<unique_name(tag)>` of `len` bytes (mode 0600, zero-filled) and maps it.
    pub fn create(tag: &str, len: usize) -> SharedFile {
        let path = Path::new("/dev/shm").join(unique_name(tag));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        if let Err(e) = file.set_len(len as u64) {
            let _ = std::fs::remove_file(&path);
            panic!("sizing {}: {e}", path.display());
        }
        SharedFile {
            map: map_file(&file, len, &path),
            path,
            owner: true,
        }
    }

    /// Maps the existing file at `path` (made by [`SharedFile::create`] in another process).
    pub fn open(path: impl AsRef<Path>) -> SharedFile {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let len = file.metadata().map(|m| m.len()).unwrap_or(0) as usize;
        SharedFile {
            map: map_file(&file, len, &path),
            path,
            owner: false,
        }
    }

    /// The file's path, to hand to workers.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file now (mappings stay valid). Idempotent.
    pub fn unlink(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
            self.owner = false;
        }
    }

    /// The `T` at byte `offset`.
    ///
    /// # Safety
    /// `T` must be made only of atomics (valid for any bytes, shared access through `&`), and no
    /// other type may be placed over the same bytes.
    pub unsafe fn get<T>(&self, offset: usize) -> &T {
        assert!(offset % std::mem::align_of::<T>() == 0, "misaligned offset");
        assert!(
            offset + std::mem::size_of::<T>() <= self.map.len(),
            "offset out of the mapping"
        );
        // SAFETY: in bounds and aligned (checked above; the map is page-aligned); valid for any
        // bytes and only accessed through atomics (caller's contract); lives as long as &self.
        unsafe { &*self.map.as_mut_ptr().add(offset).cast::<T>() }
    }
}

fn map_file(file: &std::fs::File, len: usize, path: &Path) -> MmapRaw {
    MmapOptions::new()
        .len(len)
        .map_raw(file)
        .unwrap_or_else(|e| panic!("mapping {}: {e}", path.display()))
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        self.unlink();
    }
}

/// Worker processes re-executed from the current binary, kept alive across rounds.
pub struct ProcessPool {
    control: SharedFile,
    children: Vec<Child>,
    round: u32,
}

impl ProcessPool {
    /// Spawns `workers` copies of this executable with role `role` and the extra environment
    /// `env`, and waits until each has set itself up and called [`Worker::serve`].
    pub fn spawn(role: &str, workers: usize, env: &[(&str, &str)]) -> ProcessPool {
        assert!((1..=MAX_WORKERS).contains(&workers));
        let exe = std::env::current_exe().expect("path of the bench executable");
        // Dropped on any panic below: the pool's Drop stops and reaps the children spawned so
        // far, the file's Drop removes it.
        let mut pool = ProcessPool {
            control: SharedFile::create("control", std::mem::size_of::<Control>()),
            children: Vec::with_capacity(workers),
            round: 0,
        };
        for i in 0..workers {
            let child = Command::new(&exe)
                .env(ENV_ROLE, role)
                .env(ENV_CONTROL, pool.control.path())
                .env(ENV_INDEX, i.to_string())
                .env(ENV_WORKERS, workers.to_string())
                .envs(env.iter().copied())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawning bench worker {exe:?}: {e}"));
            pool.children.push(child);
        }
        // SAFETY: Control is all atomics and the only type placed in this mapping.
        let ctl = unsafe { pool.control.get::<Control>(0) };
        let children = &mut pool.children;
        ctl.wait_attached(workers as u32, || check_children(children));
        // Everyone has it mapped: the name is no longer needed.
        pool.control.unlink();
        pool
    }

    /// The number of workers.
    pub fn workers(&self) -> usize {
        self.children.len()
    }

    /// Runs one round with `counts[i]` elements for worker `i`; returns first start to last end.
    /// Panics if a worker died.
    pub fn run(&mut self, counts: &[u64]) -> Duration {
        assert_eq!(counts.len(), self.children.len());
        self.round += 1;
        // SAFETY: Control is all atomics and the only type placed in this mapping.
        let ctl = unsafe { self.control.get::<Control>(0) };
        let children = &mut self.children;
        ctl.run_round(self.round, counts, || check_children(children))
    }

    /// Runs one round with `total` elements split evenly over the workers.
    pub fn run_split(&mut self, total: u64) -> Duration {
        let counts = split(total, self.children.len());
        self.run(&counts)
    }
}

fn check_children(children: &mut [Child]) {
    for (i, c) in children.iter_mut().enumerate() {
        if let Ok(Some(status)) = c.try_wait() {
            panic!("bench worker {i} (pid {}) exited: {status}", c.id());
        }
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        // SAFETY: Control is all atomics and the only type placed in this mapping.
        unsafe { self.control.get::<Control>(0) }.quit();
        let deadline = Instant::now() + Duration::from_secs(2);
        for c in &mut self.children {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// What a re-executed worker process learns from its environment.
pub struct Worker {
    role: String,
    index: usize,
    workers: u32,
    control: SharedFile,
    parent: libc::pid_t,
}

impl Worker {
    /// `Some` when this process was started by a [`ProcessPool`]; call at the top of `main`,
    /// before criterion looks at the command line.
    pub fn from_env() -> Option<Worker> {
        let role = std::env::var(ENV_ROLE).ok()?;
        let num = |key: &str| -> usize {
            std::env::var(key)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("bench worker: {key} missing or not a number"))
        };
        let control_path = std::env::var(ENV_CONTROL)
            .unwrap_or_else(|_| panic!("bench worker: {ENV_CONTROL} missing"));
        let control = SharedFile::open(control_path);
        assert!(control.map.len() >= std::mem::size_of::<Control>());
        Some(Worker {
            role,
            index: num(ENV_INDEX),
            workers: num(ENV_WORKERS) as u32,
            control,
            // SAFETY: getppid has no preconditions.
            parent: unsafe { libc::getppid() },
        })
    }

    /// The role the parent gave.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// This worker's number, `0..workers`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// A variable the parent passed in `env` of [`ProcessPool::spawn`]; panics if missing.
    pub fn env(&self, key: &str) -> String {
        std::env::var(key).unwrap_or_else(|_| panic!("bench worker: {key} missing"))
    }

    /// Serves rounds: `work(n)` must do exactly `n` elements of work. Returns when the pool is
    /// dropped or the parent died.
    pub fn serve(self, mut work: impl FnMut(u64)) {
        self.serve_timed(move |n| {
            work(n);
            Span::Wall
        });
    }

    /// Like [`Worker::serve`], with `work(n)` saying what its part of the round counts as
    /// (see [`Span`]).
    pub fn serve_timed(self, work: impl FnMut(u64) -> Span) {
        // SAFETY: Control is all atomics and the only type placed in this mapping.
        let ctl = unsafe { self.control.get::<Control>(0) };
        let parent = self.parent;
        // SAFETY: getppid has no preconditions.
        let alive = move || unsafe { libc::getppid() } == parent;
        ctl.serve(self.index, self.workers, work, alive);
    }
}

/// The same protocol as [`ProcessPool`] with threads of this process, for in-process baselines.
pub struct ThreadPool {
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
    round: u32,
}

impl ThreadPool {
    /// Spawns `workers` threads; worker `i` runs `work(i, n)` for `n` elements each round.
    pub fn spawn<F>(workers: usize, work: F) -> ThreadPool
    where
        F: Fn(usize, u64) + Send + Sync + 'static,
    {
        assert!((1..=MAX_WORKERS).contains(&workers));
        let control = Arc::new(Control::new());
        let work = Arc::new(work);
        let threads = (0..workers)
            .map(|i| {
                let (control, work) = (control.clone(), work.clone());
                std::thread::spawn(move || {
                    let work = |n| {
                        work(i, n);
                        Span::Wall
                    };
                    control.serve(i, workers as u32, work, || true)
                })
            })
            .collect::<Vec<_>>();
        let pool = ThreadPool {
            control,
            threads,
            round: 0,
        };
        let threads = &pool.threads;
        pool.control
            .wait_attached(workers as u32, || check_threads(threads));
        pool
    }

    /// Runs one round with `counts[i]` elements for thread `i`; returns first start to last end.
    pub fn run(&mut self, counts: &[u64]) -> Duration {
        assert_eq!(counts.len(), self.threads.len());
        self.round += 1;
        let threads = &self.threads;
        self.control
            .run_round(self.round, counts, || check_threads(threads))
    }

    /// Runs one round with `total` elements split evenly over the threads.
    pub fn run_split(&mut self, total: u64) -> Duration {
        let counts = split(total, self.threads.len());
        self.run(&counts)
    }
}

fn check_threads(threads: &[JoinHandle<()>]) {
    for (i, t) in threads.iter().enumerate() {
        assert!(!t.is_finished(), "bench worker thread {i} stopped");
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.control.quit();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
