//! Tests of the cross-process harness itself (`tests/common`): a failing child fails the test
//! with its stderr, a hanging child fails it after the timeout, and nothing outlives `Children`.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard};
use std::time::{Duration, Instant};

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
        "ok" => assert_eq!(ctx.args, ["a b", "", "c"]),
        "fail" => panic!("deliberate failure {}", ctx.arg::<u32>(0)),
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        other => panic!("unknown role {other}"),
    });
}

fn panic_text(r: std::thread::Result<()>) -> String {
    let e = r.expect_err("the harness should have failed the test");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

fn gone(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn arguments_arrive_intact() {
    let mut kids = Children::new();
    kids.spawn("ok", "seg", &[&"a b", &"", &"c"]);
    kids.wait_all(common::TIMEOUT);
}

#[test]
fn failing_child_fails_the_test_with_its_stderr() {
    let mut kids = Children::new();
    kids.spawn("fail", "seg", &[&42]);
    let text = panic_text(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        move || kids.wait_all(common::TIMEOUT),
    )));
    assert!(text.contains("deliberate failure 42"), "{text}");
    assert!(text.contains("exit status 101"), "{text}");
}

#[test]
fn hanging_child_fails_the_test_and_is_killed() {
    let mut kids = Children::new();
    kids.spawn("hang", "seg", &[]);
    let pid = kids.pid(0);
    let t = Instant::now();
    let text = panic_text(std::panic::catch_unwind(std::panic::AssertUnwindSafe(
        move || kids.wait_all(Duration::from_millis(300)),
    )));
    assert!(text.contains("still running"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(gone(pid), "the hanging child {pid} survived");
}

#[test]
fn dropping_children_kills_and_reaps_them() {
    let mut kids = Children::new();
    for _ in 0..3 {
        kids.spawn("hang", "seg", &[]);
    }
    let pids: Vec<u32> = (0..3).map(|i| kids.pid(i)).collect();
    drop(kids);
    for pid in pids {
        assert!(
            gone(pid),
            "child {pid} outlived its Children (or is an unreaped zombie)"
        );
    }
}

#[test]
fn names_are_unique_and_guards_remove_segments() {
    let a = SegGuard::new("same");
    let b = SegGuard::new("same");
    assert_ne!(a.name(), b.name());
    assert!(a.name().contains(&std::process::id().to_string()));
    shmkit::Segment::create(a.name(), 1 << 16).unwrap();
    let path = a.path();
    assert!(path.exists());
    drop(a);
    assert!(!path.exists(), "SegGuard left {}", path.display());
}
