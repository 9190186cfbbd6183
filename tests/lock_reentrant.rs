//! The reentrant mutex, in threads and across real processes.
#![cfg(not(feature = "loom"))]

use shmkit::{Error, LockError, ReentrantMutex, Segment};
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

struct Kid(Child);
impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
fn child_hold_nested_until_killed() {
    let Ok(name) = std::env::var(SEG_VAR) else {
        return;
    };
    let seg = Segment::open(&name).unwrap();
    let m = seg.reentrant_mutex("r").unwrap();
    let guards: Vec<_> = (0..3).map(|_| m.lock().unwrap()).collect();
    seg.counter("held").unwrap().inc();
    std::thread::sleep(Duration::from_secs(60));
    drop(guards);
    panic!("not killed");
}

#[test]
fn owner_killed_at_depth_three() {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmkit-test-rlock-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let seg = Segment::create(&name, 1 << 16).unwrap();
    let _guard = SegGuard(name.clone());
    let m = seg.reentrant_mutex("r").unwrap();
    let held = seg.counter("held").unwrap();
    let mut kid = Kid(Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_hold_nested_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SEG_VAR, &name)
        .stdout(Stdio::null())
        .spawn()
        .unwrap());
    let t = Instant::now();
    while held.load() == 0 {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(m.depth(), 3);
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "r")
        .unwrap();
    let d = shmkit::inspect::describe(&seg, &entry).unwrap();
    assert!(d.ends_with(", depth 3"), "{d}");
    kid.0.kill().unwrap();
    kid.0.wait().unwrap();
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
