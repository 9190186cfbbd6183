//! The attach registry and safe removal, across real processes: who uses a segment
//! (`Segment::users`), `remove_if_stale` racing attachers and other cleaners, and removal by the
//! last process that detaches.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, Gate, SegGuard, TIMEOUT};
use shmkit::{Removal, Segment, SegmentOptions};
use std::os::unix::fs::FileExt;

const SIZE: u64 = 1 << 16;

#[test]
fn xproc_child() {
    common::run_child(|ctx| match ctx.role.as_str() {
        // Opens the segment, says so, and holds it until `release` is set (or it is killed).
        "hold" => {
            let seg = ctx.open();
            let ctl = Segment::open(ctx.arg_str(0)).unwrap();
            ctl.counter("arrived").unwrap().inc();
            let release = ctl.counter("release").unwrap();
            common::wait_until("release", TIMEOUT, || release.load() > 0);
            drop(seg);
        }
        // Like "hold", with remove_on_last_detach.
        "hold_removing" => {
            let seg = SegmentOptions::new()
                .remove_on_last_detach(true)
                .open(&ctx.seg)
                .unwrap();
            let ctl = Segment::open(ctx.arg_str(0)).unwrap();
            ctl.counter("arrived").unwrap().inc();
            let release = ctl.counter("release").unwrap();
            common::wait_until("release", TIMEOUT, || release.load() > 0);
            drop(seg);
        }
        // Races remove_if_stale against the others; counts what it did in the control segment.
        "clean" => {
            let ctl = Segment::open(ctx.arg_str(0)).unwrap();
            let gate = Gate::new(&ctl);
            gate.arrive_and_wait();
            match Segment::remove_if_stale(&ctx.seg).unwrap() {
                Removal::Removed => ctl.counter("removed").unwrap().inc(),
                Removal::InUse(_) => ctl.counter("in_use").unwrap().inc(),
                Removal::Busy { .. } => ctl.counter("busy").unwrap().inc(),
                Removal::Gone => ctl.counter("gone").unwrap().inc(),
            }
        }
        // Races open_or_create against the cleaners, then holds what it got until released.
        "attach" => {
            let ctl = Segment::open(ctx.arg_str(0)).unwrap();
            let gate = Gate::new(&ctl);
            gate.arrive_and_wait();
            let seg = Segment::open_or_create(&ctx.seg, SIZE).unwrap();
            if seg.creator().0 == std::process::id() {
                ctl.counter("created").unwrap().inc();
            }
            seg.counter("mine").unwrap().inc();
            ctl.counter("attached").unwrap().inc();
            let release = ctl.counter("release").unwrap();
            common::wait_until("release", TIMEOUT, || release.load() > 0);
            drop(seg);
        }
        // Creates a fresh segment under the name (with a counter "new") and exits.
        "create_new" => {
            let seg = Segment::create(&ctx.seg, SIZE).unwrap();
            seg.counter("new").unwrap().inc();
        }
        other => panic!("unknown role {other}"),
    });
}

fn pids_of(seg: &Segment) -> Vec<u32> {
    let mut v: Vec<u32> = seg.users().live.iter().map(|u| u.pid).collect();
    v.sort_unstable();
    v
}

/// An observer's view (not registered itself).
fn observe(name: &str) -> Segment {
    SegmentOptions::new().register(false).open(name).unwrap()
}

#[test]
fn users_lists_live_children_and_drops_a_killed_one() {
    let name = SegGuard::new("users_live");
    let ctl_name = SegGuard::new("users_live_ctl");
    let seg = Segment::create(name.name(), SIZE).unwrap();
    let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
    let mut kids = Children::new();
    let a = kids.spawn("hold", name.name(), &[&ctl_name.name()]);
    let b = kids.spawn("hold", name.name(), &[&ctl_name.name()]);
    let arrived = ctl.counter("arrived").unwrap();
    common::wait_until("children attached", TIMEOUT, || arrived.load() == 2);
    let me = std::process::id();
    let mut want = vec![me, kids.pid(a), kids.pid(b)];
    want.sort_unstable();
    assert_eq!(pids_of(&seg), want);
    let users = seg.users();
    assert_eq!(users.live.iter().filter(|u| u.is_me).count(), 1);
    assert!(users.live.iter().all(|u| !u.foreign));
    assert_eq!(users.unknown, 0);

    // A SIGKILLed user is no longer listed, and its slot is freed by the scan.
    kids.kill(a);
    let mut want = vec![me, kids.pid(b)];
    want.sort_unstable();
    assert_eq!(pids_of(&seg), want);
    let table = std::fs::read(name.path()).unwrap();
    let at = 256 + 256 * seg.dir_capacity() as usize;
    let used = (0..shmkit::limits::USER_SLOTS)
        .filter(|i| table[at + 8 * i..at + 8 * i + 8] != [0; 8])
        .count();
    assert_eq!(used, 2, "the dead user's slot was not freed");

    // One that detaches normally is not listed either, and this process stays.
    ctl.counter("release").unwrap().inc();
    kids.wait_ok(b, TIMEOUT);
    assert_eq!(pids_of(&seg), vec![me]);

    // An observer does not count; once this process drops its segment, it is stale.
    let obs = observe(name.name());
    assert!(!obs.is_registered());
    drop(seg);
    assert!(obs.users().is_stale(), "{:?}", obs.users());
}

#[test]
fn one_process_is_one_user_however_many_handles() {
    let name = SegGuard::new("users_one");
    let a = Segment::create(name.name(), SIZE).unwrap();
    let b = Segment::open(name.name()).unwrap();
    let c = Segment::open(name.name()).unwrap();
    let obs = observe(name.name());
    assert_eq!(obs.users().live.len(), 1);
    drop(a);
    drop(c);
    // Still mapped by `b`: still a user.
    assert_eq!(pids_of(&obs), vec![std::process::id()]);
    let counter = b.counter("c").unwrap();
    drop(b);
    // The handle keeps the mapping (and the registration).
    assert_eq!(pids_of(&obs), vec![std::process::id()]);
    drop(counter);
    assert!(obs.users().is_stale());
}

/// A segment (`name`) whose user table is full of live users, one of them a child counted in
/// the overflow word: every slot but this process's own holds this process's word, as 63 other
/// live users would, and a "hold" child then attaches. Returns the segment, the control
/// segment, the children (the child is 0), the segment's file (read and write) and the user
/// table's offset.
fn full_table_and_an_unknown_user(
    name: &SegGuard,
    ctl_name: &SegGuard,
) -> (Segment, Segment, Children, std::fs::File, u64) {
    let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
    let seg = Segment::create(name.name(), SIZE).unwrap();
    let at = 256 + u64::from(seg.dir_capacity()) * 256;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.path())
        .unwrap();
    fill_other_slots(&file, at, shmkit::process::my_word());
    let mut kids = Children::new();
    kids.spawn("hold", name.name(), &[&ctl_name.name()]);
    let arrived = ctl.counter("arrived").unwrap();
    common::wait_until("child attached", TIMEOUT, || arrived.load() == 1);
    (seg, ctl, kids, file, at)
}

/// Writes `word` into every user slot but the first (this process's).
fn fill_other_slots(file: &std::fs::File, at: u64, word: u64) {
    for i in 1..shmkit::limits::USER_SLOTS as u64 {
        file.write_all_at(&word.to_le_bytes(), at + 8 * i).unwrap();
    }
}

#[test]
fn a_full_table_of_live_users_counts_unknown_users() {
    let name = SegGuard::new("users_full");
    let ctl_name = SegGuard::new("users_full_ctl");
    let (seg, ctl, mut kids, _file, _at) = full_table_and_an_unknown_user(&name, &ctl_name);
    let k = 0;
    let users = seg.users();
    assert_eq!(users.unknown, 1, "{users:?}");
    assert!(!users.live.iter().any(|u| u.pid == kids.pid(k)));
    assert!(matches!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::InUse(u) if u.unknown == 1
    ));
    ctl.counter("release").unwrap().inc();
    kids.wait_ok(k, TIMEOUT);
    assert_eq!(seg.users().unknown, 0);
}

/// Regression: a process SIGKILLed while counted in the overflow word (a full table) left the
/// count raised for ever, so the segment was "in use" by an unknown user and only a forced
/// removal took it. Its overflow lock goes with it now: the count counts no one.
#[test]
fn a_killed_unknown_user_does_not_keep_the_segment() {
    let name = SegGuard::new("users_full_killed");
    let ctl_name = SegGuard::new("users_full_killed_ctl");
    let (seg, _ctl, mut kids, file, at) = full_table_and_an_unknown_user(&name, &ctl_name);
    let k = 0;
    assert_eq!(seg.users().unknown, 1);
    kids.kill(k);
    // The raw count is still 1 (nobody took it away), but it counts no one.
    let mut raw = [0u8; 8];
    file.read_exact_at(&mut raw, 104).unwrap();
    assert_eq!(u64::from_le_bytes(raw), 1);
    let users = seg.users();
    assert_eq!(users.unknown, 0, "{users:?}");
    // With the table emptied again and this process gone, the segment is stale and removed.
    fill_other_slots(&file, at, 0);
    drop(seg);
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Removed
    );
}

#[test]
fn remove_if_stale_keeps_segments_in_use_and_removes_stale_ones() {
    let name = SegGuard::new("users_stale");
    let ctl_name = SegGuard::new("users_stale_ctl");
    let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
    drop(Segment::create(name.name(), SIZE).unwrap());
    let mut kids = Children::new();
    let k = kids.spawn("hold", name.name(), &[&ctl_name.name()]);
    let arrived = ctl.counter("arrived").unwrap();
    common::wait_until("child attached", TIMEOUT, || arrived.load() == 1);
    match Segment::remove_if_stale(name.name()).unwrap() {
        Removal::InUse(u) => assert_eq!(
            u.live.iter().map(|u| u.pid).collect::<Vec<_>>(),
            [kids.pid(k)]
        ),
        other => panic!("removed a segment in use: {other:?}"),
    }
    assert!(name.path().exists());
    // Killed: stale now.
    kids.kill(k);
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Removed
    );
    assert!(!name.path().exists());
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Gone
    );
}

/// Cleaners (processes) race `remove_if_stale` on a stale segment while, in half the rounds, one
/// process attaches with `open_or_create`. Exactly one cleaner removes a segment nobody
/// attaches; none removes one with a live user: the attacher always ends up holding the
/// segment that is under the name.
#[test]
fn racing_cleaners_remove_once_and_never_a_segment_in_use() {
    const CLEANERS: usize = 5;
    const ROUNDS: usize = 8;
    for round in 0..ROUNDS {
        let with_attacher = round % 2 == 1;
        let name = SegGuard::new("users_race");
        let ctl_name = SegGuard::new("users_race_ctl");
        let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
        let gate = Gate::new(&ctl);
        drop(Segment::create(name.name(), SIZE).unwrap()); // stale: its creator let go
        let mut kids = Children::new();
        for _ in 0..CLEANERS {
            kids.spawn("clean", name.name(), &[&ctl_name.name()]);
        }
        let attacher =
            with_attacher.then(|| kids.spawn("attach", name.name(), &[&ctl_name.name()]));
        let n = CLEANERS + usize::from(with_attacher);
        gate.release(n as u64, TIMEOUT, &mut kids);
        let count = |c: &str| ctl.counter(c).unwrap().load();
        common::wait_until("cleaners done", TIMEOUT, || {
            count("removed") + count("in_use") + count("busy") + count("gone") == CLEANERS as u64
        });
        let removed = count("removed");
        match attacher {
            None => {
                assert_eq!(removed, 1, "round {round}: {removed} cleaners removed it");
                assert!(!name.path().exists());
                kids.wait_all(TIMEOUT);
            }
            Some(a) => {
                common::wait_until("attacher attached", TIMEOUT, || count("attached") == 1);
                assert!(removed <= 1, "round {round}: {removed} cleaners removed it");
                // The segment under the name is the attacher's, and lists it as a user.
                let seen = observe(name.name());
                assert_eq!(
                    seen.counter("mine").unwrap().load(),
                    1,
                    "round {round}: the name does not hold the attacher's segment"
                );
                assert!(pids_of(&seen).contains(&kids.pid(a)), "round {round}");
                // If the old segment went, the attacher made the new one.
                assert!(count("created") >= removed, "round {round}");
                ctl.counter("release").unwrap().inc();
                kids.wait_all(TIMEOUT);
            }
        }
    }
}

#[test]
fn the_last_process_to_detach_removes_the_segment() {
    let name = SegGuard::new("users_last");
    let ctl_name = SegGuard::new("users_last_ctl");
    let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
    let seg = SegmentOptions::new()
        .remove_on_last_detach(true)
        .create(name.name(), SIZE)
        .unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("hold", name.name(), &[&ctl_name.name()]);
    let arrived = ctl.counter("arrived").unwrap();
    common::wait_until("child attached", TIMEOUT, || arrived.load() == 1);
    drop(seg);
    // The child still uses it.
    assert!(name.path().exists());
    ctl.counter("release").unwrap().inc();
    kids.wait_ok(k, TIMEOUT);
    assert!(!name.path().exists(), "the last detacher did not remove it");
}

#[test]
fn a_killed_last_user_leaves_a_stale_segment_that_remove_if_stale_takes() {
    let name = SegGuard::new("users_killed");
    let ctl_name = SegGuard::new("users_killed_ctl");
    let ctl = Segment::create(ctl_name.name(), SIZE).unwrap();
    drop(
        SegmentOptions::new()
            .register(false)
            .remove_on_last_detach(true)
            .create(name.name(), SIZE)
            .unwrap(),
    );
    let mut kids = Children::new();
    let k = kids.spawn("hold_removing", name.name(), &[&ctl_name.name()]);
    let arrived = ctl.counter("arrived").unwrap();
    common::wait_until("child attached", TIMEOUT, || arrived.load() == 1);
    kids.kill(k);
    // Killed, it could not remove it; it is stale now.
    assert!(name.path().exists());
    assert!(observe(name.name()).users().is_stale());
    assert_eq!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::Removed
    );
}

#[test]
fn removal_on_last_detach_spares_a_segment_recreated_under_the_name() {
    let name = SegGuard::new("users_recreated");
    let old = SegmentOptions::new()
        .remove_on_last_detach(true)
        .create(name.name(), SIZE)
        .unwrap();
    old.counter("old").unwrap().inc();
    // Someone removes the name by force and another process makes a new segment under it
    // (stale once that process exits, but not marked for removal).
    Segment::remove(name.name()).unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("create_new", name.name(), &[]);
    kids.wait_ok(k, TIMEOUT);
    drop(old); // the old one's last detach: must not unlink the new one
    let seen = observe(name.name());
    assert_eq!(seen.entries().unwrap()[0].name, "new");
}

#[test]
fn opening_a_segment_being_removed_finds_the_name_again() {
    let name = SegGuard::new("users_doomed");
    let old = Segment::create(name.name(), SIZE).unwrap();
    old.counter("old").unwrap().inc();
    // As a cleaner that confirmed the removal and died before unlinking leaves it: the life
    // word (offset 88) says REMOVED, the name is still there.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    file.write_all_at(&(2u64 << 62).to_le_bytes(), 88).unwrap();
    // `open` does not join it (and takes the name away for the dead cleaner) ...
    assert!(matches!(
        Segment::open(name.name()),
        Err(shmkit::Error::NotFound { .. })
    ));
    assert!(!name.path().exists());
    // ... `open_or_create` makes a fresh one, and the old mapping keeps working.
    let fresh = Segment::open_or_create(name.name(), SIZE).unwrap();
    assert!(fresh.entries().unwrap().is_empty());
    assert_eq!(old.counter("old").unwrap().load(), 1);
}

/// Scribbled lifecycle and user words: clear errors or harmless answers, never a panic or a
/// removal of a segment in use.
#[test]
fn scribbled_lifecycle_and_user_words() {
    let name = SegGuard::new("users_scribbled");
    let seg = Segment::create(name.name(), SIZE).unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(name.path())
        .unwrap();
    let at = 256 + u64::from(seg.dir_capacity()) * 256;
    // Garbage in every user slot but ours (slot 0): whatever they decode to, no panic.
    for i in 1..shmkit::limits::USER_SLOTS as u64 {
        file.write_all_at(&(u64::MAX - i).to_le_bytes(), at + 8 * i)
            .unwrap();
    }
    // A huge overflow count.
    file.write_all_at(&u64::MAX.to_le_bytes(), 104).unwrap();
    let users = seg.users();
    assert!(users.live.iter().any(|u| u.is_me));
    // (The top bit marks a count that cannot be checked against overflow locks.)
    assert_eq!(users.unknown, u64::MAX >> 1);
    assert!(users.count() > u64::MAX >> 1); // no overflow panic
    assert!(matches!(
        Segment::remove_if_stale(name.name()).unwrap(),
        Removal::InUse(_)
    ));
    // A lifecycle word with no valid state: opening is a clear error.
    file.write_all_at(&(3u64 << 62).to_le_bytes(), 88).unwrap();
    match Segment::open(name.name()) {
        Err(shmkit::Error::Corrupted { .. }) => {}
        other => panic!("expected Corrupted, got {other:?}"),
    }
    assert!(Segment::remove_if_stale(name.name()).is_err());
    assert!(name.path().exists());
}
