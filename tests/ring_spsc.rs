//! The SPSC ring between real processes (children re-exec this test binary, see `common`).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TIMEOUT};
use shmkit::{Error, Segment};
use shmkit::{PopError, PushError};
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
const CAP: u64 = 4096;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        let ring = seg.spsc::<u64>("q", CAP).unwrap();
        match ctx.role.as_str() {
            // args: n. Pushes 0..n, then closes.
            "produce" => {
                let n: u64 = ctx.arg(0);
                let mut tx = ring.producer().unwrap();
                Gate::new(&seg).arrive_and_wait();
                for i in 0..n {
                    tx.push(i).unwrap();
                }
                tx.close();
            }
            // args: n. Pops until Closed; every item must be the next expected one.
            "consume" => {
                let n: u64 = ctx.arg(0);
                let mut rx = ring.consumer().unwrap();
                Gate::new(&seg).arrive_and_wait();
                let mut next = 0u64;
                loop {
                    match rx.pop_timeout(TIMEOUT) {
                        Ok(v) => {
                            assert_eq!(v, next, "item out of order, lost or doubled");
                            next += 1;
                        }
                        Err(PopError::Closed) => break,
                        Err(e) => panic!("pop after {next} items: {e}"),
                    }
                }
                assert_eq!(next, n, "items received");
                seg.counter("received").unwrap().store(next);
            }
            // args: n. Echoes n items from ring "ping" to ring "pong" with blocking calls,
            // pausing now and then so that the parent's pop goes to sleep.
            "echo" => {
                let n: u64 = ctx.arg(0);
                let (ping, pong) = (seg.spsc::<u64>("ping", 4), seg.spsc::<u64>("pong", 4));
                let (ping, pong) = (ping.unwrap(), pong.unwrap());
                let mut rx = ping.consumer().unwrap();
                let mut tx = pong.producer().unwrap();
                for i in 0..n {
                    let v = rx.pop_timeout(TIMEOUT).expect("ping lost");
                    if i % 3 == 0 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    tx.push_timeout(v + 1, TIMEOUT).expect("pong");
                }
            }
            // args: delay_ms, value. Sleeps, then pushes one value.
            "push_later" => {
                let mut tx = ring.producer().unwrap();
                std::thread::sleep(Duration::from_millis(ctx.arg(0)));
                tx.push(ctx.arg(1)).unwrap();
            }
            // Pops once, blocking; records 1 if it got Closed.
            "pop_until_closed" => {
                let mut rx = ring.consumer().unwrap();
                seg.counter("ready").unwrap().store(1);
                assert_eq!(rx.pop_timeout(TIMEOUT), Err(PopError::Closed));
            }
            // Fills the ring, then times a push that cannot succeed.
            "push_timeout" => {
                let mut tx = ring.producer().unwrap();
                for i in 0..CAP {
                    tx.try_push(i).unwrap();
                }
                let t = Instant::now();
                let r = tx.push_timeout(99, Duration::from_millis(100));
                let e = t.elapsed();
                assert_eq!(r, Err(PushError::Timeout(99)));
                assert!(
                    e >= Duration::from_millis(100) && e < Duration::from_secs(5),
                    "push_timeout(100ms) took {e:?}"
                );
            }
            // Claims the producer side, says so, then holds it until killed (bounded).
            "hold_producer" => {
                let _tx = ring.producer().unwrap();
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("hold_producer was not killed");
            }
            // args: k. Claims the consumer side, pops k items (0, 1, …), says so, then holds the
            // side until killed (bounded).
            "pop_k_then_hold" => {
                let k: u64 = ctx.arg(0);
                let mut rx = ring.consumer().unwrap();
                for i in 0..k {
                    assert_eq!(rx.pop_timeout(TIMEOUT), Ok(i));
                }
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("pop_k_then_hold was not killed");
            }
            // args: k. Claims the producer side, pushes k items (0, 1, …), says so, then holds
            // the side until killed (bounded).
            "push_k_then_hold" => {
                let k: u64 = ctx.arg(0);
                let mut tx = ring.producer().unwrap();
                for i in 0..k {
                    tx.push(i).unwrap();
                }
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("push_k_then_hold was not killed");
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn setup(test: &str) -> (SegGuard, Segment) {
    let g = SegGuard::new(test);
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.spsc::<u64>("q", CAP).unwrap();
    (g, seg)
}

#[test]
fn ten_million_items_in_order_between_processes() {
    const N: u64 = 10_000_000;
    let (g, seg) = setup("spsc10m");
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    kids.spawn("consume", g.name(), &[&N]);
    kids.spawn("produce", g.name(), &[&N]);
    gate.release(2, TIMEOUT, &mut kids);
    let t = Instant::now();
    kids.wait_all(Duration::from_secs(300));
    eprintln!(
        "spsc: {N} u64 items between two processes in {:?}",
        t.elapsed()
    );
    assert_eq!(seg.counter("received").unwrap().load(), N);
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    assert!(ring.is_empty() && ring.is_closed());
    assert_eq!(ring.positions(), (N, N));
    assert_eq!(ring.holders(), (0, 0), "both sides released at exit");
}

/// Thousands of sleeps and wake-ups across processes in both directions: a lost wake-up (the
/// light/heavy barrier pairing failing) would leave one side asleep until the timeout.
#[test]
fn ping_pong_through_sleeping_sides_loses_no_wake_up() {
    const N: u64 = 3_000;
    let (g, seg) = setup("spsc_pingpong");
    let (ping, pong) = (seg.spsc::<u64>("ping", 4), seg.spsc::<u64>("pong", 4));
    let (ping, pong) = (ping.unwrap(), pong.unwrap());
    let mut tx = ping.producer().unwrap();
    let mut rx = pong.consumer().unwrap();
    let mut kids = Children::new();
    kids.spawn("echo", g.name(), &[&N]);
    let t = Instant::now();
    for i in 0..N {
        if i % 5 == 0 {
            std::thread::sleep(Duration::from_micros(150));
        }
        tx.push_timeout(i * 2, TIMEOUT).unwrap();
        assert_eq!(rx.pop_timeout(TIMEOUT), Ok(i * 2 + 1), "round {i}");
    }
    kids.wait_all(TIMEOUT);
    eprintln!("spsc: {N} sleeping round trips in {:?}", t.elapsed());
}

#[test]
fn blocking_pop_wakes_on_push_from_another_process() {
    let (g, seg) = setup("spsc_wake");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut rx = ring.consumer().unwrap();
    let mut kids = Children::new();
    let t = Instant::now();
    kids.spawn("push_later", g.name(), &[&300, &42]);
    assert_eq!(rx.pop_timeout(TIMEOUT), Ok(42));
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(250),
        "popped before the push: {e:?}"
    );
    kids.wait_all(TIMEOUT);
}

#[test]
fn close_from_another_process_wakes_a_blocked_consumer() {
    let (g, seg) = setup("spsc_close");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut kids = Children::new();
    kids.spawn("pop_until_closed", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the consumer child", TIMEOUT, || ready.load() == 1);
    std::thread::sleep(Duration::from_millis(100)); // let it fall asleep
    ring.close();
    kids.wait_all(TIMEOUT);
}

#[test]
fn timeouts_return_on_time() {
    let (g, seg) = setup("spsc_timeout");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut kids = Children::new();
    kids.spawn("push_timeout", g.name(), &[]);
    kids.wait_all(TIMEOUT);
    let mut rx = ring.consumer().unwrap();
    for i in 0..CAP {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    let t = Instant::now();
    assert_eq!(
        rx.pop_timeout(Duration::from_millis(100)),
        Err(PopError::Timeout)
    );
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(100) && e < Duration::from_secs(5),
        "pop_timeout(100ms) took {e:?}"
    );
}

#[test]
fn second_producer_fails_while_first_lives_and_takes_over_after_sigkill() {
    let (g, seg) = setup("spsc_claim");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("hold_producer", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the producer child", TIMEOUT, || ready.load() == 1);
    let pid = kids.pid(k);
    match ring.producer() {
        Err(Error::RingSideTaken {
            side: "producer",
            pid: p,
        }) => assert_eq!(p, pid),
        other => panic!(
            "expected RingSideTaken by {pid}, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(ring.holders().0, pid);
    kids.kill(k);
    let mut tx = ring
        .producer()
        .expect("the dead holder's side is taken over");
    assert_eq!(ring.holders().0, std::process::id());
    let mut rx = ring.consumer().unwrap();
    tx.push(5).unwrap();
    assert_eq!(rx.pop(), Ok(5));
}

#[test]
fn consumer_killed_between_pops_is_taken_over_and_nothing_is_lost() {
    let (g, seg) = setup("spsc_ctake");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut tx = ring.producer().unwrap();
    for i in 0..10 {
        tx.push(i).unwrap();
    }
    let mut kids = Children::new();
    let k = kids.spawn("pop_k_then_hold", g.name(), &[&4]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the consumer child", TIMEOUT, || ready.load() == 1);
    assert!(matches!(
        ring.consumer(),
        Err(Error::RingSideTaken {
            side: "consumer",
            ..
        })
    ));
    kids.kill(k);
    let mut rx = ring
        .consumer()
        .expect("the dead consumer's side is taken over");
    // The dead consumer took 0..4; the rest follow in order, and the ring keeps working.
    for i in 4..10 {
        assert_eq!(rx.try_pop(), Ok(i));
    }
    assert_eq!(rx.try_pop(), Err(PopError::Empty));
    tx.push(10).unwrap();
    assert_eq!(rx.pop(), Ok(10));
}

/// A consumer blocked in `pop` whose producer is SIGKILLed: it drains what the producer pushed,
/// then gets `Closed` promptly (issue 10, item 6: it used to block for ever).
#[test]
fn blocked_pop_drains_then_reports_a_killed_producer() {
    let (g, seg) = setup("spsc_dead_producer");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut rx = ring.consumer().unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("push_k_then_hold", g.name(), &[&3]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the producer child", TIMEOUT, || ready.load() == 1);
    let killer = common::kill_later(kids.pid(k), Duration::from_millis(300));
    // Bounded only so that a regression fails instead of hanging the suite.
    let wait = Duration::from_secs(20);
    for i in 0..3 {
        assert_eq!(rx.pop_timeout(wait), Ok(i), "what the producer pushed");
    }
    let r = rx.pop_timeout(wait);
    let returned = Instant::now();
    let killed = killer.join().unwrap();
    assert_eq!(r, Err(PopError::Closed));
    common::assert_noticed_death("pop", killed, returned);
    kids.kill(k);
    // The side is taken over by a new producer, and the consumer waits for it again.
    let mut tx = ring.producer().unwrap();
    tx.push(7).unwrap();
    assert_eq!(rx.pop_timeout(wait), Ok(7));
}

/// A producer blocked in `push` on a full ring whose consumer is SIGKILLed: `Closed(value)`
/// promptly instead of waiting for ever.
#[test]
fn blocked_push_reports_a_killed_consumer() {
    let (g, seg) = setup("spsc_dead_consumer");
    let ring = seg.spsc::<u64>("q", CAP).unwrap();
    let mut tx = ring.producer().unwrap();
    for i in 0..CAP {
        tx.try_push(i).unwrap();
    }
    let mut kids = Children::new();
    let k = kids.spawn("pop_k_then_hold", g.name(), &[&0]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the consumer child", TIMEOUT, || ready.load() == 1);
    let killer = common::kill_later(kids.pid(k), Duration::from_millis(300));
    let r = tx.push_timeout(99, Duration::from_secs(20));
    let returned = Instant::now();
    let killed = killer.join().unwrap();
    assert_eq!(r, Err(PushError::Closed(99)));
    common::assert_noticed_death("push", killed, returned);
    kids.kill(k);
}

/// The ends of a ring in a segment own a clone of its handle (issue 11, item 7):
/// `seg.spsc(..)?.split()?` gives ends that move into threads and outlive the handle and the
/// segment value they came from.
#[test]
fn segment_ends_move_into_threads_and_keep_the_mapping() {
    let g = SegGuard::new("spsc_owned_ends");
    let (mut tx, mut rx) = {
        let seg = Segment::create(g.name(), SIZE).unwrap();
        seg.spsc::<u64>("x", 16).unwrap().split().unwrap()
    }; // the Segment and the Handle are gone; the ends keep the mapping
    let producer = std::thread::spawn(move || {
        for i in 0..10_000 {
            tx.push(i).unwrap();
        }
        tx.close();
    });
    let consumer = std::thread::spawn(move || {
        let mut next = 0;
        while let Ok(v) = rx.pop() {
            assert_eq!(v, next);
            next += 1;
        }
        next
    });
    producer.join().unwrap();
    assert_eq!(consumer.join().unwrap(), 10_000);
}
