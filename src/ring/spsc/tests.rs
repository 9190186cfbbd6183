//! Unit tests of [`SpscRing`] on the heap (cross-process tests: `tests/ring_spsc.rs`).

use super::*;
use crate::ring::{PopError, PushError};
use std::time::Duration;
use std::time::Instant;

#[test]
fn fifo_full_empty_and_rounding() {
    assert!(matches!(
        SpscRing::<u32>::new(0),
        Err(Error::InvalidCapacity { requested: 0, .. })
    ));
    assert!(SpscRing::<u32>::new(MAX_CAPACITY + 1).is_err());
    let r = SpscRing::<[u16; 5]>::new(5).unwrap();
    assert_eq!(r.capacity(), 8);
    let (mut tx, mut rx) = r.split().unwrap();
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    for round in 0..5u16 {
        for i in 0..8u16 {
            tx.try_push([round, i, 1, 2, 3]).unwrap();
        }
        assert!(tx.is_full());
        assert_eq!(tx.try_push([9; 5]), Err(PushError::Full([9; 5])));
        assert_eq!(rx.len(), 8);
        for i in 0..8u16 {
            assert_eq!(rx.try_pop(), Ok([round, i, 1, 2, 3]));
        }
        assert!(rx.is_empty());
        assert_eq!(rx.try_pop(), Err(PopError::Empty));
    }
}

#[test]
fn close_drains_then_closed() {
    let r = SpscRing::<u64>::new(4).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    tx.push(1).unwrap();
    tx.push(2).unwrap();
    rx.close();
    assert!(tx.is_closed());
    assert_eq!(tx.try_push(3), Err(PushError::Closed(3)));
    assert_eq!(tx.push(3), Err(PushError::Closed(3)));
    assert_eq!(rx.pop(), Ok(1));
    assert_eq!(rx.try_pop(), Ok(2));
    assert_eq!(rx.try_pop(), Err(PopError::Closed));
    assert_eq!(rx.pop(), Err(PopError::Closed));
}

#[test]
fn claims_are_exclusive_and_released_on_drop() {
    let r = SpscRing::<u8>::new(2).unwrap();
    let tx = r.producer().unwrap();
    assert!(matches!(
        r.producer(),
        Err(Error::RingSideTaken { side: "producer", pid }) if pid == std::process::id()
    ));
    assert_eq!(r.holders(), (std::process::id(), 0));
    drop(tx);
    assert_eq!(r.holders(), (0, 0));
    let _tx = r.producer().unwrap();
    let _rx = r.consumer().unwrap();
    assert!(matches!(r.consumer(), Err(Error::RingSideTaken { .. })));
}

#[test]
fn dead_holder_is_taken_over() {
    let r = SpscRing::<u8>::new(2).unwrap();
    // A pid that does not exist (above the kernel's pid_max) stands for a dead holder.
    r.h.ctl
        .producer
        .store(u64::from(i32::MAX as u32), Ordering::Relaxed);
    assert!(r.producer().is_ok());
}

#[test]
fn timeouts_return_on_time() {
    let r = SpscRing::<u64>::new(1).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    let t = Instant::now();
    assert_eq!(
        rx.pop_timeout(Duration::from_millis(50)),
        Err(PopError::Timeout)
    );
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(50) && e < Duration::from_secs(5),
        "{e:?}"
    );
    tx.push(7).unwrap();
    let t = Instant::now();
    assert_eq!(
        tx.push_timeout(8, Duration::from_millis(50)),
        Err(PushError::Timeout(8))
    );
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(50) && e < Duration::from_secs(5),
        "{e:?}"
    );
    assert_eq!(rx.pop_timeout(Duration::ZERO), Ok(7));
}

#[test]
fn threads_in_order_with_sleeps() {
    let r = SpscRing::<u64>::new(4).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..20_000u64 {
                if i % 5000 == 0 {
                    // Let the consumer fall asleep on the futex.
                    std::thread::sleep(Duration::from_millis(20));
                }
                tx.push(i).unwrap();
            }
            tx.close();
        });
        for i in 0..20_000u64 {
            if i % 7000 == 0 {
                std::thread::sleep(Duration::from_millis(20)); // let the producer sleep
            }
            assert_eq!(rx.pop(), Ok(i));
        }
        assert_eq!(rx.pop(), Err(PopError::Closed));
    });
}

#[test]
fn close_wakes_sleepers() {
    let r = SpscRing::<u64>::new(1).unwrap();
    let (_tx, mut rx) = r.split().unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(move || rx.pop());
        std::thread::sleep(Duration::from_millis(50));
        r.close();
        assert_eq!(h.join().unwrap(), Err(PopError::Closed));
    });
    let r = SpscRing::<u64>::new(1).unwrap();
    let (mut tx2, _rx) = r.split().unwrap();
    tx2.push(1).unwrap();
    std::thread::scope(|s| {
        let h = s.spawn(move || tx2.push(2));
        std::thread::sleep(Duration::from_millis(50));
        r.close();
        assert_eq!(h.join().unwrap(), Err(PushError::Closed(2)));
    });
}

#[test]
fn hostile_positions_give_errors_not_panics() {
    let r = SpscRing::<[u64; 3]>::new(4).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    for &(head, tail) in &[
        (0u64, 1000u64),
        (10, 3),
        (u64::MAX, 0),
        (0, u64::MAX),
        (5, 9),
    ] {
        r.h.head.store(head, Ordering::Relaxed);
        r.h.tail.store(tail, Ordering::Relaxed);
        // Whatever the positions say, every call returns (errors or values), never panics.
        for _ in 0..10 {
            let _ = rx.try_pop();
            let _ = tx.try_push([1, 2, 3]);
            let _ = rx.pop_timeout(Duration::from_millis(1));
            let _ = tx.push_timeout([4, 5, 6], Duration::from_millis(1));
            let _ = tx.push_slice(&[[7, 8, 9]; 6]);
            let mut buf = [[0u64; 3]; 6];
            let _ = rx.pop_into(&mut buf);
        }
        let _ = (r.len(), r.is_full(), r.is_empty());
        assert!(r.len() <= 4);
    }
    // Consumer at head 0, shared tail far ahead: detected.
    let r = SpscRing::<u64>::new(4).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    r.h.tail.store(1000, Ordering::Relaxed);
    assert_eq!(rx.try_pop(), Err(PopError::Corrupted));
    r.h.tail.store(0, Ordering::Relaxed);
    for i in 0..4 {
        tx.try_push(i).unwrap();
    }
    r.h.head.store(1 << 40, Ordering::Relaxed);
    assert_eq!(tx.try_push(9), Err(PushError::Corrupted(9)));
}

#[test]
fn batches_wrap_around_partially() {
    let r = SpscRing::<u32>::new(8).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    let mut next_in = 0u32;
    let mut next_out = 0u32;
    let mut buf = [0u32; 5];
    for _ in 0..50 {
        let batch: Vec<u32> = (next_in..next_in + 5).collect();
        let n = tx.push_slice(&batch).unwrap();
        assert!(n <= 5);
        next_in += n as u32;
        assert_eq!(r.len() as u32, next_in - next_out);
        let m = rx.pop_into(&mut buf[..3]).unwrap();
        for &v in &buf[..m] {
            assert_eq!(v, next_out);
            next_out += 1;
        }
    }
    assert_eq!(tx.push_slice(&[0; 0]), Ok(0));
    while next_out < next_in {
        let m = rx.pop_into(&mut buf).unwrap();
        assert!(m > 0);
        for &v in &buf[..m] {
            assert_eq!(v, next_out);
            next_out += 1;
        }
    }
    assert_eq!(rx.pop_into(&mut buf), Ok(0));
    tx.push_slice(&[1, 2]).unwrap();
    r.close();
    assert_eq!(tx.push_slice(&[3]), Err(PushError::Closed(())));
    assert_eq!(rx.pop_into(&mut buf), Ok(2));
    assert_eq!(rx.pop_into(&mut buf), Err(PopError::Closed));
}

#[test]
fn batches_between_threads_in_order() {
    // Under miri (data-race detector, weak-memory emulation) a shorter run.
    const N: u32 = if cfg!(miri) { 500 } else { 100_000 };
    let r = SpscRing::<u32>::new(64).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut i = 0u32;
            while i < N {
                let batch: Vec<u32> = (i..(i + 7).min(N)).collect();
                let n = tx.push_slice(&batch).unwrap();
                if n == 0 {
                    std::thread::yield_now();
                }
                i += n as u32;
            }
            tx.close();
        });
        let mut buf = [0u32; 10];
        let mut next = 0u32;
        loop {
            match rx.pop_into(&mut buf) {
                Ok(m) => {
                    for &v in &buf[..m] {
                        assert_eq!(v, next);
                        next += 1;
                    }
                    if m == 0 {
                        std::thread::yield_now();
                    }
                }
                Err(PopError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(next, N);
    });
}

/// The ends own their ring (issue 11, item 7): `Send + 'static`, movable into threads and
/// structs, and they keep a heap ring alive after the last `Arc` outside them is gone.
#[test]
fn ends_are_owned_and_move_into_threads() {
    fn owned<E: Send + Sync + 'static>(_: &E) {}
    let (mut tx, mut rx) = SpscRing::<u64>::new(4).unwrap().split().unwrap();
    owned(&tx);
    owned(&rx);
    let t = std::thread::spawn(move || {
        for i in 0..1000 {
            tx.push(i).unwrap();
        }
        tx // handed back: still usable, still holding its side
    });
    for i in 0..1000 {
        assert_eq!(rx.pop(), Ok(i));
    }
    let tx = t.join().unwrap();
    assert_eq!(
        tx.ring().holders(),
        (std::process::id(), std::process::id())
    );
    drop(tx);
    assert_eq!(rx.ring().holders(), (0, std::process::id()));
}

/// A producer killed between publishing `tail` and writing its item's stamp (two stores in a
/// row): the next producer publishes the item on takeover instead of leaving the consumer
/// waiting for that stamp for ever (found by the kill soak's design review).
#[test]
fn a_producer_killed_between_tail_and_stamp_loses_nothing() {
    let r = SpscRing::<u64>::new(4).unwrap();
    let mut rx = r.consumer().unwrap();
    {
        let mut tx = r.producer().unwrap();
        tx.push(1).unwrap();
        tx.push(2).unwrap();
    }
    // Stage the death: item 2 (position 1) written and covered by `tail`, its stamp not yet.
    r.slots[stride::<u64>()].store(0, Ordering::Relaxed);
    assert_eq!(rx.try_pop(), Ok(1));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    let mut tx = r.producer().unwrap();
    tx.push(3).unwrap();
    assert_eq!(rx.try_pop(), Ok(2), "the dead producer's last item");
    assert_eq!(rx.try_pop(), Ok(3));
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
}
