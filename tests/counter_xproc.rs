//! Counters and atomic values shared by real processes (children re-exec this test binary).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TIMEOUT};
use shmkit::{Segment, SegmentOptions};
use std::time::Instant;

const SIZE: u64 = 1 << 20;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            // args: counter name, times. Increments one at a time.
            "inc" => {
                let c = seg.counter(ctx.arg_str(0)).unwrap();
                for _ in 0..ctx.arg::<u64>(1) {
                    c.inc();
                }
            }
            // Waits at the gate, then fetch_add(1) once and marks the value it saw in a bitmap:
            // every increment must see a different previous value (no lost update).
            "race_one" => {
                let c = seg.counter("hits").unwrap();
                let words = [
                    seg.value::<u64>("seen.0", 0).unwrap(),
                    seg.value::<u64>("seen.1", 0).unwrap(),
                ];
                let gate = Gate::new(&seg);
                gate.arrive_and_wait();
                let before = c.fetch_add(1);
                assert!(before < 128, "previous value {before} out of range");
                let bit = 1u64 << (before % 64);
                let old = words[(before / 64) as usize]
                    .fetch_update(|w| Some(w | bit))
                    .unwrap();
                assert_eq!(old & bit, 0, "two increments saw the same value {before}");
            }
            // args: "counter" | "sharded", n. Waits at the gate, then adds 1 n times.
            "hammer" => {
                let n: u64 = ctx.arg(1);
                let gate = Gate::new(&seg);
                match ctx.arg_str(0) {
                    "counter" => {
                        let c = seg.counter("hammered").unwrap();
                        gate.arrive_and_wait();
                        for _ in 0..n {
                            c.add(1);
                        }
                    }
                    "sharded" => {
                        let c = seg.sharded_counter("hammered").unwrap();
                        gate.arrive_and_wait();
                        for _ in 0..n {
                            c.add(1);
                        }
                    }
                    other => panic!("unknown counter kind {other}"),
                }
            }
            // args: value. Stores an f64.
            "store_f64" => {
                seg.value::<f64>("temp", 0.0).unwrap().store(ctx.arg(0));
            }
            other => panic!("unknown role {other}"),
        }
    });
}

#[test]
fn child_increments_ten_times_parent_reads_ten() {
    let g = SegGuard::new("inc10");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let c = seg.counter("hits").unwrap();
    let mut kids = Children::new();
    kids.spawn("inc", g.name(), &[&"hits", &10]);
    kids.wait_all(TIMEOUT);
    assert_eq!(c.load(), 10);
}

/// `n` processes released together each `fetch_add(1)` once: the total is exactly `n` and the
/// `n` previous values are exactly 0..n (each increment saw a distinct value).
fn race_one(test: &str, n: u64) {
    let g = SegGuard::new(test);
    let seg = SegmentOptions::new()
        .dir_capacity(16)
        .create(g.name(), SIZE)
        .unwrap();
    let hits = seg.counter("hits").unwrap();
    let seen = [
        seg.value::<u64>("seen.0", 0).unwrap(),
        seg.value::<u64>("seen.1", 0).unwrap(),
    ];
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    for _ in 0..n {
        kids.spawn("race_one", g.name(), &[]);
    }
    gate.release(n, TIMEOUT, &mut kids);
    kids.wait_all(TIMEOUT);
    assert_eq!(hits.load(), n, "lost or duplicated updates");
    let mask = |k: u64| -> u64 {
        let bits = n.saturating_sub(k * 64).min(64);
        if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        }
    };
    assert_eq!(seen[0].load(), mask(0), "previous values seen (0..64)");
    assert_eq!(seen[1].load(), mask(1), "previous values seen (64..128)");
}

#[test]
fn ten_processes_add_one_each() {
    race_one("race10", 10);
}

#[test]
fn ninety_nine_processes_add_one_each_exactly() {
    race_one("race99", 99);
}

/// 8 processes × 1,000,000 adds on one object of `kind`, released together.
fn hammer(kind: &str) {
    const PROCS: u64 = 8;
    const ADDS: u64 = 1_000_000;
    let g = SegGuard::new(&format!("hammer-{kind}"));
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let read = match kind {
        "counter" => {
            let c = seg.counter("hammered").unwrap();
            Box::new(move || c.load()) as Box<dyn Fn() -> u64>
        }
        _ => {
            let c = seg.sharded_counter("hammered").unwrap();
            Box::new(move || c.sum())
        }
    };
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    for _ in 0..PROCS {
        kids.spawn("hammer", g.name(), &[&kind, &ADDS]);
    }
    gate.release(PROCS, TIMEOUT, &mut kids);
    let t = Instant::now();
    kids.wait_all(TIMEOUT);
    eprintln!(
        "{kind}: {PROCS} processes x {ADDS} adds in {:?}",
        t.elapsed()
    );
    assert_eq!(read(), PROCS * ADDS);
}

#[test]
fn eight_processes_million_adds_counter() {
    hammer("counter");
}

#[test]
fn eight_processes_million_adds_sharded_counter() {
    hammer("sharded");
}

#[test]
fn child_stores_f64_parent_reads() {
    let g = SegGuard::new("f64");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let v = seg.value::<f64>("temp", 0.0).unwrap();
    let mut kids = Children::new();
    kids.spawn("store_f64", g.name(), &[&-273.15f64]);
    kids.wait_all(TIMEOUT);
    assert_eq!(v.load(), -273.15);
    assert_eq!(v.load().to_bits(), (-273.15f64).to_bits());
}
