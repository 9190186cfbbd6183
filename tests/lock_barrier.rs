//! The barrier across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Barrier, Error, Segment};
use std::time::{Duration, Instant};

const PARTIES: u64 = 8;
const GENERATIONS: u64 = 100;

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        "barrier_party" => barrier_party(&ctx.open()),
        "barrier_survivor" => barrier_survivor(&ctx.open()),
        "barrier_victim" => barrier_victim(&ctx.open()),
        other => panic!("unknown role {other}"),
    });
}

fn barrier_party(seg: &Segment) {
    let b = seg.barrier("b", PARTIES as u32).unwrap();
    let arrivals = seg.counter("arrivals").unwrap();
    let leaders = seg.counter("leaders").unwrap();
    for gen in 0..GENERATIONS {
        arrivals.inc();
        if b.wait_timeout(Duration::from_secs(30)).unwrap() {
            leaders.inc();
        }
        // Nobody leaves generation `gen` before all parties arrived in it.
        assert!(
            arrivals.load() >= PARTIES * (gen + 1),
            "left generation {gen} early"
        );
    }
}

#[test]
fn barrier_of_eight_processes_for_a_hundred_generations() {
    let guard = SegGuard::new("barrier8");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let b = seg.barrier("b", PARTIES as u32).unwrap();
    let leaders = seg.counter("leaders").unwrap();
    let mut kids = Children::new();
    for _ in 0..PARTIES {
        kids.spawn("barrier_party", guard.name(), &[]);
    }
    let t = Instant::now();
    kids.wait_all(Duration::from_secs(120));
    eprintln!(
        "{PARTIES} processes x {GENERATIONS} generations: {:?}",
        t.elapsed()
    );
    assert_eq!(leaders.load(), GENERATIONS, "one leader per generation");
    assert_eq!(u64::from(b.generation()), GENERATIONS);
    assert!(!b.is_broken());
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "b")
        .unwrap();
    assert_eq!(
        shmkit::inspect::state(&seg, &entry).unwrap().to_string(),
        format!("generation {GENERATIONS}, 0/{PARTIES} arrived")
    );
}

fn barrier_survivor(seg: &Segment) {
    let b = seg.barrier("b", 3).unwrap();
    b.wait_timeout(Duration::from_secs(30)).unwrap();
    seg.counter("first").unwrap().inc();
    let t = Instant::now();
    match b.wait_timeout(Duration::from_secs(30)) {
        Err(Error::BarrierBroken { parties: 3 }) => {}
        other => panic!("expected BarrierBroken, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    seg.counter("broken_seen").unwrap().inc();
}

fn barrier_victim(seg: &Segment) {
    let b = seg.barrier("b", 3).unwrap();
    b.wait_timeout(Duration::from_secs(30)).unwrap();
    seg.counter("first").unwrap().inc();
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed");
}

#[test]
fn a_dead_party_breaks_the_barrier() {
    let guard = SegGuard::new("barrierdead");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let b = seg.barrier("b", 3).unwrap();
    let first = seg.counter("first").unwrap();
    let seen = seg.counter("broken_seen").unwrap();
    let mut victim = Children::new();
    let v = victim.spawn("barrier_victim", guard.name(), &[]);
    let mut survivors = Children::new();
    survivors.spawn("barrier_survivor", guard.name(), &[]);
    survivors.spawn("barrier_survivor", guard.name(), &[]);
    common::wait_until("the parties to meet", Duration::from_secs(30), || {
        first.load() >= 3 && b.arrived() >= 2
    });
    victim.kill(v);
    survivors.wait_all(Duration::from_secs(5));
    assert_eq!(seen.load(), 2);
    assert!(b.is_broken());
    assert!(matches!(b.wait(), Err(Error::BarrierBroken { .. })));
    b.reset().unwrap();
    assert!(!b.is_broken());
}

#[test]
fn timeout_breaks_and_try_wait() {
    let b = Barrier::new(2);
    assert!(matches!(b.try_wait(), Err(Error::WouldBlock { .. })));
    assert_eq!(b.arrived(), 0, "a failed try_wait does not count");
    let t = Instant::now();
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(20)),
        Err(Error::BarrierBroken { parties: 2 })
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert!(b.is_broken());
    b.reset().unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(|| b.wait().unwrap());
        while b.arrived() == 0 {
            std::thread::yield_now();
        }
        assert!(b.try_wait().unwrap(), "completing arrival leads");
        assert!(!h.join().unwrap());
    });
}
