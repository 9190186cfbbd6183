//! loom models of [`Counter`] and [`ShardedCounter`]: adds from 2–3 threads sum exactly, and a
//! concurrent `reset`/`swap` never loses an add (each add lands in the value taken or in the
//! counter).
//!
//! Run: `cargo test --features loom --test loom_counter` (bounds in `common/mod.rs`;
//! `LOOM_MAX_PREEMPTIONS=3` searches deeper).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::Arc;
use shmkit::sync::{AtomicU64, Ordering};
use shmkit::{Counter, ShardedCounter};

#[test]
fn counter_adds_from_three_threads_sum_exactly() {
    common::model(|| {
        let c = Arc::new(Counter::new(0));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.inc();
                    c.add(2);
                })
            })
            .collect();
        c.add(10);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(c.load(), 16);
    });
}

#[test]
fn counter_fetch_add_hands_out_distinct_values() {
    common::model(|| {
        let c = Arc::new(Counter::new(5));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || c.fetch_add(1))
            })
            .collect();
        let mine = c.fetch_add(1);
        let mut seen: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        seen.push(mine);
        seen.sort_unstable();
        assert_eq!(seen, [5, 6, 7]);
        assert_eq!(c.load(), 8);
    });
}

#[test]
fn counter_add_and_sub_race_to_the_exact_result() {
    common::model(|| {
        let c = Arc::new(Counter::new(1));
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.add(3);
            c2.sub(1);
        });
        c.sub(2); // wraps below zero in some schedules: wrapping arithmetic keeps it exact
        c.add(1);
        t.join().unwrap();
        assert_eq!(c.load(), 2);
    });
}

#[test]
fn counter_reset_loses_no_add() {
    common::model(|| {
        let c = Arc::new(Counter::new(0));
        let adders: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.add(1);
                    c.add(2);
                })
            })
            .collect();
        let taken = c.reset();
        for a in adders {
            a.join().unwrap();
        }
        assert!(taken <= 6, "reset took {taken}, more than was ever added");
        assert_eq!(taken + c.load(), 6, "an add was lost around reset");
    });
}

#[test]
fn counter_swap_loses_no_add() {
    common::model(|| {
        let c = Arc::new(Counter::new(100));
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.add(1);
            c2.add(1);
        });
        let first = c.swap(0);
        let second = c.swap(0);
        t.join().unwrap();
        assert_eq!(first + second + c.load(), 102);
        assert!(first >= 100, "the initial value is taken by the first swap");
    });
}

/// `fetch_add` is acquire-release: whoever reads the count a worker published also sees the
/// data that worker wrote before its add.
#[test]
fn counter_fetch_add_publishes_prior_writes() {
    common::model(|| {
        let c = Arc::new(Counter::new(0));
        let data = Arc::new(AtomicU64::new(0));
        let (c2, d2) = (c.clone(), data.clone());
        let t = thread::spawn(move || {
            d2.store(42, Ordering::Relaxed);
            c2.fetch_add(1);
        });
        if c.load() == 1 {
            assert_eq!(data.load(Ordering::Relaxed), 42);
        }
        t.join().unwrap();
    });
}

#[test]
fn sharded_adds_from_three_threads_sum_exactly() {
    common::model(|| {
        let c = Arc::new(ShardedCounter::new());
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let c = c.clone();
                thread::spawn(move || {
                    c.inc();
                    c.add(2);
                })
            })
            .collect();
        c.add(10);
        c.sub(1);
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(c.sum(), 15);
        assert_eq!(c.stripes().iter().fold(0u64, |a, &s| a.wrapping_add(s)), 15);
    });
}

#[test]
fn sharded_adds_to_one_stripe_sum_exactly() {
    // Two writers forced onto the same stripe (a pid collision across processes): still exact.
    common::model(|| {
        let c = Arc::new(ShardedCounter::new());
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.add_to(7, 1);
            c2.add_to(7 + shmkit::internals::SHARDS, 1);
        });
        c.add_to(7, 5);
        t.join().unwrap();
        assert_eq!(c.sum(), 7);
        assert_eq!(c.stripes()[7], 7);
    });
}

#[test]
fn sharded_sum_during_adds_stays_between_bounds() {
    common::model(|| {
        let c = Arc::new(ShardedCounter::new());
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.add_to(0, 1);
            c2.add_to(1, 1);
        });
        let s = c.sum();
        assert!(s <= 2, "sum {s} exceeds everything ever added");
        t.join().unwrap();
        assert_eq!(c.sum(), 2);
    });
}

#[test]
fn sharded_reset_loses_no_add() {
    common::model(|| {
        let c = Arc::new(ShardedCounter::new());
        let c2 = c.clone();
        let t = thread::spawn(move || {
            c2.add_to(0, 1);
            c2.add_to(3, 2);
        });
        let taken = c.reset();
        t.join().unwrap();
        assert_eq!(taken + c.sum(), 3, "an add was lost around reset");
    });
}
