//! Unit tests of the list (one process; real processes in `tests/map_procs.rs`).

use super::tests::dead_owner;
use super::*;
use crate::Error;

#[test]
fn push_get_set_pop_clear() {
    let l = List::<u32>::new(4).unwrap();
    assert!(l.is_empty());
    for i in 0..4 {
        assert_eq!(l.push(i * 10).unwrap(), i as usize);
    }
    assert!(matches!(l.push(99), Err(Error::ListFull { capacity: 4 })));
    assert_eq!(l.len(), 4);
    assert_eq!((l.get(3), l.get(4)), (Some(30), None));
    l.set(1, 11).unwrap();
    assert!(matches!(
        l.set(4, 0),
        Err(Error::IndexOutOfBounds { index: 4, len: 4 })
    ));
    assert_eq!(l.pop().unwrap(), Some(30));
    assert_eq!(l.to_vec(), [0, 11, 20]);
    assert_eq!(l.push(7).unwrap(), 3);
    l.clear().unwrap();
    assert_eq!((l.len(), l.pop().unwrap()), (0, None));
    assert_eq!(l.push(5).unwrap(), 0);
    let b = ByteList::new(3, 5).unwrap();
    b.push(b"ab").unwrap();
    b.push(b"").unwrap();
    assert!(matches!(
        b.push(b"toolong"),
        Err(Error::TooLarge {
            what: "element",
            ..
        })
    ));
    assert_eq!(b.iter().collect::<Vec<_>>(), [b"ab".to_vec(), vec![]]);
    assert_eq!(b.pop().unwrap(), Some(vec![]));
    assert_eq!(b.elem_max(), 5);
}

/// A pusher that died after claiming its slot, or after writing it: the slot becomes a hole
/// (counted, skipped, filled by `set`, removed by `pop`), and later pushes stay visible.
#[test]
fn dead_pushers_leave_holes_not_stalls() {
    for point in ["list.push.claimed", "list.push.written"] {
        let l = List::<u64>::new(8).unwrap();
        l.push(1).unwrap();
        assert!(l
            .__abandon_push(&2u64.to_ne_bytes(), dead_owner(), point)
            .unwrap());
        l.push(3).unwrap();
        assert_eq!(l.len(), 3, "{point}");
        assert_eq!(l.holes(), 1);
        assert_eq!((l.get(1), l.to_vec()), (None, vec![1, 3]));
        l.set(1, 22).unwrap();
        assert_eq!(l.to_vec(), [1, 22, 3]);
        assert_eq!(l.holes(), 0);
    }
    // A hole at the end goes with the pop of the element before it.
    let l = List::<u64>::new(8).unwrap();
    l.push(1).unwrap();
    l.__abandon_push(&2u64.to_ne_bytes(), dead_owner(), "list.push.claimed")
        .unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l.pop().unwrap(), Some(1));
    assert_eq!((l.len(), l.push(4).unwrap()), (0, 0));
}

/// A pusher that died between its reservation and its claim leaves an empty slot below
/// `reserved`: after the grace period a lock holder makes it a hole.
#[test]
fn dead_pusher_between_reserve_and_claim() {
    let l = List::<u64>::new(8).unwrap();
    assert!(l
        .__abandon_push(&2u64.to_ne_bytes(), dead_owner(), "list.push.reserved")
        .unwrap());
    let t0 = std::time::Instant::now();
    l.push(3).unwrap();
    // Readers never wait: they see the prefix before the gap until the grace has passed.
    assert_eq!(l.len(), 0);
    // The grace runs from the gap's first sighting, between `t0` and `t1` (a test thread
    // descheduled here for milliseconds must not make the wait below too short).
    let t1 = std::time::Instant::now();
    assert_eq!(l.get(1), None);
    while t1.elapsed() < list::GRACE + std::time::Duration::from_millis(5) {
        // (The clock counts whole milliseconds: allow one.)
        let n = l.len();
        assert!(n == 0 || t0.elapsed() + std::time::Duration::from_millis(1) >= list::GRACE);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(l.len(), 2, "then the empty slot is a hole");
    assert_eq!(l.holes(), 1);
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(l.to_vec(), [3]);
    assert_eq!(l.pop().unwrap(), Some(3));
    assert_eq!(l.len(), 1, "the hole before it stays");
    assert_eq!(l.pop().unwrap(), None, "a pop of holes only removes them");
    assert_eq!(l.len(), 0);
}

/// A popper or clearer that died at each of its points: the next lock holder finishes a
/// recorded removal or unfreezes; pushes and reads go on.
#[test]
fn dead_popper_is_repaired() {
    for (clear, point, want) in [
        (false, "list.pop.frozen", vec![0u64, 1, 2, 3]),
        (false, "list.pop.recorded", vec![0, 1, 2]),
        (false, "list.pop.emptied", vec![0, 1, 2]),
        (true, "list.pop.frozen", vec![0, 1, 2, 3]),
        (true, "list.pop.recorded", vec![]),
        (true, "list.pop.emptied", vec![]),
    ] {
        let l = List::<u64>::new(8).unwrap();
        for i in 0..4 {
            l.push(i).unwrap();
        }
        assert!(
            l.__abandon_pop(clear, dead_owner(), point).unwrap(),
            "{point}"
        );
        // A push waits for the frozen list: it takes the dead holder's lock over and repairs.
        let at = l.push(9).unwrap();
        let mut want = want.clone();
        want.push(9);
        assert_eq!(at, want.len() - 1, "{clear} {point}");
        assert_eq!(l.to_vec(), want, "{clear} {point}");
        assert_eq!(l.len(), want.len());
    }
}

#[test]
fn stopped_lock_holder_makes_timeouts_expire() {
    // A live holder (this process) abandoned inside a pop: the lock stays held by a live owner.
    let l = List::<u64>::new(8).unwrap();
    l.push(1).unwrap();
    assert!(l
        .__abandon_pop(false, crate::process::my_word(), "list.pop.recorded")
        .unwrap());
    let t0 = std::time::Instant::now();
    assert!(matches!(
        l.push_timeout(2, std::time::Duration::from_millis(50)),
        Err(Error::Timeout { .. })
    ));
    assert!(matches!(
        l.pop_timeout(std::time::Duration::from_millis(50)),
        Err(Error::Timeout { .. })
    ));
    assert!(t0.elapsed() < std::time::Duration::from_secs(2));
    // Reads go on.
    assert_eq!(l.get(0), Some(1));
}

#[test]
fn scribbled_list_gives_errors_not_panics() {
    let mut seed = 5u64;
    let mut rng = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..100 {
        let l = ByteList::new(6, 12).unwrap();
        for i in 0..4u8 {
            l.push(&[i; 5]).unwrap();
        }
        let words = l.words_for_tests();
        for _ in 0..(1 + round % 6) {
            let at = rng() as usize % words.len();
            let v = match rng() % 4 {
                0 => rng(),
                1 => rng() % 16,
                2 => (1 << 63) | (rng() % 4),
                _ => (1 << 62) | (rng() % 8),
            };
            words[at].store(v, crate::sync::Ordering::Relaxed);
        }
        let _ = l.len();
        for i in 0..8 {
            let _ = l.get(i);
        }
        let t = Some(std::time::Duration::from_millis(1));
        let _ = l.raw.view().map(|v| v.push(b"x", t, list::Ctl::me()));
        let _ = l.raw.view().map(|v| v.pop(t, list::Ctl::me(), |_, _| ()));
        let _ = l.raw.view().map(|v| v.set(0, b"y", t));
        let _ = l.iter().count();
        let _ = l.raw.view().map(|v| v.clear(t, list::Ctl::me()));
    }
}

#[test]
fn concurrent_pushers_and_readers() {
    let l = std::sync::Arc::new(List::<[u64; 2]>::new(20_000).unwrap());
    let pushers: Vec<_> = (0..3u64)
        .map(|p| {
            let l = l.clone();
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    l.push([p << 32 | i, !(p << 32 | i)]).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let l = l.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while n < 15_000 {
                n = l.len();
                for i in n.saturating_sub(50)..n {
                    let v = l.get(i).expect("published elements are readable");
                    assert_eq!(v[1], !v[0], "torn element");
                }
            }
        })
    };
    for p in pushers {
        p.join().unwrap();
    }
    reader.join().unwrap();
    let mut all = l.to_vec();
    assert_eq!(all.len(), 15_000);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 15_000);
}

#[test]
fn lists_in_a_segment() {
    let seg = crate::Segment::anonymous(1 << 20).unwrap();
    let l = seg.list::<f64>("l", 10).unwrap();
    l.push(1.5).unwrap();
    assert_eq!(seg.list::<f64>("l", 10).unwrap().get(0), Some(1.5));
    assert!(matches!(
        seg.list::<f64>("l", 11),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seg.list::<u32>("l", 10),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seg.byte_list("l", 10, 8),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seg.list::<u8>("z", 0),
        Err(Error::InvalidCapacity { .. })
    ));
    let b = seg.byte_list("b", 4, 16).unwrap();
    b.push(b"x").unwrap();
    assert!(matches!(
        seg.byte_list("b", 4, 17),
        Err(Error::TypeMismatch { .. })
    ));
    #[cfg(feature = "serde")]
    {
        let s = seg.serde_list::<(String, u8)>("s", 4, 32).unwrap();
        s.push(&("a".into(), 1)).unwrap();
        assert_eq!(s.iter().collect::<Vec<_>>(), [("a".to_string(), 1)]);
        assert!(matches!(
            seg.serde_list::<(String, u16)>("s", 4, 32),
            Err(Error::TypeMismatch { .. })
        ));
    }
}

impl ByteList {
    fn words_for_tests(&self) -> &[crate::sync::AtomicU64] {
        self.raw.words_for_tests()
    }
}
