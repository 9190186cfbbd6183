//! Unit tests of the map (one process; real processes in `tests/map_procs.rs`).

use super::geometry::*;
use super::*;
use crate::sync::Ordering;
use crate::Error;
use std::collections::HashMap;

/// An owner word of a process that cannot exist (pids are below 2²²): dead by the liveness rule.
pub(super) fn dead_owner() -> u64 {
    crate::process::Identity {
        pid: (1 << 22) - 5,
        start: 1,
        pid_ns: crate::process::me().pid_ns,
    }
    .word()
}

fn small(cap: u64) -> Box<ByteMap> {
    ByteMap::new(MapOptions::new(cap).key_max(16).value_max(24)).unwrap()
}

/// xorshift64*
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn basic_operations() {
    let m = small(8);
    assert!(m.is_empty());
    assert_eq!(m.insert(b"a", b"1").unwrap(), None);
    assert_eq!(m.insert(b"a", b"22").unwrap(), Some(b"1".to_vec()));
    assert_eq!(m.insert(b"", b"empty key").unwrap(), None);
    assert_eq!(m.get(b"a").unwrap(), Some(b"22".to_vec()));
    assert_eq!(m.get(b"").unwrap(), Some(b"empty key".to_vec()));
    assert_eq!(m.get(b"b").unwrap(), None);
    assert!(m.contains_key(b"a").unwrap());
    assert_eq!(m.len(), 2);
    assert_eq!(
        m.update(b"n", |v| Some(vec![v.map_or(0, |b| b[0]) + 1]))
            .unwrap(),
        Some(vec![1])
    );
    assert_eq!(
        m.update(b"n", |v| v.map(|b| vec![b[0] + 1])).unwrap(),
        Some(vec![2])
    );
    assert_eq!(m.update(b"n", |_| None).unwrap(), None);
    assert!(!m.contains_key(b"n").unwrap());
    assert_eq!(m.compare_exchange(b"c", None, Some(b"x")).unwrap(), Ok(()));
    assert_eq!(
        m.compare_exchange(b"c", None, Some(b"y")).unwrap(),
        Err(Some(b"x".to_vec()))
    );
    assert_eq!(m.compare_exchange(b"c", Some(b"x"), None).unwrap(), Ok(()));
    assert_eq!(m.get_or_insert(b"d", b"first").unwrap(), b"first");
    assert_eq!(m.get_or_insert(b"d", b"second").unwrap(), b"first");
    let mut all: Vec<_> = m.iter().collect();
    all.sort();
    assert_eq!(
        all,
        [
            (b"".to_vec(), b"empty key".to_vec()),
            (b"a".to_vec(), b"22".to_vec()),
            (b"d".to_vec(), b"first".to_vec())
        ]
    );
    assert!(matches!(
        m.insert(&[1; 17], b""),
        Err(Error::TooLarge {
            what: "key",
            len: 17,
            max: 16
        })
    ));
    assert!(matches!(
        m.insert(b"k", &[1; 25]),
        Err(Error::TooLarge {
            what: "value",
            len: 25,
            max: 24
        })
    ));
    assert!(m.get(&[1; 17]).is_err());
    m.clear().unwrap();
    assert_eq!((m.len(), m.iter().count()), (0, 0));
    assert_eq!(m.options(), MapOptions::new(8).key_max(16).value_max(24));
}

#[test]
fn full_map_names_both_limits_and_reuses_removed_slots() {
    let m = small(5);
    for i in 0..5u8 {
        m.insert(&[i], &[i]).unwrap();
    }
    let err = m.insert(b"x", b"").unwrap_err();
    assert!(
        matches!(
            err,
            Error::MapFull {
                capacity: 5,
                key_max: 16,
                value_max: 24
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("5 entries") && text.contains("200 bytes"),
        "{text}"
    );
    // Updates of present keys need no slot.
    m.insert(&[3], b"still fits").unwrap();
    // A million insert/remove cycles: removed slots are reused, nothing leaks.
    let n = if cfg!(miri) {
        300
    } else if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    m.remove(&[0]).unwrap();
    for i in 0..n {
        let k = (i as u64).to_le_bytes();
        m.insert(&k, b"v").unwrap();
        assert_eq!(m.remove(&k).unwrap(), Some(b"v".to_vec()));
    }
    assert_eq!(m.len(), 4);
    m.insert(b"last", b"fits").unwrap();
    assert!(matches!(m.insert(b"over", b""), Err(Error::MapFull { .. })));
}

/// Random operations against a `HashMap`, in a small map (long chains, many stripes shared).
#[test]
fn random_ops_against_a_hashmap() {
    for (cap, keys) in [(1u64, 3u64), (7, 12), (64, 100), (300, 400)] {
        let m = small(cap);
        let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut seed = 0x1234_5678 ^ cap;
        for step in 0..20_000u64 {
            let x = rng(&mut seed);
            let key = format!("k{}", x % keys).into_bytes();
            let val = format!("v{step}").into_bytes();
            match (x >> 32) % 6 {
                0 | 1 => {
                    let full = model.len() as u64 >= cap && !model.contains_key(&key);
                    match m.insert(&key, &val) {
                        Ok(old) => {
                            assert!(!full);
                            assert_eq!(old, model.insert(key, val));
                        }
                        Err(Error::MapFull { .. }) => assert!(full, "full with {}", model.len()),
                        Err(e) => panic!("{e}"),
                    }
                }
                2 => assert_eq!(m.remove(&key).unwrap(), model.remove(&key)),
                3 => assert_eq!(m.get(&key).unwrap(), model.get(&key).cloned()),
                4 => {
                    let r = m.update(&key, |v| v.map(|v| [v, b"+"].concat()));
                    let want = model.get_mut(&key).map(|v| {
                        v.push(b'+');
                        v.clone()
                    });
                    match r {
                        Ok(got) => assert_eq!(got, want),
                        Err(Error::TooLarge { .. }) => {
                            let v = model.get_mut(&key).unwrap();
                            v.pop();
                            m.insert(&key, b"short").unwrap();
                            *v = b"short".to_vec();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                _ => assert_eq!(m.len(), model.len()),
            }
        }
        let mut all: Vec<_> = m.iter().collect();
        all.sort();
        let mut want: Vec<_> = model.into_iter().collect();
        want.sort();
        assert_eq!(all, want, "capacity {cap}");
    }
}

#[test]
fn pod_map_and_segment_constructors() {
    let seg = crate::Segment::anonymous(1 << 20).unwrap();
    let m = seg.pod_map::<u64, [f32; 3]>("m", 100).unwrap();
    assert_eq!(m.insert(&1, &[1.0, 2.0, 3.0]).unwrap(), None);
    assert_eq!(m.get(&1).unwrap(), Some([1.0, 2.0, 3.0]));
    let again = seg.pod_map::<u64, [f32; 3]>("m", 100).unwrap();
    assert_eq!(again.len(), 1);
    for bad in [
        seg.pod_map::<u64, [f32; 3]>("m", 101).err(),
        seg.pod_map::<u64, [f32; 4]>("m", 100).err(),
        seg.map("m", PodMap::<u64, [f32; 3]>::options(100)).err(),
        seg.list::<u64>("m", 100).err(),
    ] {
        assert!(matches!(bad, Some(Error::TypeMismatch { .. })), "{bad:?}");
    }
    let b = seg.map("bytes", MapOptions::new(10)).unwrap();
    b.insert(b"k", b"v").unwrap();
    assert!(matches!(
        seg.map("bytes", MapOptions::new(10).value_max(10)),
        Err(Error::TypeMismatch { .. })
    ));
    assert!(matches!(
        seg.map("z", MapOptions::new(0)),
        Err(Error::InvalidCapacity { .. })
    ));
    assert!(matches!(
        seg.pod_map::<(), u8>("z", 5),
        Err(Error::InvalidCapacity { .. })
    ));
    let opened = seg.open_object::<ByteMap>("bytes").unwrap();
    assert_eq!(opened.get(b"k").unwrap(), Some(b"v".to_vec()));
    // The typed map's bytes are its keys' and values' bytes.
    let raw = seg
        .open_entry_as::<ByteMap>(&seg.entries().unwrap()[0])
        .unwrap();
    assert_eq!(raw.get(&1u64.to_ne_bytes()).unwrap().unwrap().len(), 12);
}

/// A writer abandoned at every test point of insert, update (under the stripe lock, and under
/// the entry claim alone: `map.set.*`) and remove (as if killed there): readers see the old or
/// the new state whole, the next writer takes the stripe or the entry over and repairs it, and
/// no slot leaks (the map still fills to its capacity).
#[test]
fn death_at_every_point_is_repaired() {
    let points = [
        (Some(&b"new"[..]), "map.insert.claimed", false),
        (Some(b"new"), "map.insert.filled", false),
        (Some(b"new"), "map.insert.stable", false),
        (Some(b"new"), "map.insert.linked", true),
        (Some(b"upd"), "map.update.filled", false),
        (Some(b"upd"), "map.update.published", true),
        (Some(b"upd"), "map.set.claimed", false),
        (Some(b"upd"), "map.set.filled", false),
        (Some(b"upd"), "map.set.published", true),
        (None, "map.remove.marked", false),
        (None, "map.remove.unlinked", true),
        (None, "map.remove.odd", true),
    ];
    for (value, point, happened) in points {
        let m = small(4);
        m.insert(b"old", b"1").unwrap();
        m.insert(b"other", b"2").unwrap();
        // Inserts use key "new"; updates and removals key "old".
        let key: &[u8] = if point.starts_with("map.insert") {
            b"new"
        } else {
            b"old"
        };
        assert!(
            m.__abandon(key, value, dead_owner(), point).unwrap(),
            "{point}"
        );
        let seen = m.get(key).unwrap();
        let before: Option<Vec<u8>> = (key == b"old").then(|| b"1".to_vec());
        let after: Option<Vec<u8>> = value.map(<[u8]>::to_vec);
        assert!(seen == before || seen == after, "{point}: read {seen:?}");
        // Any write to the same stripe takes the lock over and repairs it; here: the same key.
        let now = m.get_or_insert(b"other", b"x").unwrap();
        assert_eq!(now, b"2");
        let got = m.update(key, |v| v.map(<[u8]>::to_vec)).unwrap();
        let want = if happened {
            after.clone()
        } else {
            before.clone()
        };
        assert_eq!(got, want, "{point}");
        let base = if key == b"new" { 2 } else { 1 };
        assert_eq!(
            m.len(),
            base + usize::from(want.is_some()),
            "{point}: count"
        );
        // No slot leaked: the map fills exactly to its capacity.
        let mut i = 0u8;
        while m.len() < 4 {
            m.insert(&[b'f', i], b"").unwrap();
            i += 1;
        }
        assert!(
            matches!(m.insert(b"one more", b""), Err(Error::MapFull { .. })),
            "{point}"
        );
        assert_eq!(m.iter().count(), 4, "{point}");
    }
}

/// A slot claimed by a dead writer of another stripe is freed by the sweep a full map makes.
#[test]
fn full_map_sweeps_dead_stripes() {
    let m = small(64);
    let t = m.table().unwrap();
    assert!(t.g.stripes > 1);
    // Fill all but one slot, then a dead writer claims the last one and dies.
    let mut keys = Vec::new();
    let mut i = 0u32;
    while m.len() < 63 {
        let k = i.to_le_bytes();
        m.insert(&k, b"").unwrap();
        keys.push(k);
        i += 1;
    }
    let orphan = loop {
        let k = i.to_le_bytes();
        i += 1;
        if !keys.contains(&k) {
            break k;
        }
    };
    assert!(m
        .__abandon(&orphan, Some(b"v"), dead_owner(), "map.insert.claimed")
        .unwrap());
    // Find a key of another stripe than the orphan's.
    let s_orphan = t.stripe_of(t.bucket(t.hash(&orphan)));
    let other = (0..)
        .map(|n: u32| (n + 1_000_000).to_le_bytes())
        .find(|k| t.stripe_of(t.bucket(t.hash(k))) != s_orphan)
        .unwrap();
    m.insert(&other, b"swept").unwrap();
    assert_eq!(m.len(), 64);
    assert_eq!(m.get(&orphan).unwrap(), None);
}

/// Scribbled words anywhere: every operation returns (values or errors), never panics or hangs.
#[test]
fn scribbled_map_gives_errors_not_panics() {
    let mut seed = 99u64;
    for round in 0..100 {
        let m = small(16);
        for i in 0..10u8 {
            m.insert(&[i], &[i; 3]).unwrap();
        }
        let words = &m.words_for_tests();
        let n = words.len();
        for _ in 0..(1 + round % 8) {
            let at = (rng(&mut seed) as usize) % n;
            let v = match rng(&mut seed) % 5 {
                0 => 0,
                1 => rng(&mut seed),
                2 => rng(&mut seed) % 40,
                3 => (1 << 63) | (rng(&mut seed) % 20),
                _ => u64::MAX,
            };
            words[at].store(v, Ordering::Relaxed);
        }
        // A scribbled lock word may name a live process (pid 1): blocking writes would wait
        // for it, as they must; `_timeout` writes return.
        let t = std::time::Duration::from_millis(1);
        for i in 0..12u8 {
            let _ = m.get(&[i]);
            let _ = m.insert_timeout(&[i], b"x", t);
            let _ = m.update_timeout(&[i + 1], t, |v| v.map(|_| vec![1]));
            let _ = m.remove_timeout(&[i + 2], t);
        }
        let _ = m.iter().count();
        let _ = m.for_each(|_, _| ());
        let _ = m.clear_timeout(t);
        let _ = m.len();
    }
}

/// Readers racing writers (threads) only ever read values that were written whole.
#[test]
fn concurrent_threads_read_whole_values() {
    let m = std::sync::Arc::new(small(64));
    let stop = std::sync::Arc::new(crate::sync::AtomicBool::new(false));
    let writers: Vec<_> = (0..2u8)
        .map(|w| {
            let m = m.clone();
            std::thread::spawn(move || {
                let mut seed = 7 + w as u64;
                // Under Miri (its data-race detector and weak-memory emulation), fewer rounds.
                let rounds = if cfg!(miri) { 150 } else { 20_000u64 };
                for i in 0..rounds {
                    let k = [(rng(&mut seed) % 40) as u8];
                    let len = 1 + (i % 24) as usize;
                    let v = vec![(i as u8).wrapping_mul(7) ^ w; len];
                    if i % 3 == 0 {
                        m.remove(&k).unwrap();
                    } else {
                        m.insert(&k, &v).unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (m, stop) = (m.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(crate::sync::Ordering::Relaxed) {
                    for k in 0..40u8 {
                        if let Some(v) = m.get(&[k]).unwrap() {
                            assert!(v.iter().all(|&b| b == v[0]), "torn value {v:?}");
                            seen += 1;
                        }
                    }
                    m.for_each(|_, v| assert!(v.iter().all(|&b| b == v[0])))
                        .unwrap();
                }
                seen
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, crate::sync::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let n = m.iter().count();
    assert_eq!(m.len(), n);
}

#[cfg(feature = "serde")]
#[test]
fn serde_map_and_namespace() {
    let seg = crate::Segment::anonymous(1 << 20).unwrap();
    let d = seg
        .serde_map::<String, (String, f64)>("d", MapOptions::new(10))
        .unwrap();
    d.insert(&"job-17".into(), &("done".into(), 3.2)).unwrap();
    assert_eq!(d.get(&"job-17".into()).unwrap(), Some(("done".into(), 3.2)));
    assert_eq!(
        d.update(&"job-17".into(), |v| v.map(|(s, t)| (s, t * 2.0)))
            .unwrap(),
        Some(("done".into(), 6.4))
    );
    assert!(matches!(
        seg.serde_map::<String, String>("d", MapOptions::new(10)),
        Err(Error::TypeMismatch { .. })
    ));
    let ns = seg.namespace("ns", MapOptions::new(8)).unwrap();
    ns.set("x", &1u8).unwrap();
    ns.set("y", &vec!["a".to_string()]).unwrap();
    assert_eq!(ns.get::<u8>("x").unwrap(), Some(1));
    assert!(ns.get::<String>("x").is_err() || ns.get::<String>("x").unwrap() != Some("a".into()));
    assert_eq!(ns.update::<u8>("x", |v| v.map(|v| v + 1)).unwrap(), Some(2));
    assert_eq!(ns.names(), ["x", "y"]);
    assert!(ns.remove("x").unwrap());
    assert_eq!(ns.get::<u8>("x").unwrap(), None);
    // Values that fit the stack buffer of a get (256 bytes), one at its edge, and longer ones.
    let big = seg
        .serde_map::<u8, String>("big", MapOptions::new(8).key_max(8).value_max(2000))
        .unwrap();
    for (k, n) in [(1u8, 3usize), (2, 247), (3, 248), (5, 249), (4, 1500)] {
        let v = "v".repeat(n);
        big.insert(&k, &v).unwrap();
        assert_eq!(big.get(&k).unwrap().as_deref(), Some(&*v), "{n} chars");
    }
    assert_eq!(big.get(&9).unwrap(), None);
}

impl ByteMap {
    /// The raw words (tests scribble on them).
    pub(super) fn words_for_tests(&self) -> &[crate::sync::AtomicU64] {
        self.table().map(|t| t.w).unwrap_or(&[])
    }
}

#[test]
fn stripes_hold_their_keys() {
    // Geometry sanity on a big map: stripe counts sum to len.
    let m = ByteMap::new(MapOptions::new(5000).key_max(8).value_max(8)).unwrap();
    for i in 0..3000u64 {
        m.insert(&i.to_le_bytes(), &i.to_le_bytes()).unwrap();
    }
    let t = m.table().unwrap();
    assert_eq!(t.g.stripes, MAX_STRIPES);
    let per: Vec<u64> = (0..t.g.stripes)
        .map(|s| t.stripe(s)[S_COUNT].load(Ordering::Relaxed))
        .collect();
    assert_eq!(per.iter().sum::<u64>(), 3000);
    assert!(
        per.iter().all(|&c| c > 10),
        "keys spread over the stripes: {per:?}"
    );
    for i in (0..3000u64).step_by(7) {
        assert_eq!(
            m.get(&i.to_le_bytes()).unwrap(),
            Some(i.to_le_bytes().to_vec())
        );
    }
}

/// A lookup costs one line pair when the entry sits in its bucket's own slot (which holds the
/// bucket's head): in a map half full, most entries must be there, and a removal and a new
/// insert keep it so.
#[test]
fn entries_sit_in_their_buckets_own_slot_when_it_is_free() {
    let m = ByteMap::new(MapOptions::new(2000).key_max(8).value_max(8)).unwrap();
    let t = m.table().unwrap();
    let at_home = |n: u64| {
        (0..n)
            .filter(|k| {
                let key = k.to_ne_bytes();
                let slot = t.slot(t.bucket(t.hash(&key)));
                slot[CLAIM].load(Ordering::Relaxed) == LIVE && t.key_is(slot, &key)
            })
            .count()
    };
    for k in 0..1000u64 {
        m.insert(&k.to_ne_bytes(), b"v").unwrap();
    }
    let home = at_home(1000);
    assert!(home >= 700, "{home} of 1000 entries in their own slot");
    for k in 0..1000u64 {
        m.remove(&k.to_ne_bytes()).unwrap();
        m.insert(&k.to_ne_bytes(), b"w").unwrap();
    }
    let again = at_home(1000);
    assert!(again >= 700, "{again} of 1000 after reinsertion");
    assert_eq!(
        m.get(&999u64.to_ne_bytes()).unwrap().as_deref(),
        Some(&b"w"[..])
    );
}
