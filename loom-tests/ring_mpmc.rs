//! loom models of the MPMC ring (capacity 2, strict futex so a forgotten wake is a deadlock):
//! two producers and one consumer, one producer and two consumers, close while a consumer sleeps,
//! a push racing with close (the item is popped or handed back, never stranded), and slots held
//! by a dead producer or consumer being reaped by the other side.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::sync::loom_futex;
use shmkit::{MpmcRing, PopError, PushError};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

fn ring() -> Arc<MpmcRing<u64>> {
    MpmcRing::<u64>::new(2).unwrap()
}

#[test]
fn two_producers_one_consumer() {
    strict_model(|| {
        let q = ring();
        let ts: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || q.push(10 + p).unwrap())
            })
            .collect();
        let mut got = [q.pop().unwrap(), q.pop().unwrap()];
        got.sort_unstable();
        assert_eq!(got, [10, 11]);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn one_producer_two_consumers_in_order() {
    strict_model(|| {
        let q = ring();
        let q2 = q.clone();
        let c = thread::spawn(move || q2.pop().unwrap());
        // Three items through two slots: the producer may have to sleep until a pop.
        for i in 1..=3 {
            q.push(i).unwrap();
        }
        let a = q.pop().unwrap();
        let b = c.join().unwrap();
        // Pops claim positions in order: the two pops took items 1 and 2, whoever got which.
        let mut got = [a, b];
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        let dump = format!("{:x?}", q.loom_dump());
        assert_eq!(q.try_pop(), Ok(3), "{dump}");
    });
}

#[test]
fn close_wakes_a_sleeping_consumer_after_draining() {
    strict_model(|| {
        let q = ring();
        let q2 = q.clone();
        let t = thread::spawn(move || {
            q2.push(4).unwrap();
            q2.close();
        });
        assert_eq!(q.pop(), Ok(4));
        assert_eq!(q.pop(), Err(PopError::Closed));
        t.join().unwrap();
    });
}

#[test]
fn push_racing_close_is_popped_or_handed_back() {
    strict_model(|| {
        let q = ring();
        let (q1, q2) = (q.clone(), q.clone());
        let p = thread::spawn(move || q1.push(7));
        let c = thread::spawn(move || q2.close());
        let mut got = Vec::new();
        loop {
            match q.pop() {
                Ok(v) => got.push(v),
                Err(PopError::Closed) => break,
                Err(e) => panic!("pop: {e:?}"),
            }
        }
        c.join().unwrap();
        match p.join().unwrap() {
            Ok(()) => assert_eq!(got, [7], "a pushed item must be popped"),
            Err(PushError::Closed(7)) => assert!(got.is_empty(), "a refused item was popped"),
            Err(e) => panic!("push: {e:?}"),
        }
    });
}

#[test]
fn dead_producer_slot_is_skipped_and_counted() {
    // Non-strict futex: the consumer finds the dead owner when it is about to sleep.
    common::model(|| {
        let q = ring();
        // Position 0 was claimed by a producer that died before publishing.
        q.loom_stage_dead_owner(0, true, 0, 0, 1);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(5).unwrap());
        assert_eq!(q.pop(), Ok(5));
        p.join().unwrap();
        assert_eq!(q.lost(), 1);
        assert_eq!(q.try_pop(), Err(PopError::Empty));
    });
}

#[test]
fn dead_consumer_slot_is_freed_for_producers() {
    common::model(|| {
        let q = ring();
        q.push(8).unwrap();
        q.push(9).unwrap();
        // A consumer claimed item 8 (position 0) and died while copying it: the ring is full.
        q.loom_stage_dead_owner(0, false, 0, 1, 2);
        let q2 = q.clone();
        let p = thread::spawn(move || q2.push(10).unwrap());
        assert_eq!(q.pop(), Ok(9));
        p.join().unwrap();
        assert_eq!(q.pop(), Ok(10));
        assert_eq!(q.lost(), 1);
    });
}
