//! loom models of Condvar and Event with a strict futex (a forgotten wake is a deadlock).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::sync::loom_futex;
use shmkit::{Condvar, Event, Mutex};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

#[test]
fn condvar_notify_reaches_waiter() {
    strict_model(|| {
        let m: Arc<Mutex<u32>> = Arc::from(Mutex::new(0u32));
        let cv = Arc::new(Condvar::new());
        let t = {
            let (m, cv) = (m.clone(), cv.clone());
            thread::spawn(move || {
                *m.lock().unwrap() = 1;
                cv.notify_one();
            })
        };
        let g = cv.wait_while(m.lock().unwrap(), |v| *v == 0).unwrap();
        assert_eq!(*g, 1);
        drop(g);
        t.join().unwrap();
    });
}

#[test]
fn condvar_handoff_both_ways() {
    // Ping-pong: each side waits for the other's change; two notifies must both arrive.
    strict_model(|| {
        let m: Arc<Mutex<u32>> = Arc::from(Mutex::new(0u32));
        let cv = Arc::new(Condvar::new());
        let t = {
            let (m, cv) = (m.clone(), cv.clone());
            thread::spawn(move || {
                let mut g = cv.wait_while(m.lock().unwrap(), |v| *v != 1).unwrap();
                *g = 2;
                drop(g);
                cv.notify_all();
            })
        };
        *m.lock().unwrap() = 1;
        cv.notify_all();
        let g = cv.wait_while(m.lock().unwrap(), |v| *v != 2).unwrap();
        assert_eq!(*g, 2);
        drop(g);
        t.join().unwrap();
    });
}

#[test]
fn event_set_wakes_two_waiters() {
    strict_model(|| {
        let e = Arc::new(Event::new());
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let e = e.clone();
                thread::spawn(move || {
                    e.wait();
                    assert!(e.is_set());
                })
            })
            .collect();
        e.set();
        for t in ts {
            t.join().unwrap();
        }
    });
}
