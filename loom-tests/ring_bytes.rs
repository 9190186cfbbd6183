//! loom models of the byte ring: FIFO of varying lengths through a 32-byte ring (a padding record
//! at the wrap) with both sides sleeping, no lost wake-up (a strict futex that blocks until
//! woken, so a forgotten wake is a loom deadlock), and close while a side sleeps.
#![cfg(feature = "loom")]

mod common;

use common::thread;
use shmkit::sync::loom_futex;
use shmkit::{ByteRing, RecvError, SendError};
use std::sync::Arc;

fn strict_model(f: impl Fn() + Sync + Send + 'static) {
    loom_futex::set_strict(true);
    common::model(f);
    loom_futex::set_strict(false);
}

/// 32 bytes, messages of up to 8 bytes (records of 8 or 16 bytes).
fn ring() -> Arc<ByteRing> {
    ByteRing::new(32, 8).unwrap()
}

#[test]
fn fifo_with_wrap_both_sides_sleep() {
    // Records at 0..16 and 16..24; the third does not fit before the end: padding 24..32 and
    // the record at 0..16, which needs the first one consumed; the fourth goes to 16..32. The sender must wait for room in
    // some schedules, the receiver for messages in others; every wait must be woken.
    strict_model(|| {
        let r = ring();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.sender().unwrap();
            tx.send(&[1; 8]).unwrap();
            tx.send(&[]).unwrap();
            tx.send(&[3; 5]).unwrap();
            tx.send(&[4; 8]).unwrap();
        });
        let mut rx = r.receiver().unwrap();
        assert_eq!(rx.recv().unwrap(), [1; 8]);
        assert_eq!(rx.recv().unwrap(), []);
        assert_eq!(rx.recv().unwrap(), [3; 5]);
        // Into a slice: too small first (the message stays), then big enough.
        let mut small = [0u8; 4];
        let mut buf = [0u8; 8];
        match rx.try_recv_slice(&mut small) {
            Err(RecvError::TooSmall { needed: 8 }) => {
                assert_eq!(
                    rx.recv_slice_timeout(&mut buf, std::time::Duration::MAX),
                    Ok(8)
                )
            }
            Err(RecvError::Empty) => assert_eq!(
                rx.recv_slice_timeout(&mut buf, std::time::Duration::MAX),
                Ok(8)
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(buf, [4; 8]);
        t.join().unwrap();
        assert!(rx.is_empty());
        assert_eq!(r.positions(), (64, 64));
    });
}

#[test]
fn sleeping_receiver_is_woken_by_send() {
    strict_model(|| {
        let r = ring();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.sender().unwrap();
            tx.send(&[7; 3]).unwrap();
        });
        let mut rx = r.receiver().unwrap();
        assert_eq!(rx.recv().unwrap(), [7; 3]);
        t.join().unwrap();
    });
}

#[test]
fn close_wakes_a_sleeping_receiver_after_draining() {
    strict_model(|| {
        let r = ring();
        let r2 = r.clone();
        let t = thread::spawn(move || {
            let mut tx = r2.sender().unwrap();
            tx.send(&[5]).unwrap();
            tx.close();
            assert_eq!(tx.try_send(&[6]), Err(SendError::Closed));
        });
        let mut rx = r.receiver().unwrap();
        assert_eq!(rx.recv().unwrap(), [5]);
        assert_eq!(rx.recv(), Err(RecvError::Closed));
        t.join().unwrap();
    });
}

#[test]
fn close_wakes_a_sleeping_sender() {
    strict_model(|| {
        let r = ring();
        let mut tx = r.sender().unwrap();
        tx.send(&[1; 8]).unwrap();
        tx.send(&[2; 8]).unwrap(); // full
        let r2 = r.clone();
        let t = thread::spawn(move || r2.close());
        assert_eq!(tx.send(&[]), Err(SendError::Closed));
        t.join().unwrap();
    });
}
