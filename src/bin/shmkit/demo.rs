//! `shmkit demo`: N worker processes share counters and values in one named segment.
//!
//! The parent creates the segment and its objects, re-executes its own binary N times as
//! `shmkit __worker`, and releases the workers together with a start flag into two timed phases:
//! 1. each worker adds 1 to the one shared `Counter` and to its own counter, K times (or for a
//!    time);
//! 2. each worker adds as many to its stripe of the `ShardedCounter`;
//! 3. each worker adds as many again under shmkit's robust `Mutex<u64>` (lock, add, unlock).
//!
//! It shows their progress and checks that nothing was lost: the sum of the per-worker counters,
//! the `Counter`, the `ShardedCounter` and the `Mutex`'s value must all equal N × K. It then does
//! phase 1's work with a `std::sync::Mutex` in threads of one process, what a single-process
//! program would use, to compare, and removes the segment on every path (also Ctrl-C).

use crate::fmt::{self, CmdResult};
use crate::signal;
use shmkit::{AtomicValue, Counter, Handle, Mutex, Segment, SegmentOptions, ShardedCounter};
use std::io::{IsTerminal, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// `println!` that ignores a closed stdout (`shmkit demo | head`): the demo must go on to stop
/// its workers and remove its segment rather than panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// Increments a worker does between two looks at the clock and the stop flag.
const BATCH: u64 = 4096;
/// Default increments per worker: about a second of work on a small machine.
const DEFAULT_INCREMENTS: u64 = 1_000_000;
/// How long workers may take to open the segment before the demo gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Size of the demo's segment.
const SEGMENT_SIZE: u64 = 1 << 20;

/// Object names in the demo's segment.
const START: &str = "start";
const STOP: &str = "stop";
const READY: &str = "ready";
const DONE: &str = "done";
const TOTAL: &str = "total";
const SHARDED: &str = "sharded";
const SLOWEST: &str = "slowest_batch_us";
const FINISHED_1: &str = "phase1_end_ns";
const FINISHED_2: &str = "phase2_end_ns";
const FINISHED_3: &str = "phase3_end_ns";
const LOCKED: &str = "locked_total";

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on the machine, so the parent
/// can time the work from its start flag to the last worker's finish.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn worker_name(i: u32) -> String {
    format!("worker.{i}")
}

/// Arguments of `shmkit demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Number of worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: u32,
    /// Increments per worker (default 1,000,000 when --seconds is not given).
    #[arg(long, conflicts_with = "seconds")]
    increments: Option<u64>,
    /// Run for this many seconds instead of a fixed number of increments.
    #[arg(long)]
    seconds: Option<f64>,
    /// Name of the segment to create in /dev/shm (default: shmkit-demo-<pid>).
    #[arg(long)]
    name: Option<String>,
}

/// Arguments of the hidden `shmkit __worker` (one demo worker process).
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// Segment name.
    #[arg(long)]
    name: String,
    /// This worker's number.
    #[arg(long)]
    index: u32,
    /// Increments to do; without it, run until the stop flag is set.
    #[arg(long)]
    increments: Option<u64>,
    /// The demo's pid: the worker exits if its parent is not that process.
    #[arg(long)]
    parent: u32,
}

/// The objects every process of the demo opens.
struct Shared {
    start: Handle<AtomicValue<u32>>,
    stop: Handle<AtomicValue<u32>>,
    ready: Handle<Counter>,
    done: Handle<Counter>,
    total: Handle<Counter>,
    sharded: Handle<ShardedCounter>,
    slowest: Handle<AtomicValue<f64>>,
    finished: [Handle<AtomicValue<u64>>; 3],
    locked: Handle<Mutex<u64>>,
}

impl Shared {
    /// Finds (or, in the parent, creates) the demo's objects.
    fn new(seg: &Segment) -> shmkit::Result<Shared> {
        Ok(Shared {
            start: seg.value::<u32>(START, 0)?,
            stop: seg.value::<u32>(STOP, 0)?,
            ready: seg.counter(READY)?,
            done: seg.counter(DONE)?,
            total: seg.counter(TOTAL)?,
            sharded: seg.sharded_counter(SHARDED)?,
            slowest: seg.value::<f64>(SLOWEST, 0.0)?,
            finished: [
                seg.value::<u64>(FINISHED_1, 0)?,
                seg.value::<u64>(FINISHED_2, 0)?,
                seg.value::<u64>(FINISHED_3, 0)?,
            ],
            locked: seg.mutex::<u64>(LOCKED, 0)?,
        })
    }
}

/// Owns the segment and the workers: dropping it kills and reaps the workers that are still
/// running and removes the segment, whatever path the demo leaves by.
struct Cleanup {
    seg: Segment,
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        let _ = self.seg.unlink();
    }
}

/// How the work phase ended, if not normally.
enum Abort {
    Interrupted,
    Failed(String),
}

/// The three timed phases of the demo.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    /// Every worker adds to the one shared `Counter` (and to its own counter).
    Counter = 1,
    /// Every worker adds as many to its stripe of the `ShardedCounter`.
    Sharded = 2,
    /// Every worker adds as many under the shared robust `Mutex<u64>`.
    Locked = 3,
}

/// `shmkit demo`.
pub fn run(args: DemoArgs) -> CmdResult {
    signal::install();
    let n = args.workers;
    let limit = match args.seconds {
        Some(s) if !(s > 0.0 && s <= 3600.0) => {
            return Err(format!("--seconds must be in (0, 3600], got {s}").into())
        }
        Some(_) => None,
        None => Some(args.increments.unwrap_or(DEFAULT_INCREMENTS)),
    };
    let name = args
        .name
        .unwrap_or_else(|| format!("shmkit-demo-{}", std::process::id()));
    let seg = SegmentOptions::new()
        .dir_capacity(n + 16)
        .create(&name, SEGMENT_SIZE)?;
    // From here on, every way out kills the workers and removes the segment.
    let mut guard = Cleanup {
        seg: seg.clone(),
        children: Vec::new(),
    };
    let shared = Shared::new(&seg)?;
    let mine: Vec<Handle<Counter>> = (0..n)
        .map(|i| seg.counter(&worker_name(i)))
        .collect::<shmkit::Result<_>>()?;

    let path = seg
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let amount = match limit {
        Some(k) => format!("{} times", fmt::thousands(k)),
        None => format!("for {} s", args.seconds.unwrap_or_default()),
    };
    say!("shmkit demo: {n} worker processes share segment {name} ({path})");
    say!(
        "  phase 1: each worker adds 1 to the shared Counter \"{TOTAL}\" and to its own Counter \"worker.<i>\", {amount}"
    );
    say!("  phase 2: each worker adds as many to its stripe of the ShardedCounter \"{SHARDED}\"");
    say!("  phase 3: each worker adds as many under the robust Mutex<u64> \"{LOCKED}\" (lock, add, unlock)");
    say!("  (look inside from another terminal: shmkit watch {name})");

    let exe = std::env::current_exe().map_err(|e| format!("finding my own executable: {e}"))?;
    for i in 0..n {
        let mut cmd = Command::new(&exe);
        cmd.arg("__worker")
            .args(["--name", &name, "--index", &i.to_string()])
            .args(["--parent", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(k) = limit {
            cmd.args(["--increments", &k.to_string()]);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting worker {i} ({}): {e}", exe.display()))?;
        guard.children.push(child);
    }

    let mut sup = Supervisor {
        guard: &mut guard,
        shared: &shared,
        n,
        tty: std::io::stdout().is_terminal(),
    };
    let phases = sup.wait_ready().and_then(|()| {
        let counter_time = sup.phase(Phase::Counter, limit.map(|k| k * n as u64), args.seconds)?;
        let sharded_time = sup.phase(Phase::Sharded, Some(shared.total.load()), None)?;
        let locked_time = sup.phase(Phase::Locked, Some(shared.total.load()), None)?;
        Ok((counter_time, sharded_time, locked_time))
    });
    let (counter_time, sharded_time, locked_time) = match phases {
        Ok(t) => t,
        Err(Abort::Interrupted) => {
            drop(guard);
            eprintln!("shmkit: interrupted; workers stopped, segment {name} removed");
            return Ok(130);
        }
        Err(Abort::Failed(why)) => return Err(why.into()),
    };
    // Reap the workers and make sure each finished its work cleanly.
    for (i, c) in guard.children.iter_mut().enumerate() {
        let status = c
            .wait()
            .map_err(|e| format!("waiting for worker {i}: {e}"))?;
        if !status.success() {
            return Err(format!("worker {i} failed ({})", describe_status(status)).into());
        }
    }

    // The results, read from shared memory.
    let per_worker: Vec<u64> = mine.iter().map(|c| c.load()).collect();
    let sum: u64 = per_worker.iter().sum();
    let total = shared.total.load();
    let sharded = shared.sharded.sum();
    let locked = match shared.locked.lock() {
        Ok(g) => *g,
        Err(e) => return Err(format!("reading the Mutex: {e}").into()),
    };
    say!("\nper worker:");
    for (i, (c, v)) in guard.children.iter().zip(&per_worker).enumerate() {
        say!(
            "  {:<10} pid {:<8} {:>13}",
            worker_name(i as u32),
            c.id(),
            fmt::thousands(*v)
        );
    }
    say!("totals:");
    let expected = limit.map(|k| k * n as u64);
    let mut lines = vec![
        ("sum of the worker counters".to_string(), sum),
        (format!("Counter \"{TOTAL}\""), total),
        (format!("ShardedCounter \"{SHARDED}\""), sharded),
        (format!("Mutex<u64> \"{LOCKED}\""), locked),
    ];
    if let Some(e) = expected {
        lines.push((
            format!("expected {n} x {}", fmt::thousands(e / n as u64)),
            e,
        ));
    }
    let w = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (label, v) in &lines {
        say!("  {label:<w$}  {:>13}", fmt::thousands(*v));
    }
    let exact =
        total == sum && sharded == sum && locked == sum && expected.is_none_or(|e| e == sum);
    if exact {
        say!("check: OK, all totals agree exactly: no increment was lost");
    } else {
        say!("check: MISMATCH, increments were lost or counted twice");
    }
    say!(
        "slowest batch of {} Counter increments in any worker: {:.0} us (an AtomicValue<f64>, a running maximum kept with fetch_update)",
        fmt::thousands(BATCH),
        shared.slowest.load()
    );

    // Phase 1's work with a lock, for comparison: as many increments per thread, or (for
    // --seconds) as long.
    let mutex = match limit {
        Some(k) => mutex_baseline(n, Some(k), None),
        None => mutex_baseline(n, None, Some(counter_time)),
    };
    let plural = |one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let (procs, threads) = (plural("process", "processes"), plural("thread", "threads"));
    say!("\nthroughput of {n} workers (every increment is seen by all processes at once):");
    let ns_per = |count: u64, d: Duration| d.as_secs_f64() * 1e9 / count.max(1) as f64;
    let row = |label: &str, count: u64, d: Duration| {
        let secs = d.as_secs_f64().max(1e-9);
        say!(
            "  {label:<52} {:>13} in {:>7.3} s  {:>10}  {:>7.1} ns/increment",
            fmt::thousands(count),
            secs,
            fmt::rate(count as f64 / secs),
            ns_per(count, d)
        );
    };
    row(
        &format!("shmkit Counter, {procs} (one shared word)"),
        sum,
        counter_time,
    );
    row(
        &format!("shmkit ShardedCounter, {procs} (a stripe each)"),
        sharded,
        sharded_time,
    );
    row(
        &format!("shmkit Mutex<u64>, {procs} (robust lock)"),
        locked,
        locked_time,
    );
    match mutex {
        Some((count, d)) => {
            row(
                &format!("std::sync::Mutex, {threads} in ONE process"),
                count,
                d,
            );
            let m = ns_per(count, d);
            say!(
                "  against the mutex: Counter {:.2}x, ShardedCounter {:.2}x its throughput",
                m / ns_per(sum, counter_time),
                m / ns_per(sharded, sharded_time)
            );
            say!(
                "  (the std::sync::Mutex row is threads of ONE process doing phase 1's work under the lock; it cannot be shared between processes)"
            );
        }
        None => say!("  (mutex comparison skipped: interrupted)"),
    }

    drop(guard);
    say!("segment {name} removed");
    if signal::interrupted() {
        return Ok(130);
    }
    Ok(if exact { 0 } else { 1 })
}

fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// The parent's side of the run: starts the phases and watches the workers.
struct Supervisor<'a> {
    guard: &'a mut Cleanup,
    shared: &'a Shared,
    n: u32,
    tty: bool,
}

impl Supervisor<'_> {
    /// Fails on Ctrl-C or when a worker exited with an error.
    fn check(&mut self) -> Result<(), Abort> {
        if signal::interrupted() {
            return Err(Abort::Interrupted);
        }
        for (i, c) in self.guard.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                if !status.success() {
                    return Err(Abort::Failed(format!(
                        "worker {i} failed ({})",
                        describe_status(status)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits until every worker has opened the segment and waits at the start flag.
    fn wait_ready(&mut self) -> Result<(), Abort> {
        let t = Instant::now();
        while self.shared.ready.load() < self.n as u64 {
            self.check()?;
            if t.elapsed() > READY_TIMEOUT {
                return Err(Abort::Failed(format!(
                    "only {} of {} workers were ready after {READY_TIMEOUT:?}",
                    self.shared.ready.load(),
                    self.n
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Releases all workers into `phase` at once, shows its progress until every worker is
    /// done, and returns the time from the start flag to the last worker's last increment.
    /// `expected` is the phase's total when known; `seconds` stops a timed phase.
    fn phase(
        &mut self,
        phase: Phase,
        expected: Option<u64>,
        seconds: Option<f64>,
    ) -> Result<Duration, Abort> {
        let shared = self.shared;
        let n = self.n as u64;
        let count = || match phase {
            Phase::Counter => shared.total.load(),
            Phase::Sharded => shared.sharded.sum(),
            // Progress of the locked phase: peek without waiting (a busy lock shows the last
            // value seen as 0 rather than stalling the display).
            Phase::Locked => shared.locked.try_lock().map_or(0, |g| *g),
        };
        let label = match phase {
            Phase::Counter => "Counter       ",
            Phase::Sharded => "ShardedCounter",
            Phase::Locked => "Mutex<u64>    ",
        };
        let run_for = seconds.map(Duration::from_secs_f64);
        let progress = |elapsed: Duration, done: bool| -> String {
            let c = count();
            let secs = elapsed.as_secs_f64().max(1e-9);
            let of = match (expected, run_for) {
                (Some(e), _) => format!(
                    " / {} ({:.0}%)",
                    fmt::thousands(e),
                    100.0 * c as f64 / e.max(1) as f64
                ),
                (None, Some(r)) => format!(" (of {:.1} s)", r.as_secs_f64()),
                _ => String::new(),
            };
            format!(
                "  {label}  {} {:>6.2} s  {:>13}{of}  {}",
                if done { "done   " } else { "running" },
                secs,
                fmt::thousands(c),
                fmt::rate(c as f64 / secs)
            )
        };
        let finished = match phase {
            Phase::Counter => &shared.finished[0],
            Phase::Sharded => &shared.finished[1],
            Phase::Locked => &shared.finished[2],
        };
        let t0 = Instant::now();
        let t0_ns = mono_ns();
        shared.start.store(phase as u32);
        let mut last_print = t0;
        let mut out = std::io::stdout();
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let elapsed = t0.elapsed();
            if let Err(e) = self.check() {
                if self.tty {
                    say!();
                }
                return Err(e);
            }
            if run_for.is_some_and(|r| elapsed >= r) && shared.stop.load() == 0 {
                shared.stop.store(1);
            }
            if shared.done.load() >= n * phase as u64 {
                // Precisely: from the start flag to the last worker's last increment.
                let elapsed = Duration::from_nanos(finished.load().saturating_sub(t0_ns));
                let clear = if self.tty { "\r\x1b[2K" } else { "" };
                let _ = writeln!(out, "{clear}{}", progress(elapsed, true));
                let _ = out.flush();
                return Ok(elapsed);
            }
            if self.tty {
                let _ = write!(out, "\r\x1b[2K{}", progress(elapsed, false));
                let _ = out.flush();
            } else if last_print.elapsed() >= Duration::from_millis(500) {
                last_print = Instant::now();
                let _ = writeln!(out, "{}", progress(elapsed, false));
            }
        }
    }
}

/// The demo's work done by `n` threads of this process on one `std::sync::Mutex`: lock, add to
/// the three tallies, unlock; `per_thread` times, or for `run_for`. Returns the number of
/// increments and the time, or `None` if interrupted.
fn mutex_baseline(
    n: u32,
    per_thread: Option<u64>,
    run_for: Option<Duration>,
) -> Option<(u64, Duration)> {
    struct Tally {
        total: u64,
        sharded: u64,
        per_worker: Vec<u64>,
    }
    let m = std::sync::Mutex::new(Tally {
        total: 0,
        sharded: 0,
        per_worker: vec![0; n as usize],
    });
    let barrier = std::sync::Barrier::new(n as usize + 1);
    let t0 = std::thread::scope(|s| {
        for i in 0..n as usize {
            let (m, barrier) = (&m, &barrier);
            s.spawn(move || {
                barrier.wait();
                let start = Instant::now();
                let mut done = 0u64;
                loop {
                    let batch = match per_thread {
                        Some(k) if done >= k => break,
                        Some(k) => BATCH.min(k - done),
                        None => BATCH,
                    };
                    for _ in 0..batch {
                        let mut t = m.lock().unwrap_or_else(|p| p.into_inner());
                        t.total += 1;
                        t.sharded += 1;
                        t.per_worker[i] += 1;
                    }
                    done += batch;
                    if signal::interrupted() || run_for.is_some_and(|r| start.elapsed() >= r) {
                        return;
                    }
                }
            });
        }
        barrier.wait();
        Instant::now()
    });
    let d = t0.elapsed();
    if signal::interrupted() {
        return None;
    }
    let t = m.into_inner().unwrap_or_else(|p| p.into_inner());
    debug_assert!(t.sharded == t.total && t.per_worker.iter().sum::<u64>() == t.total);
    Some((t.total, d))
}

/// `shmkit __worker`: one worker process of the demo.
pub fn worker(args: WorkerArgs) -> CmdResult {
    // Die with the demo: if it is killed, nothing keeps running.
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // SAFETY: getppid has no preconditions and cannot fail.
    if unsafe { libc::getppid() } as u32 != args.parent {
        return Err("the demo that started this worker is gone".into());
    }
    let seg = Segment::open(&args.name)?;
    let shared = Shared::new(&seg)?;
    let mine_handle = seg.open_object::<Counter>(&worker_name(args.index))?;
    let (total, sharded, mine): (&Counter, &ShardedCounter, &Counter) =
        (&shared.total, &shared.sharded, &mine_handle);
    let stripe = args.index as usize;
    shared.ready.inc();

    // Phase 1: the shared Counter (and our own), K times or until the stop flag.
    wait_for_start(&shared, Phase::Counter)?;
    let mut done = 0u64;
    let mut batch_start = Instant::now();
    loop {
        let n = match args.increments {
            Some(k) if done >= k => break,
            Some(k) => BATCH.min(k - done),
            None => BATCH,
        };
        for _ in 0..n {
            total.inc();
            mine.inc();
        }
        done += n;
        let now = Instant::now();
        let us = (now - batch_start).as_secs_f64() * 1e6;
        batch_start = now;
        // A running maximum shared by all workers: a CAS loop that gives up when ours is smaller.
        let _ = shared.slowest.fetch_update(|max| (us > max).then_some(us));
        if args.increments.is_none() && shared.stop.load() != 0 {
            break;
        }
    }
    finish(&shared.finished[0], &shared.done);

    // Phase 2: as many adds to our stripe of the ShardedCounter.
    wait_for_start(&shared, Phase::Sharded)?;
    for _ in 0..done {
        sharded.add_to(stripe, 1);
    }
    finish(&shared.finished[1], &shared.done);

    // Phase 3: as many adds under the robust Mutex, one lock per add.
    wait_for_start(&shared, Phase::Locked)?;
    for _ in 0..done {
        let mut g = shared
            .locked
            .lock()
            .map_err(|e| format!("locking the Mutex: {e}"))?;
        *g += 1;
    }
    finish(&shared.finished[2], &shared.done);
    Ok(0)
}

/// Waits (bounded) until the parent releases `phase`.
fn wait_for_start(shared: &Shared, phase: Phase) -> Result<(), String> {
    // Yield rather than sleep, so that all workers leave together when the flag flips (a
    // sleeping process may take a scheduler tick to wake up on a busy machine).
    let t = Instant::now();
    let mut spins = 0u32;
    while shared.start.load() < phase as u32 {
        spins = spins.wrapping_add(1);
        if spins % 1024 == 0 && t.elapsed() > READY_TIMEOUT {
            return Err(format!("phase {phase:?} was never started"));
        }
        shmkit::sync::yield_now();
    }
    Ok(())
}

/// Records this worker's finishing time (another running maximum: the phase ends with the last
/// worker) and counts it done.
fn finish(finished: &AtomicValue<u64>, done: &Counter) {
    let now = mono_ns();
    let _ = finished.fetch_update(|t| (now > t).then_some(now));
    done.inc();
}
