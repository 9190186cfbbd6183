//! loom models of the shared map and list: concurrent insert/get/remove on the same and on
//! different keys (readers never see a torn value or another key's value, even through a slot
//! that was freed and reused under them), list push races, and a writer that dies in the middle
//! of an update or an insert (simulated: the operation stops at a test point with the stripe
//! locked by an owner word of a process that does not exist; the next writer takes the stripe
//! over and repairs it while a reader runs).
//!
//! Run: `cargo test --release --features loom --test loom_map`.
#![cfg(feature = "loom")]

mod common;
mod map_common;

use common::thread;
use loom::sync::Arc;
use map_common::{dead_owner, keys, map, val, whole};
use shmkit::List;

#[test]
fn update_and_reader_of_one_key() {
    // The reader is the spawned thread (see `lengths_travel_with_their_versions`).
    common::model(|| {
        let m = map(2);
        m.insert(b"k", &val(1)).unwrap();
        let r = {
            let m = m.clone();
            thread::spawn(move || whole(&m.get(b"k").unwrap()))
        };
        assert_eq!(whole(&m.insert(b"k", &val(2)).unwrap()), Some(1));
        assert_eq!(whole(&m.remove(b"k").unwrap()), Some(2));
        let seen = r.join().unwrap();
        assert!(matches!(seen, None | Some(1) | Some(2)), "{seen:?}");
        assert_eq!(m.get(b"k").unwrap(), None);
        assert_eq!(m.len(), 0);
    });
}

#[test]
fn inserts_of_different_keys_in_different_stripes() {
    common::model(|| {
        let m = map(2);
        let (a, b) = keys(&m, false);
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                m.insert(&b, &val(2)).unwrap();
                whole(&m.get(&a).unwrap())
            })
        };
        m.insert(&a, &val(1)).unwrap();
        assert!(matches!(whole(&m.get(&b).unwrap()), None | Some(2)));
        assert!(matches!(t.join().unwrap(), None | Some(1)));
        // Both claimed a slot with one CAS each: never the same one.
        assert_eq!(whole(&m.get(&a).unwrap()), Some(1));
        assert_eq!(whole(&m.get(&b).unwrap()), Some(2));
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn inserts_of_different_keys_in_one_stripe() {
    common::model(|| {
        let m = map(2);
        let (a, b) = keys(&m, true);
        let t = {
            let m = m.clone();
            thread::spawn(move || m.insert(&b, &val(2)).unwrap())
        };
        m.insert(&a, &val(1)).unwrap();
        assert_eq!(t.join().unwrap(), None);
        assert_eq!(whole(&m.get(&a).unwrap()), Some(1));
        assert_eq!(whole(&m.get(&b).unwrap()), Some(2));
        assert_eq!(m.iter().count(), 2);
    });
}

/// A removed key's slot is reused by another key while a reader of the first key may still be
/// on it: the reader gets the old value or nothing, never the new key's value.
#[test]
fn reader_on_a_slot_freed_and_reused() {
    common::model(|| {
        // Two slots: `c` keeps one, so `b` (in another stripe and bucket than `a`) can only
        // take the slot `a` frees. The reader is the spawned thread (see
        // `lengths_travel_with_their_versions`).
        let m = map(2);
        let (a, b) = keys(&m, false);
        m.insert(&a, &val(1)).unwrap();
        m.insert(b"c", &val(5)).unwrap();
        let r = {
            let m = m.clone();
            thread::spawn(move || whole(&m.get(&a).unwrap()))
        };
        m.remove(&a).unwrap();
        m.insert(&b, &val(2)).unwrap();
        let seen = r.join().unwrap();
        assert!(
            matches!(seen, None | Some(1)),
            "read {seen:?} for the removed key"
        );
        assert_eq!(whole(&m.get(&b).unwrap()), Some(2));
        assert_eq!(m.get(&a).unwrap(), None);
        assert_eq!(whole(&m.get(b"c").unwrap()), Some(5));
    });
}

/// A value of `n` bytes, each `n`: its length and its bytes must match.
fn sized(n: u8) -> Vec<u8> {
    vec![n; n as usize]
}

fn whole_sized(v: &Option<Vec<u8>>) -> Option<u8> {
    v.as_ref().map(|v| {
        assert!(
            v.iter().all(|&b| b as usize == v.len()),
            "a length from another version than the bytes: {v:?}"
        );
        v.len() as u8
    })
}

/// Layout 3 keeps a value's length in the latch's `published` word and a key's length in the
/// slot's `seq` word: an update that changes the length, and a slot reused by a longer key, are
/// read with the length of the bytes read, never another version's.
#[test]
fn lengths_travel_with_their_versions() {
    // The reader is the spawned thread and the writer the model's own: loom's DPOR backtracks
    // from a load to the racing store it read, not from a store to an earlier load, so the
    // first execution must run the writer first (a reader that runs first is never revisited).
    common::model(|| {
        let m = map(2);
        m.insert(b"k", &sized(1)).unwrap();
        let r = {
            let m = m.clone();
            thread::spawn(move || whole_sized(&m.get(b"k").unwrap()))
        };
        assert_eq!(whole_sized(&m.insert(b"k", &sized(3)).unwrap()), Some(1));
        assert_eq!(whole_sized(&m.insert(b"k", &sized(2)).unwrap()), Some(3));
        let seen = r.join().unwrap();
        assert!(matches!(seen, Some(1..=3)), "{seen:?}");
        assert_eq!(whole_sized(&m.get(b"k").unwrap()), Some(2));
    });
    common::model(|| {
        // As `reader_on_a_slot_freed_and_reused`, with a longer key taking the freed slot.
        let m = map(2);
        let a = [0u8];
        let s = m.__stripe_of(&a).unwrap();
        let b = (1..=255u8)
            .map(|x| [x, x])
            .find(|k| m.__stripe_of(k).unwrap() != s)
            .unwrap();
        m.insert(&a, &sized(1)).unwrap();
        m.insert(b"c", &sized(5)).unwrap();
        let r = {
            let m = m.clone();
            thread::spawn(move || whole_sized(&m.get(&a).unwrap()))
        };
        m.remove(&a).unwrap();
        m.insert(&b, &sized(2)).unwrap();
        let seen = r.join().unwrap();
        assert!(
            matches!(seen, None | Some(1)),
            "read {seen:?} for the removed key"
        );
        assert_eq!(whole_sized(&m.get(&b).unwrap()), Some(2));
        assert_eq!(m.get(&a).unwrap(), None);
    });
}

/// A writer dies at a point of an update or an insert (its stripe stays locked by a dead
/// owner). A reader running meanwhile sees the old value or nothing, whole; the next writer of
/// the stripe takes it over and repairs it while another reader runs.
#[test]
fn writer_dies_mid_update_or_insert() {
    for (key, point, old) in [
        (&b"k"[..], "map.update.filled", Some(1u8)),
        (b"n", "map.insert.filled", None),
        (b"n", "map.insert.linked", None),
    ] {
        common::model(move || {
            let m = map(2);
            m.insert(b"k", &val(1)).unwrap();
            let dying = {
                let m = m.clone();
                thread::spawn(move || {
                    assert!(m
                        .__abandon(key, Some(&val(9)), dead_owner(), point)
                        .unwrap());
                })
            };
            let r = {
                let m = m.clone();
                thread::spawn(move || whole(&m.get(key).unwrap()))
            };
            dying.join().unwrap();
            // The next writer of the key: takes the stripe over, repairs, writes.
            m.insert(key, &val(3)).unwrap();
            let seen = r.join().unwrap();
            let linked = point == "map.insert.linked";
            assert!(
                seen == old || seen == Some(3) || (linked && seen == Some(9)),
                "{point}: read {seen:?}"
            );
            assert_eq!(whole(&m.get(key).unwrap()), Some(3));
            assert_eq!(m.len(), if key == b"k" { 1 } else { 2 });
            // No slot leaked.
            assert_eq!(m.iter().count(), m.len());
        });
    }
}

/// A writer dies in the middle of a removal: before its unlink the removal did not happen,
/// after it it did. A reader meanwhile sees the value whole or nothing; the next writer of the
/// key repairs the stripe, and no slot is lost (both slots are usable afterwards).
#[test]
fn writer_dies_mid_remove() {
    for (point, stays) in [("map.remove.marked", true), ("map.remove.unlinked", false)] {
        let body = move || {
            let m = map(2);
            m.insert(b"k", &val(1)).unwrap();
            // The reader is the spawned thread (see `lengths_travel_with_their_versions`).
            let r = {
                let m = m.clone();
                thread::spawn(move || whole(&m.get(b"k").unwrap()))
            };
            assert!(m.__abandon(b"k", None, dead_owner(), point).unwrap());
            let seen = r.join().unwrap();
            assert!(matches!(seen, None | Some(1)), "{point}: read {seen:?}");
            let old = whole(&m.insert(b"k", &val(3)).unwrap());
            assert_eq!(old, stays.then_some(1), "{point}");
            m.insert(b"n", &val(4)).unwrap();
            assert_eq!(m.len(), 2);
            assert_eq!(m.iter().count(), 2);
        };
        if stays {
            // Up to "marked", the dead remover has written its stripe's lock and the slot's
            // claim word, neither of which a reader loads: the reader's loads conflict with no
            // store, so every ordering is the one loom runs.
            common::model_once(body);
        } else {
            common::model(body);
        }
    }
}

/// An insert and a removal of one key race: they serialize (one order or the other), and the
/// slot count stays exact.
#[test]
fn insert_and_remove_of_one_key_race() {
    common::model(|| {
        let m = map(2);
        m.insert(b"k", &val(1)).unwrap();
        let w = {
            let m = m.clone();
            thread::spawn(move || m.remove(b"k").unwrap())
        };
        let old = whole(&m.insert(b"k", &val(2)).unwrap());
        let removed = whole(&w.join().unwrap());
        let now = whole(&m.get(b"k").unwrap());
        match (removed, old) {
            (Some(1), None) => assert_eq!(now, Some(2)),
            (Some(2), Some(1)) => assert_eq!(now, None),
            other => panic!("not a serial order: (removed, old) = {other:?}, now {now:?}"),
        }
        assert_eq!(m.iter().count(), m.len());
    });
}

/// Two pushers race for indices: each gets its own, and a reader (the second pusher, after its
/// push) only ever reads whole elements of the published prefix.
#[test]
fn list_push_races() {
    common::model(|| {
        let l: Arc<Box<List<[u64; 2]>>> = Arc::new(List::new(2).unwrap());
        let p = {
            let l = l.clone();
            thread::spawn(move || l.push([1, !1]).unwrap())
        };
        let i = l.push([2, !2]).unwrap();
        // The published prefix: our element once every element reserved before it is written.
        let n = l.len();
        assert!(n <= 2);
        for k in 0..n {
            if let Some(v) = l.get(k) {
                assert_eq!(v[1], !v[0], "torn element");
            }
        }
        let j = p.join().unwrap();
        assert_ne!(i, j, "two pushes took one index");
        let mut all = l.to_vec();
        all.sort();
        assert_eq!(all, [[1, !1], [2, !2]]);
        assert_eq!(l.len(), 2);
    });
}

#[test]
fn list_push_and_pop() {
    common::model(|| {
        let l: Arc<Box<List<u64>>> = Arc::new(List::new(3).unwrap());
        l.push(1).unwrap();
        let p = {
            let l = l.clone();
            thread::spawn(move || l.push(2).unwrap())
        };
        let popped = l.pop().unwrap();
        let at = p.join().unwrap();
        let mut all = l.to_vec();
        let dbg = format!(
            "popped {popped:?}, pushed at {at}, list {all:?}, positions {:?}",
            l.positions()
        );
        all.extend(popped);
        all.sort();
        assert_eq!(all, [1, 2], "an element lost or duplicated: {dbg}");
        assert_eq!(l.len() + usize::from(popped.is_some()), 2);
    });
}
