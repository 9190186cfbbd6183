//! Unit tests of [`MpmcRing`] on the heap (cross-process tests: `tests/ring_mpmc.rs`).

use super::*;
use std::time::Instant;

#[test]
fn fifo_full_empty_and_rounding() {
    assert!(matches!(
        MpmcRing::<u32>::new(0),
        Err(Error::InvalidCapacity { requested: 0, .. })
    ));
    assert_eq!(MpmcRing::<u32>::new(1).unwrap().capacity(), 2);
    let q = MpmcRing::<[u8; 11]>::new(3).unwrap();
    assert_eq!(q.capacity(), 4);
    assert_eq!(q.try_pop(), Err(PopError::Empty));
    for round in 0..5u8 {
        for i in 0..4u8 {
            q.try_push([round, i, 0, 0, 0, 0, 0, 0, 0, 0, 9]).unwrap();
        }
        assert!(q.is_full());
        assert_eq!(q.try_push([7; 11]), Err(PushError::Full([7; 11])));
        for i in 0..4u8 {
            assert_eq!(q.try_pop(), Ok([round, i, 0, 0, 0, 0, 0, 0, 0, 0, 9]));
        }
        assert!(q.is_empty());
    }
}

#[test]
fn close_drains_then_closed() {
    let q = MpmcRing::<u64>::new(4).unwrap();
    q.push(1).unwrap();
    q.close();
    assert_eq!(q.push(2), Err(PushError::Closed(2)));
    assert_eq!(q.pop(), Ok(1));
    assert_eq!(q.pop(), Err(PopError::Closed));
}

#[test]
fn timeouts_return_on_time() {
    let q = MpmcRing::<u64>::new(2).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.pop_timeout(Duration::from_millis(50)),
        Err(PopError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(50) && t.elapsed() < Duration::from_secs(5));
    q.push(1).unwrap();
    q.push(2).unwrap();
    let t = Instant::now();
    assert_eq!(
        q.push_timeout(3, Duration::from_millis(50)),
        Err(PushError::Timeout(3))
    );
    assert!(t.elapsed() >= Duration::from_millis(50) && t.elapsed() < Duration::from_secs(5));
}

#[test]
fn threads_four_by_four_multiset_and_order() {
    const N: u64 = 20_000;
    let q = MpmcRing::<u64>::new(8).unwrap();
    let got: Vec<Vec<u64>> = std::thread::scope(|s| {
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let q = &q;
                s.spawn(move || {
                    let mut v = Vec::new();
                    while let Ok(x) = q.pop() {
                        v.push(x);
                    }
                    v
                })
            })
            .collect();
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let q = &q;
                s.spawn(move || {
                    for i in 0..N {
                        q.push(p << 32 | i).unwrap();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        q.close();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let mut all = Vec::new();
    for v in &got {
        // Each consumer sees each producer's items in increasing order.
        let mut last = [None::<u64>; 4];
        for &x in v {
            let (p, i) = ((x >> 32) as usize, x & 0xFFFF_FFFF);
            assert!(last[p].is_none_or(|l| l < i), "producer {p} out of order");
            last[p] = Some(i);
        }
        all.extend_from_slice(v);
    }
    all.sort_unstable();
    let want: Vec<u64> = (0..4u64)
        .flat_map(|p| (0..N).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all, want);
}

#[test]
fn hostile_sequences_and_positions_give_errors_not_panics() {
    let q = MpmcRing::<[u64; 2]>::new(4).unwrap();
    let patterns = [0u64, 1, 3, 1000, u64::MAX, 1 << 63, 5];
    for (k, &a) in patterns.iter().enumerate() {
        for (i, w) in q.slots.iter().enumerate() {
            w.store(a.wrapping_add(i as u64 * k as u64), Ordering::Relaxed);
        }
        q.h.head
            .store(patterns[(k + 1) % patterns.len()], Ordering::Relaxed);
        q.h.tail
            .store(patterns[(k + 3) % patterns.len()], Ordering::Relaxed);
        for _ in 0..10 {
            let _ = q.try_pop();
            let _ = q.try_push([1, 2]);
            let _ = q.pop_timeout(Duration::from_millis(1));
            let _ = q.push_timeout([3, 4], Duration::from_millis(1));
        }
        assert!(q.len() <= 4);
    }
}

/// More threads at once than the ring has lines: 127 get a line each, the rest share the last
/// one an operation at a time, and every item arrives. A thread started after they exited takes
/// over an exited thread's line instead of the shared one.
#[test]
fn more_threads_than_lines_share_the_last_line_and_lines_are_reused() {
    use super::registry::{LINES, SHARED_LINE};
    let n = LINES + 8;
    let q = MpmcRing::<u64>::new(2 * n as u64).unwrap();
    let all_pushed = std::sync::Barrier::new(n);
    let mine = crate::process::my_word();
    let mut got: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..n as u64)
            .map(|t| {
                let (q, b) = (&q, &all_pushed);
                s.spawn(move || {
                    q.push_timeout(t, Duration::from_secs(20)).unwrap();
                    b.wait();
                    q.pop_timeout(Duration::from_secs(20)).unwrap()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    got.sort_unstable();
    assert_eq!(got, (0..n as u64).collect::<Vec<_>>());
    let own = q.m.lines[..SHARED_LINE as usize].iter();
    assert!(own.clone().all(|l| l.owner.load(Ordering::Relaxed) == mine));
    assert_eq!(
        q.m.lines[SHARED_LINE as usize]
            .owner
            .load(Ordering::Relaxed),
        0
    );
    assert!(q.is_empty());
    assert_eq!(q.lost(), 0);
    let q2 = q.clone();
    let (line, tid) =
        std::thread::spawn(move || (q2.core().me(), u64::from(crate::process::tid())))
            .join()
            .unwrap();
    assert_ne!(line, SHARED_LINE, "an exited thread's line is taken over");
    assert_eq!(q.m.lines[line as usize].tid.load(Ordering::Relaxed), tid);
}
