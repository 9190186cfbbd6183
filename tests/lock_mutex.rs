//! The robust mutex across real processes: children are this test binary re-executed with
//! `--exact <child test>` and an environment variable naming their segment and role.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Counter, Error, LockError, Segment};
use std::time::{Duration, Instant};

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        "increment_once" => increment_once(&ctx.open()),
        "increment_many" => increment_many(&ctx.open()),
        "hold_until_killed" => hold_until_killed(&ctx.open()),
        "wait_for_dead_owner" => wait_for_dead_owner(&ctx.open()),
        "expect_not_recoverable" => expect_not_recoverable(&ctx.open()),
        "owner_died_then_question_mark" => owner_died_then_question_mark(&ctx.open()),
        other => panic!("unknown role {other}"),
    });
}

// ---- 99 processes, one increment each ----

fn increment_once(seg: &Segment) {
    let m = seg.mutex("n", 0u64).unwrap();
    let mut g = m.lock().unwrap();
    let v = *g;
    // Read, pause, write: without mutual exclusion, updates would be lost.
    std::thread::sleep(Duration::from_micros(200));
    *g = v + 1;
}

#[test]
fn ninety_nine_processes_increment_once() {
    let guard = SegGuard::new("mutex99");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
    let m = seg.mutex("n", 0u64).unwrap();
    let mut kids = Children::new();
    for _ in 0..99 {
        kids.spawn("increment_once", guard.name(), &[]);
    }
    kids.wait_all(Duration::from_secs(120));
    assert_eq!(*m.lock().unwrap(), 99);
    assert_eq!(m.state().owner_tid, None);
}

// ---- 8 processes × 100,000 increments ----

const EIGHT_ROUNDS: u64 = 100_000;

fn increment_many(seg: &Segment) {
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
    let guard = SegGuard::new("mutex8");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
    let m = seg.mutex("n", [0u64; 2]).unwrap();
    let t = Instant::now();
    let mut kids = Children::new();
    for _ in 0..8 {
        kids.spawn("increment_many", guard.name(), &[]);
    }
    kids.wait_all(Duration::from_secs(300));
    let g = m.lock().unwrap();
    assert_eq!(g[0], 8 * EIGHT_ROUNDS);
    assert_eq!(g[1], 8 * EIGHT_ROUNDS * 3);
    eprintln!(
        "8 processes x {EIGHT_ROUNDS} locked increments: {:?}",
        t.elapsed()
    );
}

// ---- the owner is SIGKILLed while holding the lock ----

fn hold_until_killed(seg: &Segment) {
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let mut g = m.lock().unwrap();
    *g = 1000; // a change that will never be written back: the holder dies first
    held.inc();
    // Wait to be killed (bounded, so an orphan cannot linger).
    std::thread::sleep(Duration::from_secs(60));
    panic!("the holder was not killed");
}

fn wait_for_dead_owner(seg: &Segment) {
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
    let guard = SegGuard::new("mutexkill");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let waiting = seg.counter("waiting").unwrap();
    let died = seg.counter("died").unwrap();
    let mut holder = Children::new();
    let h = holder.spawn("hold_until_killed", guard.name(), &[]);
    common::wait_until("the holder", Duration::from_secs(30), || held.load() == 1);

    let mut waiters = Children::new();
    for _ in 0..3 {
        waiters.spawn("wait_for_dead_owner", guard.name(), &[]);
    }
    common::wait_until("the waiters", Duration::from_secs(30), || {
        waiting.load() == 3 && m.state().waiters
    });
    std::thread::sleep(Duration::from_millis(100)); // let all three fall asleep

    let killed = Instant::now();
    holder.kill(h);
    waiters.wait_all((killed + Duration::from_secs(5)).saturating_duration_since(Instant::now()));
    let took = killed.elapsed();
    eprintln!("3 waiters finished {took:?} after the owner was killed");
    assert!(took < Duration::from_secs(5));
    assert_eq!(died.load(), 1, "exactly one waiter gets OwnerDied");
    // The holder's 1000 was never written back; each waiter added one.
    let g = m.lock().unwrap();
    assert_eq!(*g, 3);
    assert!(g.is_consistent());
}

// ---- an OwnerDied guard dropped unrepaired, then given up on ----

/// Gets `OwnerDied` (the holder's 1000 was never written back), drops the guard unrepaired the
/// way ordinary error handling does (`?` into `shmkit::Error`), and counts the report.
fn owner_died_then_question_mark(seg: &Segment) {
    let m = seg.mutex("n", 0u64).unwrap();
    let died = seg.counter("died").unwrap();
    let f = || -> Result<u64, Error> {
        let g = m.lock_timeout(Duration::from_secs(10))?;
        Ok(*g)
    };
    match f() {
        Err(Error::OwnerDied { .. }) => died.inc(),
        other => panic!("expected OwnerDied, got {other:?}"),
    };
}

fn expect_not_recoverable(seg: &Segment) {
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

/// Issue 10, item 10: `m.lock()?` after an owner died used to drop the guard and leave the lock
/// `NotRecoverable` for every process. Now the lock stays inconsistent: every process that locks
/// it gets `OwnerDied` until one repairs it; only `mark_not_recoverable` bricks it.
#[test]
fn unrepaired_drop_hands_owner_died_on_until_repaired() {
    let guard = SegGuard::new("mutexpoison");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
    let m = seg.mutex("n", 0u64).unwrap();
    let held = seg.counter("held").unwrap();
    let died = seg.counter("died").unwrap();
    let mut holder = Children::new();
    let h = holder.spawn("hold_until_killed", guard.name(), &[]);
    common::wait_until("the holder", Duration::from_secs(30), || held.load() == 1);
    holder.kill(h);

    // Two processes in turn convert OwnerDied with `?`: each one is told.
    for n in 1..=2 {
        let mut kid = Children::new();
        kid.spawn("owner_died_then_question_mark", guard.name(), &[]);
        kid.wait_all(Duration::from_secs(30));
        assert_eq!(died.load(), n);
        let s = m.state();
        assert!(
            s.owner_died && !s.not_recoverable && s.owner_tid.is_none(),
            "{s:?}"
        );
    }
    // The parent repairs it: the data is usable again, for everyone.
    match m.lock_timeout(Duration::from_secs(5)) {
        Err(LockError::OwnerDied(mut g)) => {
            assert_eq!(*g, 0, "the dead holder's change was never written back");
            *g = 7;
            g.mark_consistent();
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert!(!m.state().owner_died);
    assert_eq!(*m.lock().unwrap(), 7);

    // Giving up explicitly is for good, in every process.
    m.lock().unwrap().mark_not_recoverable();
    assert!(m.state().not_recoverable);
    let mut other = Children::new();
    other.spawn("expect_not_recoverable", guard.name(), &[]);
    other.wait_all(Duration::from_secs(30));
    let e: Error = m.lock().unwrap_err().into();
    assert!(matches!(e, Error::NotRecoverable { .. }), "{e}");
}

#[test]
fn mutex_kind_is_checked_on_open() {
    let guard = SegGuard::new("mutexkind");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
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
    let guard = SegGuard::new("mutexstat");
    let seg = Segment::create(guard.name(), 1 << 16).expect("create segment");
    let m = seg.mutex("m", [0u16; 5]).unwrap();
    let entry = seg
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.name == "m")
        .unwrap();
    assert_eq!(
        shmkit::inspect::state(&seg, &entry).unwrap().to_string(),
        "unlocked"
    );
    let g = m.lock().unwrap();
    let d = shmkit::inspect::state(&seg, &entry).unwrap().to_string();
    let want = format!(
        "locked by tid {} (pid {})",
        shmkit::process::tid(),
        std::process::id()
    );
    assert_eq!(d, want);
    drop(g);
}
