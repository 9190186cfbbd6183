//! The comparison row: phase 1's work done the way a single-process program would, by threads
//! on one `std::sync::Mutex` (which cannot be shared between processes).

use super::BATCH;
use crate::signal;
use std::time::{Duration, Instant};

/// The demo's work done by `n` threads of this process on one `std::sync::Mutex`: lock, add to
/// the three tallies, unlock; `per_thread` times, or for `run_for`. Returns the number of
/// increments and the time, or `None` if interrupted.
pub fn mutex_baseline(
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
