//! A process killed while initializing an object: openers report it, the next creator takes the
//! entry over. The creator is parked at the test points `directory.create.<stage>` of
//! `src/segment/directory.rs` (feature `test-hooks`, `shmkit::hooks`).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TIMEOUT};
use shmkit::{Counter, Error, Segment, SegmentOptions};
use std::time::Duration;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            // Started with SHMKIT_HOOK=park:directory.create.<stage>:obj: never returns.
            "stall" => {
                let _ = seg.counter("obj");
                unreachable!("the park point returned");
            }
            "takeover" => seg.counter("obj").unwrap().add(ctx.arg(0)),
            other => panic!("unknown role {other}"),
        }
    });
}

/// Makes the child park forever at `directory.create.<stage>` for the object `obj`.
fn park_at(cmd: &mut std::process::Command, stage: &str) {
    cmd.env(
        shmkit::hooks::VAR,
        format!("park:directory.create.{stage}:obj"),
    );
}

#[test]
fn creator_killed_mid_init_is_reported_then_taken_over() {
    let g = SegGuard::new("takeover");
    let seg = Segment::create(g.name(), 1 << 20).unwrap();
    seg.counter("before").unwrap().add(1);
    let mut kids = Children::new();
    let staller = kids.spawn_with("stall", g.name(), &[], |cmd| {
        park_at(cmd, "named");
    });
    // Wait until the child has published the entry (NAMED, not ready) and stalls.
    common::wait_until("the staller to publish obj", TIMEOUT, || {
        seg.entries()
            .unwrap()
            .iter()
            .any(|e| e.name == "obj" && !e.ready)
    });
    std::thread::sleep(Duration::from_millis(20));
    let entry = seg.entries().unwrap();
    let entry = entry.iter().find(|e| e.name == "obj").unwrap();
    assert!(
        !entry.ready,
        "the stalled object must not be ready: {entry:?}"
    );
    let pid = kids.pid(staller);
    let status = kids.kill(staller);
    assert_eq!(common::describe(status), "killed by signal 9");

    // Before takeover, opening the object reports who died.
    match seg.open_object::<Counter>("obj") {
        Err(Error::CreatorDied { what, pid: p }) => {
            assert_eq!(p, pid);
            assert!(what.contains("obj"), "{what}");
        }
        other => panic!("expected CreatorDied, got {other:?}"),
    }

    // Another process find-or-creates the same name and takes the entry over.
    let t = kids.spawn("takeover", g.name(), &[&7]);
    kids.wait_ok(t, TIMEOUT);
    let c = seg.open_object::<Counter>("obj").unwrap();
    assert_eq!(c.load(), 7);
    c.add(1);
    assert_eq!(seg.counter("obj").unwrap().load(), 8);
    let entries = seg.entries().unwrap();
    let objs: Vec<_> = entries.iter().filter(|e| e.name == "obj").collect();
    assert_eq!(objs.len(), 1, "{entries:?}");
    assert!(objs[0].ready);
    assert_eq!(objs[0].index, entry.index, "the same entry was taken over");
    assert_eq!(objs[0].offset, entry.offset);
    assert_eq!(seg.counter("before").unwrap().load(), 1, "neighbour intact");
}

#[test]
fn creator_killed_before_publishing_leaves_the_name_free() {
    let g = SegGuard::new("claimed");
    let seg = Segment::create(g.name(), 1 << 20).unwrap();
    seg.counter("before").unwrap().add(1);
    let free = seg.free_bytes();
    let mut kids = Children::new();
    let staller = kids.spawn_with("stall", g.name(), &[], |cmd| {
        park_at(cmd, "claimed");
    });
    // The entry is claimed and its space allocated, but the name is not published: wait for
    // the allocation, the one trace visible from outside.
    common::wait_until("the staller to allocate obj", TIMEOUT, || {
        seg.free_bytes() < free
    });
    assert!(
        seg.entries().unwrap().iter().all(|e| e.name != "obj"),
        "an unpublished entry must not be listed"
    );
    kids.kill(staller);

    // The dead claim hides nothing: the name does not exist yet.
    match seg.open_object::<Counter>("obj") {
        Err(Error::ObjectNotFound { name }) => assert_eq!(name, "obj"),
        other => panic!("expected ObjectNotFound, got {other:?}"),
    }
    // The next creator skips the abandoned entry and creates the object.
    let t = kids.spawn("takeover", g.name(), &[&3]);
    kids.wait_ok(t, TIMEOUT);
    assert_eq!(seg.open_object::<Counter>("obj").unwrap().load(), 3);
    let entries = seg.entries().unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.name == "obj").count(),
        1,
        "{entries:?}"
    );
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(seg.counter("before").unwrap().load(), 1, "neighbour intact");
}

/// Kills the creator of `obj` in the `named` stage; returns the dead creator's pid and the
/// entry it left.
fn kill_creator_mid_init(seg: &Segment, name: &str, kids: &mut Children) -> u32 {
    let staller = kids.spawn_with("stall", name, &[], |cmd| {
        park_at(cmd, "named");
    });
    common::wait_until("the staller to publish obj", TIMEOUT, || {
        seg.entries()
            .unwrap()
            .iter()
            .any(|e| e.name == "obj" && !e.ready)
    });
    let pid = kids.pid(staller);
    kids.kill(staller);
    pid
}

#[test]
fn live_taker_over_is_not_mistaken_for_dead() {
    let g = SegGuard::new("taker");
    let seg = Segment::create(g.name(), 1 << 20).unwrap();
    let mut kids = Children::new();
    let dead = kill_creator_mid_init(&seg, g.name(), &mut kids);
    // B takes the entry over and stalls before re-initializing: it is alive and at work.
    let b = kids.spawn_with("takeover", g.name(), &[&1], |cmd| {
        park_at(cmd, "takeover");
    });
    let taker = kids.pid(b);
    let quick = SegmentOptions::new()
        .wait_timeout(Duration::from_millis(100))
        .open(g.name())
        .unwrap();
    // Until B's claim lands, openers see A's death; afterwards they must wait for B, not
    // declare it dead (the claim's owner identity must be complete the moment it is visible).
    let mut last = None;
    common::wait_until("the taker to claim obj", TIMEOUT, || {
        let r = quick.open_object::<Counter>("obj");
        let a_died = matches!(r, Err(Error::CreatorDied { pid, .. }) if pid == dead);
        last = Some(r);
        !a_died
    });
    match last.unwrap() {
        Err(Error::Timeout { .. }) => {}
        Err(Error::CreatorDied { pid, .. }) => {
            panic!("the live taker {pid} (B = {taker}) was reported dead")
        }
        other => panic!("expected Timeout while the taker works, got {other:?}"),
    }
    // Nor may another creator take the entry from the live taker.
    match SegmentOptions::new()
        .wait_timeout(Duration::from_millis(100))
        .open(g.name())
        .unwrap()
        .counter("obj")
    {
        Err(Error::Timeout { .. }) => {}
        other => panic!("expected Timeout while the taker works, got {other:?}"),
    }
    // Once B is gone too, the next creator takes over.
    kids.kill(b);
    let c = kids.spawn("takeover", g.name(), &[&5]);
    kids.wait_ok(c, TIMEOUT);
    assert_eq!(seg.open_object::<Counter>("obj").unwrap().load(), 5);
    assert_eq!(seg.entries().unwrap().len(), 1);
}
