//! The `map_ops` fuzz check, shared by the cargo-fuzz target (`fuzz/fuzz_targets/map_ops.rs`)
//! and the regression test that replays saved inputs under plain `cargo test`
//! (`tests/fuzz_regressions.rs`). Both include this file with `#[path]`.
//!
//! An [`Input`] picks a map's dimensions (capacity 1..=32, keys up to 1..=16 bytes, values up to
//! 0..=40 bytes) and a list's capacity (1..=32), then a sequence of operations on both. [`run`]
//! applies them in one thread and checks every result against a `HashMap` and a `Vec` model:
//! values returned, `MapFull`/`ListFull`/`TooLarge`/`IndexOutOfBounds` exactly when the model
//! says so, exact `len`, the entries iterated and the list's elements.

use arbitrary::Arbitrary;
use shmkit::{ByteMap, Error, List, MapOptions};
use std::collections::HashMap;

/// At most this many operations are applied.
pub const MAX_OPS: usize = 512;

/// One fuzz case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Input {
    /// Map capacity, minus one, modulo 32.
    pub capacity: u8,
    /// Longest key, minus one, modulo 16.
    pub key_max: u8,
    /// Longest value, modulo 41.
    pub value_max: u8,
    /// List capacity, minus one, modulo 32.
    pub list_capacity: u8,
    /// The operations, in order (at most [`MAX_OPS`]).
    pub ops: Vec<Op>,
}

/// One operation. Keys are `len` (modulo `key_max + 2`, so sometimes one too long) copies of
/// `k` (modulo 8, so that keys repeat); values are `len` copies of a byte.
#[derive(Arbitrary, Debug, Clone)]
pub enum Op {
    Insert {
        k: u8,
        klen: u8,
        v: u8,
        vlen: u8,
    },
    Remove {
        k: u8,
        klen: u8,
    },
    Get {
        k: u8,
        klen: u8,
    },
    /// Appends a byte to the value (removes the key when `remove`).
    Update {
        k: u8,
        klen: u8,
        remove: bool,
    },
    /// compare_exchange from the model's value (or a wrong one) to a new value or absence.
    CompareExchange {
        k: u8,
        klen: u8,
        right: bool,
        v: Option<u8>,
    },
    GetOrInsert {
        k: u8,
        klen: u8,
        v: u8,
    },
    Clear,
    Check,
    Push(u64),
    Pop,
    Set {
        i: u8,
        v: u64,
    },
    ListGet(u8),
    ListClear,
}

fn key(k: u8, klen: u8, key_max: usize) -> Vec<u8> {
    vec![k % 8; klen as usize % (key_max + 2)]
}

/// Runs the case; panics on any disagreement with the models.
pub fn run(input: &Input) {
    let cap = 1 + input.capacity as u64 % 32;
    let key_max = 1 + input.key_max as usize % 16;
    let value_max = input.value_max as usize % 41;
    let m = ByteMap::new(
        MapOptions::new(cap)
            .key_max(key_max as u64)
            .value_max(value_max as u64),
    )
    .expect("valid dimensions");
    let lcap = 1 + input.list_capacity as usize % 32;
    let l = List::<u64>::new(lcap as u64).expect("valid capacity");
    let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mut list: Vec<u64> = Vec::new();
    let too_long = |k: &[u8], v: &[u8]| k.len() > key_max || v.len() > value_max;
    for op in input.ops.iter().take(MAX_OPS) {
        match *op {
            Op::Insert { k, klen, v, vlen } => {
                let (k, v) = (
                    key(k, klen, key_max),
                    vec![v; vlen as usize % (value_max + 2)],
                );
                let r = m.insert(&k, &v);
                if too_long(&k, &v) {
                    assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
                } else if !model.contains_key(&k) && model.len() as u64 == cap {
                    assert!(matches!(r, Err(Error::MapFull { .. })), "{r:?}");
                } else {
                    assert_eq!(r.unwrap(), model.insert(k, v));
                }
            }
            Op::Remove { k, klen } => {
                let k = key(k, klen, key_max);
                match m.remove(&k) {
                    Err(Error::TooLarge { .. }) => assert!(k.len() > key_max),
                    r => assert_eq!(r.unwrap(), model.remove(&k)),
                }
            }
            Op::Get { k, klen } => {
                let k = key(k, klen, key_max);
                match m.get(&k) {
                    Err(Error::TooLarge { .. }) => assert!(k.len() > key_max),
                    r => {
                        assert_eq!(r.unwrap(), model.get(&k).cloned());
                        assert_eq!(m.contains_key(&k).unwrap(), model.contains_key(&k));
                    }
                }
            }
            Op::Update { k, klen, remove } => {
                let k = key(k, klen, key_max);
                let r = m.update(&k, |v| {
                    if remove {
                        None
                    } else {
                        v.map(|v| [v, &[7]].concat())
                    }
                });
                if k.len() > key_max {
                    assert!(matches!(r, Err(Error::TooLarge { .. })));
                    continue;
                }
                let old = model.get(&k).cloned();
                match (remove, old) {
                    (true, _) => {
                        assert_eq!(r.unwrap(), None);
                        model.remove(&k);
                    }
                    (false, None) => assert_eq!(r.unwrap(), None),
                    (false, Some(mut v)) => {
                        v.push(7);
                        if v.len() > value_max {
                            assert!(matches!(r, Err(Error::TooLarge { .. })), "{r:?}");
                        } else {
                            assert_eq!(r.unwrap(), Some(v.clone()));
                            model.insert(k, v);
                        }
                    }
                }
            }
            Op::CompareExchange { k, klen, right, v } => {
                let k = key(k, klen, key_max);
                if k.len() > key_max {
                    continue;
                }
                let cur = model.get(&k).cloned();
                let expect = if right {
                    cur.clone()
                } else {
                    Some(vec![0xee; 1])
                };
                let new = v.map(|b| vec![b; 1.min(value_max)]);
                let r = m.compare_exchange(&k, expect.as_deref(), new.as_deref());
                let full = cur.is_none() && new.is_some() && model.len() as u64 == cap;
                if expect != cur {
                    assert_eq!(r.unwrap(), Err(cur));
                } else if full {
                    assert!(matches!(r, Err(Error::MapFull { .. })));
                } else {
                    assert_eq!(r.unwrap(), Ok(()));
                    match new {
                        Some(n) => model.insert(k, n),
                        None => model.remove(&k),
                    };
                }
            }
            Op::GetOrInsert { k, klen, v } => {
                let (k, v) = (key(k, klen, key_max), vec![v; 1.min(value_max)]);
                if k.len() > key_max {
                    continue;
                }
                let r = m.get_or_insert(&k, &v);
                match model.get(&k) {
                    Some(cur) => assert_eq!(&r.unwrap(), cur),
                    None if model.len() as u64 == cap => {
                        assert!(matches!(r, Err(Error::MapFull { .. })))
                    }
                    None => {
                        assert_eq!(r.unwrap(), v);
                        model.insert(k, v);
                    }
                }
            }
            Op::Clear => {
                m.clear().unwrap();
                model.clear();
            }
            Op::Check => {
                assert_eq!(m.len(), model.len());
                let got: HashMap<Vec<u8>, Vec<u8>> = m.iter().collect();
                assert_eq!(got, model);
                assert_eq!(l.len(), list.len());
                assert_eq!(l.to_vec(), list);
            }
            Op::Push(v) => match l.push(v) {
                Ok(i) => {
                    assert_eq!(i, list.len());
                    list.push(v);
                }
                Err(Error::ListFull { .. }) => assert_eq!(list.len(), lcap),
                Err(e) => panic!("push: {e}"),
            },
            Op::Pop => assert_eq!(l.pop().unwrap(), list.pop()),
            Op::Set { i, v } => {
                let i = i as usize % (lcap + 1);
                match l.set(i, v) {
                    Ok(()) => list[i] = v,
                    Err(Error::IndexOutOfBounds { .. }) => assert!(i >= list.len()),
                    Err(e) => panic!("set: {e}"),
                }
            }
            Op::ListGet(i) => {
                let i = i as usize % (lcap + 1);
                assert_eq!(l.get(i), list.get(i).copied());
            }
            Op::ListClear => {
                l.clear().unwrap();
                list.clear();
            }
        }
    }
    assert_eq!(m.len(), model.len());
    assert_eq!(l.to_vec(), list);
}
