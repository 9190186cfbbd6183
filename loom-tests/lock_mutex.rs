//! loom models of the robust mutex: mutual exclusion, no lost wake-up (with a strict futex that
//! blocks until woken), and owners that die holding the lock.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::internals::sim;
use shmkit::sync::loom_futex;
use shmkit::{Error, LockError, Mutex};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

/// Read, then write: a lost update if two threads were ever inside at once.
fn increment(m: &Mutex<u64>) {
    let mut g = m.lock().unwrap();
    let v = *g;
    *g = v + 1;
}

#[test]
fn two_threads_exclude_and_wake() {
    strict_model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let m2 = m.clone();
        let t = thread::spawn(move || increment(&m2));
        increment(&m);
        t.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 2);
        let s = m.state();
        assert_eq!(s.owner_tid, None);
    });
}

#[test]
fn three_threads_exclude_and_wake() {
    strict_model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || increment(&m))
            })
            .collect();
        increment(&m);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 3);
    });
}

#[test]
fn two_sleepers_are_both_woken() {
    // Both other threads sleep while the main thread holds the lock; an unlock wakes exactly one
    // sleeper (exact futex) and clears the waiters bit, so the one woken must set the bit again
    // when it takes the lock while the other still sleeps (the `sleepers` count says so), or
    // the other is never woken and loom reports a deadlock.
    loom_futex::set_exact(true);
    common::model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let g = m.lock().unwrap();
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || increment(&m))
            })
            .collect();
        thread::yield_now();
        drop(g);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock().unwrap(), 2);
    });
    loom_futex::set_exact(false);
}

#[test]
fn sleeper_is_woken_by_unlock() {
    // The main thread holds the lock while the other must go to sleep on the (strict) futex:
    // the unlock has to wake it, or loom reports a deadlock.
    strict_model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let g = m.lock().unwrap();
        let m2 = m.clone();
        let t = thread::spawn(move || {
            let mut g = m2.lock().unwrap();
            *g += 10;
        });
        thread::yield_now();
        drop(g);
        t.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 10);
    });
}

#[test]
fn dead_owner_is_reported_once() {
    common::model(|| {
        sim::reset();
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let a = {
            let m = m.clone();
            thread::spawn(move || {
                let mut g = m.lock().unwrap();
                *g += 100; // never written back: the owner dies first
                core::mem::forget(g);
                sim::die();
            })
        };
        let b = {
            let m = m.clone();
            thread::spawn(move || match m.lock() {
                Ok(mut g) => {
                    *g += 1;
                    false
                }
                Err(LockError::OwnerDied(mut g)) => {
                    g.mark_consistent();
                    *g += 1;
                    true
                }
                Err(e) => panic!("{e}"),
            })
        };
        a.join().unwrap();
        let died_b = b.join().unwrap();
        // A is dead; the lock is free (B repaired it) or still held by the dead A.
        let died_main = match m.lock() {
            Ok(g) => {
                assert!(g.is_consistent());
                false
            }
            Err(LockError::OwnerDied(mut g)) => {
                g.mark_consistent();
                true
            }
            Err(e) => panic!("{e}"),
        };
        assert!(died_b ^ died_main, "exactly one thread gets OwnerDied");
        assert_eq!(*m.lock().unwrap(), 1);
    });
}

#[test]
fn unrepaired_drop_stays_owner_died() {
    // Poison convention: a dropped unrepaired guard hands OwnerDied to the next locker, however
    // the two survivors interleave; nobody ever sees NotRecoverable.
    common::model(|| {
        sim::reset();
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        {
            let m = m.clone();
            thread::spawn(move || {
                core::mem::forget(m.lock().unwrap());
                sim::die();
            })
            .join()
            .unwrap();
        }
        let take = |m: &Mutex<u64>| match m.lock() {
            Err(LockError::OwnerDied(mut g)) => {
                *g += 1;
                drop(g); // not repaired
            }
            other => panic!("unexpected {other:?}"),
        };
        let b = {
            let m = m.clone();
            thread::spawn(move || take(&m))
        };
        take(&m);
        b.join().unwrap();
        let s = m.state();
        assert!(s.owner_died && !s.not_recoverable && s.owner_tid.is_none());
        let mut g = m.lock().unwrap_err().into_guard().unwrap();
        assert_eq!(*g, 2, "both survivors held it in turn");
        g.mark_consistent();
        drop(g);
        assert!(m.lock().is_ok());
    });
}

#[test]
fn giving_up_is_not_recoverable_for_a_waiter() {
    // A waiter asleep while the holder gives up is woken and told (strict futex).
    strict_model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let g = m.lock().unwrap();
        let m2 = m.clone();
        let t = thread::spawn(move || {
            assert!(matches!(
                m2.lock(),
                Err(LockError::Error(Error::NotRecoverable { .. }))
            ));
        });
        g.mark_not_recoverable();
        t.join().unwrap();
        assert!(m.state().not_recoverable);
    });
}

#[test]
fn try_lock_if_free_excludes_and_keeps_wake_ups() {
    // A thread that polls with try_lock_if_free (as the Python package's blocking acquire does
    // before it waits) races a thread that sleeps on the lock or is about to: the two never
    // hold it together, and whoever takes it, the sleeper is still woken (strict futex: a lost
    // wake-up is a deadlock).
    strict_model(|| {
        let m: Arc<Mutex<u64>> = Arc::from(Mutex::new(0u64));
        let g = m.lock().unwrap();
        let m2 = m.clone();
        let t = thread::spawn(move || increment(&m2));
        thread::yield_now();
        drop(g);
        let mut tries = 0;
        let mut g = loop {
            match m.try_lock_if_free() {
                Ok(g) => break g,
                Err(LockError::Error(Error::WouldBlock { .. })) if tries < 2 => {
                    tries += 1;
                    thread::yield_now();
                }
                Err(LockError::Error(Error::WouldBlock { .. })) => break m.lock().unwrap(),
                Err(e) => panic!("unexpected {e:?}"),
            }
        };
        let v = *g;
        *g = v + 1;
        drop(g);
        t.join().unwrap();
        assert_eq!(*m.lock().unwrap(), 2);
    });
}
