//! `shmkit demo`: N worker processes share counters and values in one named segment.
//!
//! The parent creates the segment and its objects, re-executes its own binary N times as
//! `shmkit __worker`, and releases the workers together with a start flag into three timed
//! phases:
//! 1. each worker adds 1 to the one shared `Counter` and to its own counter, K times (or for a
//!    time);
//! 2. each worker adds as many to its stripe of the `ShardedCounter`;
//! 3. each worker adds as many again under shmkit's robust `Mutex<u64>` (lock, add, unlock).
//!
//! It shows their progress (read without blocking any worker: never through the lock the
//! workers take) and checks that nothing was lost: the sum of the per-worker counters, the
//! `Counter`, the `ShardedCounter` and the `Mutex`'s value must all equal N × K. It then does
//! phase 1's work with a `std::sync::Mutex` in threads of one process, what a single-process
//! program would use, to compare, and removes the segment on every path (also Ctrl-C).
//!
//! - `shared.rs`: the objects every process opens, the phases, the clock;
//! - `worker.rs`: one worker process;
//! - `supervisor.rs`: starting, releasing and watching the workers; cleaning up;
//! - `progress.rs`: the progress lines;
//! - `report.rs`: the totals, their check and the throughput table;
//! - `baseline.rs`: the `std::sync::Mutex` comparison.

/// `println!` that ignores a closed stdout (`shmkit demo | head`): the demo must go on to stop
/// its workers and remove its segment rather than panic.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

mod baseline;
mod progress;
mod report;
mod shared;
mod supervisor;
mod worker;

pub use worker::{worker, WorkerArgs};

use crate::fmt::{self, CmdResult};
use crate::signal;
use progress::Progress;
use report::{Times, Totals};
use shared::{worker_name, Phase, Shared, LOCKED, SHARDED, TOTAL};
use shmkit::{Counter, Handle, Segment, SegmentOptions};
use std::time::Duration;
use supervisor::{Abort, Cleanup, Supervisor};

/// Increments a worker does between two looks at the clock and the stop flag (and, in phase 3,
/// between two updates of the published progress).
const BATCH: u64 = 4096;
/// Default increments per worker: about a second of work on a small machine.
const DEFAULT_INCREMENTS: u64 = 1_000_000;
/// How long workers may take to open the segment before the demo gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Size of the demo's segment.
const SEGMENT_SIZE: u64 = 1 << 20;

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

/// What a run does, from its arguments.
struct Plan {
    /// Worker processes.
    n: u32,
    /// Increments per worker in phase 1; `None`: as many as fit in `seconds`.
    per_worker: Option<u64>,
    /// How long phase 1 runs when `per_worker` is `None`.
    seconds: Option<f64>,
    /// The segment's name in /dev/shm.
    name: String,
}

impl Plan {
    fn new(args: DemoArgs) -> Result<Plan, String> {
        let per_worker = match args.seconds {
            Some(s) if !(s > 0.0 && s <= 3600.0) => {
                return Err(format!("--seconds must be in (0, 3600], got {s}"))
            }
            Some(_) => None,
            None => Some(args.increments.unwrap_or(DEFAULT_INCREMENTS)),
        };
        Ok(Plan {
            n: args.workers,
            per_worker,
            seconds: args.seconds,
            name: args
                .name
                .unwrap_or_else(|| format!("shmkit-demo-{}", std::process::id())),
        })
    }

    /// Phase 1's total, when it is fixed in advance.
    fn expected(&self) -> Option<u64> {
        self.per_worker.map(|k| k.saturating_mul(self.n as u64))
    }

    /// Says what is about to happen.
    fn introduce(&self, seg: &Segment) {
        let (n, name) = (self.n, &self.name);
        let path = seg
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let amount = match self.per_worker {
            Some(k) => format!("{} times", fmt::thousands(k)),
            None => format!("for {} s", self.seconds.unwrap_or_default()),
        };
        say!("shmkit demo: {n} worker processes share segment {name} ({path})");
        say!(
            "  phase 1: each worker adds 1 to the shared Counter \"{TOTAL}\" and to its own Counter \"worker.<i>\", {amount}"
        );
        say!(
            "  phase 2: each worker adds as many to its stripe of the ShardedCounter \"{SHARDED}\""
        );
        say!("  phase 3: each worker adds as many under the robust Mutex<u64> \"{LOCKED}\" (lock, add, unlock)");
        say!("  (look inside from another terminal: shmkit watch {name})");
    }
}

/// `shmkit demo`.
pub fn run(args: DemoArgs) -> CmdResult {
    signal::install();
    let plan = Plan::new(args)?;
    let n = plan.n;
    let seg = SegmentOptions::new()
        .dir_capacity(n + Shared::OBJECTS + 4)
        .create(&plan.name, SEGMENT_SIZE)?;
    // From here on, every way out kills the workers and removes the segment.
    let mut guard = Cleanup {
        seg: seg.clone(),
        children: Vec::new(),
    };
    let shared = Shared::new(&seg)?;
    let mine: Vec<Handle<Counter>> = (0..n)
        .map(|i| seg.counter(&worker_name(i)))
        .collect::<shmkit::Result<_>>()?;
    plan.introduce(&seg);

    let exe = std::env::current_exe().map_err(|e| format!("finding my own executable: {e}"))?;
    supervisor::spawn_workers(&mut guard, &exe, &plan.name, n, plan.per_worker)?;
    let times = match run_phases(&mut guard, &shared, &plan) {
        Ok(t) => t,
        Err(Abort::Interrupted) => {
            drop(guard);
            eprintln!(
                "shmkit: interrupted; workers stopped, segment {} removed",
                plan.name
            );
            return Ok(130);
        }
        Err(Abort::Failed(why)) => return Err(why.into()),
    };
    supervisor::reap_workers(&mut guard)?;

    let totals = Totals::read(&shared, &mine, plan.expected())?;
    let pids: Vec<u32> = guard.children.iter().map(|c| c.id()).collect();
    totals.print(&pids);
    // Phase 1's work with a lock, for comparison: as many increments per thread, or (for
    // --seconds) as long.
    let baseline = match plan.per_worker {
        Some(k) => baseline::mutex_baseline(n, Some(k), None),
        None => baseline::mutex_baseline(n, None, Some(times.counter)),
    };
    totals.print_throughput(&times, baseline);

    drop(guard);
    say!("segment {} removed", plan.name);
    if signal::interrupted() {
        return Ok(130);
    }
    Ok(if totals.exact() { 0 } else { 1 })
}

/// Waits for the workers, then runs the three phases; phases 2 and 3 repeat as many increments
/// as phase 1 did.
fn run_phases(guard: &mut Cleanup, shared: &Shared, plan: &Plan) -> Result<Times, Abort> {
    let mut sup = Supervisor {
        guard,
        shared,
        n: plan.n,
    };
    sup.wait_ready()?;
    let counter = sup.phase(Progress {
        phase: Phase::Counter,
        expected: plan.expected(),
        run_for: plan.seconds.map(Duration::from_secs_f64),
    })?;
    let done = Some(shared.total.load());
    let sharded = sup.phase(Progress {
        phase: Phase::Sharded,
        expected: done,
        run_for: None,
    })?;
    let locked = sup.phase(Progress {
        phase: Phase::Locked,
        expected: done,
        run_for: None,
    })?;
    Ok(Times {
        counter,
        sharded,
        locked,
    })
}
