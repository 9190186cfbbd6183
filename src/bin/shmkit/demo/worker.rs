//! `shmkit __worker`: one worker process of the demo. It opens the segment, reports ready and
//! runs each phase when the parent's start flag releases it.

use super::shared::{mono_ns, worker_name, Phase, Shared};
use super::{BATCH, READY_TIMEOUT};
use crate::fmt::CmdResult;
use shmkit::{AtomicValue, Counter, Segment};
use std::time::Instant;

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

/// `shmkit __worker`.
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
    let mine = seg.open_object::<Counter>(&worker_name(args.index))?;
    shared.ready.inc();

    wait_for_start(&shared, Phase::Counter)?;
    let done = counter_phase(&shared, &mine, args.increments);
    finish(&shared, Phase::Counter);

    wait_for_start(&shared, Phase::Sharded)?;
    for _ in 0..done {
        shared.sharded.add_to(args.index as usize, 1);
    }
    finish(&shared, Phase::Sharded);

    wait_for_start(&shared, Phase::Locked)?;
    locked_phase(&shared, done)?;
    finish(&shared, Phase::Locked);
    Ok(0)
}

/// Phase 1: adds 1 to the shared `Counter` and to our own, `increments` times or until the stop
/// flag; keeps the slowest batch in a shared running maximum. Returns the increments done.
fn counter_phase(shared: &Shared, mine: &Counter, increments: Option<u64>) -> u64 {
    let total: &Counter = &shared.total;
    let mut done = 0u64;
    let mut batch_start = Instant::now();
    loop {
        let n = match increments {
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
        if increments.is_none() && shared.stop.load() != 0 {
            break;
        }
    }
    done
}

/// Phase 3: `count` adds under the robust `Mutex`, one lock per add. After each batch the
/// worker adds it to the progress counter, which the parent reads instead of the lock.
fn locked_phase(shared: &Shared, count: u64) -> Result<(), String> {
    let mut done = 0u64;
    while done < count {
        let n = BATCH.min(count - done);
        for _ in 0..n {
            let mut g = shared
                .locked
                .lock()
                .map_err(|e| format!("locking the Mutex: {e}"))?;
            *g += 1;
        }
        shared.locked_progress.add(n);
        done += n;
    }
    Ok(())
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
        std::thread::yield_now();
    }
    Ok(())
}

/// Records this worker's finishing time of `phase` (a running maximum: the phase ends with the
/// last worker) and counts it done.
fn finish(shared: &Shared, phase: Phase) {
    let finished: &AtomicValue<u64> = shared.finished(phase);
    let now = mono_ns();
    let _ = finished.fetch_update(|t| (now > t).then_some(now));
    shared.done.inc();
}
