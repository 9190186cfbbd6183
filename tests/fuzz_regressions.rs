//! Replays the `segment_open` fuzz target's saved inputs under plain `cargo test` (no nightly).
//!
//! The check itself lives in `fuzz/common/segment_open.rs`, included here and by the fuzz target
//! with `#[path]`, so both run the same code. Inputs are decoded the way `libfuzzer-sys` decodes
//! them (`Input::arbitrary_take_rest` over the raw bytes), so a file copied from
//! `fuzz/artifacts/segment_open/` into `tests/fuzz-regressions/segment_open/` replays exactly.
//! Each replay must return (no panic, no hang: the test has a time limit per input).
#![cfg(not(feature = "loom"))]

#[path = "../fuzz/common/segment_open.rs"]
#[allow(dead_code)]
mod segment_open;

use arbitrary::{Arbitrary, Unstructured};
use segment_open::{Base, Create, Holder, Input, Kind, Lookup, Name, Outcome, Patch};
use std::path::Path;
use std::time::Duration;

/// Longest a single input may take (each wait in it is bounded at 1 ms).
const PER_INPUT: Duration = Duration::from_secs(10);

fn replay_dir(dir: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue; // libfuzzer-sys skips inputs that do not decode, and so do we
        };
        if run_bounded(input).is_none() {
            panic!(
                "{} did not finish in {PER_INPUT:?}: a wait is not bounded",
                f.display()
            );
        }
    }
    files.len()
}

/// Runs one input on its own thread; `None` if it does not finish within [`PER_INPUT`] (the
/// stuck thread is left behind and the test fails instead of hanging).
fn run_bounded(input: Input) -> Option<Outcome> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(segment_open::run(&input));
    });
    match rx.recv_timeout(PER_INPUT) {
        Ok(out) => Some(out),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the input panicked"),
    }
}

#[test]
fn saved_crashes_replay_without_panic_or_hang() {
    let n = replay_dir("tests/fuzz-regressions/segment_open");
    assert!(n > 0, "no regression inputs found");
}

#[test]
fn seed_corpus_replays() {
    let n = replay_dir("fuzz/seeds/segment_open");
    assert!(n > 0, "no seed inputs found");
}

fn valid(objects: Vec<Create>) -> Base {
    Base::Valid {
        dir_capacity: 3, // 4 entries
        arena_pages: 1,  // two pages of arena (a sharded counter takes one)
        objects,
    }
}

fn create(name: &str, kind: Kind, value: u64) -> Create {
    Create {
        name: Name::Any(name.to_string()),
        kind,
        value,
    }
}

fn lookup(name: &str, create: bool, kind: Kind) -> Lookup {
    Lookup {
        name: Name::Any(name.to_string()),
        create,
        kind,
    }
}

/// The first hang the fuzzer found: an entry whose state byte says "empty" while its pid bits
/// are set made `find_or_create` retry its claim forever. It is now `Error::Corrupted`.
#[test]
fn empty_state_with_pid_bits_is_an_error_not_a_hang() {
    let input = Input {
        base: valid(vec![]),
        patches: vec![Patch::EntryState {
            entry: 0,
            state: 0,
            holder: Holder::Me,
        }],
        fix_checksum: false,
        set_len: None,
        lookups: vec![lookup("temp", true, Kind::Counter)],
    };
    let out = run_bounded(input).expect("a wait is not bounded");
    assert!(out.opened);
    assert_eq!(out.listed, None, "listing must report the corrupted entry");
    assert_eq!(out.objects_used, 0);
}

/// An untouched valid segment opens, lists its objects and every one of them is usable: the
/// harness does reach the directory (otherwise the fuzzer would only test header checks).
#[test]
fn valid_segment_reaches_the_objects() {
    let input = Input {
        base: valid(vec![
            create("hits", Kind::Counter, 3),
            create("shards", Kind::Sharded, 1),
            create("temp", Kind::F64, 2.5f64.to_bits()),
        ]),
        patches: vec![],
        fix_checksum: false,
        set_len: None,
        lookups: vec![
            lookup("hits", false, Kind::Counter),
            lookup("new", true, Kind::U32),
            lookup("hits", false, Kind::F64), // type mismatch: an error, not a use
        ],
    };
    let out = segment_open::run(&input);
    assert_eq!(
        out,
        Outcome {
            built: true,
            opened: true,
            listed: Some(3),
            // One per listed object under its own type, then "hits" and the new "new".
            objects_used: 3 + 2,
        }
    );
}

/// Patched directory states held by a dead process and a live one (this one), and an offset
/// outside the segment: a dead creator's entry is taken over, a live claimer is waited for only
/// up to the 1 ms bound, the bad offset is refused; nothing hangs.
#[test]
fn patched_states_and_offsets_are_bounded() {
    let patches = vec![
        // "a": named, its creator dead: find_or_create takes it over and initializes it.
        Patch::EntryState {
            entry: 0,
            state: 2,
            holder: Holder::Dead,
        },
        // "b": abandoned; skipped.
        Patch::EntryState {
            entry: 1,
            state: 4,
            holder: Holder::Pid(1),
        },
        // "c": ready, but its offset (word 6) points far outside the segment.
        Patch::EntryWord {
            entry: 2,
            field: 6,
            value: u64::MAX - 7,
        },
        // "d": claimed by a live process (this one): lookups past it wait, then time out.
        Patch::EntryState {
            entry: 3,
            state: 1,
            holder: Holder::Me,
        },
    ];
    let input = Input {
        base: valid(vec![
            create("a", Kind::Counter, 1),
            create("b", Kind::Counter, 2),
            create("c", Kind::U8, 3),
            create("d", Kind::Sharded, 4),
        ]),
        patches,
        fix_checksum: false,
        set_len: None,
        lookups: vec![
            lookup("a", true, Kind::Counter),  // taken over: used
            lookup("a", false, Kind::Counter), // now ready: used
            lookup("b", true, Kind::Counter),  // passes a, c, waits on d: Timeout
            lookup("c", false, Kind::U8),      // Corrupted
        ],
    };
    let out = run_bounded(input).expect("a wait is not bounded");
    assert!(out.opened);
    assert_eq!(out.listed, Some(2), "a (being initialized) and c");
    assert_eq!(out.objects_used, 2);
}

/// A header field patched with its checksum fixed reaches the geometry checks; a shortened
/// file is refused as truncated. Neither opens.
#[test]
fn patched_geometry_and_truncation_are_refused() {
    for (patch, set_len) in [
        (
            Some(Patch::HeaderWord {
                field: 3, // size
                value: 1 << 40,
            }),
            None,
        ),
        (
            Some(Patch::HeaderWord {
                field: 6, // arena offset
                value: 256,
            }),
            None,
        ),
        (None, Some(4096)),
    ] {
        let input = Input {
            base: valid(vec![create("hits", Kind::Counter, 1)]),
            patches: patch.into_iter().collect(),
            fix_checksum: true,
            set_len,
            lookups: vec![],
        };
        let out = segment_open::run(&input);
        assert!(out.built && !out.opened, "{input:?} opened");
    }
}
