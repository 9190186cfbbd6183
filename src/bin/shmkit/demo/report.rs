//! What the demo prints at the end: each worker's count, the totals and whether they agree, and
//! the throughput of each phase next to a `std::sync::Mutex` in one process.

use super::shared::{worker_name, Shared, LOCKED, SHARDED, TOTAL};
use super::BATCH;
use crate::fmt;
use shmkit::{Counter, Handle};
use std::time::Duration;

/// How long each phase took, from the start flag to the last worker's last increment.
pub struct Times {
    pub counter: Duration,
    pub sharded: Duration,
    pub locked: Duration,
}

/// The results, read from shared memory once the workers have exited.
pub struct Totals {
    per_worker: Vec<u64>,
    /// The sum of the workers' own counters: what every other total must equal.
    sum: u64,
    total: u64,
    sharded: u64,
    locked: u64,
    expected: Option<u64>,
    slowest_us: f64,
}

impl Totals {
    /// Reads the totals; `expected` is the count the run was asked for, if any.
    pub fn read(
        shared: &Shared,
        mine: &[Handle<Counter>],
        expected: Option<u64>,
    ) -> Result<Totals, String> {
        let per_worker: Vec<u64> = mine.iter().map(|c| c.load()).collect();
        // The workers have exited, so nobody else takes the lock now (bounded all the same).
        let locked = match shared.locked.lock_timeout(Duration::from_secs(5)) {
            Ok(g) => *g,
            Err(e) => return Err(format!("reading the Mutex: {e}")),
        };
        Ok(Totals {
            sum: per_worker.iter().sum(),
            per_worker,
            total: shared.total.load(),
            sharded: shared.sharded.sum(),
            locked,
            expected,
            slowest_us: shared.slowest.load(),
        })
    }

    /// Whether every total equals the sum of the workers' own counters (and the expected count).
    pub fn exact(&self) -> bool {
        let s = self.sum;
        self.total == s
            && self.sharded == s
            && self.locked == s
            && self.expected.is_none_or(|e| e == s)
    }

    /// Prints each worker's count (`pids` in worker order), the totals and the check.
    pub fn print(&self, pids: &[u32]) {
        let n = self.per_worker.len() as u64;
        say!("\nper worker:");
        for (i, (pid, v)) in pids.iter().zip(&self.per_worker).enumerate() {
            say!(
                "  {:<10} pid {:<8} {:>13}",
                worker_name(i as u32),
                pid,
                fmt::thousands(*v)
            );
        }
        say!("totals:");
        let mut lines = vec![
            ("sum of the worker counters".to_string(), self.sum),
            (format!("Counter \"{TOTAL}\""), self.total),
            (format!("ShardedCounter \"{SHARDED}\""), self.sharded),
            (format!("Mutex<u64> \"{LOCKED}\""), self.locked),
        ];
        if let Some(e) = self.expected {
            let each = fmt::thousands(e / n.max(1));
            lines.push((format!("expected {n} x {each}"), e));
        }
        let w = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, v) in &lines {
            say!("  {label:<w$}  {:>13}", fmt::thousands(*v));
        }
        if self.exact() {
            say!("check: OK, all totals agree exactly: no increment was lost");
        } else {
            say!("check: MISMATCH, increments were lost or counted twice");
        }
        say!(
            "slowest batch of {} Counter increments in any worker: {:.0} us (an AtomicValue<f64>, a running maximum kept with fetch_update)",
            fmt::thousands(BATCH),
            self.slowest_us
        );
    }

    /// Prints the throughput of each phase and of `baseline`, phase 1's work under a
    /// `std::sync::Mutex` in threads of one process (`None`: it was skipped).
    pub fn print_throughput(&self, times: &Times, baseline: Option<(u64, Duration)>) {
        let n = self.per_worker.len();
        let plural = |one: &str, many: &str| {
            if n == 1 {
                format!("1 {one}")
            } else {
                format!("{n} {many}")
            }
        };
        let (procs, threads) = (plural("process", "processes"), plural("thread", "threads"));
        say!("\nthroughput of {n} workers (every increment is seen by all processes at once):");
        row(
            &format!("shmkit Counter, {procs} (one shared word)"),
            self.sum,
            times.counter,
        );
        row(
            &format!("shmkit ShardedCounter, {procs} (a stripe each)"),
            self.sharded,
            times.sharded,
        );
        row(
            &format!("shmkit Mutex<u64>, {procs} (robust lock)"),
            self.locked,
            times.locked,
        );
        let Some((count, d)) = baseline else {
            say!("  (mutex comparison skipped: interrupted)");
            return;
        };
        row(
            &format!("std::sync::Mutex, {threads} in ONE process"),
            count,
            d,
        );
        let m = ns_per(count, d);
        say!(
            "  against the mutex: Counter {:.2}x, ShardedCounter {:.2}x its throughput",
            m / ns_per(self.sum, times.counter),
            m / ns_per(self.sharded, times.sharded)
        );
        say!(
            "  (the std::sync::Mutex row is threads of ONE process doing phase 1's work under the lock; it cannot be shared between processes)"
        );
    }
}

/// Nanoseconds per increment.
fn ns_per(count: u64, d: Duration) -> f64 {
    d.as_secs_f64() * 1e9 / count.max(1) as f64
}

/// One row of the throughput table.
fn row(label: &str, count: u64, d: Duration) {
    let secs = d.as_secs_f64().max(1e-9);
    say!(
        "  {label:<52} {:>13} in {:>7.3} s  {:>10}  {:>7.1} ns/increment",
        fmt::thousands(count),
        secs,
        fmt::rate(count as f64 / secs),
        ns_per(count, d)
    );
}
