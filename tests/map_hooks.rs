//! A map or list writer killed (SIGKILL) at every test point of every multi-step operation, in
//! a real process: readers see the old or the new state whole, the next writer repairs, nothing
//! leaks. And a writer stopped (SIGSTOP) inside an operation: `_timeout` calls of other
//! processes return by their deadline, reads go on.
//!
//! Needs the `test-hooks` feature: `cargo test --features test-hooks --test map_hooks`.
#![cfg(not(feature = "loom"))]

mod common;

use common::{Children, SegGuard};
use shmkit::{Error, MapOptions, Segment};
use std::time::{Duration, Instant};

const CAP: u64 = 8;

#[test]
fn xproc_child() {
    common::run_child(|ctx| {
        let seg = ctx.open();
        let m = seg.map("m", opts()).unwrap();
        let l = seg.list::<u64>("l", CAP).unwrap();
        match ctx.role.as_str() {
            "insert" => drop(m.insert(b"new", b"fresh").unwrap()),
            // An update under the stripe lock, and one of a present key under its entry claim.
            "update" => drop(m.update(b"old", |_| Some(b"updated".to_vec())).unwrap()),
            "set" => drop(m.insert(b"old", b"updated").unwrap()),
            "remove" => drop(m.remove(b"old").unwrap()),
            "push" => drop(l.push(7).unwrap()),
            "pop" => drop(l.pop().unwrap()),
            "clear" => l.clear().unwrap(),
            other => panic!("unknown role {other}"),
        }
    });
}

fn opts() -> MapOptions {
    MapOptions::new(CAP).key_max(8).value_max(16)
}

/// Runs `role` in a child armed with `action:point`; returns the status description.
fn run_armed(kids: &mut Children, seg: &str, role: &str, action: &str, point: &str) -> usize {
    let hook = format!("{action}:{point}");
    kids.spawn_with(role, seg, &[], |c| {
        c.env("SHMKIT_HOOK", &hook);
    })
}

#[test]
fn map_writer_killed_at_every_point() {
    for (role, point, happened) in [
        ("insert", "map.insert.claimed", false),
        ("insert", "map.insert.filled", false),
        ("insert", "map.insert.stable", false),
        ("insert", "map.insert.linked", true),
        ("update", "map.update.filled", false),
        ("update", "map.update.published", true),
        ("set", "map.set.claimed", false),
        ("set", "map.set.filled", false),
        ("set", "map.set.published", true),
        ("remove", "map.remove.marked", false),
        ("remove", "map.remove.unlinked", true),
        ("remove", "map.remove.odd", true),
    ] {
        let guard = SegGuard::new("map_kill");
        let seg = Segment::create(guard.name(), 1 << 20).unwrap();
        let m = seg.map("m", opts()).unwrap();
        seg.list::<u64>("l", CAP).unwrap();
        m.insert(b"old", b"original").unwrap();
        let mut kids = Children::new();
        let c = run_armed(&mut kids, guard.name(), role, "kill", point);
        let status = kids.wait(c, common::TIMEOUT);
        assert_eq!(common::describe(status), "killed by signal 9", "{point}");
        let (key, before, after): (&[u8], Option<&[u8]>, Option<&[u8]>) = match role {
            "insert" => (b"new", None, Some(b"fresh")),
            "update" | "set" => (b"old", Some(b"original"), Some(b"updated")),
            _ => (b"old", Some(b"original"), None),
        };
        // A lock-free read sees the old or the new state, whole.
        let seen = m.get(key).unwrap();
        assert!(
            seen.as_deref() == before || seen.as_deref() == after,
            "{point}: {seen:?}"
        );
        // The next writer of the key takes the dead writer's stripe over and repairs it.
        let now = m
            .update_timeout(key, Duration::from_secs(10), |v| v.map(<[u8]>::to_vec))
            .unwrap();
        let want = if happened { after } else { before };
        assert_eq!(now.as_deref(), want, "{point}");
        assert_eq!(m.len(), m.iter().count(), "{point}: count");
        // Nothing leaked: the map fills to its capacity.
        let mut k = 0u8;
        while m.len() < CAP as usize {
            m.insert(&[b'f', k], b"").unwrap();
            k += 1;
        }
        assert!(
            matches!(m.insert(b"more", b""), Err(Error::MapFull { .. })),
            "{point}"
        );
        println!(
            "{point}: {}",
            if happened {
                "happened"
            } else {
                "did not happen"
            }
        );
    }
}

#[test]
fn list_writer_killed_at_every_point() {
    for (role, point, want) in [
        ("push", "list.push.reserved", None),
        ("push", "list.push.claimed", None),
        ("push", "list.push.written", None),
        ("pop", "list.pop.frozen", Some(vec![1u64, 2, 3])),
        ("pop", "list.pop.recorded", Some(vec![1, 2])),
        ("pop", "list.pop.emptied", Some(vec![1, 2])),
        ("clear", "list.pop.recorded", Some(vec![])),
        ("clear", "list.pop.emptied", Some(vec![])),
    ] {
        let guard = SegGuard::new("list_kill");
        let seg = Segment::create(guard.name(), 1 << 20).unwrap();
        seg.map("m", opts()).unwrap();
        let l = seg.list::<u64>("l", CAP).unwrap();
        for i in 1..=3 {
            l.push(i).unwrap();
        }
        let mut kids = Children::new();
        let c = run_armed(&mut kids, guard.name(), role, "kill", point);
        let status = kids.wait(c, common::TIMEOUT);
        assert_eq!(
            common::describe(status),
            "killed by signal 9",
            "{role} {point}"
        );
        // The next push goes on (repairing a frozen list), and reads never block.
        let t0 = Instant::now();
        l.push_timeout(9, Duration::from_secs(10)).unwrap();
        // A push that died leaves a hole (seen once its grace has passed); the others finish or
        // roll back.
        let mut got = l.to_vec();
        if role == "push" {
            while l.len() < 5 {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "{point}: len {}",
                    l.len()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            got = l.to_vec();
            assert_eq!((got, l.holes()), (vec![1, 2, 3, 9], 1), "{point}");
        } else {
            let mut want = want.unwrap();
            want.push(9);
            assert_eq!(got, want, "{role} {point}");
        }
        // Nothing leaked: the list fills to its capacity.
        while l.len() < CAP as usize {
            l.push(0).unwrap();
        }
        assert!(matches!(l.push(0), Err(Error::ListFull { .. })));
    }
}

/// A writer stopped in the middle of an insert (a live process holding the key's stripe):
/// another process's `_timeout` writes of that key return by their deadline, reads and writes of
/// other stripes go on, and the stopped writer finishes once continued.
#[test]
fn stopped_writer_makes_timeouts_expire() {
    let guard = SegGuard::new("map_stop");
    let seg = Segment::create(guard.name(), 1 << 20).unwrap();
    let m = seg.map("m", opts()).unwrap();
    let l = seg.list::<u64>("l", CAP).unwrap();
    l.push(1).unwrap();
    let mut kids = Children::new();
    let c = run_armed(
        &mut kids,
        guard.name(),
        "insert",
        "stop",
        "map.insert.filled",
    );
    let pid = kids.pid(c) as i32;
    common::wait_until("the child to stop", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('T')
            })
            .unwrap_or(false)
    });
    let t0 = Instant::now();
    let r = m.insert_timeout(b"new", b"mine", Duration::from_millis(100));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    assert!(matches!(
        m.update_timeout(b"new", Duration::ZERO, |v| v.map(<[u8]>::to_vec)),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(
        m.get(b"new").unwrap(),
        None,
        "the stopped insert is not visible"
    );
    assert_eq!(m.get(b"old").unwrap(), None);
    // A list pop stopped while frozen: pushes with a timeout return.
    let p = run_armed(&mut kids, guard.name(), "pop", "stop", "list.pop.recorded");
    let ppid = kids.pid(p) as i32;
    common::wait_until("the popper to stop", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{ppid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('T')
            })
            .unwrap_or(false)
    });
    let t0 = Instant::now();
    assert!(matches!(
        l.push_timeout(2, Duration::from_millis(100)),
        Err(Error::Timeout { .. })
    ));
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Continue both: they finish.
    for pid in [pid, ppid] {
        // SAFETY: kill with a valid signal to our own child.
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    kids.wait_ok(c, common::TIMEOUT);
    kids.wait_ok(p, common::TIMEOUT);
    assert_eq!(m.get(b"new").unwrap(), Some(b"fresh".to_vec()));
    assert_eq!(l.len(), 0);
}

/// A writer stopped (SIGSTOP) in the middle of an update of a present key, holding only the
/// entry's claim: other processes' `_timeout` writes of that key (update in place, `update`,
/// removal) return by their deadline, readers see the old value, and writes of other keys in
/// the same stripe go on (no stripe lock is held). Continued, the writer finishes.
#[test]
fn stopped_entry_writer_holds_only_its_entry() {
    let guard = SegGuard::new("map_stop_entry");
    let seg = Segment::create(guard.name(), 1 << 20).unwrap();
    let m = seg.map("m", opts()).unwrap();
    seg.list::<u64>("l", CAP).unwrap();
    m.insert(b"old", b"original").unwrap();
    let stripe = m.__stripe_of(b"old").unwrap();
    let neighbour = (0..=255u8)
        .map(|k| [b'n', k])
        .find(|k| m.__stripe_of(k) == Some(stripe))
        .expect("a key of the same stripe");
    let mut kids = Children::new();
    let c = run_armed(&mut kids, guard.name(), "set", "stop", "map.set.filled");
    kids.wait_stopped(c, "the entry writer to stop");
    let short = Duration::from_millis(100);
    let t0 = Instant::now();
    let r = m.insert_timeout(b"old", b"mine", short);
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let r = m.remove_timeout(b"old", short);
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    let r = m.update_timeout(b"old", short, |v| v.map(<[u8]>::to_vec));
    assert!(matches!(r, Err(Error::Timeout { .. })), "{r:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(m.get(b"old").unwrap().as_deref(), Some(&b"original"[..]));
    // The stripe is free: a key of the same stripe is inserted and removed at once.
    let t0 = Instant::now();
    m.insert_timeout(&neighbour, b"n", short).unwrap();
    assert_eq!(
        m.remove_timeout(&neighbour, short).unwrap(),
        Some(b"n".to_vec())
    );
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    kids.resume(c);
    kids.wait_ok(c, common::TIMEOUT);
    assert_eq!(m.get(b"old").unwrap().as_deref(), Some(&b"updated"[..]));
    assert_eq!(
        m.insert_timeout(b"old", b"mine", short).unwrap().as_deref(),
        Some(&b"updated"[..])
    );
}
