//! Unit tests of [`MpmcBytes`] on the heap (cross-process tests: `tests/ring_mpmc.rs`).

use super::*;

#[test]
fn messages_of_every_length_round_trip() {
    let q = MpmcBytes::new(4, 20).unwrap();
    assert_eq!(q.capacity(), 4);
    assert_eq!(q.max_msg(), 20);
    let mut buf = Vec::new();
    for len in 0..=20usize {
        let msg: Vec<u8> = (0..len as u8).map(|b| b ^ 0x5A).collect();
        q.send(&msg).unwrap();
        assert_eq!(q.recv_into(&mut buf), Ok(len));
        assert_eq!(buf, msg);
    }
    assert_eq!(
        q.try_send(&[0; 21]),
        Err(SendError::TooLarge { len: 21, max: 20 })
    );
    for i in 0..4u8 {
        q.try_send(&[i; 3]).unwrap();
    }
    assert_eq!(q.try_send(b"x"), Err(SendError::Full));
    assert_eq!(q.try_recv().unwrap(), [0; 3]);
    q.close();
    assert_eq!(q.send(b"y"), Err(SendError::Closed));
    for i in 1..4u8 {
        assert_eq!(q.recv().unwrap(), [i; 3]);
    }
    assert_eq!(q.recv(), Err(RecvError::Closed));
}

#[test]
fn corrupted_lengths_and_geometry_are_errors() {
    let q = MpmcBytes::new(2, 16).unwrap();
    q.send(b"abc").unwrap();
    // Scribble over the length word of slot 0 (state word, then the length).
    q.slots[1].store(1 << 40, Ordering::Relaxed);
    assert_eq!(q.try_recv(), Err(RecvError::Corrupted));
    q.send(b"ok").unwrap();
    assert_eq!(q.try_recv().unwrap(), b"ok");
    // A scribbled max_msg cannot change the geometry (it is local): at most it shrinks the
    // largest message accepted.
    q.send(b"abc").unwrap();
    for bad in [u64::MAX, 1 << 30, 7, 1000, 0] {
        q.m.reserved(0).store(bad, Ordering::Relaxed);
        assert_eq!(q.capacity(), 2);
        assert!(q.max_msg() <= 24, "clamped to the slot's room");
        let _ = q.try_send(b"zz");
        let _ = q.recv_timeout(Duration::from_millis(1));
    }
    q.m.reserved(0).store(16, Ordering::Relaxed);
    while q.try_recv().is_ok() {}
    q.send(b"abc").unwrap();
    q.m.reserved(0).store(8, Ordering::Relaxed);
    assert_eq!(
        q.try_recv().unwrap(),
        b"abc",
        "slots still found where they are"
    );
    assert_eq!(
        q.try_send(&[0; 9]),
        Err(SendError::TooLarge { len: 9, max: 8 })
    );
}

#[test]
fn geometry_is_local_for_every_dimension() {
    for cap in [2u64, 4, 64] {
        for max in [0u64, 1, 7, 8, 9, 15, 16, 17, 100, 4096] {
            let q = MpmcBytes::new(cap, max).unwrap();
            assert_eq!(q.geometry(), Some((cap, stride(max))));
            assert!(stride(max) % 2 == 1 && (stride(max) - 2) * 8 >= max as usize);
            assert_eq!(q.max_msg(), max as usize);
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn serde_values_round_trip() {
    let q = MpmcBytes::new(4, 64).unwrap();
    let v = (42u32, None::<String>, "hello".to_string());
    q.send_value(&v).unwrap();
    let got: (u32, Option<String>, String) = q.recv_value().unwrap();
    assert_eq!(got, v);
    q.send_value(&vec![7u8; 100]).unwrap_err();
    q.send_value_timeout(&1u8, Duration::from_secs(1)).unwrap();
    assert!(matches!(
        q.recv_value::<String>(),
        Err(Error::Decode { .. })
    ));
    assert!(matches!(
        q.recv_value_timeout::<u8>(Duration::from_millis(1)),
        Err(Error::Recv(RecvError::Timeout))
    ));
}

#[test]
fn threads_many_to_many() {
    const N: u32 = 5_000;
    let q = MpmcBytes::new(8, 64).unwrap();
    let mut got: Vec<Vec<u8>> = std::thread::scope(|s| {
        let cons: Vec<_> = (0..2)
            .map(|_| {
                let q = &q;
                s.spawn(move || {
                    let mut v = Vec::new();
                    while let Ok(m) = q.recv() {
                        v.push(m);
                    }
                    v
                })
            })
            .collect();
        let prods: Vec<_> = (0..2u32)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..N {
                        let m = format!("{p}:{i}:{}", "z".repeat((i % 40) as usize));
                        q.send(m.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for p in prods {
            p.join().unwrap();
        }
        q.close();
        cons.into_iter().flat_map(|c| c.join().unwrap()).collect()
    });
    got.sort();
    let mut want: Vec<Vec<u8>> = (0..2u32)
        .flat_map(|p| (0..N).map(move |i| format!("{p}:{i}:{}", "z".repeat((i % 40) as usize))))
        .map(String::into_bytes)
        .collect();
    want.sort();
    assert_eq!(got, want);
}
