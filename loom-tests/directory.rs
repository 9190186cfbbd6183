//! loom models of the directory's find-or-create race, on a heap-placed directory.
//!
//! The directory algorithm (`shmkit::internals::Directory`) runs over a slice of
//! entries and a bump-allocator word; here both live on the heap. The `init` callback stands for
//! the object's initialization: it writes a loom atomic (relaxed) that represents the object's
//! memory, so a model checks that the write happens-before every other creator's return.
//!
//! Models have two threads. With three creators of one name, two of them wait (spinning with
//! `yield_now`) on the entry the third claimed; loom does not count a switch between two yielding
//! threads as a preemption, so it explores schedules where the two waiters hand the CPU to each
//! other forever and the model hits loom's branch limit (tried: fails after 20 000 branches,
//! ~2 minutes). Two threads cover the race: one claims, one waits, in every interleaving.
//!
//! Run: `cargo test --features loom --test loom_directory` (bounds in `common/mod.rs`;
//! `LOOM_MAX_PREEMPTIONS=3` searches deeper).
#![cfg(feature = "loom")]

mod common;

use common::thread;
use core::alloc::Layout;
use loom::sync::Arc;
use shmkit::internals::{DirEntry, Directory};
use shmkit::sync::{AtomicU64, AtomicUsize, Ordering};
use shmkit::{Error, Kind, TypeTag};
use std::path::Path;
use std::time::Duration;

const ARENA_START: u64 = 4096;
/// Room for exactly two objects (the directory aligns objects to 128 bytes).
const ARENA_END: u64 = ARENA_START + 256;
/// Marker the init callback writes into an object's memory.
const INITIALIZED: u64 = 0xC0FFEE;

/// A heap-placed directory with `cap` entries and a small arena, plus one "memory" atomic per
/// possible object slot in the arena.
struct Shared {
    entries: Vec<DirEntry>,
    alloc_next: AtomicU64,
    arena_end: u64,
    /// `objects[k]` stands for the memory at `ARENA_START + 128 * k`.
    objects: [AtomicU64; 2],
    /// How many times `init` ran.
    inits: AtomicUsize,
}

impl Shared {
    fn new(cap: usize, arena_end: u64) -> Arc<Self> {
        Arc::new(Shared {
            entries: (0..cap).map(|_| DirEntry::new()).collect(),
            alloc_next: AtomicU64::new(ARENA_START),
            arena_end,
            objects: [AtomicU64::new(0), AtomicU64::new(0)],
            inits: AtomicUsize::new(0),
        })
    }

    fn dir(&self) -> Directory<'_> {
        Directory::new(
            &self.entries,
            &self.alloc_next,
            ARENA_START,
            self.arena_end,
            Path::new("loom-directory"),
            Duration::from_secs(1),
        )
    }

    fn object_at(&self, offset: u64) -> &AtomicU64 {
        assert_eq!(
            (offset - ARENA_START) % 128,
            0,
            "misaligned offset {offset}"
        );
        &self.objects[((offset - ARENA_START) / 128) as usize]
    }

    /// Finds or creates `name`; on success returns (entry index, offset, value seen in the
    /// object's memory right after the call returned).
    fn find_or_create(&self, name: &str) -> Result<(u32, u64, u64), Error> {
        let (index, offset) = self.dir().find_or_create(name, &tag(), layout(), |off| {
            self.inits.fetch_add(1, Ordering::Relaxed);
            self.object_at(off).store(INITIALIZED, Ordering::Relaxed);
        })?;
        let seen = self.object_at(offset).load(Ordering::Relaxed);
        Ok((index, offset, seen))
    }
}

fn tag() -> TypeTag {
    TypeTag::of::<u64>(Kind::VALUE)
}

fn layout() -> Layout {
    Layout::new::<u64>()
}

#[test]
fn two_creators_of_one_name_share_one_initialized_object() {
    common::model(|| {
        let s = Shared::new(2, ARENA_END);
        let s2 = s.clone();
        let t = thread::spawn(move || s2.find_or_create("jobs").unwrap());
        let mine = s.find_or_create("jobs").unwrap();
        let theirs = t.join().unwrap();
        assert_eq!(mine, theirs, "both must get the same entry and offset");
        assert_eq!(
            mine.2, INITIALIZED,
            "returned before the object was initialized"
        );
        assert_eq!(
            s.inits.load(Ordering::Relaxed),
            1,
            "init must run exactly once"
        );
        assert_eq!(mine.0, 0);
        assert_eq!(mine.1, ARENA_START);
        // A later lookup finds the same object, ready.
        let (index, found, offset, size) = s.dir().find("jobs").unwrap();
        assert_eq!((index, offset, size), (0, ARENA_START, 8));
        assert_eq!(found, tag());
    });
}

#[test]
fn two_names_get_two_entries_and_disjoint_memory() {
    common::model(|| {
        let s = Shared::new(2, ARENA_END);
        let s2 = s.clone();
        let t = thread::spawn(move || s2.find_or_create("a").unwrap());
        let b = s.find_or_create("b").unwrap();
        let a = t.join().unwrap();
        assert_ne!(a.0, b.0, "two names in one entry");
        let (lo, hi) = if a.1 < b.1 { (a.1, b.1) } else { (b.1, a.1) };
        assert!(lo + 8 <= hi, "allocations overlap: {a:?} {b:?}");
        assert_eq!((a.2, b.2), (INITIALIZED, INITIALIZED));
        assert_eq!(s.inits.load(Ordering::Relaxed), 2);
        let names: Vec<String> = s
            .dir()
            .list()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a".to_string()) && names.contains(&"b".to_string()));
    });
}

#[test]
fn one_entry_two_names_one_directory_full() {
    common::model(|| {
        let s = Shared::new(1, ARENA_END);
        let s2 = s.clone();
        let t = thread::spawn(move || s2.find_or_create("a"));
        let b = s.find_or_create("b");
        let a = t.join().unwrap();
        let (won, lost) = match (a, b) {
            (Ok(w), Err(l)) | (Err(l), Ok(w)) => (w, l),
            other => panic!("expected one success and one error, got {other:?}"),
        };
        assert!(
            matches!(lost, Error::DirectoryFull { capacity: 1 }),
            "{lost:?}"
        );
        assert_eq!(won, (0, ARENA_START, INITIALIZED));
        assert_eq!(s.inits.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn arena_for_one_two_names_one_out_of_space() {
    // Two entries but room for one object: the loser marks its entry dead and reports
    // OutOfSpace; the winner's object is intact and the dead entry is skipped by lookups.
    common::model(|| {
        let s = Shared::new(2, ARENA_START + 128);
        let s2 = s.clone();
        let t = thread::spawn(move || s2.find_or_create("a"));
        let b = s.find_or_create("b");
        let a = t.join().unwrap();
        let (won_name, won, lost) = match (a, b) {
            (Ok(w), Err(l)) => ("a", w, l),
            (Err(l), Ok(w)) => ("b", w, l),
            other => panic!("expected one success and one error, got {other:?}"),
        };
        assert!(matches!(lost, Error::OutOfSpace { .. }), "{lost:?}");
        assert_eq!((won.1, won.2), (ARENA_START, INITIALIZED));
        let listed = s.dir().list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, won_name);
        assert_eq!(s.dir().find(won_name).unwrap().2, ARENA_START);
    });
}

#[test]
fn finder_racing_a_creator_sees_nothing_or_the_initialized_object() {
    // `find` (the open-only path of `open_object`) either misses the object or returns it
    // initialized: it waits while the creator holds the entry.
    common::model(|| {
        // The finder is the spawned thread and the creator the model's own: loom 0.7 explores
        // a load again before the store it read, but not a store again before a load that
        // ran first, so with the finder first in the first execution this model ran once.
        let s = Shared::new(2, ARENA_END);
        let s2 = s.clone();
        let finder = thread::spawn(move || match s2.dir().find("jobs") {
            Ok((index, found, offset, size)) => {
                assert_eq!((index, offset, size), (0, ARENA_START, 8));
                assert_eq!(found, tag());
                assert_eq!(
                    s2.object_at(offset).load(Ordering::Relaxed),
                    INITIALIZED,
                    "find returned before the object was initialized"
                );
                true
            }
            Err(Error::ObjectNotFound { name }) => {
                assert_eq!(name, "jobs");
                false
            }
            Err(e) => panic!("unexpected error {e:?}"),
        });
        assert_eq!(
            s.find_or_create("jobs").unwrap(),
            (0, ARENA_START, INITIALIZED)
        );
        finder.join().unwrap();
    });
}
