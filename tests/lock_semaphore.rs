//! The semaphore across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

use shmkit::{Error, Segment, Semaphore};
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

const ROUNDS: u64 = 30;

#[test]
fn child_semaphore_user() {
    let Some(seg) = child_segment() else { return };
    let s = seg.bounded_semaphore("s", 3, 3).unwrap();
    let inside = seg.counter("inside").unwrap();
    let most = seg.value::<u64>("most", 0).unwrap();
    for _ in 0..ROUNDS {
        s.acquire().unwrap();
        let n = inside.fetch_add(1) + 1;
        let _ = most.fetch_update(|m| (n > m).then_some(n));
        std::thread::sleep(Duration::from_micros(300));
        inside.fetch_sub(1);
        s.release().unwrap();
    }
}

#[test]
fn semaphore_of_three_never_lets_four_in() {
    let (seg, guard) = segment("sem3");
    let s = seg.bounded_semaphore("s", 3, 3).unwrap();
    let most = seg.value::<u64>("most", 0).unwrap();
    let mut kids = Children::default();
    for _ in 0..8 {
        kids.spawn("child_semaphore_user", &guard);
    }
    kids.wait_all(Duration::from_secs(60));
    let most = most.load();
    eprintln!("most processes inside at once: {most}");
    assert!(most <= 3, "{most} processes were inside a semaphore of 3");
    assert!(most >= 2, "the semaphore let several in at once");
    assert_eq!(s.available(), 3);
    assert!(s.holders().is_empty());
    assert!(matches!(
        s.release(),
        Err(Error::SemaphoreOverRelease { bound: 3 })
    ));
}

#[test]
fn child_take_two_and_hang() {
    let Some(seg) = child_segment() else { return };
    let s = seg.semaphore("s", 2).unwrap();
    s.acquire().unwrap();
    s.acquire().unwrap();
    seg.counter("held").unwrap().inc();
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed");
}

#[test]
fn permits_of_a_killed_process_are_reclaimed() {
    let (seg, guard) = segment("semdead");
    let s = seg.semaphore("s", 2).unwrap();
    let held = seg.counter("held").unwrap();
    let mut kids = Children::default();
    kids.spawn("child_take_two_and_hang", &guard);
    let t = Instant::now();
    while held.load() == 0 {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(s.available(), 0);
    assert_eq!(s.holders().len(), 1);
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "s")
        .unwrap();
    let d = shmkit::inspect::describe(&seg, &entry).unwrap();
    assert!(d.starts_with("0 permits free, held by pid"), "{d}");
    assert!(matches!(s.try_acquire(), Err(Error::WouldBlock { .. })));
    let c = &mut kids.0[0];
    c.kill().unwrap();
    c.wait().unwrap();
    let t = Instant::now();
    s.acquire_timeout(Duration::from_secs(5)).unwrap();
    s.try_acquire().unwrap();
    eprintln!("dead holder's permits reclaimed after {:?}", t.elapsed());
    assert_eq!(s.reclaimed(), 2);
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.available(), 2);
}

#[test]
fn timeouts_and_threads() {
    let s = Semaphore::new(1);
    s.acquire().unwrap();
    let t = Instant::now();
    assert!(matches!(
        s.acquire_timeout(Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
    std::thread::scope(|sc| {
        sc.spawn(|| s.acquire().unwrap());
        std::thread::sleep(Duration::from_millis(5));
        s.release().unwrap();
    });
    assert_eq!(s.available(), 0);
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.available(), 2, "an unbounded semaphore grows");
}
