//! Event and Condvar across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::Segment;
use std::time::{Duration, Instant};

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        "event_waiter" => event_waiter(&ctx.open()),
        "condvar_producer" => condvar_producer(&ctx.open()),
        "condvar_consumer" => condvar_consumer(&ctx.open()),
        other => panic!("unknown role {other}"),
    });
}

// ---- Event ----

fn event_waiter(seg: &Segment) {
    let e = seg.event("go").unwrap();
    let woke = seg.counter("woke").unwrap();
    seg.counter("ready").unwrap().inc();
    assert!(e.wait_timeout(Duration::from_secs(20)), "never set");
    woke.inc();
}

#[test]
fn event_set_in_one_process_wakes_the_others() {
    let guard = SegGuard::new("event");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let e = seg.event("go").unwrap();
    let ready = seg.counter("ready").unwrap();
    let woke = seg.counter("woke").unwrap();
    let mut kids = Children::new();
    for _ in 0..4 {
        kids.spawn("event_waiter", guard.name(), &[]);
    }
    common::wait_until("waiters", Duration::from_secs(30), || {
        ready.load() == 4 && e.waiters() == 4
    });
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

fn condvar_producer(seg: &Segment) {
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

fn condvar_consumer(seg: &Segment) {
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
    let guard = SegGuard::new("condvar");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let m = seg.mutex::<Slot>("q", [0; 4]).unwrap();
    let _ = (
        seg.condvar("not_full").unwrap(),
        seg.condvar("not_empty").unwrap(),
    );
    let sum = seg.counter("sum").unwrap();
    let mut kids = Children::new();
    kids.spawn("condvar_consumer", guard.name(), &[]);
    kids.spawn("condvar_producer", guard.name(), &[]);
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
    let guard = SegGuard::new("cvtimeout");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
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
        shmkit::inspect::state(&seg, &entry).unwrap().to_string(),
        "0 waiters, 1 notifies"
    );
}

#[test]
fn a_panic_inside_a_condvar_predicate_releases_the_mutex() {
    // Issue 10, item 7: an unwinding panic inside a critical section must release the lock.
    let m = shmkit::Mutex::new(0u32);
    let cv = shmkit::Condvar::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = cv.wait_while(m.lock().unwrap(), |_| panic!("predicate"));
    }));
    assert!(r.is_err());
    assert_eq!(m.state().owner_tid, None);
    assert_eq!(*m.try_lock().unwrap(), 0);
}
