//! The MPMC ring and byte queue with a process SIGKILLed at each step of a push or pop (after
//! announcing a position, after taking it, after writing the item; a pop after copying the item,
//! before and after taking it), placed with the named test points of `shmkit::hooks` (feature
//! `test-hooks`): the others reap a dead producer's position when it took one, lose only its
//! item, lose nothing when it took none, and never block.
#![cfg(all(not(feature = "loom"), feature = "test-hooks"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TIMEOUT};
use shmkit::PopError;
use shmkit::Segment;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
const CAP: u64 = 1024;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        match ctx.role.as_str() {
            // args: value. One push into "q" (run with a kill point: dies after its claim).
            "push_one" => {
                let q = seg.mpmc::<u64>("q", CAP).unwrap();
                q.push(ctx.arg(0)).unwrap();
            }
            // One pop from "small" (run with a kill point: dies after its claim).
            "pop_one_small" => {
                let small = seg.mpmc::<u64>("small", 4).unwrap();
                small.pop().unwrap();
            }
            // One send into the byte queue "mq" (run with a kill point).
            "send_one" => {
                let mq = seg.mpmc_bytes("mq", 4, 64).unwrap();
                mq.send(b"in flight").unwrap();
            }
            other => panic!("unknown role {other}"),
        }
    });
}

/// Starts `role` with `SHMKIT_HOOK=kill:<point>` and waits until it has killed itself there.
fn die_at(
    kids: &mut Children,
    seg: &str,
    role: &str,
    point: &str,
    args: &[&dyn std::fmt::Display],
) {
    let k = kids.spawn_with(role, seg, args, |c| {
        c.env(shmkit::hooks::VAR, format!("kill:{point}"));
    });
    let status = kids.wait(k, TIMEOUT);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{role} should die at {point}: {}",
        common::describe(status)
    );
}

/// A producer SIGKILLed between claiming its slot and publishing it: consumers skip the slot
/// (blocking pops do not hang), the item in flight is counted lost, every other item arrives in
/// order.
#[test]
fn producer_killed_inside_claim_window_loses_only_its_item() {
    let g = SegGuard::new("mpmc_kill_producer");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let q = seg.mpmc::<u64>("q", CAP).unwrap();
    q.push(1).unwrap();
    let mut kids = Children::new();
    die_at(
        &mut kids,
        g.name(),
        "push_one",
        "mpmc.push.claimed",
        &[&666u64],
    );
    // The child died right after its claim (the tail hint moved on before the point).
    assert_eq!(q.positions().1, 2);
    q.push(3).unwrap();
    q.push(4).unwrap();
    let t = Instant::now();
    let got: Vec<u64> = (0..3)
        .map(|_| {
            q.pop_timeout(TIMEOUT)
                .expect("pop past the dead producer's slot")
        })
        .collect();
    assert_eq!(got, [1, 3, 4]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(q.lost(), 1);
    assert_eq!(q.try_pop(), Err(PopError::Empty));
    // The ring keeps working for laps after.
    for i in 0..3 * CAP {
        q.push(i).unwrap();
        assert_eq!(q.pop(), Ok(i));
    }
    assert_eq!(q.lost(), 1);
}

/// A producer SIGKILLed at each other point of its push: after announcing a position but before
/// taking it (nothing lost, nothing in the way), and after writing its item but before
/// publishing it (as inside the claim window: skipped, its item counted lost).
#[test]
fn producer_killed_before_taking_or_before_publishing() {
    for (point, taken) in [("mpmc.push.announced", false), ("mpmc.push.written", true)] {
        let g = SegGuard::new("mpmc_kill_producer_points");
        let seg = Segment::create(g.name(), SIZE).unwrap();
        let q = seg.mpmc::<u64>("q", CAP).unwrap();
        q.push(1).unwrap();
        let mut kids = Children::new();
        die_at(&mut kids, g.name(), "push_one", point, &[&666u64]);
        assert_eq!(q.positions().1, 1 + u64::from(taken), "{point}");
        q.push(3).unwrap();
        let got: Vec<u64> = (0..2)
            .map(|_| q.pop_timeout(TIMEOUT).expect("pop past the dead producer"))
            .collect();
        assert_eq!(got, [1, 3], "{point}");
        assert_eq!(q.lost(), u64::from(taken), "{point}");
        assert_eq!(q.try_pop(), Err(PopError::Empty), "{point}");
        // Nothing is left to reap, and the ring keeps working.
        assert_eq!(q.reap_dead(), 0, "{point}");
        for i in 0..2 * CAP {
            q.push(i).unwrap();
            assert_eq!(q.pop(), Ok(i));
        }
    }
}

/// A consumer SIGKILLed after copying the oldest item of a full ring but before taking it
/// loses nothing; one killed after taking it has received it (a pop copies before it takes):
/// producers reuse its slot at once, and `lost` counts nothing.
#[test]
fn consumer_killed_before_or_after_taking() {
    for (point, taken) in [("mpmc.pop.read", false), ("mpmc.pop.taken", true)] {
        let g = SegGuard::new("mpmc_kill_consumer_points");
        let seg = Segment::create(g.name(), SIZE).unwrap();
        let q = seg.mpmc::<u64>("small", 4).unwrap();
        for i in 0..4 {
            q.push(i).unwrap();
        }
        let mut kids = Children::new();
        die_at(&mut kids, g.name(), "pop_one_small", point, &[]);
        assert_eq!(q.positions().0, u64::from(taken), "{point}");
        if taken {
            q.push_timeout(4, TIMEOUT)
                .expect("push past the dead consumer's slot");
        }
        let got: Vec<u64> = (0..4).map(|_| q.pop().unwrap()).collect();
        let want: Vec<u64> = (u64::from(taken)..4 + u64::from(taken)).collect();
        assert_eq!(got, want, "{point}");
        assert_eq!(q.lost(), 0, "{point}");
        assert_eq!(q.try_pop(), Err(PopError::Empty), "{point}");
    }
}

/// A consumer SIGKILLed after taking an item of a full ring: producers reuse its slot one lap
/// later at once instead of blocking; only that item is gone (with the consumer, which had
/// copied it), and no other item is lost or repeated.
#[test]
fn consumer_killed_after_taking_does_not_block_producers() {
    let g = SegGuard::new("mpmc_kill_consumer");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let q = seg.mpmc::<u64>("small", 4).unwrap();
    for i in 0..4 {
        q.push(i).unwrap();
    }
    let mut kids = Children::new();
    die_at(&mut kids, g.name(), "pop_one_small", "mpmc.pop.taken", &[]);
    assert_eq!(q.positions().0, 1);
    // Nothing to judge or reap: the slot is free as soon as the position is taken.
    q.try_push(4)
        .expect("the dead consumer's slot is free at once");
    assert_eq!(q.lost(), 0);
    let got: Vec<u64> = (0..4).map(|_| q.pop().unwrap()).collect();
    assert_eq!(got, [1, 2, 3, 4]);
    assert_eq!(q.try_pop(), Err(PopError::Empty));
}

/// The byte queue shares the MPMC engine: a sender killed inside its claim loses only its
/// message, and a blocked receiver gets the next one.
#[test]
fn byte_sender_killed_inside_claim_window_loses_only_its_message() {
    let g = SegGuard::new("mpmc_bytes_kill_sender");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let mq = seg.mpmc_bytes("mq", 4, 64).unwrap();
    let mut kids = Children::new();
    die_at(&mut kids, g.name(), "send_one", "mpmc.push.claimed", &[]);
    mq.send(b"after").unwrap();
    let t = Instant::now();
    assert_eq!(mq.recv_timeout(TIMEOUT).unwrap(), b"after");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(mq.lost(), 1);
}
