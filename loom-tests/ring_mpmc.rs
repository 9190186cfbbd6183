//! loom models of the MPMC ring (capacity 2, strict futex so a forgotten wake is a deadlock):
//! two producers and one consumer, one producer and two consumers, close while a consumer sleeps.
#![cfg(feature = "loom")]

use loom::thread;
use shmkit::ring::{MpmcRing, PopError};
use shmkit::sync::loom_futex;
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    loom::model(f);
    loom_futex::set_strict(false);
}

fn ring() -> Arc<MpmcRing<u64>> {
    Arc::from(MpmcRing::<u64>::new(2).unwrap())
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
        assert_eq!(q.try_pop(), Ok(3));
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
