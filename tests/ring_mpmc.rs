//! The MPMC ring between real processes (children re-exec this test binary, see `common`).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TempDir, TIMEOUT};
use shmkit::PopError;
use shmkit::Segment;
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
const CAP: u64 = 1024;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        let q = seg.mpmc::<u64>("q", CAP).unwrap();
        match ctx.role.as_str() {
            // args: producer id, n. Pushes id << 32 | i for i in 0..n.
            "produce" => {
                let id: u64 = ctx.arg(0);
                let n: u64 = ctx.arg(1);
                Gate::new(&seg).arrive_and_wait();
                for i in 0..n {
                    q.push(id << 32 | i).unwrap();
                }
            }
            // args: output file, producers. Pops until Closed, checking that each producer's
            // items come in its order; writes what it got (little-endian u64s) to the file.
            "consume" => {
                let out = ctx.arg_str(0).to_string();
                let producers: usize = ctx.arg(1);
                Gate::new(&seg).arrive_and_wait();
                let mut last = vec![None::<u64>; producers];
                let mut got = Vec::new();
                loop {
                    match q.pop_timeout(TIMEOUT) {
                        Ok(x) => {
                            let (p, i) = ((x >> 32) as usize, x & 0xFFFF_FFFF);
                            assert!(p < producers, "item {x:#x} from no producer");
                            assert!(
                                last[p].is_none_or(|l| l < i),
                                "producer {p}: item {i} after {:?}",
                                last[p]
                            );
                            last[p] = Some(i);
                            got.extend_from_slice(&x.to_le_bytes());
                        }
                        Err(PopError::Closed) => break,
                        Err(e) => panic!("pop: {e}"),
                    }
                }
                std::fs::write(out, got).unwrap();
            }
            // args: producer id. Pushes id << 32 | i until the ring is closed; records how many
            // pushes succeeded in the counter "ok<id>".
            "produce_until_closed" => {
                let id: u64 = ctx.arg(0);
                Gate::new(&seg).arrive_and_wait();
                let mut i = 0u64;
                loop {
                    match q.push_timeout(id << 32 | i, TIMEOUT) {
                        Ok(()) => i += 1,
                        Err(shmkit::PushError::Closed(_)) => break,
                        Err(e) => panic!("push: {e}"),
                    }
                }
                seg.counter(&format!("ok{id}")).unwrap().store(i);
            }
            // args: producer id. Python's classic Queue example: put one message, exit.
            "queue_put" => {
                let id: u32 = ctx.arg(0);
                let mq = seg.mpmc_bytes("mq", 4, 256).unwrap();
                mq.send(format!("hello from producer {id}").as_bytes())
                    .unwrap();
            }
            other => panic!("unknown role {other}"),
        }
    });
}

#[test]
fn four_producers_four_consumers_multiset_and_order() {
    const P: u64 = 4;
    const C: usize = 4;
    const N: u64 = 200_000;
    let g = SegGuard::new("mpmc4x4");
    let dir = TempDir::new("mpmc4x4");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let q = seg.mpmc::<u64>("q", CAP).unwrap();
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    let outs: Vec<String> = (0..C)
        .map(|c| dir.join(&format!("c{c}")).display().to_string())
        .collect();
    for out in &outs {
        kids.spawn("consume", g.name(), &[out, &P]);
    }
    let producers: Vec<usize> = (0..P)
        .map(|p| kids.spawn("produce", g.name(), &[&p, &N]))
        .collect();
    gate.release(P + C as u64, TIMEOUT, &mut kids);
    let t = Instant::now();
    for p in producers {
        kids.wait_ok(p, Duration::from_secs(300));
    }
    q.close();
    kids.wait_all(TIMEOUT);
    eprintln!(
        "mpmc: {} u64 items, {P} producer and {C} consumer processes, in {:?}",
        P * N,
        t.elapsed()
    );
    let mut all = Vec::new();
    for out in &outs {
        let bytes = std::fs::read(out).unwrap();
        all.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
        );
    }
    all.sort_unstable();
    let want: Vec<u64> = (0..P)
        .flat_map(|p| (0..N).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all.len(), want.len(), "items received");
    assert!(
        all == want,
        "the received multiset differs from the sent one"
    );
    assert!(q.is_empty() && q.is_closed());
}

#[test]
fn stat_describes_rings() {
    let g = SegGuard::new("ring_stat");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let q = seg.mpmc::<[u32; 3]>("m", 5).unwrap();
    q.push([1, 2, 3]).unwrap();
    let s = seg.spsc::<u16>("s", 4).unwrap();
    s.producer().unwrap().push(9).unwrap();
    s.close();
    let entries = seg.entries().unwrap();
    let text = |name: &str| {
        let e = entries.iter().find(|e| e.name == name).unwrap();
        shmkit::inspect::state(&seg, e).unwrap().to_string()
    };
    assert_eq!(text("m"), "~1/8 items, 1 pushes claimed");
    assert_eq!(
        text("s"),
        "1/4 items, 1 pushed, producer pid 0, consumer pid 0, closed"
    );
}

/// Python's classic `multiprocessing.Queue` example, ported: three producer processes each put
/// a message, the parent gets three.
#[test]
fn classic_queue_example_three_producers() {
    let g = SegGuard::new("mpmc_bytes_queue");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let mq = seg.mpmc_bytes("mq", 4, 256).unwrap();
    let mut kids = Children::new();
    for id in 0..3u32 {
        kids.spawn("queue_put", g.name(), &[&id]);
    }
    let mut got: Vec<String> = (0..3)
        .map(|_| String::from_utf8(mq.recv_timeout(TIMEOUT).unwrap()).unwrap())
        .collect();
    kids.wait_all(TIMEOUT);
    got.sort();
    assert_eq!(got, [0, 1, 2].map(|i| format!("hello from producer {i}")));
    assert_eq!(mq.try_recv(), Err(shmkit::RecvError::Empty));
    let e = seg.entries().unwrap();
    let e = e.iter().find(|e| e.name == "mq").unwrap();
    assert_eq!(
        shmkit::inspect::state(&seg, e).unwrap().to_string(),
        "~0/4 messages of at most 256 bytes, 3 sends claimed"
    );
}

/// `close` while 2 producer and 2 consumer processes are busy: every push that returned `Ok` is
/// popped exactly once, and nothing else is (no item stranded by the close race, none invented).
#[test]
fn close_while_busy_strands_nothing() {
    let g = SegGuard::new("mpmc_close_busy");
    let dir = TempDir::new("mpmc_close_busy");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    let q = seg.mpmc::<u64>("q", CAP).unwrap();
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    let outs: Vec<String> = (0..2)
        .map(|c| dir.join(&format!("c{c}")).display().to_string())
        .collect();
    for out in &outs {
        kids.spawn("consume", g.name(), &[out, &2]);
    }
    for p in 0..2u64 {
        kids.spawn("produce_until_closed", g.name(), &[&p]);
    }
    gate.release(4, TIMEOUT, &mut kids);
    std::thread::sleep(Duration::from_millis(100));
    q.close();
    kids.wait_all(TIMEOUT);
    let mut got = Vec::new();
    for out in &outs {
        let bytes = std::fs::read(out).unwrap();
        got.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap())),
        );
    }
    got.sort_unstable();
    let want: Vec<u64> = (0..2u64)
        .flat_map(|p| {
            let n = seg.counter(&format!("ok{p}")).unwrap().load();
            (0..n).map(move |i| p << 32 | i)
        })
        .collect();
    assert!(
        !want.is_empty(),
        "the producers pushed nothing before the close"
    );
    assert_eq!(got.len(), want.len(), "popped vs successfully pushed");
    assert!(
        got == want,
        "popped items differ from the successful pushes"
    );
    assert_eq!(q.lost(), 0);
}
