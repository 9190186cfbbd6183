//! The barrier across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

use shmkit::{Barrier, Error, Segment};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SEG_VAR: &str = "SHMKIT_LOCK_TEST_SEG";

struct SegGuard(String);
impl Drop for SegGuard {
    fn drop(&mut self) {
        let _ = Segment::remove(&self.0);
    }
}

fn segment(test: &str) -> (Segment, SegGuard) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmkit-test-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    (Segment::create(&name, 1 << 16).unwrap(), SegGuard(name))
}

#[derive(Default)]
struct Children(Vec<Child>);
impl Children {
    fn spawn(&mut self, child_test: &str, seg: &SegGuard) {
        let c = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(SEG_VAR, &seg.0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.0.push(c);
    }
    fn wait_all(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        for (i, c) in self.0.iter_mut().enumerate() {
            loop {
                if let Some(st) = c.try_wait().unwrap() {
                    assert!(st.success(), "child {i} failed: {st}");
                    break;
                }
                assert!(Instant::now() < deadline, "child {i} still running");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}
impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn child_segment() -> Option<Segment> {
    let name = std::env::var(SEG_VAR).ok()?;
    Some(Segment::open(&name).unwrap())
}

const PARTIES: u64 = 8;
const GENERATIONS: u64 = 100;

#[test]
fn child_barrier_party() {
    let Some(seg) = child_segment() else { return };
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
    let (seg, guard) = segment("barrier8");
    let b = seg.barrier("b", PARTIES as u32).unwrap();
    let leaders = seg.counter("leaders").unwrap();
    let mut kids = Children::default();
    for _ in 0..PARTIES {
        kids.spawn("child_barrier_party", &guard);
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
        shmkit::inspect::describe(&seg, &entry).unwrap(),
        format!("generation {GENERATIONS}, 0/{PARTIES} arrived")
    );
}

#[test]
fn child_barrier_survivor() {
    let Some(seg) = child_segment() else { return };
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

#[test]
fn child_barrier_victim() {
    let Some(seg) = child_segment() else { return };
    let b = seg.barrier("b", 3).unwrap();
    b.wait_timeout(Duration::from_secs(30)).unwrap();
    seg.counter("first").unwrap().inc();
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed");
}

#[test]
fn a_dead_party_breaks_the_barrier() {
    let (seg, guard) = segment("barrierdead");
    let b = seg.barrier("b", 3).unwrap();
    let first = seg.counter("first").unwrap();
    let seen = seg.counter("broken_seen").unwrap();
    let mut victim = Children::default();
    victim.spawn("child_barrier_victim", &guard);
    let mut survivors = Children::default();
    survivors.spawn("child_barrier_survivor", &guard);
    survivors.spawn("child_barrier_survivor", &guard);
    let t = Instant::now();
    while first.load() < 3 || b.arrived() < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "parties did not meet"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let v = &mut victim.0[0];
    v.kill().unwrap();
    v.wait().unwrap();
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
