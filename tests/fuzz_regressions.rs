//! Replays the fuzz targets' saved inputs under plain `cargo test` (no nightly).
//!
//! Each check lives in `fuzz/common/<target>.rs`, included here and by the fuzz target with
//! `#[path]`, so both run the same code. Inputs are decoded the way `libfuzzer-sys` decodes them
//! (`Input::arbitrary_take_rest` over the raw bytes), so a file copied from
//! `fuzz/artifacts/<target>/` into `tests/fuzz-regressions/<target>/` replays exactly; the seed
//! corpora in `fuzz/seeds/<target>/` replay too. Each replay must return (no panic, no hang: the
//! test has a time limit per input).
#![cfg(not(feature = "loom"))]

#[path = "../fuzz/common/segment_open.rs"]
#[allow(dead_code)]
mod segment_open;

#[path = "../fuzz/common/ring_ops.rs"]
#[allow(dead_code)]
mod ring_ops;

#[path = "../fuzz/common/ring_hostile.rs"]
#[allow(dead_code)]
mod ring_hostile;

#[path = "../fuzz/common/lock_hostile.rs"]
#[allow(dead_code)]
mod lock_hostile;

#[path = "../fuzz/common/map_ops.rs"]
#[allow(dead_code)]
mod map_ops;

#[path = "../fuzz/common/map_hostile.rs"]
#[allow(dead_code)]
mod map_hostile;

#[path = "../fuzz/common/seqlock_ops.rs"]
#[allow(dead_code)]
mod seqlock_ops;

use arbitrary::{Arbitrary, Unstructured};
use segment_open::{Base, Create, Holder, Input, Kind, Lookup, Name, Outcome, Patch};
use std::path::Path;
use std::time::Duration;

/// Longest a single input may take (each wait in it is bounded at 1 ms).
const PER_INPUT: Duration = Duration::from_secs(10);

/// Replays every file in `dir` through `run`; returns how many files there were (0 when the
/// directory does not exist and `required` is false).
fn replay_dir<I, O>(dir: &str, required: bool, run: fn(&I) -> O) -> usize
where
    I: for<'a> Arbitrary<'a> + Send + 'static,
    O: Send + 'static,
{
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    if !required && !dir.exists() {
        return 0;
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let Ok(input) = I::arbitrary_take_rest(Unstructured::new(&bytes)) else {
            continue; // libfuzzer-sys skips inputs that do not decode, and so do we
        };
        if run_bounded(input, run).is_none() {
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
fn run_bounded<I: Send + 'static, O: Send + 'static>(input: I, run: fn(&I) -> O) -> Option<O> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run(&input));
    });
    match rx.recv_timeout(PER_INPUT) {
        Ok(out) => Some(out),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the input panicked"),
    }
}

#[test]
fn saved_crashes_replay_without_panic_or_hang() {
    let n = replay_dir(
        "tests/fuzz-regressions/segment_open",
        true,
        segment_open::run,
    );
    assert!(n > 0, "no regression inputs found");
    // The ring targets have no saved crash of their own unless their directories exist.
    replay_dir("tests/fuzz-regressions/ring_ops", false, ring_ops::run);
    replay_dir(
        "tests/fuzz-regressions/ring_hostile",
        false,
        ring_hostile::run,
    );
    replay_dir(
        "tests/fuzz-regressions/lock_hostile",
        false,
        lock_hostile::run,
    );
    replay_dir("tests/fuzz-regressions/map_ops", false, map_ops::run);
    replay_dir(
        "tests/fuzz-regressions/map_hostile",
        false,
        map_hostile::run,
    );

    // A writer dead mid-write twice under one identity (was refused as WouldDeadlock).
    let n = replay_dir("tests/fuzz-regressions/seqlock_ops", true, seqlock_ops::run);
    assert!(n > 0, "no seqlock_ops regression inputs found");
}

#[test]
fn seed_corpus_replays() {
    for (dir, n) in [
        (
            "fuzz/seeds/segment_open",
            replay_dir("fuzz/seeds/segment_open", true, segment_open::run),
        ),
        (
            "fuzz/seeds/ring_ops",
            replay_dir("fuzz/seeds/ring_ops", true, ring_ops::run),
        ),
        (
            "fuzz/seeds/ring_hostile",
            replay_dir("fuzz/seeds/ring_hostile", true, ring_hostile::run),
        ),
        (
            "fuzz/seeds/lock_hostile",
            replay_dir("fuzz/seeds/lock_hostile", true, lock_hostile::run),
        ),
        (
            "fuzz/seeds/map_ops",
            replay_dir("fuzz/seeds/map_ops", true, map_ops::run),
        ),
        (
            "fuzz/seeds/map_hostile",
            replay_dir("fuzz/seeds/map_hostile", true, map_hostile::run),
        ),
    ] {
        assert!(n > 0, "no seed inputs found in {dir}");
    }
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
    let out = run_bounded(input, segment_open::run).expect("a wait is not bounded");
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
    let out = run_bounded(input, segment_open::run).expect("a wait is not bounded");
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

/// The ring model reaches every answer: pushes up to the (rounded) capacity, `Full`, a batch
/// cut at the free room, `Timeout` on an empty ring, `Closed` for pushes at once and for pops
/// after the drain, and re-claimed sides that carry the positions over.
#[test]
fn ring_ops_model_reaches_every_answer() {
    use ring_ops::{Op, Side, Tiny, Which};
    let ops = vec![
        Op::TryPush(1),
        Op::Push(2),
        Op::TryPush(3),
        Op::Query(Side::Consumer), // 3 of 4: neither empty nor full
        Op::PushTimeout(4, Tiny(0)),
        Op::TryPush(5), // Full (capacity 3 rounds to 4)
        Op::Query(Side::Producer),
        Op::PopInto(3),
        Op::PushSlice { seed: 10, n: 5 }, // 3 of 5 fit
        Op::Reclaim(Side::Producer),
        Op::Reclaim(Side::Consumer),
        Op::Pop,
        Op::TryPop,
        Op::PopTimeout(Tiny(3)),
        Op::TryPop,
        Op::TryPop,              // Empty
        Op::PopTimeout(Tiny(3)), // Timeout
        Op::TryPush(6),
        Op::Close(Side::Consumer),
        Op::TryPush(7), // Closed
        Op::Query(Side::Ring),
        Op::Pop,
        Op::TryPop, // Closed
    ];
    for which in [Which::Spsc, Which::SpscWide, Which::Mpmc, Which::MpmcWide] {
        let input = ring_ops::Input {
            ring: which,
            capacity: 2,
            ops: ops.clone(),
        };
        let out = run_bounded(input, ring_ops::run).expect("a wait is not bounded");
        assert_eq!(
            out,
            ring_ops::Outcome {
                capacity: 4,
                pushed: 4 + 3 + 1,
                popped: 3 + 4 + 1,
                // TryPush(5), the cut batch (MPMC: its failed try_push); the empty try_pop and
                // the pop that timed out.
                full: 2,
                empty: 2,
                // TryPush(7), the last TryPop, and the final drain's two checks are not counted.
                closed: 2,
            },
            "{which:?}"
        );
    }
}

fn hostile_input(
    created: ring_hostile::View,
    place: ring_hostile::Place,
    opened: ring_hostile::View,
    tag: ring_hostile::TagPatch,
    ops: Vec<ring_hostile::Op>,
) -> ring_hostile::Input {
    ring_hostile::Input {
        created,
        capacity: 3, // 4 slots
        prefill: 2,
        place,
        opened,
        tag,
        ops,
    }
}

/// Every word of a ring overwritten with a huge value (positions, control words, claims, slots):
/// operations answer with errors, never panic or hang; an SPSC consumer reports `Corrupted`.
#[test]
fn ring_hostile_every_word_overwritten() {
    use ring_hostile::{Op, Place, Side, TagPatch, Tiny, View};
    let mut ops: Vec<Op> = (0..64)
        .map(|w| Op::Set {
            word: w,
            value: 1 << 63 | u64::from(w),
        })
        .collect();
    ops.extend([
        Op::TryPop,
        Op::PopInto(4),
        Op::PopTimeout(Tiny(3)),
        Op::TryPush(1),
        Op::PushTimeout(2, Tiny(3)),
        Op::PushSlice { seed: 3, n: 3 },
        Op::Query,
        Op::Reclaim(Side::Consumer),
        Op::Reclaim(Side::Producer),
        Op::TryPop,
        Op::Close(Side::Ring),
        Op::TryPop,
    ]);
    for place in [Place::Heap, Place::Segment] {
        for view in [View::SpscU64, View::SpscWide, View::MpmcU64, View::MpmcWide] {
            let input = hostile_input(view, place, view, TagPatch::default(), ops.clone());
            let out = run_bounded(input, ring_hostile::run).expect("a wait is not bounded");
            assert!(out.created && out.opened, "{place:?} {view:?}: {out:?}");
            assert_eq!(out.capacity, 4);
            assert_eq!(out.scribbled, 64);
            if matches!(view, View::SpscU64 | View::SpscWide) {
                assert!(out.corrupted > 0, "{place:?} {view:?}: {out:?}");
            }
        }
    }
}

/// A tag a peer rewrote: a consistent one (another element size, with the size recorded to
/// match) opens as that view; impossible dimensions, another kind, or a size that does not match
/// the layout are refused, on the heap and in the segment alike.
#[test]
fn ring_hostile_patched_tags() {
    use ring_hostile::{Op, Place, SizePatch, TagPatch, View};
    let ops = vec![Op::TryPop, Op::TryPush(9), Op::Query];
    let u8_view = TagPatch {
        elem_size: Some(1),
        elem_align: Some(1),
        size: SizePatch::Fit,
        ..TagPatch::default()
    };
    let wide_len = TagPatch {
        len: Some(ring_hostile::Dim::Pow2(6)),
        size: SizePatch::Fit,
        ..TagPatch::default()
    };
    let huge_len = TagPatch {
        len: Some(ring_hostile::Dim::Pow2(40)),
        size: SizePatch::Fit,
        ..TagPatch::default()
    };
    let stale_size = TagPatch {
        len: Some(ring_hostile::Dim::Pow2(6)),
        ..TagPatch::default()
    };
    let other_kind = TagPatch {
        kind: Some(shmkit::Kind::MPMC.0),
        ..TagPatch::default()
    };
    // (place, opened as, patch, opened?, capacity)
    let cases = [
        (Place::Heap, View::SpscU8, u8_view.clone(), true, 4),
        (Place::Segment, View::SpscU8, u8_view, true, 4),
        (Place::Heap, View::SpscU64, wide_len.clone(), true, 64),
        (Place::Segment, View::SpscU64, wide_len, true, 64),
        (Place::Heap, View::SpscU64, huge_len.clone(), false, 0),
        (Place::Segment, View::SpscU64, huge_len, false, 0),
        (Place::Segment, View::SpscU64, stale_size, false, 0),
        (Place::Segment, View::SpscU64, other_kind, false, 0),
    ];
    for (place, opened, tag, ok, cap) in cases {
        let what = format!("{place:?} {opened:?} {tag:?}");
        let input = hostile_input(View::SpscU64, place, opened, tag, ops.clone());
        let out = run_bounded(input, ring_hostile::run).expect("a wait is not bounded");
        assert!(out.created, "{what}");
        assert_eq!(out.opened, ok, "{what}: {out:?}");
        assert_eq!(out.capacity, cap, "{what}");
    }
}

/// Every word of every lock-family object overwritten (set, nudged, copied, all ones, a live
/// owner), with every operation between the overwrites: no panic, no hang (issue 10: a hostile
/// `arrived` overflowed the barrier and left its internal lock held).
#[test]
fn lock_hostile_every_word_overwritten() {
    use lock_hostile::{Input, Op, Outcome, Target, Tiny, Write};
    let ops_between = |i: u16| -> Vec<Op> {
        vec![
            Op::SemTry,
            Op::SemTimeout(Tiny(i as u8)),
            Op::SemRelease,
            Op::BarTry,
            Op::BarTimeout(Tiny(3)),
            Op::EvSet(i % 2 == 0),
            Op::EvTimeout(Tiny(i as u8)),
            Op::CvNotify(i % 3 == 0),
            Op::CvWait {
                timeout: Tiny(i as u8),
                repair: i % 2 == 1,
            },
            Op::Reentrant {
                depth: i as u8,
                timeout: (i % 2 == 0).then_some(Tiny(1)),
                repair: i % 3 != 0,
                give_up: i % 7 == 6,
            },
            Op::Inspect,
            Op::BarReset,
        ]
    };
    let targets = [
        (Target::Semaphore, 40),
        (Target::Barrier, 140),
        (Target::Event, 1),
        (Target::Condvar, 2),
        (Target::Mutex, 4),
        (Target::Reentrant, 4),
    ];
    let writes = [
        Write::Ones,
        Write::Set(0x8000_0000_0000_0001),
        Write::Add(-1),
        Write::Add(1),
        Write::Copy(1),
        Write::Mine,
        Write::MyTid,
        Write::Set(0),
    ];
    let mut total = Outcome::default();
    for (target, words) in targets {
        for (k, how) in writes.iter().enumerate() {
            let mut ops = Vec::new();
            for word in 0..words {
                ops.push(Op::Scribble {
                    target,
                    word,
                    how: *how,
                });
                if word % 8 == 0 {
                    ops.extend(ops_between(word + k as u16));
                }
            }
            ops.extend(ops_between(k as u16));
            // MAX_OPS bounds one input: split the sequence.
            for chunk in ops.chunks(lock_hostile::MAX_OPS) {
                let input = Input {
                    permits: 1 + k as u8,
                    bound: if k % 2 == 0 { 0 } else { 3 },
                    parties: if k % 3 == 0 { 1 } else { 2 },
                    ops: chunk.to_vec(),
                };
                let out = run_bounded(input, lock_hostile::run).expect("a wait is not bounded");
                total.ok += out.ok;
                total.failed += out.failed;
                total.scribbles += out.scribbles;
            }
        }
    }
    assert!(
        total.ok > 0 && total.failed > 0 && total.scribbles > 1000,
        "{total:?}"
    );
}
