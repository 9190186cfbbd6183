//! Faults at every step of the lock family's multi-step protocols, with real processes.
//!
//! Each child is this test binary re-executed with `SHMKIT_HOOK=<action>:<point>` (the named
//! points of `src/hooks.rs`, compiled in with the `test-hooks` feature, which this target
//! requires):
//!
//! - **kill**: the child SIGKILLs itself exactly at the point; afterwards the invariant must hold
//!   exactly (a `Semaphore` has exactly its permits, neither duplicated nor leaked; a `Barrier`
//!   counted exactly the arrivals that happened; a `Mutex` is recoverable).
//! - **stop**: the child SIGSTOPs itself at the point, in the middle of an operation; every
//!   `try_` call must return at once and every `_timeout` call by its deadline; after SIGCONT
//!   everything proceeds and the invariant holds.
//!
//! Issue 10, items 2 and 3: a kill between the two stores of the old semaphore duplicated or
//! leaked a permit, and a peer stopped inside the internal lock blocked `try_acquire`,
//! `acquire_timeout`, `release`, `try_wait` and `wait_timeout` for ever.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Error, LockError, Segment};
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

/// A `try_` call must return within this (generous for a loaded 2-core machine; a blocked call
/// never returns).
const AT_ONCE: Duration = Duration::from_millis(500);
/// The timeout given to `_timeout` calls, and the slack allowed past it.
const TIMEOUT: Duration = Duration::from_millis(100);
const SLACK: Duration = Duration::from_millis(900);

#[test]
fn xproc_child() {
    common::run_child(|ctx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            "sem_cycle" => {
                let s = seg.semaphore("s", 2).unwrap();
                s.acquire_timeout(Duration::from_secs(30)).unwrap();
                s.release().unwrap();
            }
            "sem_hold" => {
                let s = seg.semaphore("s", 2).unwrap();
                s.acquire_timeout(Duration::from_secs(30)).unwrap();
                seg.counter("held").unwrap().inc();
                std::thread::sleep(Duration::from_secs(60));
                panic!("not killed");
            }
            "sem_try" => {
                // Finds the dead holder and reclaims its permit (and is stopped or killed there).
                let s = seg.semaphore("s", 2).unwrap();
                if s.try_acquire().is_ok() {
                    s.release().unwrap();
                }
            }
            "barrier_arrive" => {
                let b = seg.barrier("b", 3).unwrap();
                match b.wait_timeout(Duration::from_secs(30)) {
                    Ok(true) => seg.counter("leader").unwrap().inc(),
                    Ok(false) => seg.counter("passed").unwrap().inc(),
                    Err(Error::BarrierBroken { .. }) => seg.counter("broken").unwrap().inc(),
                    Err(e) => panic!("{e}"),
                };
            }
            "mutex_bump" => {
                let m = seg.mutex("m", 0u64).unwrap();
                let mut g = m.lock_timeout(Duration::from_secs(30)).unwrap();
                *g += 1;
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Starts `role` with `SHMKIT_HOOK=<action>:<point>`.
fn spawn_hooked(kids: &mut Children, role: &str, seg: &str, action: &str, point: &str) -> usize {
    let hook = format!("{action}:{point}");
    kids.spawn_with(role, seg, &[], |c| {
        c.env("SHMKIT_HOOK", hook);
    })
}

/// Waits until child `i` died by SIGKILL at its hook (fails if it exited otherwise: the point
/// was never reached).
fn killed_at(kids: &mut Children, i: usize, point: &str) {
    let s = kids.wait(i, Duration::from_secs(30));
    assert_eq!(
        s.signal(),
        Some(libc::SIGKILL),
        "the child was not killed at {point}: {}",
        common::describe(s)
    );
}

/// Runs `f` on a helper thread and fails if it does not return within `bound`: a call blocked
/// behind a stopped peer fails the test instead of hanging it.
fn bounded<T: Send + 'static>(
    what: &str,
    bound: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(bound.max(Duration::from_secs(10))) {
        Ok(v) => {
            assert!(
                t.elapsed() <= bound,
                "{what} took {:?} (bound {bound:?})",
                t.elapsed()
            );
            v
        }
        Err(_) => panic!("{what} still blocked after {:?}", t.elapsed()),
    }
}

/// With no operation in flight, the (unbounded: a bound would hide a duplicated permit)
/// semaphore `s` of 2 permits has exactly `2 - held` free permits, however the books were left.
fn semaphore_is_exact(seg: &Segment, held: u32) {
    let s = seg.semaphore("s", 2).unwrap();
    let mut got = 0;
    while got < 2 - held {
        s.acquire_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("permit {} of {} leaked: {e}", got + 1, 2 - held));
        got += 1;
    }
    assert!(
        matches!(s.try_acquire(), Err(Error::WouldBlock { .. })),
        "a permit was duplicated"
    );
    for _ in 0..got {
        s.release().unwrap();
    }
    assert_eq!(s.available(), 2 - held);
    if held == 0 {
        assert!(s.holders().is_empty(), "{:?}", s.holders());
    }
}

const SEM_STEPS: [&str; 5] = [
    "semaphore.acquire.claimed",
    "semaphore.acquire.committed",
    "semaphore.acquire.applied",
    "semaphore.release.committed",
    "semaphore.release.applied",
];

const RECLAIM_STEPS: [&str; 2] = ["semaphore.reclaim.committed", "semaphore.reclaim.applied"];

#[test]
fn semaphore_killed_at_every_step_keeps_exact_permits() {
    for point in SEM_STEPS {
        let guard = SegGuard::new("semkill");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        seg.semaphore("s", 2).unwrap();
        let mut kids = Children::new();
        let k = spawn_hooked(&mut kids, "sem_cycle", guard.name(), "kill", point);
        killed_at(&mut kids, k, point);
        semaphore_is_exact(&seg, 0);
    }
}

#[test]
fn semaphore_sweeper_killed_while_reclaiming_keeps_exact_permits() {
    for point in RECLAIM_STEPS {
        let guard = SegGuard::new("semsweep");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        let s = seg.semaphore("s", 2).unwrap();
        s.acquire().unwrap(); // the other permit goes to the holder, so the sweeper finds none
        let held = seg.counter("held").unwrap();
        let mut kids = Children::new();
        let h = kids.spawn("sem_hold", guard.name(), &[]);
        common::wait_until("the holder", Duration::from_secs(30), || held.load() == 1);
        kids.kill(h);
        let k = spawn_hooked(&mut kids, "sem_try", guard.name(), "kill", point);
        killed_at(&mut kids, k, point);
        assert!(s.reclaimed() <= 1);
        semaphore_is_exact(&seg, 1);
        s.release().unwrap();
        semaphore_is_exact(&seg, 0);
    }
}

#[test]
fn semaphore_calls_return_in_time_behind_a_stopped_peer() {
    for point in SEM_STEPS.iter().chain(&RECLAIM_STEPS) {
        let guard = SegGuard::new("semstop");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        let s = seg.semaphore("s", 2).unwrap();
        let mut kids = Children::new();
        let reclaiming = point.contains("reclaim");
        if reclaiming {
            let held = seg.counter("held").unwrap();
            let h = kids.spawn("sem_hold", guard.name(), &[]);
            common::wait_until("the holder", Duration::from_secs(30), || held.load() == 1);
            kids.kill(h);
        }
        // The parent holds a permit; the child is stopped in the middle of its operation.
        s.acquire_timeout(Duration::from_secs(5)).unwrap();
        let role = if reclaiming { "sem_try" } else { "sem_cycle" };
        let k = spawn_hooked(&mut kids, role, guard.name(), "stop", point);
        kids.wait_stopped(k, point);

        let name = guard.name().to_string();
        bounded(&format!("try_acquire behind {point}"), AT_ONCE, {
            let name = name.clone();
            move || {
                let s = Segment::open(&name).unwrap().semaphore("s", 2).unwrap();
                match s.try_acquire() {
                    Ok(()) => s.release().unwrap(),
                    Err(Error::WouldBlock { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        bounded(
            &format!("acquire_timeout({TIMEOUT:?}) behind {point}"),
            TIMEOUT + SLACK,
            {
                let name = name.clone();
                move || {
                    let s = Segment::open(&name).unwrap().semaphore("s", 2).unwrap();
                    match s.acquire_timeout(TIMEOUT) {
                        Ok(()) => s.release().unwrap(),
                        Err(Error::Timeout { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            },
        );
        bounded(&format!("release behind {point}"), AT_ONCE, move || {
            let s = Segment::open(&name).unwrap().semaphore("s", 2).unwrap();
            s.release().unwrap(); // the parent's permit
        });
        kids.resume(k);
        kids.wait_ok(k, Duration::from_secs(30));
        semaphore_is_exact(&seg, 0);
    }
}

const BARRIER_STEPS: [&str; 3] = [
    "barrier.wait.claimed",
    "barrier.wait.arrived",
    "barrier.wait.recorded",
];

#[test]
fn barrier_killed_at_every_step_counts_exactly() {
    for point in BARRIER_STEPS {
        let guard = SegGuard::new("barkill");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        let b = seg.barrier("b", 3).unwrap();
        let mut kids = Children::new();
        let k = spawn_hooked(&mut kids, "barrier_arrive", guard.name(), "kill", point);
        killed_at(&mut kids, k, point);
        let counted = point != "barrier.wait.claimed";
        assert_eq!(b.arrived(), u32::from(counted), "after a kill at {point}");
        assert!(!b.is_broken());
        // The two others arrive. With the victim counted, 3 arrivals complete the generation
        // (unless a waiter first finds the dead party without a recorded arrival, which breaks
        // it: the documented price of a kill between counting and recording); without, the
        // dead party breaks it. Nobody hangs.
        let s = kids.spawn("barrier_arrive", guard.name(), &[]);
        let mine = b.wait_timeout(Duration::from_secs(30));
        kids.wait_ok(s, Duration::from_secs(30));
        let leaders = seg.counter("leader").unwrap().load() + u64::from(matches!(mine, Ok(true)));
        let broken = seg.counter("broken").unwrap().load() + u64::from(mine.is_err());
        match point {
            "barrier.wait.claimed" => assert_eq!(broken, 2, "completed without the victim"),
            "barrier.wait.recorded" => {
                assert_eq!((leaders, broken), (1, 0), "the victim's arrival was lost");
                assert_eq!(b.generation(), 1);
            }
            _ => assert!(
                (leaders, broken) == (1, 0) || broken == 2,
                "leaders {leaders}, broken {broken}"
            ),
        }
        assert_eq!(b.arrived(), 0);
        b.reset().unwrap();
        assert!(!b.is_broken());
    }
}

#[test]
fn barrier_calls_return_in_time_behind_a_stopped_peer() {
    for point in BARRIER_STEPS {
        let guard = SegGuard::new("barstop");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        let b = seg.barrier("b", 3).unwrap();
        let mut kids = Children::new();
        let k = spawn_hooked(&mut kids, "barrier_arrive", guard.name(), "stop", point);
        kids.wait_stopped(k, point);
        let name = guard.name().to_string();
        bounded(&format!("try_wait behind {point}"), AT_ONCE, {
            let name = name.clone();
            move || {
                let b = Segment::open(&name).unwrap().barrier("b", 3).unwrap();
                assert!(matches!(b.try_wait(), Err(Error::WouldBlock { .. })));
            }
        });
        bounded(
            &format!("wait_timeout({TIMEOUT:?}) behind {point}"),
            TIMEOUT + SLACK,
            move || {
                let b = Segment::open(&name).unwrap().barrier("b", 3).unwrap();
                assert!(matches!(
                    b.wait_timeout(TIMEOUT),
                    Err(Error::BarrierBroken { parties: 3 })
                ));
            },
        );
        kids.resume(k);
        kids.wait_ok(k, Duration::from_secs(30));
        // The stopped party learnt the barrier broke; it is usable again after a reset.
        assert_eq!(seg.counter("broken").unwrap().load(), 1);
        b.reset().unwrap();
        let s1 = kids.spawn("barrier_arrive", guard.name(), &[]);
        let s2 = kids.spawn("barrier_arrive", guard.name(), &[]);
        let mine = b.wait_timeout(Duration::from_secs(30)).unwrap();
        kids.wait_ok(s1, Duration::from_secs(30));
        kids.wait_ok(s2, Duration::from_secs(30));
        assert_eq!(seg.counter("leader").unwrap().load() + u64::from(mine), 1);
    }
}

#[test]
fn mutex_killed_at_every_step_is_recoverable() {
    for point in ["mutex.lock.claimed", "mutex.unlock.written"] {
        let guard = SegGuard::new("mutkill");
        let seg = Segment::create(guard.name(), 1 << 16).unwrap();
        let m = seg.mutex("m", 0u64).unwrap();
        let mut kids = Children::new();
        let k = spawn_hooked(&mut kids, "mutex_bump", guard.name(), "kill", point);
        killed_at(&mut kids, k, point);
        let mut g = match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(g)) => g,
            other => panic!("after a kill at {point}: expected OwnerDied, got {other:?}"),
        };
        // Killed after writing the data back: the change is there; before: it is not.
        assert_eq!(*g, u64::from(point == "mutex.unlock.written"));
        g.mark_consistent();
        drop(g);
        let mut next = Children::new();
        next.spawn("mutex_bump", guard.name(), &[]);
        next.wait_all(Duration::from_secs(30));
        assert!(*m.lock().unwrap() >= 1);
        assert!(!m.state().owner_died);
    }
}

#[test]
fn mutex_calls_return_in_time_behind_a_stopped_owner() {
    let guard = SegGuard::new("mutstop");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let m = seg.mutex("m", 0u64).unwrap();
    let mut kids = Children::new();
    let k = spawn_hooked(
        &mut kids,
        "mutex_bump",
        guard.name(),
        "stop",
        "mutex.unlock.written",
    );
    kids.wait_stopped(k, "mutex.unlock.written");
    let t = Instant::now();
    assert!(matches!(
        m.try_lock(),
        Err(LockError::Error(Error::WouldBlock { .. }))
    ));
    assert!(t.elapsed() < AT_ONCE);
    let t = Instant::now();
    assert!(matches!(
        m.lock_timeout(TIMEOUT),
        Err(LockError::Error(Error::Timeout { .. }))
    ));
    assert!(t.elapsed() < TIMEOUT + SLACK, "{:?}", t.elapsed());
    kids.resume(k);
    kids.wait_ok(k, Duration::from_secs(30));
    assert_eq!(*m.lock().unwrap(), 1);
}

#[test]
fn condvar_wait_timeout_returns_in_time_behind_a_stopped_owner() {
    // The parent waits on a condvar; the wait releases the mutex, the child takes it and is
    // stopped holding it. The wait cannot retake the mutex and must still return in time
    // (with Timeout, without the guard) instead of waiting for the child for ever.
    let guard = SegGuard::new("cvstop");
    let seg = Segment::create(guard.name(), 1 << 16).unwrap();
    let m = seg.mutex("m", 0u64).unwrap();
    let cv = seg.condvar("cv").unwrap();
    let mut kids = Children::new();
    let g = m.lock().unwrap();
    let k = spawn_hooked(
        &mut kids,
        "mutex_bump",
        guard.name(),
        "stop",
        "mutex.unlock.written",
    );
    common::wait_until(
        "the child to wait for the mutex",
        Duration::from_secs(30),
        || m.state().waiters,
    );
    // Long enough for the child to take the mutex and stop before the wait tries to retake it.
    let wait = Duration::from_millis(500);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (took, r) = std::thread::scope(|s| {
        // Watchdog: if the wait is still blocked after 10 s, resume the child so that the test
        // fails instead of hanging.
        s.spawn(|| {
            let t = Instant::now();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if t.elapsed() > Duration::from_secs(10) {
                    kids.resume(k);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let t = Instant::now();
        let r = cv.wait_timeout(g, wait).map(|(g, timed_out)| {
            drop(g);
            timed_out
        });
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (t.elapsed(), r.map_err(|e| format!("{e:?}")))
    });
    assert!(took < wait + SLACK, "the wait took {took:?}");
    assert!(matches!(&r, Err(e) if e.contains("Timeout")), "{r:?}");
    kids.wait_stopped(k, "mutex.unlock.written");
    kids.resume(k);
    kids.wait_ok(k, Duration::from_secs(30));
    assert_eq!(*m.lock().unwrap(), 1);
}
