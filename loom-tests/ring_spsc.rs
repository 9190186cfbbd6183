//! loom models of the SPSC ring: FIFO through a capacity-2 ring with both sides sleeping, no lost
//! wake-up (a strict futex that blocks until woken, so a forgotten wake is a loom deadlock), and
//! close while a side sleeps.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::sync::loom_futex;
use shmkit::{PopError, PushError, SpscRing};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

fn ring(cap: u64) -> Arc<SpscRing<u64>> {
    SpscRing::<u64>::new(cap).unwrap()
}

#[test]
fn fifo_capacity_2_both_sides_sleep() {
    // Three items through two slots: the producer must wait for room at least once in some
    // schedules, the consumer for items in others; every wait must be woken.
    strict_model(|| {
        let r = ring(2);
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.producer().unwrap();
            for i in 1..=3 {
                tx.push(i).unwrap();
            }
        });
        let mut rx = r.consumer().unwrap();
        for i in 1..=3 {
            assert_eq!(rx.pop(), Ok(i));
        }
        t.join().unwrap();
        assert!(rx.is_empty());
    });
}

#[test]
fn sleeping_consumer_is_woken_by_push() {
    strict_model(|| {
        let r = ring(2);
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.producer().unwrap();
            tx.push(7).unwrap();
        });
        let mut rx = r.consumer().unwrap();
        assert_eq!(rx.pop(), Ok(7));
        t.join().unwrap();
    });
}

#[test]
fn sleeping_producer_is_woken_by_pop() {
    strict_model(|| {
        let r = ring(1);
        let mut tx = r.producer().unwrap();
        tx.push(1).unwrap();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut rx = r2.consumer().unwrap();
            assert_eq!(rx.pop(), Ok(1));
        });
        tx.push(2).unwrap(); // full until the pop: must be woken
        t.join().unwrap();
        assert_eq!(r.len(), 1);
    });
}

#[test]
fn close_wakes_a_sleeping_consumer_after_draining() {
    strict_model(|| {
        let r = ring(2);
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.producer().unwrap();
            tx.push(5).unwrap();
            tx.close();
            assert_eq!(tx.try_push(6), Err(PushError::Closed(6)));
        });
        let mut rx = r.consumer().unwrap();
        assert_eq!(rx.pop(), Ok(5));
        assert_eq!(rx.pop(), Err(PopError::Closed));
        t.join().unwrap();
    });
}

#[test]
fn close_wakes_a_sleeping_producer() {
    strict_model(|| {
        let r = ring(1);
        let mut tx = r.producer().unwrap();
        tx.push(1).unwrap();
        let r2 = r.clone();
        let t = thread::spawn(move || r2.close());
        assert_eq!(tx.push(2), Err(PushError::Closed(2)));
        t.join().unwrap();
    });
}

#[test]
fn batches_keep_fifo() {
    common::model(|| {
        let r = ring(2);
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.producer().unwrap();
            let items = [1u64, 2, 3];
            let mut sent = 0;
            while sent < items.len() {
                match tx.push_slice(&items[sent..]).unwrap() {
                    0 => thread::yield_now(),
                    n => sent += n,
                }
            }
        });
        let mut rx = r.consumer().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u64; 2];
        while got.len() < 3 {
            match rx.pop_into(&mut buf).unwrap() {
                0 => thread::yield_now(),
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, [1, 2, 3]);
        t.join().unwrap();
    });
}
