//! The semaphore across real processes (children: this test binary re-executed).
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Error, Segment, Semaphore};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 30;

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        "semaphore_user" => semaphore_user(&ctx.open()),
        "take_two_and_hang" => take_two_and_hang(&ctx.open()),
        other => panic!("unknown role {other}"),
    });
}

fn semaphore_user(seg: &Segment) {
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
    let guard = SegGuard::new("sem3");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let s = seg.bounded_semaphore("s", 3, 3).unwrap();
    let most = seg.value::<u64>("most", 0).unwrap();
    let mut kids = Children::new();
    for _ in 0..8 {
        kids.spawn("semaphore_user", guard.name(), &[]);
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

fn take_two_and_hang(seg: &Segment) {
    let s = seg.semaphore("s", 2).unwrap();
    s.acquire().unwrap();
    s.acquire().unwrap();
    seg.counter("held").unwrap().inc();
    std::thread::sleep(Duration::from_secs(60));
    panic!("not killed");
}

#[test]
fn permits_of_a_killed_process_are_reclaimed() {
    let guard = SegGuard::new("semdead");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let s = seg.semaphore("s", 2).unwrap();
    let held = seg.counter("held").unwrap();
    let mut kids = Children::new();
    let kid = kids.spawn("take_two_and_hang", guard.name(), &[]);
    common::wait_until(
        "the child to hold both permits",
        Duration::from_secs(30),
        || held.load() != 0,
    );
    assert_eq!(s.available(), 0);
    assert_eq!(s.holders().len(), 1);
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "s")
        .unwrap();
    let d = shmkit::inspect::state(&seg, &entry).unwrap().to_string();
    assert!(d.starts_with("0 permits free, held by pid"), "{d}");
    assert!(matches!(s.try_acquire(), Err(Error::WouldBlock { .. })));
    kids.kill(kid);
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
