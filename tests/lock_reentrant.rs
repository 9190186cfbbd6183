//! The reentrant mutex, in threads and across real processes.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Error, LockError, ReentrantMutex, Segment};
use std::time::Duration;

#[test]
fn nested_locks_release_at_the_last_guard() {
    let m = ReentrantMutex::new();
    let a = m.lock().unwrap();
    let b = m.try_lock().unwrap();
    let c = m.lock_timeout(Duration::from_millis(1)).unwrap();
    assert_eq!(m.depth(), 3);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                m.try_lock(),
                Err(LockError::Error(Error::WouldBlock { .. }))
            ));
        })
        .join()
        .unwrap();
        drop(c);
        drop(a); // out of order is fine: the depth counts guards
        s.spawn(|| {
            assert!(matches!(
                m.lock_timeout(Duration::from_millis(20)),
                Err(LockError::Error(Error::Timeout { .. }))
            ));
        })
        .join()
        .unwrap();
        drop(b);
        s.spawn(|| {
            let g = m.lock().unwrap();
            assert_eq!(m.depth(), 1);
            drop(g);
        })
        .join()
        .unwrap();
    });
    assert_eq!(m.state().owner_tid, None);
}

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        "hold_nested_until_killed" => {
            let seg = ctx.open();
            let m = seg.reentrant_mutex("r").unwrap();
            let guards: Vec<_> = (0..3).map(|_| m.lock().unwrap()).collect();
            seg.counter("held").unwrap().inc();
            std::thread::sleep(Duration::from_secs(60));
            drop(guards);
            panic!("not killed");
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn owner_killed_at_depth_three() {
    let name = SegGuard::new("rlock");
    let seg = Segment::create(name.name(), 1 << 16).unwrap();
    let m = seg.reentrant_mutex("r").unwrap();
    let held = seg.counter("held").unwrap();
    let mut kids = Children::new();
    let kid = kids.spawn("hold_nested_until_killed", name.name(), &[]);
    common::wait_until(
        "the child to hold the lock",
        Duration::from_secs(30),
        || held.load() != 0,
    );
    assert_eq!(m.depth(), 3);
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "r")
        .unwrap();
    let d = shmkit::inspect::state(&seg, &entry).unwrap().to_string();
    assert!(d.ends_with(", depth 3"), "{d}");
    kids.kill(kid);
    let mut g = match m.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(g)) => g,
        other => panic!(
            "expected OwnerDied, got {other:?}",
            other = other.map(|_| ())
        ),
    };
    assert_eq!(m.depth(), 1, "the dead owner's depth is forgotten");
    assert!(!g.is_consistent());
    g.mark_consistent();
    assert!(g.is_consistent());
    let inner = m.lock().unwrap();
    drop(inner);
    drop(g);
    assert_eq!(m.state().owner_tid, None);
    drop(m.lock().unwrap());
}
