//! Event and Condvar across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

use shmkit::Segment;
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

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- Event ----

#[test]
fn child_event_waiter() {
    let Some(seg) = child_segment() else { return };
    let e = seg.event("go").unwrap();
    let woke = seg.counter("woke").unwrap();
    seg.counter("ready").unwrap().inc();
    assert!(e.wait_timeout(Duration::from_secs(20)), "never set");
    woke.inc();
}

#[test]
fn event_set_in_one_process_wakes_the_others() {
    let (seg, guard) = segment("event");
    let e = seg.event("go").unwrap();
    let ready = seg.counter("ready").unwrap();
    let woke = seg.counter("woke").unwrap();
    let mut kids = Children::default();
    for _ in 0..4 {
        kids.spawn("child_event_waiter", &guard);
    }
    wait_until("waiters", || ready.load() == 4 && e.waiters() == 4);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(woke.load(), 0, "nobody wakes before set");
    let t = Instant::now();
    e.set();
    kids.wait_all(Duration::from_secs(10));
    assert_eq!(woke.load(), 4);
    eprintln!(
        "4 event waiters in other processes done {:?} after set",
        t.elapsed()
    );
    assert!(e.is_set());
    e.clear();
    assert!(!e.wait_timeout(Duration::from_millis(5)));
}

// ---- Condvar: producer and consumer in different processes ----

const ITEMS: u64 = 2000;

/// The queue state under the mutex: [next to produce, next to consume, slot, full flag].
type Slot = [u64; 4];

#[test]
fn child_condvar_producer() {
    let Some(seg) = child_segment() else { return };
    let m = seg.mutex::<Slot>("q", [0; 4]).unwrap();
    let not_full = seg.condvar("not_full").unwrap();
    let not_empty = seg.condvar("not_empty").unwrap();
    for i in 1..=ITEMS {
        let mut g = not_full
            .wait_while(m.lock().unwrap(), |s| s[3] == 1)
            .unwrap();
        g[2] = i * 7;
        g[3] = 1;
        g[0] = i;
        drop(g);
        not_empty.notify_one();
    }
}

#[test]
fn child_condvar_consumer() {
    let Some(seg) = child_segment() else { return };
    let m = seg.mutex::<Slot>("q", [0; 4]).unwrap();
    let not_full = seg.condvar("not_full").unwrap();
    let not_empty = seg.condvar("not_empty").unwrap();
    let sum = seg.counter("sum").unwrap();
    for i in 1..=ITEMS {
        let (mut g, timed_out) = not_empty
            .wait_while_timeout(m.lock().unwrap(), Duration::from_secs(20), |s| s[3] == 0)
            .unwrap();
        assert!(!timed_out, "producer stalled at item {i}");
        assert_eq!(g[2], i * 7, "items arrive in order, none lost");
        sum.add(g[2]);
        g[3] = 0;
        g[1] = i;
        drop(g);
        not_full.notify_one();
    }
}

#[test]
fn condvar_producer_consumer_across_processes() {
    let (seg, guard) = segment("condvar");
    let m = seg.mutex::<Slot>("q", [0; 4]).unwrap();
    let _ = (
        seg.condvar("not_full").unwrap(),
        seg.condvar("not_empty").unwrap(),
    );
    let sum = seg.counter("sum").unwrap();
    let mut kids = Children::default();
    kids.spawn("child_condvar_consumer", &guard);
    kids.spawn("child_condvar_producer", &guard);
    let t = Instant::now();
    kids.wait_all(Duration::from_secs(60));
    eprintln!(
        "{ITEMS} items through a one-slot condvar queue in {:?}",
        t.elapsed()
    );
    assert_eq!(sum.load(), 7 * ITEMS * (ITEMS + 1) / 2);
    assert_eq!(*m.lock().unwrap(), [ITEMS, ITEMS, ITEMS * 7, 0]);
}

#[test]
fn condvar_wait_timeout_times_out_and_relocks() {
    let (seg, _guard) = segment("cvtimeout");
    let m = seg.mutex("m", 1u32).unwrap();
    let cv = seg.condvar("cv").unwrap();
    let t = Instant::now();
    let (g, timed_out) = cv
        .wait_timeout(m.lock().unwrap(), Duration::from_millis(20))
        .unwrap();
    assert!(timed_out);
    assert!(t.elapsed() >= Duration::from_millis(20));
    assert_eq!(*g, 1);
    assert!(m.state().owner_tid.is_some(), "relocked");
    let gen = cv.generation();
    assert!(!cv.try_wait(gen));
    cv.notify_all();
    assert!(cv.try_wait(gen));
    drop(g);
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "cv")
        .unwrap();
    assert_eq!(
        shmkit::inspect::describe(&seg, &entry).unwrap(),
        "0 waiters, 1 notifies"
    );
}
