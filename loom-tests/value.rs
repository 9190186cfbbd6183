//! loom models of [`AtomicValue`]: `compare_exchange`, `fetch_update` and the CAS-loop
//! `fetch_add` (floats, narrow integers) from 2 threads lose no update, and `store`/`load`
//! publish prior writes.
//!
//! Run: `cargo test --features loom --test loom_value` (bounds in `common/mod.rs`;
//! `LOOM_MAX_PREEMPTIONS=3` searches deeper).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::Arc;
use shmkit::sync::{AtomicU64, Ordering};
use shmkit::AtomicValue;

/// Increments through a hand-written load + `compare_exchange` retry loop.
fn cas_increment(v: &AtomicValue<u32>) -> u32 {
    let mut cur = v.load();
    loop {
        match v.compare_exchange(cur, cur + 1) {
            Ok(prev) => return prev,
            Err(now) => cur = now,
        }
    }
}

#[test]
fn compare_exchange_loops_lose_no_update() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(0u32));
        let v2 = v.clone();
        let t = thread::spawn(move || cas_increment(&v2));
        let mine = cas_increment(&v);
        let theirs = t.join().unwrap();
        assert_ne!(mine, theirs, "two increments saw the same previous value");
        assert_eq!(mine + theirs, 1);
        assert_eq!(v.load(), 2);
    });
}

#[test]
fn compare_exchange_from_the_same_value_has_one_winner() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(7i16));
        let v2 = v.clone();
        let t = thread::spawn(move || v2.compare_exchange(7, 1));
        let mine = v.compare_exchange(7, 2);
        let theirs = t.join().unwrap();
        match (mine, theirs) {
            (Ok(7), Err(2)) => assert_eq!(v.load(), 2),
            (Err(1), Ok(7)) => assert_eq!(v.load(), 1),
            other => panic!("not exactly one winner: {other:?}"),
        }
    });
}

#[test]
fn fetch_update_loses_no_update() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(10u64));
        let v2 = v.clone();
        let t = thread::spawn(move || v2.fetch_update(|x| Some(x * 2)).unwrap());
        let mine = v.fetch_update(|x| Some(x + 1)).unwrap();
        let theirs = t.join().unwrap();
        // Either (10 + 1) * 2 or 10 * 2 + 1, each update applied to the other's result.
        match v.load() {
            22 => assert_eq!((mine, theirs), (10, 11)),
            21 => assert_eq!((mine, theirs), (20, 10)),
            other => panic!("lost update: final value {other}"),
        }
    });
}

#[test]
fn fetch_update_none_stops_without_storing() {
    // A capped increment: of two threads only one may pass the cap of 1.
    common::model(|| {
        let v = Arc::new(AtomicValue::new(0u8));
        let v2 = v.clone();
        let bump = |v: &AtomicValue<u8>| v.fetch_update(|x| (x < 1).then_some(x + 1));
        let t = thread::spawn(move || bump(&v2));
        let mine = bump(&v);
        let theirs = t.join().unwrap();
        match (mine, theirs) {
            (Ok(0), Err(1)) | (Err(1), Ok(0)) => {}
            other => panic!("cap broken: {other:?}"),
        }
        assert_eq!(v.load(), 1);
    });
}

#[test]
fn float_fetch_add_loses_no_update() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(0.5f64));
        let v2 = v.clone();
        let t = thread::spawn(move || v2.fetch_add(1.0));
        let mine = v.fetch_add(2.0);
        let theirs = t.join().unwrap();
        assert_eq!(v.load(), 3.5);
        assert!(
            (mine, theirs) == (0.5, 2.5) || (mine, theirs) == (1.5, 0.5),
            "previous values {mine} and {theirs}"
        );
    });
}

#[test]
fn float32_fetch_add_and_sub_lose_no_update() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(1.0f32));
        let v2 = v.clone();
        let t = thread::spawn(move || {
            v2.fetch_sub(0.25);
        });
        v.fetch_add(4.0);
        t.join().unwrap();
        assert_eq!(v.load(), 4.75);
    });
}

#[test]
fn narrow_integer_fetch_add_wraps_and_loses_no_update() {
    // u16 has no native 8-byte add: the CAS loop must keep the value in its 16 bits.
    common::model(|| {
        let v = Arc::new(AtomicValue::new(u16::MAX));
        let v2 = v.clone();
        let t = thread::spawn(move || v2.fetch_add(1));
        v.fetch_add(2);
        t.join().unwrap();
        assert_eq!(v.load(), 2);
    });
}

#[test]
fn store_publishes_prior_writes() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(0.0f64));
        let data = Arc::new(AtomicU64::new(0));
        let (v2, d2) = (v.clone(), data.clone());
        let t = thread::spawn(move || {
            d2.store(7, Ordering::Relaxed);
            v2.store(1.0);
        });
        if v.load() == 1.0 {
            assert_eq!(data.load(Ordering::Relaxed), 7);
        }
        t.join().unwrap();
    });
}

#[test]
fn swap_hands_each_value_to_exactly_one_taker() {
    common::model(|| {
        let v = Arc::new(AtomicValue::new(1u32));
        let v2 = v.clone();
        let t = thread::spawn(move || v2.swap(2));
        let mine = v.swap(3);
        let theirs = t.join().unwrap();
        let mut all = [mine, theirs, v.load()];
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
    });
}
