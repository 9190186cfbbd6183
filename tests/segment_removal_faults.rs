//! The removal protocol (src/segment/removal.rs) with a cleaner or an attacher stopped (SIGSTOP)
//! at each of its named points (`SHMKIT_HOOK=stop:<point>:<segment>`, feature `test-hooks`):
//! whatever the interleaving, a segment with a live user is never removed, a decided removal is
//! never joined, and a segment re-created under the name is never unlinked.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard, TIMEOUT};
use shmkit::{Removal, Segment, SegmentOptions};
use std::time::Duration;

const SIZE: u64 = 1 << 16;

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        // remove_if_stale; exit code says what it did: 10 removed, 11 in use, 12 busy, 13 gone.
        "clean" => {
            let code = match Segment::remove_if_stale(&ctx.seg).unwrap() {
                Removal::Removed => 10,
                Removal::InUse(_) => 11,
                Removal::Busy { .. } => 12,
                Removal::Gone => 13,
            };
            std::process::exit(code);
        }
        // Opens the segment and holds it until killed.
        "attach" => {
            let _seg = Segment::open(&ctx.seg).unwrap();
            std::thread::sleep(TIMEOUT);
        }
        other => panic!("unknown role {other}"),
    });
}

fn spawn_stopped(kids: &mut Children, role: &str, seg: &str, point: &str) -> usize {
    let hook = format!("stop:{point}:{seg}");
    let i = kids.spawn_with(role, seg, &[], |c| {
        c.env("SHMKIT_HOOK", hook);
    });
    kids.wait_stopped(i, point);
    i
}

fn exit_code(kids: &mut Children, i: usize) -> i32 {
    let s = kids.wait(i, TIMEOUT);
    s.code()
        .unwrap_or_else(|| panic!("child died: {}", common::describe(s)))
}

fn observe(name: &str) -> Segment {
    SegmentOptions::new().register(false).open(name).unwrap()
}

/// A cleaner claimed the segment (REMOVING) but has not looked at the users; a process
/// attaches now. The attacher cancels the claim: the cleaner must not remove it.
#[test]
fn an_attacher_during_the_check_keeps_the_segment() {
    let name = SegGuard::new("rmf_attach_during");
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let c = spawn_stopped(&mut kids, "clean", name.name(), "segment.remove.claimed");
    let seg = Segment::open(name.name()).unwrap();
    kids.resume(c);
    assert_eq!(
        exit_code(&mut kids, c),
        11,
        "the cleaner did not answer InUse"
    );
    assert!(
        name.path().exists(),
        "a segment with a live user was removed"
    );
    assert_eq!(seg.users().live.len(), 1);
    // Once the user lets go, the next cleaner takes it.
    drop(seg);
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Removed
    );
}

/// A cleaner found no user and is about to confirm; a process attaches now. The attacher
/// cancels the claim, so the confirmation fails and the segment stays.
#[test]
fn an_attacher_after_the_check_cancels_the_removal() {
    let name = SegGuard::new("rmf_attach_after");
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let c = spawn_stopped(&mut kids, "clean", name.name(), "segment.remove.checked");
    let seg = Segment::open(name.name()).unwrap();
    kids.resume(c);
    assert_eq!(
        exit_code(&mut kids, c),
        11,
        "the cleaner did not answer InUse"
    );
    assert!(
        name.path().exists(),
        "a segment with a live user was removed"
    );
    assert_eq!(seg.users().live.len(), 1);
}

/// An attacher stored its slot but has not read the lifecycle word; a cleaner runs now. It sees
/// the slot and keeps the segment.
#[test]
fn a_cleaner_sees_an_attacher_that_has_not_finished() {
    let name = SegGuard::new("rmf_half_attached");
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let a = spawn_stopped(&mut kids, "attach", name.name(), "segment.attach.claimed");
    assert!(matches!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::InUse(u) if u.live.iter().any(|u| u.pid == kids.pid(a))
    ));
    assert!(name.path().exists());
    kids.resume(a);
    kids.kill(a);
}

/// A cleaner decided (REMOVED) and stopped before unlinking. Openers do not join the doomed
/// segment; `open_or_create` makes a fresh one; the resumed cleaner leaves the fresh one alone.
#[test]
fn a_decided_removal_is_not_joined_and_spares_the_next_segment() {
    let name = SegGuard::new("rmf_decided");
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let c = spawn_stopped(&mut kids, "clean", name.name(), "segment.remove.confirmed");
    // Another cleaner sees it decided; it finishes the job (unlinks) for the stopped one.
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Removed
    );
    let fresh = Segment::open_or_create(name.name(), SIZE).unwrap();
    fresh.counter("fresh").unwrap().inc();
    drop(fresh);
    kids.resume(c);
    assert_eq!(
        exit_code(&mut kids, c),
        13,
        "the stopped cleaner should find it gone"
    );
    assert_eq!(observe(name.name()).entries().unwrap()[0].name, "fresh");
}

/// A remover holds the file's lock and has not re-checked the name; a second remover of the same
/// (decided) segment waits for the lock, and after the first unlinked it, a new segment under the
/// name is never taken by the second.
#[test]
fn two_removers_of_one_file_unlink_once() {
    let name = SegGuard::new("rmf_two_removers");
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let c = spawn_stopped(&mut kids, "clean", name.name(), "segment.remove.locked");
    // The second remover cannot take the lock while the first holds it: bounded, it errs or
    // finds nothing to do, but never unlinks.
    let second = std::thread::spawn({
        let n = name.name().to_string();
        move || {
            SegmentOptions::new()
                .wait_timeout(Duration::from_millis(300))
                .remove_if_stale(&n)
        }
    });
    let r = second.join().unwrap();
    assert!(
        !matches!(r, Ok(Removal::Removed)),
        "the second remover unlinked while the first held the lock: {r:?}"
    );
    assert!(name.path().exists());
    kids.resume(c);
    assert_eq!(exit_code(&mut kids, c), 10);
    assert!(!name.path().exists());
}
