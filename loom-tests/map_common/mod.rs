//! What the map models (`loom-tests/map.rs`, `loom-tests/map_entry.rs`) share: 8-byte values
//! that show a tear, a small map, two keys by stripe, and a dead process's owner word.
#![allow(dead_code)] // each model file uses its own part of this module

use loom::sync::Arc;
use shmkit::{ByteMap, MapOptions};

/// Values are 8 equal bytes: a torn value has two different bytes.
pub fn val(b: u8) -> [u8; 8] {
    [b; 8]
}

pub fn whole(v: &Option<Vec<u8>>) -> Option<u8> {
    v.as_ref().map(|v| {
        assert_eq!(v.len(), 8, "a value of the wrong length: {v:?}");
        assert!(v.iter().all(|&b| b == v[0]), "a torn value: {v:?}");
        v[0]
    })
}

pub fn map(cap: u64) -> Arc<Box<ByteMap>> {
    Arc::new(ByteMap::new(MapOptions::new(cap).key_max(8).value_max(8)).unwrap())
}

/// Two keys of the map in different stripes (`same = false`) or the same stripe.
pub fn keys(m: &ByteMap, same: bool) -> ([u8; 1], [u8; 1]) {
    let a = [0u8];
    let s = m.__stripe_of(&a).unwrap();
    let b = (1..=255u8)
        .map(|x| [x])
        .find(|k| (m.__stripe_of(k).unwrap() == s) == same)
        .unwrap();
    (a, b)
}

/// An owner word of a process that cannot exist: dead by the liveness rule.
pub fn dead_owner() -> u64 {
    shmkit::process::Identity {
        pid: (1 << 22) - 5,
        start: 1,
        pid_ns: shmkit::process::me().pid_ns,
    }
    .word()
}
