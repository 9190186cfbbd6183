//! A process killed while initializing an object: openers report it, the next creator takes the
//! entry over. Uses the doc-hidden hook `SHMKIT_TEST_STALL_INIT` of `src/segment/directory.rs`.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TIMEOUT};
use shmkit::segment::directory::TEST_STALL_INIT_VAR;
use shmkit::{Counter, Error, Segment};
use std::time::Duration;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            // Started with SHMKIT_TEST_STALL_INIT=obj: never returns.
            "stall" => {
                let _ = seg.counter("obj");
                unreachable!("the stall hook returned");
            }
            "takeover" => seg.counter("obj").unwrap().add(ctx.arg(0)),
            other => panic!("unknown role {other}"),
        }
    });
}

#[test]
fn creator_killed_mid_init_is_reported_then_taken_over() {
    let g = SegGuard::new("takeover");
    let seg = Segment::create(g.name(), 1 << 20).unwrap();
    seg.counter("before").unwrap().add(1);
    let mut kids = Children::new();
    let staller = kids.spawn_with("stall", g.name(), &[], |cmd| {
        cmd.env(TEST_STALL_INIT_VAR, "obj");
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
