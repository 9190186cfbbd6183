//! Every way of opening or creating a segment or an object can fail gives its own `Error`
//! variant, naming what was found and what was expected. Crafted files are file-backed segments
//! in a private temporary directory; `/dev/shm` behaviour (names, symlinks, modes) uses named ones.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TempDir, TIMEOUT};
use shmkit::FORMAT_VERSION;
use shmkit::{AtomicValue, Counter, Error, Segment, SegmentOptions, ShardedCounter};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 16;

// Header field offsets (src/segment/header.rs).
const OFF_VERSION_STATE: usize = 8;
const OFF_LAYOUT_HASH: usize = 16;
const OFF_DIR_CAPACITY: usize = 40;
const OFF_CREATOR_PID: usize = 64;
const OFF_CREATOR_START: usize = 72;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
        // seg: name; args: second name, file path. Creates under umask 0 and 077.
        "umask" => {
            // SAFETY: umask only sets this (single-purpose, child) process's file mode mask.
            unsafe { libc::umask(0) };
            Segment::create(&ctx.seg, SIZE).unwrap();
            Segment::file(ctx.arg_str(1), SIZE).unwrap();
            // SAFETY: as above.
            unsafe { libc::umask(0o077) };
            SegmentOptions::new()
                .mode(0o640)
                .create(ctx.arg_str(0), SIZE)
                .unwrap();
        }
        other => panic!("unknown role {other}"),
    });
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Writes a file with mode 0600 whatever the umask: a file others may write is refused as
/// untrusted before its contents are looked at.
fn write_private(
    path: impl AsRef<std::path::Path>,
    bytes: impl AsRef<[u8]>,
) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes.as_ref())
}

/// Writes a valid file segment at `path` (with a counter in it) and returns its bytes.
fn valid_file(path: &Path) -> Vec<u8> {
    {
        let seg = Segment::file(path, SIZE).unwrap();
        seg.counter("c").unwrap().add(5);
        seg.flush().unwrap();
    }
    std::fs::read(path).unwrap()
}

fn patch_u64(bytes: &mut [u8], off: usize, v: u64) {
    bytes[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn read_u64(bytes: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(bytes[off..off + 8].try_into().unwrap())
}

#[test]
fn wrong_type_is_type_mismatch_naming_both() {
    let g = SegGuard::new("mismatch");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.counter("x").unwrap().add(3);
    match seg.value::<f64>("x", 0.0) {
        Err(e @ Error::TypeMismatch { .. }) => {
            let Error::TypeMismatch {
                ref name,
                ref expected,
                ref found,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(name, "x");
            assert!(
                expected.contains("value") && expected.contains("f64"),
                "{expected}"
            );
            assert!(found.contains("counter"), "{found}");
            let msg = e.to_string();
            assert!(
                msg.contains(expected.as_str()) && msg.contains(found.as_str()),
                "{msg}"
            );
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    // Another process's view: the same through open_object, for other kinds and types.
    let other = Segment::open(g.name()).unwrap();
    assert!(matches!(
        other.open_object::<ShardedCounter>("x"),
        Err(Error::TypeMismatch { .. })
    ));
    seg.value::<u32>("v", 1).unwrap();
    match other.open_object::<AtomicValue<f32>>("v") {
        Err(Error::TypeMismatch {
            expected, found, ..
        }) => {
            assert!(
                expected.contains("f32") && found.contains("u32"),
                "{expected} / {found}"
            );
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    // The object itself is untouched.
    assert_eq!(other.open_object::<Counter>("x").unwrap().load(), 3);
}

#[test]
fn missing_segment_and_object() {
    let g = SegGuard::new("missing");
    match Segment::open(g.name()) {
        Err(Error::NotFound { path }) => assert_eq!(path, g.path()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let dir = TempDir::new("missing");
    assert!(matches!(
        Segment::open_file(dir.join("nope.shm")),
        Err(Error::NotFound { .. })
    ));
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.counter("present").unwrap();
    match seg.open_object::<Counter>("absent") {
        Err(Error::ObjectNotFound { name }) => assert_eq!(name, "absent"),
        other => panic!("expected ObjectNotFound, got {other:?}"),
    }
}

#[test]
fn garbage_file_is_not_a_shmkit_segment() {
    let dir = TempDir::new("garbage");
    let path = dir.join("garbage.shm");
    // A deterministic xorshift stream: no zero word at the start, no magic anywhere.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let bytes: Vec<u8> = (0..SIZE / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    write_private(&path, &bytes).unwrap();
    match Segment::open_file(&path) {
        Err(Error::NotAShmkitSegment { found_magic, .. }) => {
            assert_eq!(found_magic, read_u64(&bytes, 0));
        }
        other => panic!("expected NotAShmkitSegment, got {other:?}"),
    }
    // A short text file too.
    write_private(&path, b"hello, shared memory\n").unwrap();
    assert!(matches!(
        Segment::open_file(&path),
        Err(Error::NotAShmkitSegment { .. })
    ));
    // Shorter than the magic and not a prefix of it: not ours, rather than "truncated".
    write_private(&path, b"hello").unwrap();
    assert!(matches!(
        Segment::open_file(&path),
        Err(Error::NotAShmkitSegment { .. })
    ));
    // A prefix of the magic, cut short: truncated.
    write_private(&path, b"SHMK").unwrap();
    assert!(matches!(
        Segment::open_file(&path),
        Err(Error::Truncated { actual: 4, .. })
    ));
    // And the same in /dev/shm, by name; `Segment::file` refuses it as well.
    let g = SegGuard::new("garbage");
    write_private(g.path(), &bytes).unwrap();
    assert!(matches!(
        Segment::open(g.name()),
        Err(Error::NotAShmkitSegment { .. })
    ));
    assert!(matches!(
        Segment::open_or_create(g.name(), SIZE),
        Err(Error::NotAShmkitSegment { .. })
    ));
}

#[test]
fn truncated_file_is_truncated() {
    let dir = TempDir::new("truncated");
    let path = dir.join("t.shm");
    let bytes = valid_file(&path);
    write_private(&path, &bytes[..SIZE as usize / 4]).unwrap();
    match Segment::open_file(&path) {
        Err(Error::Truncated {
            expected, actual, ..
        }) => {
            assert_eq!(expected, SIZE);
            assert_eq!(actual, SIZE / 4);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    // Cut inside the header, after the magic.
    write_private(&path, &bytes[..100]).unwrap();
    match Segment::open_file(&path) {
        Err(Error::Truncated {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (256, 100)),
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn other_format_version_is_version_mismatch() {
    let dir = TempDir::new("version");
    let path = dir.join("v.shm");
    let mut bytes = valid_file(&path);
    // Patch only the version (low half of the ready/version word); the checksum, which covers
    // it, is left stale on purpose: the version must be checked first, so that a segment of
    // another version is reported as such and not as corrupted.
    let vs = read_u64(&bytes, OFF_VERSION_STATE);
    assert_eq!(vs as u32, FORMAT_VERSION);
    patch_u64(
        &mut bytes,
        OFF_VERSION_STATE,
        (vs & !0xffff_ffff) | (FORMAT_VERSION as u64 + 1),
    );
    write_private(&path, &bytes).unwrap();
    match Segment::open_file(&path) {
        Err(e @ Error::VersionMismatch { .. }) => {
            let Error::VersionMismatch {
                expected, found, ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((expected, found), (FORMAT_VERSION, FORMAT_VERSION + 1));
            assert!(e.to_string().contains("version"), "{e}");
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
}

#[test]
fn corrupted_header_fields_are_corrupted() {
    let dir = TempDir::new("corrupt");
    let path = dir.join("c.shm");
    let good = valid_file(&path);
    let cases: [(&str, usize, u64); 3] = [
        ("dir_capacity", OFF_DIR_CAPACITY, 1_000_000),
        ("layout_hash", OFF_LAYOUT_HASH, 0x1234),
        // High half of the ready/version word neither 0 nor the ready marker.
        (
            "version_state",
            OFF_VERSION_STATE,
            0xdead_0000_0000 | FORMAT_VERSION as u64,
        ),
    ];
    for (field, off, v) in cases {
        let mut bytes = good.clone();
        patch_u64(&mut bytes, off, v);
        write_private(&path, &bytes).unwrap();
        match Segment::open_file(&path) {
            Err(Error::Corrupted { what, .. }) => assert!(!what.is_empty(), "{field}"),
            other => panic!("{field}: expected Corrupted, got {other:?}"),
        }
    }
    // The unpatched file still opens (the patches, not the file, made the errors).
    write_private(&path, &good).unwrap();
    let seg = Segment::open_file(&path).unwrap();
    assert_eq!(seg.open_object::<Counter>("c").unwrap().load(), 5);
}

#[test]
fn invalid_names_are_invalid_name() {
    let long = "x".repeat(201);
    for bad in ["", long.as_str(), "a/b", "a\0b", ".hidden"] {
        for (op, r) in [
            ("create", Segment::create(bad, SIZE).map(|_| ())),
            ("open", Segment::open(bad).map(|_| ())),
            (
                "open_or_create",
                Segment::open_or_create(bad, SIZE).map(|_| ()),
            ),
            ("remove", Segment::remove(bad)),
        ] {
            match r {
                Err(Error::InvalidName { name, reason }) => {
                    assert_eq!(name, bad);
                    assert!(!reason.is_empty());
                }
                other => panic!("{op}({bad:?}): expected InvalidName, got {other:?}"),
            }
        }
    }
    // 200 bytes is still fine.
    let g = SegGuard::new("n");
    let name200 = format!("{}{}", g.name(), "y".repeat(200 - g.name().len()));
    let g200 = SegGuardName(name200.clone());
    Segment::create(&g200.0, SIZE).unwrap();
    // Object names.
    let seg = Segment::create(g.name(), SIZE).unwrap();
    for bad in [String::new(), "o".repeat(65), "a\0b".to_string()] {
        assert!(
            matches!(seg.counter(&bad), Err(Error::InvalidName { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            seg.open_object::<Counter>(&bad),
            Err(Error::InvalidName { .. })
        ));
    }
    seg.counter(&"o".repeat(64)).unwrap();
}

/// Removes an exact `/dev/shm` name on Drop (for names a `SegGuard` cannot produce).
struct SegGuardName(String);

impl Drop for SegGuardName {
    fn drop(&mut self) {
        let _ = Segment::remove(&self.0);
    }
}

#[test]
fn too_small_size_is_invalid_size() {
    let g = SegGuard::new("small");
    for size in [0, 100, 4096] {
        match Segment::create(g.name(), size) {
            Err(Error::InvalidSize { requested, reason }) => {
                assert_eq!(requested, size);
                assert!(!reason.is_empty());
            }
            other => panic!("size {size}: expected InvalidSize, got {other:?}"),
        }
    }
    assert!(matches!(
        SegmentOptions::new().dir_capacity(0).create(g.name(), SIZE),
        Err(Error::InvalidSize { .. })
    ));
    assert!(
        !g.path().exists(),
        "a refused create must leave nothing behind"
    );
}

#[test]
fn full_directory_is_directory_full() {
    let g = SegGuard::new("dirfull");
    let seg = SegmentOptions::new()
        .dir_capacity(2)
        .create(g.name(), SIZE)
        .unwrap();
    seg.counter("a").unwrap();
    seg.counter("b").unwrap();
    match seg.counter("c") {
        Err(Error::DirectoryFull { capacity }) => assert_eq!(capacity, 2),
        other => panic!("expected DirectoryFull, got {other:?}"),
    }
    // Existing objects are still found.
    seg.counter("a").unwrap().inc();
    assert_eq!(seg.entries().unwrap().len(), 2);
}

#[test]
fn full_arena_is_out_of_space() {
    let g = SegGuard::new("oos");
    // The smallest segment with the default directory: a 4 KiB arena, 32 counters of 128 bytes.
    let seg = match Segment::create(g.name(), 4096) {
        Err(Error::InvalidSize { reason, .. }) => {
            // "... needs at least <min> bytes"
            let min: u64 = reason
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .next_back()
                .expect("the reason names the minimum size");
            assert_eq!(min, 24 * 1024);
            Segment::create(g.name(), min).unwrap()
        }
        other => panic!("expected InvalidSize, got {other:?}"),
    };
    let mut made = 0;
    let err = loop {
        match seg.counter(&format!("c{made}")) {
            Ok(c) => {
                c.add(made);
                made += 1;
                assert!(made <= 1000, "never ran out of space");
            }
            Err(e) => break e,
        }
    };
    match err {
        Error::OutOfSpace { needed, available } => {
            assert!(needed > available, "needed {needed}, available {available}");
            assert_eq!(needed, 128);
        }
        other => panic!("expected OutOfSpace, got {other:?}"),
    }
    assert_eq!(made, 32);
    // The objects made before are intact.
    for i in 0..made {
        assert_eq!(seg.counter(&format!("c{i}")).unwrap().load(), i);
    }
}

#[test]
fn create_on_existing_name_is_already_exists() {
    let g = SegGuard::new("exists");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.counter("keep").unwrap().add(9);
    match Segment::create(g.name(), SIZE) {
        Err(Error::AlreadyExists { path }) => assert_eq!(path, g.path()),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The existing segment was not touched.
    assert_eq!(
        Segment::open(g.name())
            .unwrap()
            .counter("keep")
            .unwrap()
            .load(),
        9
    );
}

#[test]
fn symlink_in_place_of_a_segment_is_not_followed() {
    let dir = TempDir::new("symlink");
    let target = dir.join("target.shm");
    let before = valid_file(&target);
    let g = SegGuard::new("symlink");
    std::os::unix::fs::symlink(&target, g.path()).unwrap();
    match Segment::open(g.name()) {
        Err(Error::InvalidName { reason, .. }) => assert!(reason.contains("link"), "{reason}"),
        other => panic!("open through a symlink: expected a refusal, got {other:?}"),
    }
    assert!(matches!(
        Segment::create(g.name(), SIZE),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(Segment::open_or_create(g.name(), SIZE).is_err());
    assert!(Segment::open_file(g.path()).is_err());
    assert!(Segment::file(g.path(), SIZE).is_err());
    assert_eq!(std::fs::read(&target).unwrap(), before, "target modified");

    // A dangling link: creating must not create the file it points to.
    let dangling = dir.join("not-there.shm");
    std::fs::remove_file(g.path()).unwrap();
    std::os::unix::fs::symlink(&dangling, g.path()).unwrap();
    assert!(Segment::create(g.name(), SIZE).is_err());
    assert!(Segment::open_or_create(g.name(), SIZE).is_err());
    assert!(
        !dangling.exists(),
        "a symlink was followed to create its target"
    );
}

#[test]
fn mode_is_exactly_0600_whatever_the_umask() {
    let g = SegGuard::new("umask0");
    let g640 = SegGuard::new("mode640");
    let dir = TempDir::new("umask0");
    let file = dir.join("f.shm");
    let mut kids = Children::new();
    let k = kids.spawn("umask", g.name(), &[&g640.name(), &file.display()]);
    kids.wait_ok(k, TIMEOUT);
    assert_eq!(mode_of(&g.path()), 0o600, "named, umask 0");
    assert_eq!(mode_of(&file), 0o600, "file-backed, umask 0");
    assert_eq!(mode_of(&g640.path()), 0o640, "custom mode, umask 077");
    // And in this process, whatever its umask.
    let g2 = SegGuard::new("mode-here");
    Segment::create(g2.name(), SIZE).unwrap();
    assert_eq!(mode_of(&g2.path()), 0o600);
}

/// A header with the magic but never made ready, its creator recorded as (`pid`, `start`).
fn unfinished_file_started(path: &Path, pid: u32, start: u64) {
    let mut bytes = vec![0u8; SIZE as usize];
    patch_u64(&mut bytes, 0, shmkit::MAGIC);
    patch_u64(&mut bytes, OFF_CREATOR_PID, pid as u64);
    patch_u64(&mut bytes, OFF_CREATOR_START, start);
    write_private(path, &bytes).unwrap();
}

/// As above, with no start time recorded (the pid alone decides liveness).
fn unfinished_file(path: &Path, pid: u32) {
    unfinished_file_started(path, pid, 0);
}

#[test]
fn unfinished_header_of_reused_pid_is_creator_died() {
    // The recorded pid is alive (this process) but started at another time: a reused pid,
    // so the recorded creator is dead.
    let dir = TempDir::new("reused");
    let path = dir.join("r.shm");
    let me = std::process::id();
    unfinished_file_started(&path, me, shmkit::process::start_time() + 1);
    match Segment::open_file(&path) {
        Err(Error::CreatorDied { pid, .. }) => assert_eq!(pid, me),
        other => panic!("expected CreatorDied, got {other:?}"),
    }
}

#[test]
fn unfinished_header_of_dead_creator_is_creator_died() {
    let dir = TempDir::new("died");
    let path = dir.join("d.shm");
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    unfinished_file(&path, pid);
    let t = Instant::now();
    match Segment::open_file(&path) {
        Err(Error::CreatorDied { pid: p, what }) => {
            assert_eq!(p, pid);
            assert!(what.contains("d.shm"), "{what}");
        }
        other => panic!("expected CreatorDied, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a dead creator must not be waited on"
    );
}

/// An all-zero file looks like a segment whose creator has not yet recorded itself: it is
/// reported as not a segment after a short grace (200 ms from its last change), not after the
/// whole 5 s wait for a creator.
#[test]
fn all_zero_file_is_not_a_segment_promptly() {
    let g = SegGuard::new("zeros");
    let dir = TempDir::new("zeros");
    let file = dir.join("z.shm");
    write_private(g.path(), vec![0u8; SIZE as usize]).unwrap();
    write_private(&file, vec![0u8; SIZE as usize]).unwrap();
    let not_a_segment = |r: shmkit::Result<Segment>, what: &str| match r {
        Err(Error::NotAShmkitSegment { found_magic: 0, .. }) => {}
        other => panic!("{what}: expected NotAShmkitSegment, got {other:?}"),
    };
    // Fresh (just written): the grace, then the error.
    let t = Instant::now();
    not_a_segment(Segment::open(g.name()), "open, fresh");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "open of a fresh zero file took {took:?}"
    );
    // Older than the grace: at once, by every way of opening.
    std::thread::sleep(Duration::from_millis(300));
    for (what, open) in [
        (
            "open",
            Box::new(|| Segment::open(g.name())) as Box<dyn Fn() -> _>,
        ),
        (
            "open_or_create",
            Box::new(|| Segment::open_or_create(g.name(), SIZE)),
        ),
        ("open_file", Box::new(|| Segment::open_file(&file))),
        ("file", Box::new(|| Segment::file(&file, SIZE))),
    ] {
        let t = Instant::now();
        not_a_segment(open(), what);
        let took = t.elapsed();
        assert!(took < Duration::from_millis(500), "{what} took {took:?}");
    }
    // The magic alone, never made ready and with no creator: corrupted, as promptly.
    let mut bytes = vec![0u8; SIZE as usize];
    patch_u64(&mut bytes, 0, shmkit::MAGIC);
    write_private(&file, &bytes).unwrap();
    let t = Instant::now();
    match Segment::open_file(&file) {
        Err(Error::Corrupted { what, .. }) => assert!(what.contains("no creator"), "{what}"),
        other => panic!("expected Corrupted, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn unfinished_header_of_live_creator_is_initialization_not_finished() {
    let dir = TempDir::new("unfinished");
    let path = dir.join("u.shm");
    // This process plays the creator that is still at work.
    unfinished_file(&path, std::process::id());
    let wait = Duration::from_millis(150);
    let t = Instant::now();
    match SegmentOptions::new().wait_timeout(wait).open_file(&path) {
        Err(Error::InitializationNotFinished {
            creator_pid,
            waited,
            ..
        }) => {
            assert_eq!(creator_pid, std::process::id());
            assert_eq!(waited, wait);
        }
        other => panic!("expected InitializationNotFinished, got {other:?}"),
    }
    let took = t.elapsed();
    assert!(took >= wait && took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn corrupted_directory_is_corrupted_never_a_panic() {
    // Entry 0 (the counter "c" of `valid_file`) starts right after the 256-byte header.
    const E0: usize = 256;
    const STATE: usize = E0;
    const OFFSET: usize = E0 + 48;
    const SIZE_F: usize = E0 + 56;
    const LENS: usize = E0 + 72;
    const ALLOC_NEXT: usize = 128;
    let dir = TempDir::new("corrupt-dir");
    let path = dir.join("d.shm");
    let good = valid_file(&path);
    let lens = read_u64(&good, LENS);
    let cases: [(&str, usize, u64); 6] = [
        ("state", STATE, read_u64(&good, STATE) & !0xff | 7),
        ("name length 0", LENS, lens & !0xffff_ffff),
        ("name length 200", LENS, lens & !0xffff_ffff | 200),
        ("type-name length", LENS, lens & 0xffff_ffff | 5000 << 32),
        ("offset", OFFSET, SIZE * 4),
        ("size", SIZE_F, 8),
    ];
    for (field, off, v) in cases {
        let mut bytes = good.clone();
        patch_u64(&mut bytes, off, v);
        write_private(&path, &bytes).unwrap();
        // The header is fine, so the segment opens; the directory is checked when used.
        let seg = Segment::open_file(&path).unwrap();
        match seg.open_object::<Counter>("c") {
            Err(Error::Corrupted { what, .. }) => assert!(what.contains("entry 0"), "{what}"),
            other => panic!("{field}: open_object: expected Corrupted, got {other:?}"),
        }
        assert!(
            matches!(seg.counter("c"), Err(Error::Corrupted { .. })),
            "{field}: find-or-create"
        );
    }
    // A wild allocation pointer: new objects are refused, existing ones still work.
    let mut bytes = good.clone();
    patch_u64(&mut bytes, ALLOC_NEXT, 3);
    write_private(&path, &bytes).unwrap();
    let seg = Segment::open_file(&path).unwrap();
    assert_eq!(seg.free_bytes(), 0);
    match seg.counter("new") {
        Err(Error::Corrupted { what, .. }) => assert!(what.contains("allocation"), "{what}"),
        other => panic!("alloc_next: expected Corrupted, got {other:?}"),
    }
    assert_eq!(seg.counter("c").unwrap().load(), 5);
}

/// Two directory entries whose objects share bytes (a hostile directory aliasing them) are
/// refused, whichever of the two is looked up, and a rewound allocation pointer cannot place a
/// new object over an existing one.
#[test]
fn overlapping_directory_entries_are_corrupted() {
    use std::os::unix::fs::FileExt;
    const E1: u64 = 256 + 256; // entry 1
    const OFFSET: u64 = 48;
    const ALLOC_NEXT: u64 = 128;
    fn overlap<T: std::fmt::Debug>(r: shmkit::Result<T>, what: &str) {
        match r {
            Err(Error::Corrupted { what: w, .. }) => assert!(w.contains("overlaps"), "{what}: {w}"),
            other => panic!("{what}: expected Corrupted, got {other:?}"),
        }
    }
    let dir = TempDir::new("overlap");
    let path = dir.join("o.shm");
    let seg = Segment::file(&path, SIZE).unwrap();
    // a spans several 128-byte lines, so b can also be moved into its middle, aligned.
    let seqlock = |seg: &Segment| seg.seqlock::<[u64; 8]>("a", [7; 8]);
    seqlock(&seg).unwrap();
    seg.counter("b").unwrap().add(9);
    let entries = seg.entries().unwrap();
    drop(seg);
    let (a, b) = (&entries[0], &entries[1]);
    assert_eq!((a.name.as_str(), b.name.as_str()), ("a", "b"));
    assert!(a.size > 256, "{a:?}");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    // b's object moved onto the start, then into the middle of a's (aligned, in the arena).
    for at in [a.offset, a.offset + 128] {
        f.write_all_at(&at.to_le_bytes(), E1 + OFFSET).unwrap();
        let seg = Segment::open_file(&path).unwrap();
        overlap(seg.open_object::<shmkit::SeqLock<[u64; 8]>>("a"), "open a");
        overlap(seg.open_object::<Counter>("b"), "open b");
        overlap(seqlock(&seg), "find-or-create a");
        overlap(seg.counter("b"), "find-or-create b");
    }
    // Restored: both open again, untouched.
    f.write_all_at(&b.offset.to_le_bytes(), E1 + OFFSET)
        .unwrap();
    let seg = Segment::open_file(&path).unwrap();
    assert_eq!(seqlock(&seg).unwrap().read(), [7; 8]);
    assert_eq!(seg.counter("b").unwrap().load(), 9);
    // The allocation pointer rewound onto a's object: a new object is refused, a intact.
    f.write_all_at(&a.offset.to_le_bytes(), ALLOC_NEXT).unwrap();
    overlap(seg.counter("new"), "create over a");
    assert_eq!(seqlock(&seg).unwrap().read(), [7; 8]);
    assert_eq!(seg.counter("b").unwrap().load(), 9);
}
