//! Whose segments a process uses: opening checks the owner and mode of the opened file (another
//! user's segment, or one others may write, is `UntrustedSegment` unless the caller opts in),
//! and creating cannot be blocked by squatting the names a creator builds its file under.
//!
//! The cross-user case needs root (CI runs as root): a child re-executed as uid 65534 squats the
//! name. Elsewhere the test prints why it skipped and returns.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TIMEOUT};
use shmkit::{Error, Segment, SegmentOptions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

const SIZE: u64 = 1 << 16;
/// The unprivileged user the squatter runs as.
const NOBODY: u32 = 65534;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
        // seg: name; args: mode (octal). Creates a complete, valid segment with that mode.
        "squat" => {
            let mode = u32::from_str_radix(ctx.arg_str(0), 8).unwrap();
            let seg = SegmentOptions::new()
                .mode(mode)
                .create(&ctx.seg, SIZE)
                .unwrap();
            seg.counter("bait").unwrap().add(1);
        }
        // seg: gate segment; args: target name. Creates the target once the gate opens.
        "create_on_go" => {
            let gate_seg = ctx.open();
            Gate::new(&gate_seg).arrive_and_wait();
            let seg = Segment::create(ctx.arg_str(0), SIZE).unwrap();
            seg.counter("made").unwrap().add(1);
        }
        other => panic!("unknown role {other}"),
    });
}

fn mode_of(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Whether this process may start children as another user; prints why not when it may not.
fn can_switch_user() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: starting a child as uid {NOBODY} needs root (CI runs as root)");
        return false;
    }
    match std::process::Command::new("true")
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
    {
        Ok(s) if s.success() => true,
        other => {
            println!(
                "skipped: this machine does not let root start a child as uid {NOBODY}: {other:?}"
            );
            false
        }
    }
}

fn assert_untrusted(r: shmkit::Result<Segment>, owner: u32, mode: u32, reason: &str, what: &str) {
    match r {
        Err(Error::UntrustedSegment {
            owner_uid,
            mode: m,
            reason: why,
            ..
        }) => {
            assert_eq!((owner_uid, m), (owner, mode), "{what}");
            assert_eq!(why, reason, "{what}");
        }
        other => panic!("{what}: expected UntrustedSegment, got {other:?}"),
    }
}

#[test]
fn another_users_segment_is_refused() {
    if !can_switch_user() {
        return;
    }
    let g = SegGuard::new("squatted");
    let mut kids = Children::new();
    let k = kids.spawn_with("squat", g.name(), &[&"666"], |cmd| {
        cmd.uid(NOBODY).gid(NOBODY);
    });
    kids.wait_ok(k, TIMEOUT);
    let meta = std::fs::metadata(g.path()).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY);
    assert_eq!(mode_of(&g.path()), 0o666);

    let other = "owned by another user";
    assert_untrusted(Segment::open(g.name()), NOBODY, 0o666, other, "open");
    assert_untrusted(
        Segment::open_or_create(g.name(), SIZE),
        NOBODY,
        0o666,
        other,
        "open_or_create",
    );
    assert_untrusted(
        Segment::open_file(g.path()),
        NOBODY,
        0o666,
        other,
        "open_file",
    );
    assert_untrusted(Segment::file(g.path(), SIZE), NOBODY, 0o666, other, "file");
    assert!(matches!(
        Segment::create(g.name(), SIZE),
        Err(Error::AlreadyExists { .. })
    ));
    // Trusting the owner is not enough while anyone may write it.
    assert_untrusted(
        SegmentOptions::new().trust_owner(NOBODY).open(g.name()),
        NOBODY,
        0o666,
        "writable by group or others",
        "trust_owner only",
    );
    // Both opt-ins: a deliberately shared segment opens, and it is the squatter's.
    let seg = SegmentOptions::new()
        .trust_owner(NOBODY)
        .allow_shared(true)
        .open_or_create(g.name(), SIZE)
        .unwrap();
    assert_eq!(seg.counter("bait").unwrap().load(), 1);
    let e = Segment::open(g.name()).unwrap_err().to_string();
    assert!(
        e.contains("65534") && e.contains("0666") && e.contains(g.name()),
        "the message names owner, mode and path: {e}"
    );
}

#[test]
fn another_users_private_segment_is_refused_too() {
    if !can_switch_user() {
        return;
    }
    let g = SegGuard::new("squat600");
    let mut kids = Children::new();
    let k = kids.spawn_with("squat", g.name(), &[&"600"], |cmd| {
        cmd.uid(NOBODY).gid(NOBODY);
    });
    kids.wait_ok(k, TIMEOUT);
    // Root could open it, but it belongs to someone else.
    let other = "owned by another user";
    assert_untrusted(Segment::open(g.name()), NOBODY, 0o600, other, "open");
    assert_untrusted(
        Segment::open_or_create(g.name(), SIZE),
        NOBODY,
        0o600,
        other,
        "open_or_create",
    );
    let seg = SegmentOptions::new()
        .trust_owner(NOBODY)
        .open(g.name())
        .unwrap();
    assert_eq!(seg.counter("bait").unwrap().load(), 1);
}

#[test]
fn own_segment_writable_by_others_is_refused_without_opt_in() {
    for (mode, needs_opt_in) in [
        (0o666, true),
        (0o660, true),
        (0o620, true),
        (0o602, true),
        (0o640, false),
        (0o600, false),
    ] {
        let g = SegGuard::new("ownshared");
        let created = SegmentOptions::new()
            .mode(mode)
            .create(g.name(), SIZE)
            .unwrap();
        created.counter("c").unwrap().add(5);
        assert_eq!(mode_of(&g.path()), mode);
        let shared = SegmentOptions::new().allow_shared(true);
        if needs_opt_in {
            let why = "writable by group or others";
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            assert_untrusted(Segment::open(g.name()), me, mode, why, "open");
            assert_untrusted(
                Segment::open_or_create(g.name(), SIZE),
                me,
                mode,
                why,
                "open_or_create",
            );
            assert_untrusted(Segment::open_file(g.path()), me, mode, why, "open_file");
        } else {
            Segment::open(g.name()).unwrap();
        }
        // With the opt-in every mode opens (a creator's 0640 and 0660 segments included).
        let seg = shared.open(g.name()).unwrap();
        assert_eq!(seg.counter("c").unwrap().load(), 5, "mode {mode:o}");
        shared.open_or_create(g.name(), SIZE).unwrap();
    }
}

/// Removes the files it names on drop.
struct Squats(Vec<std::path::PathBuf>);

impl Drop for Squats {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A squatter who knows a creator's pid takes every temporary name that creator would have
/// built its segment under (`.<name>.shmkit-init.<pid>.<n>` for the first values of its
/// per-process counter), as plain files and as symbolic links. The creator still creates.
#[test]
fn squatted_temporary_names_do_not_block_create() {
    let gate_g = SegGuard::new("squat-gate");
    let target = SegGuard::new("squat-target");
    let gate_seg = Segment::create(gate_g.name(), SIZE).unwrap();
    let gate = Gate::new(&gate_seg);
    let mut kids = Children::new();
    let k = kids.spawn("create_on_go", gate_g.name(), &[&target.name()]);
    let pid = kids.pid(k);
    let mut squats = Squats(Vec::new());
    for n in 0..64 {
        let p = std::path::Path::new(shmkit::SHM_DIR)
            .join(format!(".{}.shmkit-init.{pid}.{n}", target.name()));
        if n % 2 == 0 {
            std::fs::write(&p, b"squatted").unwrap();
        } else {
            std::os::unix::fs::symlink("/dev/null", &p).unwrap();
        }
        squats.0.push(p);
    }
    gate.release(1, TIMEOUT, &mut kids);
    kids.wait_ok(k, TIMEOUT);
    let seg = Segment::open(target.name()).unwrap();
    assert_eq!(seg.counter("made").unwrap().load(), 1);
    assert_eq!(
        std::fs::read(&squats.0[0]).unwrap(),
        b"squatted",
        "squat untouched"
    );
}
