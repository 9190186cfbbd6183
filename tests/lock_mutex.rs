//! The robust mutex across real processes: children are this test binary re-executed with
//! `--exact <child test>` and an environment variable naming their segment and role.
#![cfg(not(feature = "loom"))]

use shmkit::{Counter, Error, LockError, Segment};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const SEG_VAR: &str = "SHMKIT_LOCK_TEST_SEG";
const ARG_VAR: &str = "SHMKIT_LOCK_TEST_ARG";

/// Removes the segment when the test ends, however it ends.
struct SegGuard(String);
impl Drop for SegGuard {
    fn drop(&mut self) {
        let _ = Segment::remove(&self.0);
    }
}

/// A unique segment, created, with its removal guard.
fn segment(test: &str) -> (Segment, SegGuard) {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmkit-test-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let seg = Segment::create(&name, 1 << 16).expect("create segment");
    (seg, SegGuard(name))
}

/// Children that are killed and reaped if the test ends early.
#[derive(Default)]
struct Children(Vec<Child>);
impl Children {
    fn spawn(&mut self, child_test: &str, seg: &SegGuard, arg: &str) -> usize {
        let c = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(SEG_VAR, &seg.0)
            .env(ARG_VAR, arg)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn child");
        self.0.push(c);
        self.0.len() - 1
    }

    /// Waits for every child (at most until `deadline`), asserting each exited with success.
    fn wait_all(&mut self, deadline: Instant) {
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

/// In a child: the segment named by the parent, or `None` when run as an ordinary test.
fn child_segment() -> Option<(Segment, String)> {
    let name = std::env::var(SEG_VAR).ok()?;
    let arg = std::env::var(ARG_VAR).unwrap_or_default();
    Some((Segment::open(&name).expect("child opens segment"), arg))
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ---- 99 processes, one increment each ----

#[test]
fn child_increment_once() {
    let Some((seg, _)) = child_segment() else {
        return;
    };
    let m = seg.mutex("n", 0u64).unwrap();
    let mut g = m.lock().unwrap();
    let v = *g;
    // Read, pause, write: without mutual exclusion, updates would be lost.
    std::thread::sleep(Duration::from_micros(200));
    *g = v + 1;
}

#[test]
fn ninety_nine_processes_increment_once() {
    let (seg, guard) = segment("mutex99");
    let m = seg.mutex("n", 0u64).unwrap();
    let mut kids = Children::default();
    for _ in 0..99 {
        kids.spawn("child_increment_once", &guard, "");
    }
    kids.wait_all(Instant::now() + Duration::from_secs(120));
    assert_eq!(*m.lock().unwrap(), 99);
    assert_eq!(m.state().owner_tid, None);
}

// ---- 8 processes × 100,000 increments ----

const EIGHT_ROUNDS: u64 = 100_000;

#[test]
fn child_increment_many() {
    let Some((seg, _)) = child_segment() else {
        return;
    };
    let m = seg.mutex("n", [0u64; 2]).unwrap();
    let go = seg.counter("go").unwrap();
    go.inc();
    while go.load() < 8 {
        std::thread::yield_now();
    }
    for _ in 0..EIGHT_ROUNDS {
        let mut g = m.lock().unwrap();
        g[0] += 1;
        g[1] = g[0].wrapping_mul(3);
    }
}

#[test]
fn eight_processes_hundred_thousand_each() {
    let (seg, guard) = segment("mutex8");
    let m = seg.mutex("n", [0u64; 2]).unwrap();
    let t = Instant::now();
    let mut kids = Children::default();
    for _ in 0..8 {
        kids.spawn("child_increment_many", &guard, "");
    }
    kids.wait_all(Instant::now() + Duration::from_secs(300));
    let g = m.lock().unwrap();
    assert_eq!(g[0], 8 * EIGHT_ROUNDS);
    assert_eq!(g[1], 8 * EIGHT_ROUNDS * 3);
    eprintln!(
        "8 processes x {EIGHT_ROUNDS} locked increments: {:?}",
        t.elapsed()
    );
}

// ---- the owner is SIGKILLed while holding the lock ----

#[test]
fn child_hold_until_killed() {
    let Some((seg, _)) = child_segment() else {
        return;
    };
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let mut g = m.lock().unwrap();
    *g = 1000; // a change that will never be written back: the holder dies first
    held.inc();
    // Wait to be killed (bounded, so an orphan cannot linger).
    std::thread::sleep(Duration::from_secs(60));
    panic!("the holder was not killed");
}

#[test]
fn child_wait_for_dead_owner() {
    let Some((seg, _)) = child_segment() else {
        return;
    };
    let m = seg.mutex("n", 0u64).unwrap();
    let died = seg.counter("died").unwrap();
    let waiting = seg.counter("waiting").unwrap();
    waiting.inc();
    let mut g = match m.lock() {
        Ok(g) => g,
        Err(LockError::OwnerDied(mut g)) => {
            died.inc();
            g.mark_consistent();
            g
        }
        Err(e) => panic!("waiter: {e}"),
    };
    *g += 1;
}

#[test]
fn owner_killed_with_three_waiters() {
    let (seg, guard) = segment("mutexkill");
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let waiting = seg.counter("waiting").unwrap();
    let died = seg.counter("died").unwrap();
    let mut holder = Children::default();
    holder.spawn("child_hold_until_killed", &guard, "");
    wait_until("the holder", Duration::from_secs(30), || held.load() == 1);

    let mut waiters = Children::default();
    for _ in 0..3 {
        waiters.spawn("child_wait_for_dead_owner", &guard, "");
    }
    wait_until("the waiters", Duration::from_secs(30), || {
        waiting.load() == 3 && m.state().waiters
    });
    std::thread::sleep(Duration::from_millis(100)); // let all three fall asleep

    let killed = Instant::now();
    let h = &mut holder.0[0];
    h.kill().unwrap();
    h.wait().unwrap();
    waiters.wait_all(killed + Duration::from_secs(5));
    let took = killed.elapsed();
    eprintln!("3 waiters finished {took:?} after the owner was killed");
    assert!(took < Duration::from_secs(5));
    assert_eq!(died.load(), 1, "exactly one waiter gets OwnerDied");
    // The holder's 1000 was never written back; each waiter added one.
    let g = m.lock().unwrap();
    assert_eq!(*g, 3);
    assert!(g.is_consistent());
}

// ---- an OwnerDied guard dropped unrepaired ----

#[test]
fn child_expect_not_recoverable() {
    let Some((seg, _)) = child_segment() else {
        return;
    };
    let m = seg.mutex("n", 0u64).unwrap();
    for r in [
        m.lock(),
        m.try_lock(),
        m.lock_timeout(Duration::from_millis(50)),
    ] {
        match r {
            Err(LockError::Error(Error::NotRecoverable { .. })) => {}
            other => panic!("expected NotRecoverable, got {other:?}"),
        }
    }
}

#[test]
fn not_recoverable_after_unrepaired_drop() {
    let (seg, guard) = segment("mutexnr");
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let mut holder = Children::default();
    holder.spawn("child_hold_until_killed", &guard, "");
    wait_until("the holder", Duration::from_secs(30), || held.load() == 1);
    let h = &mut holder.0[0];
    h.kill().unwrap();
    h.wait().unwrap();

    match m.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(g)) => {
            assert!(!g.is_consistent());
            drop(g); // not repaired
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(m.state().not_recoverable);
    let mut other = Children::default();
    other.spawn("child_expect_not_recoverable", &guard, "");
    other.wait_all(Instant::now() + Duration::from_secs(30));
    // The conversion into shmkit::Error reports it too.
    let e: Error = m.lock().unwrap_err().into();
    assert!(matches!(e, Error::NotRecoverable { .. }), "{e}");
}

#[test]
fn mutex_kind_is_checked_on_open() {
    let (seg, _guard) = segment("mutexkind");
    let m = seg.mutex("m", 5u32).unwrap();
    *m.lock().unwrap() += 1;
    let again = seg.mutex("m", 0u32).unwrap();
    assert_eq!(
        *again.lock().unwrap(),
        6,
        "an existing mutex keeps its value"
    );
    assert!(matches!(
        seg.mutex("m", 0u64),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(seg.counter("m"), Err(Error::TypeMismatch { .. })));
    let _ = Counter::new(0);
}

#[test]
fn stat_describes_the_lock() {
    let (seg, _guard) = segment("mutexstat");
    let m = seg.mutex("m", [0u16; 5]).unwrap();
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "m")
        .unwrap();
    assert_eq!(shmkit::inspect::describe(&seg, &entry).unwrap(), "unlocked");
    let g = m.lock().unwrap();
    let d = shmkit::inspect::describe(&seg, &entry).unwrap();
    let want = format!(
        "locked by tid {} (pid {})",
        shmkit::process::tid(),
        std::process::id()
    );
    assert_eq!(d, want);
    drop(g);
}
