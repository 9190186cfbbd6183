//! Opening and creating segments and objects from many real processes at once, and file-backed
//! segments that outlive their processes.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TempDir, TIMEOUT};
use shmkit::{Segment, SegmentOptions};
use std::collections::BTreeMap;

const SIZE: u64 = 1 << 20;
/// Object names every racer of `open_or_create_race` find-or-creates.
const SHARED_OBJECTS: usize = 4;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
        // seg: gate segment; args: target name, racer index. Released together, races
        // open_or_create on the target, then find-or-creates the shared objects in it.
        "open_or_create" => {
            let gate_seg = ctx.open();
            let gate = Gate::new(&gate_seg);
            let i: usize = ctx.arg(1);
            let mine = gate_seg.value::<u64>(&format!("creator.{i}"), 0).unwrap();
            gate.arrive_and_wait();
            let seg = Segment::open_or_create(ctx.arg_str(0), SIZE).unwrap();
            for k in 0..SHARED_OBJECTS {
                seg.counter(&format!("shared.{k}")).unwrap().inc();
            }
            seg.counter("hits").unwrap().inc();
            // Which segment did we get? Its creator's (pid, creation time) identify it.
            let (pid, ns) = seg.creator();
            assert_ne!(pid, 0);
            mine.store(ns ^ pid as u64);
        }
        // args: racer index, objects per racer. Creates its own distinct names at once.
        "distinct" => {
            let seg = ctx.open();
            let gate = Gate::new(&seg);
            let i: u64 = ctx.arg(0);
            let m: u64 = ctx.arg(1);
            gate.arrive_and_wait();
            for j in 0..m {
                seg.counter(&format!("p{i}.o{j}"))
                    .unwrap()
                    .store(i * 1000 + j);
            }
        }
        // seg: file path; args: n. Creates (or opens) the file segment, adds n, flushes.
        "file_add" => {
            let seg = Segment::file(&ctx.seg, SIZE).unwrap();
            seg.counter("persist").unwrap().add(ctx.arg(0));
            seg.value::<f64>("pi", 0.0).unwrap().store(3.25);
            seg.flush().unwrap();
        }
        // seg: file path; args: expected. Opens the existing file segment and checks it.
        "file_check" => {
            let seg = Segment::open_file(&ctx.seg).unwrap();
            let c = seg.open_object::<shmkit::Counter>("persist").unwrap();
            assert_eq!(c.load(), ctx.arg::<u64>(0));
            let v = seg.open_object::<shmkit::AtomicValue<f64>>("pi").unwrap();
            assert_eq!(v.load(), 3.25);
            c.add(1);
        }
        other => panic!("unknown role {other}"),
    });
}

#[test]
fn eight_processes_race_open_or_create() {
    const N: usize = 8;
    let gate_g = SegGuard::new("ooc-gate");
    let target = SegGuard::new("ooc");
    let gate_seg = Segment::create(gate_g.name(), SIZE).unwrap();
    let gate = Gate::new(&gate_seg);
    let ids: Vec<_> = (0..N)
        .map(|i| gate_seg.value::<u64>(&format!("creator.{i}"), 0).unwrap())
        .collect();
    let mut kids = Children::new();
    for i in 0..N {
        kids.spawn("open_or_create", gate_g.name(), &[&target.name(), &i]);
    }
    gate.release(N as u64, TIMEOUT, &mut kids);
    kids.wait_all(TIMEOUT);

    let seg = Segment::open(target.name()).unwrap();
    let (pid, ns) = seg.creator();
    assert!(
        kids_pids(&kids).contains(&pid),
        "creator {pid} is not one of the racers"
    );
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(id.load(), ns ^ pid as u64, "racer {i} saw another segment");
    }
    assert_eq!(seg.counter("hits").unwrap().load(), N as u64);
    let entries = seg.entries().unwrap();
    assert_eq!(entries.len(), SHARED_OBJECTS + 1, "{entries:?}");
    for k in 0..SHARED_OBJECTS {
        let name = format!("shared.{k}");
        assert_eq!(entries.iter().filter(|e| e.name == name).count(), 1);
        assert_eq!(seg.counter(&name).unwrap().load(), N as u64, "{name}");
    }
    assert!(entries.iter().all(|e| e.ready));
}

fn kids_pids(kids: &Children) -> Vec<u32> {
    (0..kids.len()).map(|i| kids.pid(i)).collect()
}

#[test]
fn many_processes_create_distinct_objects() {
    const PROCS: u64 = 16;
    const PER: u64 = 12;
    let g = SegGuard::new("distinct");
    let seg = SegmentOptions::new()
        .dir_capacity(256)
        .create(g.name(), SIZE)
        .unwrap();
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    for i in 0..PROCS {
        kids.spawn("distinct", g.name(), &[&i, &PER]);
    }
    gate.release(PROCS, TIMEOUT, &mut kids);
    kids.wait_all(TIMEOUT);

    let entries = seg.entries().unwrap();
    let mut by_name = BTreeMap::new();
    for e in entries.iter().filter(|e| !e.name.starts_with("__gate")) {
        assert!(e.ready, "{e:?}");
        assert!(
            by_name.insert(e.name.clone(), e.clone()).is_none(),
            "{} listed twice",
            e.name
        );
    }
    assert_eq!(by_name.len() as u64, PROCS * PER);
    for i in 0..PROCS {
        for j in 0..PER {
            let name = format!("p{i}.o{j}");
            assert!(by_name.contains_key(&name), "{name} missing");
            let c = seg.open_object::<shmkit::Counter>(&name).unwrap();
            assert_eq!(c.load(), i * 1000 + j, "{name}");
        }
    }
    // No two objects overlap.
    let mut spans: Vec<_> = entries.iter().map(|e| (e.offset, e.size)).collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping objects {w:?}");
    }
}

#[test]
fn file_segment_persists_across_processes() {
    let dir = TempDir::new("persist");
    let path = dir.join("stats.shm");
    let p = path.to_str().unwrap();
    let mut kids = Children::new();
    let a = kids.spawn("file_add", p, &[&41]);
    kids.wait_ok(a, TIMEOUT);
    // The creator is gone; a new process finds its value in the file.
    let b = kids.spawn("file_check", p, &[&41]);
    kids.wait_ok(b, TIMEOUT);
    let seg = Segment::open_file(&path).unwrap();
    assert_eq!(seg.counter("persist").unwrap().load(), 42);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}
