//! Unit tests of [`Barrier`](super::Barrier): hostile values in every shared word give errors or
//! wrong counts, never a panic or a hang (issue 10, item 8: `arrived + 1` overflowed and the
//! panic left an internal lock held).

use super::*;
use std::time::Instant;

fn exercise(b: &Barrier) {
    let t = Instant::now();
    for _ in 0..2 {
        let _ = b.try_wait();
        let _ = b.wait_timeout(Duration::from_millis(1));
        let _ = (
            b.generation(),
            b.arrived(),
            b.parties(),
            b.is_broken(),
            format!("{b:?}"),
        );
        b.reset().unwrap();
        let _ = b.wait_timeout(Duration::from_millis(1));
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn hostile_words_neither_panic_nor_hang() {
    let patterns = [
        0,
        1,
        u64::MAX,
        u64::MAX >> 2,
        0xffff << 32,
        0x5555_5555_5555_5555,
    ];
    for &p in &patterns {
        for &q in &patterns {
            let b = Barrier::new(3);
            b.state.store(p, Ordering::Relaxed);
            b.wake.store(q as u32, Ordering::Relaxed);
            b.parties.store(q as u32, Ordering::Relaxed);
            b.broke.store(p as u32, Ordering::Relaxed);
            for (i, s) in b.slots.iter().enumerate() {
                s.owner
                    .store(if i % 2 == 0 { p } else { q }, Ordering::Relaxed);
                s.arrived
                    .store(if i % 3 == 0 { q } else { p }, Ordering::Relaxed);
            }
            exercise(&b);
        }
    }
}

#[test]
fn arrived_at_its_maximum_completes_instead_of_overflowing() {
    let b = Barrier::new(MAX_PARTIES);
    b.state
        .store(State::of(7, MAX_PARTIES, 0).0, Ordering::Relaxed);
    assert!(matches!(b.wait_timeout(Duration::from_millis(1)), Ok(true)));
    assert_eq!((b.generation(), b.arrived()), (8, 0));
    b.state
        .store(State::of(u32::MAX, 5, 0).0, Ordering::Relaxed);
    b.parties.store(u32::MAX, Ordering::Relaxed);
    assert_eq!(b.parties(), MAX_PARTIES);
    assert!(matches!(b.try_wait(), Err(Error::WouldBlock { .. })));
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(1)),
        Err(Error::BarrierBroken { .. })
    ));
    assert_eq!(b.generation(), 0, "the generation wraps");
}

#[test]
fn a_late_waiter_learns_its_generation_broke() {
    // Generation 4 broke, was reset, and generation 5 completed before a waiter of 4 woke.
    let b = Barrier::new(2);
    b.broke.store(5, Ordering::Relaxed);
    assert!(b.outcome(State::of(6, 0, 0), 4).is_err());
    assert!(matches!(b.outcome(State::of(6, 0, 0), 5), Ok(false)));
    assert!(b.outcome(State::of(5, 0, BROKEN | PREV_BROKEN), 4).is_err());
    assert!(matches!(b.outcome(State::of(5, 0, 0), 4), Ok(false)));
}

#[test]
fn wait_interruptible_returns_arrival_indices_and_gives_up_by_breaking() {
    let b = Barrier::new(3);
    let mut got: Vec<u32> = std::thread::scope(|s| {
        let ts: Vec<_> = (0..3)
            .map(|_| s.spawn(|| b.wait_interruptible(None, || false).unwrap()))
            .collect();
        ts.into_iter().map(|t| t.join().unwrap()).collect()
    });
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2]);

    // A waiter that gives up breaks the barrier for the others, within a few naps.
    let t = Instant::now();
    std::thread::scope(|s| {
        let other = s.spawn(|| b.wait_timeout(Duration::from_secs(20)));
        let mut calls = 0;
        let r = b.wait_interruptible(None, || {
            calls += 1;
            calls > 3
        });
        assert!(
            matches!(r, Err(Error::BarrierBroken { parties: 3 })),
            "{r:?}"
        );
        assert!(matches!(
            other.join().unwrap(),
            Err(Error::BarrierBroken { .. })
        ));
    });
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(b.is_broken());
}

#[test]
fn abort_breaks_waiters_and_later_waits_until_reset() {
    let b = Barrier::new(2);
    std::thread::scope(|s| {
        let w = s.spawn(|| b.wait_timeout(Duration::from_secs(20)));
        while b.arrived() == 0 {
            std::thread::yield_now();
        }
        b.abort();
        assert!(matches!(
            w.join().unwrap(),
            Err(Error::BarrierBroken { .. })
        ));
    });
    assert!(b.is_broken());
    assert!(matches!(b.try_wait(), Err(Error::BarrierBroken { .. })));
    b.abort(); // already broken: stays so
    b.reset().unwrap();
    assert!(!b.is_broken());
}
