//! Unit tests of [`Semaphore`](super::Semaphore): the protocol's repair of half-done operations,
//! and hostile values in every shared word (no panic, no hang, counts within their bounds).

use super::*;
use std::time::Instant;

/// An owner word of a process that does not exist (pid beyond Linux's limit of 2²²... minus a
/// few; the start tag makes it a plausible record).
const DEAD: u64 = ((1 << 22) - 3) | (77 << 22);

#[test]
fn committed_operations_of_a_dead_process_are_completed_once() {
    // A dead process committed an acquire on its slot and was killed before applying it: the
    // next operation applies it, the sweep reclaims exactly that permit.
    let s = Semaphore::new(2);
    s.holders[3].owner.store(DEAD, Ordering::Relaxed);
    let st = s.load();
    assert!(s.commit(st, st.next(1, 3, ACQUIRE)));
    assert_eq!(s.available(), 1);
    assert_eq!(s.holders(), vec![(crate::process::word_pid(DEAD), 1)]);
    s.acquire().unwrap();
    assert_eq!(s.available(), 0);
    s.try_acquire().unwrap(); // reclaims the dead process's permit
    assert_eq!(s.reclaimed(), 1);
    assert!(s.try_acquire().is_err(), "reclaimed twice");
    assert_eq!(
        s.holders
            .iter()
            .filter(|h| h.owner.load(Ordering::Relaxed) == DEAD)
            .count(),
        0
    );
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.available(), 2);
    assert!(s.holders().is_empty(), "{:?}", s.holders());
}

#[test]
fn a_committed_release_is_not_reclaimed_again() {
    // The dead process released (committed: the permit is free) but never applied it: its slot
    // still says 1 until a helper applies the release; the sweep must not return it twice.
    let s = Semaphore::new(1);
    s.holders[0].owner.store(DEAD, Ordering::Relaxed);
    let st = s.load();
    assert!(s.commit(st, st.next(0, 0, ACQUIRE)));
    s.apply(s.load());
    let st = s.load();
    assert!(s.commit(st, st.next(1, 0, RELEASE)));
    assert_eq!(held_count(s.holders[0].held.load(Ordering::Relaxed)), 1);
    s.try_acquire().unwrap();
    assert!(
        s.try_acquire().is_err(),
        "a released permit was reclaimed as held"
    );
    assert_eq!(s.reclaimed(), 0);
}

/// Every call returns within its bound and no arithmetic panics, whatever the words hold.
fn exercise(s: &Semaphore) {
    let t = Instant::now();
    for _ in 0..3 {
        let _ = s.try_acquire();
        let _ = s.acquire_timeout(Duration::from_millis(1));
        let _ = s.release();
        let _ = (
            s.available(),
            s.bound(),
            s.reclaimed(),
            s.holders(),
            format!("{s:?}"),
        );
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(s.available() <= MAX_PERMITS);
}

#[test]
fn hostile_words_neither_panic_nor_hang() {
    let patterns = [
        0,
        1,
        u64::MAX,
        u64::MAX - 1,
        1 << 63,
        0x5555_5555_5555_5555,
        DEAD,
    ];
    for &p in &patterns {
        for &q in &patterns {
            let s = Semaphore::bounded(1, 2);
            s.state.store(p, Ordering::Relaxed);
            s.wake.store(q as u32, Ordering::Relaxed);
            s.bound.store(q, Ordering::Relaxed);
            s.reclaimed.store(p, Ordering::Relaxed);
            for (i, h) in s.holders.iter().enumerate() {
                h.owner
                    .store(if i % 2 == 0 { p } else { q }, Ordering::Relaxed);
                h.held
                    .store(if i % 3 == 0 { q } else { p }, Ordering::Relaxed);
            }
            exercise(&s);
        }
    }
}

#[test]
fn full_and_empty_extremes() {
    let s = Semaphore::new(u32::MAX);
    assert_eq!(s.available(), MAX_PERMITS);
    assert!(matches!(
        s.release(),
        Err(Error::SemaphoreOverRelease { bound: MAX_PERMITS })
    ));
    s.acquire().unwrap();
    s.release().unwrap();
    let s = Semaphore::new(0);
    let t = Instant::now();
    assert!(matches!(s.try_acquire(), Err(Error::WouldBlock { .. })));
    assert!(matches!(
        s.acquire_timeout(Duration::from_millis(20)),
        Err(Error::Timeout { .. })
    ));
    assert!(t.elapsed() >= Duration::from_millis(20));
}
