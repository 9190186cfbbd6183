//! What every process of the demo shares: the objects in its segment, the phases that the parent
//! releases, and one clock.

use shmkit::{AtomicValue, Counter, Handle, Mutex, Segment, ShardedCounter};

/// The parent's start flag: the number of the phase the workers may run.
pub const START: &str = "start";
/// Set by the parent to end a timed phase 1 (`--seconds`).
pub const STOP: &str = "stop";
/// Workers that opened the segment and wait at the start flag.
pub const READY: &str = "ready";
/// Phases finished, summed over the workers (n per phase).
pub const DONE: &str = "done";
/// The one `Counter` all workers add to in phase 1.
pub const TOTAL: &str = "total";
/// The `ShardedCounter` of phase 2, a stripe per worker.
pub const SHARDED: &str = "sharded";
/// The slowest batch of phase 1 in any worker, in µs (a running maximum).
pub const SLOWEST: &str = "slowest_batch_us";
/// When the last worker finished each phase (`CLOCK_MONOTONIC`, ns).
pub const FINISHED: [&str; 3] = ["phase1_end_ns", "phase2_end_ns", "phase3_end_ns"];
/// The robust `Mutex<u64>` of phase 3.
pub const LOCKED: &str = "locked_total";
/// Increments done under the Mutex so far, added by each worker after each batch: the parent
/// shows phase 3's progress from it and never takes the lock the workers take.
pub const LOCKED_PROGRESS: &str = "locked_progress";

/// Name of worker `i`'s own counter.
pub fn worker_name(i: u32) -> String {
    format!("worker.{i}")
}

/// The three timed phases of the demo; the number is the value of the start flag.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Every worker adds to the one shared `Counter` (and to its own counter).
    Counter = 1,
    /// Every worker adds as many to its stripe of the `ShardedCounter`.
    Sharded = 2,
    /// Every worker adds as many under the shared robust `Mutex<u64>`.
    Locked = 3,
}

impl Phase {
    /// The phase's name in the progress lines (padded to one width).
    pub fn label(self) -> &'static str {
        match self {
            Phase::Counter => "Counter       ",
            Phase::Sharded => "ShardedCounter",
            Phase::Locked => "Mutex<u64>    ",
        }
    }
}

/// The objects every process of the demo opens.
pub struct Shared {
    pub start: Handle<AtomicValue<u32>>,
    pub stop: Handle<AtomicValue<u32>>,
    pub ready: Handle<Counter>,
    pub done: Handle<Counter>,
    pub total: Handle<Counter>,
    pub sharded: Handle<ShardedCounter>,
    pub slowest: Handle<AtomicValue<f64>>,
    finished: [Handle<AtomicValue<u64>>; 3],
    pub locked: Handle<Mutex<u64>>,
    pub locked_progress: Handle<Counter>,
}

impl Shared {
    /// Objects in the segment besides the workers' own counters.
    pub const OBJECTS: u32 = 12;

    /// Finds (or, in the parent, creates) the demo's objects.
    pub fn new(seg: &Segment) -> shmkit::Result<Shared> {
        Ok(Shared {
            start: seg.value::<u32>(START, 0)?,
            stop: seg.value::<u32>(STOP, 0)?,
            ready: seg.counter(READY)?,
            done: seg.counter(DONE)?,
            total: seg.counter(TOTAL)?,
            sharded: seg.sharded_counter(SHARDED)?,
            slowest: seg.value::<f64>(SLOWEST, 0.0)?,
            finished: [
                seg.value::<u64>(FINISHED[0], 0)?,
                seg.value::<u64>(FINISHED[1], 0)?,
                seg.value::<u64>(FINISHED[2], 0)?,
            ],
            locked: seg.mutex::<u64>(LOCKED, 0)?,
            locked_progress: seg.counter(LOCKED_PROGRESS)?,
        })
    }

    /// When the last worker finished `phase` (`CLOCK_MONOTONIC`, ns; a running maximum).
    pub fn finished(&self, phase: Phase) -> &AtomicValue<u64> {
        &self.finished[phase as usize - 1]
    }

    /// How far `phase` has come, read without blocking any worker: the counters themselves for
    /// phases 1 and 2, the published progress for phase 3 (never the lock the workers take).
    pub fn progress(&self, phase: Phase) -> u64 {
        match phase {
            Phase::Counter => self.total.load(),
            Phase::Sharded => self.sharded.sum(),
            Phase::Locked => self.locked_progress.load(),
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: one clock for every process on the machine, so the parent
/// can time the work from its start flag to the last worker's finish.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}
