use super::*;
use crate::ring::{RecvError, SendError};
use std::time::Duration;

/// Message `i` of a test stream: length from the index (0..=max), content from the index.
fn msg(i: u64, max: usize) -> Vec<u8> {
    let len = (i.wrapping_mul(7919) % (max as u64 + 1)) as usize;
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

#[test]
fn dims_are_rounded_and_checked() {
    let r = ByteRing::new(100, 56).unwrap();
    assert_eq!(r.capacity(), 128);
    assert_eq!(r.max_msg(), 56);
    assert_eq!(ByteRing::new(1, 0).unwrap().capacity(), 16);
    assert!(matches!(
        ByteRing::new(128, 57),
        Err(Error::InvalidCapacity { requested: 57, .. })
    ));
    assert!(matches!(
        ByteRing::new(0, 0),
        Err(Error::InvalidCapacity { .. })
    ));
    assert!(matches!(
        ByteRing::new(MAX_CAPACITY + 1, 0),
        Err(Error::InvalidCapacity { .. })
    ));
    assert_eq!(max_msg_limit(16), 0);
    assert_eq!(max_msg_limit(4096), 2040);
}

#[test]
fn empty_max_and_too_large_messages() {
    let r = ByteRing::new(128, 56).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    tx.try_send(b"").unwrap();
    assert_eq!(r.len(), 8, "an empty message is one header word");
    let big = [0xabu8; 56];
    tx.try_send(&big).unwrap();
    assert_eq!(r.len(), 8 + 64);
    assert_eq!(
        tx.try_send(&[0u8; 57]),
        Err(SendError::TooLarge { len: 57, max: 56 })
    );
    assert_eq!(
        tx.send(&[0u8; 57]),
        Err(SendError::TooLarge { len: 57, max: 56 }),
        "a blocking send of a too-large message fails at once"
    );
    assert_eq!(rx.try_recv().unwrap(), b"");
    assert_eq!(rx.try_recv().unwrap(), big);
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    assert!(r.is_empty());
}

#[test]
fn full_then_timeout_then_room() {
    let r = ByteRing::new(64, 24).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    // 32-byte records: two fill the ring.
    tx.try_send(&[1; 24]).unwrap();
    tx.try_send(&[2; 24]).unwrap();
    assert_eq!(tx.try_send(b""), Err(SendError::Full));
    let t = std::time::Instant::now();
    assert_eq!(
        tx.send_timeout(b"x", Duration::from_millis(30)),
        Err(SendError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(rx.recv().unwrap(), [1; 24]);
    tx.try_send(b"x").unwrap();
    assert_eq!(rx.recv().unwrap(), [2; 24]);
    assert_eq!(rx.recv().unwrap(), b"x");
    let t = std::time::Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(30)),
        Err(RecvError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert!(!rx.poll(Duration::ZERO));
}

#[test]
fn wrap_around_at_every_offset() {
    // For every starting offset (every word of a 128-byte ring) and every length up to max,
    // the message after it crosses or meets the end: padding records must be right.
    let max = 56;
    for start in (0..128u64).step_by(8) {
        for len in 0..=max {
            let r = ByteRing::new(128, max as u64).unwrap();
            let (mut tx, mut rx) = r.split().unwrap();
            if start > 0 {
                // Move both positions to `start` with one message of start - 8 bytes.
                tx.try_send(&vec![9; start as usize - 8])
                    .unwrap_or_else(|_| {
                        // Too long for max_msg: use two.
                        tx.try_send(&[9; 56]).unwrap();
                        tx.try_send(&vec![9; start as usize - 72]).unwrap();
                    });
                while rx.try_recv().is_ok() {}
            }
            assert_eq!(r.positions(), (start, start));
            let m: Vec<u8> = (0..len).map(|k| k as u8 ^ 0x5a).collect();
            tx.try_send(&m).unwrap();
            assert_eq!(rx.try_recv().unwrap(), m, "start {start} len {len}");
            tx.try_send(b"after").unwrap();
            assert_eq!(rx.try_recv().unwrap(), b"after");
            assert!(r.is_empty());
        }
    }
}

#[test]
fn stream_of_varying_lengths_between_threads() {
    const N: u64 = 20_000;
    let max = 100;
    let r = ByteRing::new(512, max).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            for i in 0..N {
                tx.send(&msg(i, max as usize)).unwrap();
            }
            tx.close();
        });
        let mut buf = Vec::new();
        for i in 0..N {
            let n = rx.recv_into(&mut buf).unwrap();
            assert_eq!(n, buf.len());
            assert_eq!(buf, msg(i, max as usize), "message {i}");
        }
        assert_eq!(rx.recv(), Err(RecvError::Closed));
    });
}

#[test]
fn recv_slice_too_small_keeps_the_message() {
    let r = ByteRing::new(256, 100).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    tx.send(b"hello world").unwrap();
    let mut small = [0u8; 5];
    assert_eq!(
        rx.try_recv_slice(&mut small),
        Err(RecvError::TooSmall { needed: 11 })
    );
    assert_eq!(r.len(), 24, "still there");
    let mut big = [0u8; 64];
    assert_eq!(rx.try_recv_slice(&mut big), Ok(11));
    assert_eq!(&big[..11], b"hello world");
    assert_eq!(
        rx.recv_slice_timeout(&mut big, Duration::from_millis(1)),
        Err(RecvError::Timeout)
    );
}

#[test]
fn close_drains_then_reports_closed() {
    let r = ByteRing::new(256, 100).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    tx.send(b"a").unwrap();
    tx.send(b"b").unwrap();
    rx.close();
    assert!(tx.is_closed() && r.is_closed());
    assert_eq!(tx.send(b"c"), Err(SendError::Closed));
    assert!(rx.poll(Duration::MAX), "a message is ready");
    assert_eq!(rx.recv().unwrap(), b"a");
    assert_eq!(rx.recv().unwrap(), b"b");
    assert!(
        rx.poll(Duration::MAX),
        "closed and drained: a receive would not block"
    );
    assert_eq!(rx.recv(), Err(RecvError::Closed));
    assert_eq!(rx.try_recv(), Err(RecvError::Closed));
}

#[test]
fn one_handle_per_side() {
    let r = ByteRing::new(256, 100).unwrap();
    let tx = r.sender().unwrap();
    assert!(matches!(
        r.sender(),
        Err(Error::RingSideTaken { side: "sender", .. })
    ));
    let rx = r.receiver().unwrap();
    assert!(matches!(
        r.receiver(),
        Err(Error::RingSideTaken {
            side: "receiver",
            ..
        })
    ));
    assert_eq!(r.holders(), (std::process::id(), std::process::id()));
    drop(tx);
    drop(rx);
    assert_eq!(r.holders(), (0, 0));
    let (_tx, _rx) = r.split().unwrap();
}

/// A ring with `n` messages sent and not received, for scribbling on.
fn loaded(n: u64) -> (std::sync::Arc<ByteRing>, u64) {
    let r = ByteRing::new(128, 40).unwrap();
    {
        let mut tx = r.sender().unwrap();
        for i in 0..n {
            tx.send(&[i as u8; 12]).unwrap();
        }
    }
    (r, n)
}

#[test]
fn corrupted_headers_are_errors_and_nothing_is_consumed() {
    const MSG: u64 = 0x4d << 32;
    const PAD: u64 = 0x50 << 32;
    for (what, bad) in [
        ("zero header", 0),
        ("unknown kind", 0x33 << 32 | 12),
        ("high bits", 1 << 50 | MSG | 12),
        ("length above max_msg", MSG | 41),
        ("length past the tail", MSG | 24),
        ("huge length", MSG | 0xFFFF_FFFF),
        ("padding not to the end", PAD | 8),
        ("padding to the end without a record", PAD | 128),
    ] {
        let (r, _) = loaded(1);
        r.data[0].store(bad, Ordering::Relaxed);
        let mut rx = r.receiver().unwrap();
        assert_eq!(rx.try_recv(), Err(RecvError::Corrupted), "{what}");
        assert_eq!(rx.recv(), Err(RecvError::Corrupted), "{what}");
        assert!(
            rx.poll(Duration::ZERO),
            "{what}: poll says recv would not block"
        );
        assert_eq!(r.positions(), (0, 24), "{what}: nothing consumed");
        // Repaired, the message is there.
        r.data[0].store(MSG | 12, Ordering::Relaxed);
        assert_eq!(rx.try_recv().unwrap(), [0; 12], "{what}");
    }
}

#[test]
fn corrupted_positions_are_errors() {
    for (what, head, tail) in [
        ("tail not on a word", 0, 13),
        ("tail past head + capacity", 0, 136),
        ("tail behind head", 24, 16),
        ("head not on a word", 3, 24),
    ] {
        let (r, _) = loaded(1);
        r.h.head.store(head, Ordering::Relaxed);
        r.h.tail.store(tail, Ordering::Relaxed);
        let mut rx = r.receiver().unwrap();
        assert_eq!(rx.try_recv(), Err(RecvError::Corrupted), "{what}");
        drop(rx);
        let mut tx = r.sender().unwrap();
        // The sender only looks at head when it needs room; ask for more than is free.
        let e = (0..10).map(|_| tx.try_send(&[0; 40])).find(|r| r.is_err());
        assert!(
            matches!(e, Some(Err(SendError::Corrupted))),
            "{what}: sender got {e:?}"
        );
        // The lengths shown never exceed the capacity.
        assert!(r.len() <= r.capacity(), "{what}");
    }
}

#[test]
fn corrupted_max_msg_is_clamped() {
    let r = ByteRing::new(128, 40).unwrap();
    r.max_msg.store(u64::MAX, Ordering::Relaxed);
    assert_eq!(r.max_msg(), 56, "clamped to capacity / 2 - 8");
    let (mut tx, mut rx) = r.split().unwrap();
    assert_eq!(
        tx.try_send(&[0; 57]),
        Err(SendError::TooLarge { len: 57, max: 56 })
    );
    tx.try_send(&[1; 56]).unwrap();
    assert_eq!(rx.try_recv().unwrap(), [1; 56]);
}

#[cfg(feature = "serde")]
#[test]
fn values_round_trip_and_errors_are_typed() {
    let r = ByteRing::new(256, 32).unwrap();
    let (mut tx, mut rx) = r.split().unwrap();
    tx.send_value(&(42i32, None::<u8>, "hello")).unwrap();
    let v: (i32, Option<u8>, String) = rx.recv_value().unwrap();
    assert_eq!(v, (42, None, "hello".to_string()));
    // 33 bytes encoded (a length byte and 32 bytes): too large.
    assert!(matches!(
        tx.send_value(&[7u8; 32].as_slice()),
        Err(Error::Send(SendError::TooLarge { len: 33, max: 32 }))
    ));
    tx.send(&[0xff, 0xff]).unwrap();
    assert!(matches!(
        rx.recv_value::<String>(),
        Err(Error::Decode { .. })
    ));
    tx.close();
    assert!(matches!(
        rx.recv_value::<u8>(),
        Err(Error::Recv(RecvError::Closed))
    ));
}

#[test]
fn hostile_scribbles_never_panic_or_overrun() {
    // Sends and receives interleaved with writes of random (often plausible) values to random
    // header, payload and position words, as a peer scribbling over the ring would: every call
    // must return (a value or an error), never panic or read out of bounds, and received
    // messages never exceed max_msg.
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const MSG: u64 = 0x4d << 32;
    const PAD: u64 = 0x50 << 32;
    for round in 0..200 {
        let r = ByteRing::new(256, 64).unwrap();
        let (mut tx, mut rx) = r.split().unwrap();
        let mut buf = Vec::new();
        let mut small = [0u8; 16];
        for _ in 0..200 {
            let v = rnd();
            let plausible = match rnd() % 6 {
                0 => MSG | (v % 80),
                1 => PAD | (v % 300),
                2 => v & !7 & 0x3ff,
                3 => v % 600,
                4 => 0,
                _ => v,
            };
            match rnd() % 8 {
                0 => {
                    let i = (rnd() % 32) as usize;
                    r.data[i].store(plausible, Ordering::Relaxed);
                }
                1 if round % 4 == 0 => r.h.head.store(plausible, Ordering::Relaxed),
                2 if round % 4 == 1 => r.h.tail.store(plausible, Ordering::Relaxed),
                3 => {
                    let _ = tx.try_send(&vec![7u8; (rnd() % 70) as usize]);
                }
                4 => {
                    if let Ok(n) = rx.try_recv_into(&mut buf) {
                        assert!(n <= 64 && n == buf.len());
                    }
                }
                5 => {
                    if let Ok(n) = rx.try_recv_slice(&mut small) {
                        assert!(n <= 16);
                    }
                }
                6 => {
                    let _ = rx.poll(Duration::ZERO);
                    assert!(r.len() <= r.capacity());
                }
                _ => {
                    let _ = tx.try_send(&[1; 8]);
                    let _ = rx.try_recv();
                }
            }
        }
        let _ = (r.positions(), r.holders(), r.is_closed());
    }
}

#[test]
fn layout_is_pinned() {
    // RingHead (three padded lines), the padded max_msg line, then the data words.
    let line = core::mem::size_of::<CachePadded<u64>>();
    let r = ByteRing::new(16, 0).unwrap();
    let base = &*r as *const ByteRing as *const u8 as usize;
    assert_eq!(r.data.as_ptr() as usize - base, 4 * line);
    assert_eq!(
        core::mem::size_of_val(&*r),
        (4 * line + 16).next_multiple_of(line)
    );
    assert_eq!(core::mem::align_of_val(&*r), line);
}

/// Byte-ring ends own their ring and move into threads (issue 11, item 7).
#[test]
fn ends_are_owned_and_move_into_threads() {
    fn owned<E: Send + Sync + 'static>(_: &E) {}
    let (mut tx, mut rx) = ByteRing::new(256, 64).unwrap().split().unwrap();
    owned(&tx);
    owned(&rx);
    let t = std::thread::spawn(move || {
        for i in 0..500u32 {
            tx.send(&i.to_le_bytes()).unwrap();
        }
    });
    for i in 0..500u32 {
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
    t.join().unwrap();
}
