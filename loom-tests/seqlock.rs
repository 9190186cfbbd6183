//! loom models of the seqlock family: no torn value is ever observed (an invariant across the
//! words of the value), writers hand the lock over without losing an update, and the rotating
//! latch's edge cases: a reader lapped by `N` writes (under loom a `SeqLock` keeps `N = 4`
//! copies, an array block 2), a writer dead mid-copy and the takeover, and an array block whose
//! next copy is brought up to date from the previous write's changed range.
//!
//! Run: `cargo test --features loom --test loom_seqlock` (bounds in `common/mod.rs`;
//! `LOOM_MAX_PREEMPTIONS=3` searches deeper).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use loom::sync::Arc;
use shmkit::{Error, SeqArray, SeqLock};

/// Values whose words must agree: `[k, k + 1000]`.
fn val(k: u64) -> [u64; 2] {
    [k, k + 1000]
}

fn check(v: [u64; 2]) -> u64 {
    assert_eq!(v[1], v[0] + 1000, "torn read: {v:?}");
    v[0]
}

#[test]
fn one_writer_two_readers_never_torn() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let r1 = {
            let s = s.clone();
            thread::spawn(move || {
                check(s.read());
            })
        };
        let r2 = {
            let s = s.clone();
            thread::spawn(move || {
                // One attempt: a consistent value or a reported contention, never a torn one.
                if let Some(v) = s.try_read() {
                    check(v);
                }
            })
        };
        s.write(&val(1)).unwrap();
        r1.join().unwrap();
        r2.join().unwrap();
        assert_eq!(s.read(), val(1));
    });
}

#[test]
fn reader_across_two_writes_is_monotonic() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let r = {
            let s = s.clone();
            thread::spawn(move || {
                let a = check(s.read());
                let b = check(s.read());
                assert!(b >= a, "went back in time");
            })
        };
        s.write(&val(1)).unwrap();
        s.write(&val(2)).unwrap();
        r.join().unwrap();
    });
}

/// A reader that starts at version 0 while the writer completes `N` more writes: the `N`-th
/// rewrites the very copy the reader is copying. The reader gets a whole value or retries.
#[test]
fn reader_lapped_by_n_writes_is_never_torn() {
    assert_eq!(
        shmkit::internals::copies_for(16),
        4,
        "the model assumes N = 4"
    );
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let r = {
            let s = s.clone();
            thread::spawn(move || {
                if let Some(v) = s.try_read() {
                    check(v);
                }
            })
        };
        let mut w = s.writer().unwrap();
        for k in 1..=4 {
            w.write(&val(k)).unwrap();
        }
        drop(w);
        r.join().unwrap();
        assert_eq!(s.read(), val(4));
    });
}

/// A reader that keeps reading (retrying when lapped) while the writer goes once around the
/// rotation: every value is whole and versions never go back.
#[test]
fn reader_across_a_full_rotation_is_monotonic() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let r = {
            let s = s.clone();
            thread::spawn(move || {
                let a = check(s.read());
                let b = check(s.read());
                assert!(b >= a, "went back in time");
            })
        };
        let mut w = s.writer().unwrap();
        for k in 1..=4 {
            w.write(&val(k)).unwrap();
        }
        drop(w);
        r.join().unwrap();
    });
}

#[test]
fn writer_lock_handover_loses_no_update() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let t = {
            let s = s.clone();
            thread::spawn(move || {
                s.update(|v| *v = val(v[0] + 1)).unwrap();
            })
        };
        let mut w = s.writer().unwrap();
        let v = w.get();
        w.write(&val(check(v) + 1)).unwrap();
        drop(w);
        let r = check(s.read());
        assert!(r >= 1);
        t.join().unwrap();
        assert_eq!(s.read(), val(2), "an update was lost");
    });
}

#[test]
fn dead_writer_repair_races_a_reader() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(1)));
        // A writer from a process that cannot exist stopped mid-copy, before publishing.
        s.__abandon_write(&val(7), (1 << 22) - 5).unwrap();
        let r = {
            let s = s.clone();
            thread::spawn(move || {
                // Old value before the takeover's write, new after: never the half-written one.
                let a = check(s.read());
                assert!(a == 1 || a == 3, "read {a}");
                match s.read_checked() {
                    Ok(v) => assert!(matches!(check(v), 1 | 3)),
                    Err(Error::WriterDied { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            })
        };
        let mut w = s.writer().unwrap();
        assert!(w.took_over_from().is_some());
        assert_eq!(w.get(), val(1), "the takeover sees the last complete value");
        w.write(&val(3)).unwrap();
        drop(w);
        r.join().unwrap();
        assert_eq!(s.read(), val(3));
    });
}

#[test]
fn array_blocks_are_independent_and_never_torn() {
    common::model(|| {
        // Under loom a block holds 2 words: elements 0 and 1 share block 0, element 2 is alone.
        let a = Arc::new(SeqArray::<[u64; 2]>::new(2));
        let b = Arc::new(SeqArray::<u64>::new(3));
        let r = {
            let (a, b) = (a.clone(), b.clone());
            thread::spawn(move || {
                // Element 2 is in a block the writer never touches: never contended.
                assert_eq!(b.try_get(2).unwrap(), Some(0));
                let x = b.get(0).unwrap();
                assert!(x == 0 || x == 2);
                let v = a.get(1).unwrap();
                if v != [0, 0] {
                    check(v);
                }
            })
        };
        b.set(0, 2).unwrap();
        a.set(1, val(4)).unwrap();
        r.join().unwrap();
        assert_eq!(b.snapshot(), [2, 0, 0]);
    });
}

/// One block of two elements (array copies: 2): each write fills the block's other copy, which
/// holds the version before the current one, from the previous write's changed range. A reader
/// of the whole block sees only published states, and no write is lost.
#[test]
fn array_block_rotation_catches_up() {
    common::model(|| {
        let a = Arc::new(SeqArray::<u64>::new(2));
        let r = {
            let a = a.clone();
            thread::spawn(move || {
                let mut x = [0u64; 2];
                a.read_range(0, &mut x).unwrap();
                assert!(
                    matches!(x, [0, 0] | [1, 0] | [1, 1] | [2, 1]),
                    "not a published state: {x:?}"
                );
            })
        };
        let mut w = a.writer().unwrap();
        w.set(0, 1).unwrap();
        w.set(1, 1).unwrap();
        w.set(0, 2).unwrap();
        drop(w);
        r.join().unwrap();
        assert_eq!(a.snapshot(), [2, 1]);
    });
}

/// A writer killed mid-copy of a `SeqLock`; the next writer takes over and goes on writing
/// (into the copy the dead one left half written, then beyond) while a reader reads.
#[test]
fn killed_writer_mid_copy_then_takeover_and_rotation() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(1)));
        s.__abandon_write(&val(9), (1 << 22) - 5).unwrap();
        let r = {
            let s = s.clone();
            thread::spawn(move || {
                let a = check(s.read());
                assert!((1..=3).contains(&a), "read {a}");
            })
        };
        let mut w = s.writer().unwrap();
        assert!(w.took_over_from().is_some());
        w.write(&val(2)).unwrap();
        w.write(&val(3)).unwrap();
        drop(w);
        r.join().unwrap();
        assert_eq!(s.read(), val(3));
        assert_eq!(s.version(), 2);
    });
}

#[test]
fn array_dead_writer_in_one_block() {
    // The writer died before the reader was spawned, and until the join both threads only load:
    // no access conflicts, so loom's one ordering is every ordering.
    common::model_once(|| {
        let a = Arc::new(SeqArray::<u64>::new(3));
        a.write_from(&[5, 5, 5]).unwrap();
        a.__abandon_set(2, 9, (1 << 22) - 9).unwrap();
        let r = {
            let a = a.clone();
            thread::spawn(move || {
                assert_eq!(a.get(2).unwrap(), 5, "the last complete value");
                assert_eq!(a.get(0).unwrap(), 5);
            })
        };
        assert!(matches!(a.check_writer(), Err(Error::WriterDied { .. })));
        r.join().unwrap();
        let mut w = a.writer().unwrap();
        assert!(w.took_over_from().is_some());
        w.set(2, 6).unwrap();
        drop(w);
        assert_eq!(a.snapshot(), [5, 5, 6]);
    });
}

/// Two writers contend for the writer lock with a strict futex (a waiter blocks until a wake,
/// never times out): a waiter that announced itself is always woken by the release, so no
/// schedule deadlocks, and both writes land.
#[test]
fn writer_lock_sleeper_is_always_woken() {
    shmkit::sync::loom_futex::set_strict(true);
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let t = {
            let s = s.clone();
            thread::spawn(move || {
                s.update(|v| *v = val(v[0] + 1)).unwrap();
            })
        };
        s.update(|v| *v = val(v[0] + 1)).unwrap();
        t.join().unwrap();
        assert_eq!(s.read(), val(2), "an update was lost");
    });
    shmkit::sync::loom_futex::set_strict(false);
}

/// The thread that holds the writer lock and asks for it again is refused, while another thread
/// waits for it as usual.
#[test]
fn writer_lock_relock_by_holder_is_refused() {
    common::model(|| {
        let s = Arc::new(SeqLock::new(val(0)));
        let t = {
            let s = s.clone();
            thread::spawn(move || {
                s.write(&val(5)).unwrap();
            })
        };
        let mut w = s.writer().unwrap();
        assert!(matches!(s.write(&val(9)), Err(Error::WouldDeadlock { .. })));
        assert!(matches!(s.try_writer(), Err(Error::WouldDeadlock { .. })));
        w.write(&val(1)).unwrap();
        drop(w);
        t.join().unwrap();
        let v = check(s.read());
        assert!(v == 1 || v == 5, "read {v}");
    });
}
