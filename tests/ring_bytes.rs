//! The byte ring between real processes (children re-exec this test binary, see `common`).
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, Gate, SegGuard, TIMEOUT};
use shmkit::{Error, Segment};
use shmkit::{RecvError, SendError};
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
/// A small ring, so that the stream wraps tens of thousands of times.
const CAP: u64 = 4096;
const MAX: u64 = 200;

/// splitmix64's finalizer: a well-mixed function of the index.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Length of message `i` of a stream: 0..=MAX, pseudo-random in the index.
fn len_of(i: u64) -> usize {
    (mix(i) % (MAX + 1)) as usize
}

/// Fills `buf` with message `i` (content derived from the index, a word at a time: cheap in
/// debug builds).
fn fill(i: u64, buf: &mut Vec<u8>) {
    let len = len_of(i);
    buf.clear();
    let seed = mix(i ^ 0x5555);
    let mut k = 0u64;
    while buf.len() < len {
        buf.extend_from_slice(&(seed ^ k.wrapping_mul(0x0101_0101_0101_0101)).to_le_bytes());
        k += 1;
    }
    buf.truncate(len);
}

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        let ring = seg.byte_ring("q", CAP, MAX).unwrap();
        match ctx.role.as_str() {
            // args: n. Sends messages 0..n, then closes.
            "send" => {
                let n: u64 = ctx.arg(0);
                let mut tx = ring.sender().unwrap();
                Gate::new(&seg).arrive_and_wait();
                let mut buf = Vec::new();
                for i in 0..n {
                    fill(i, &mut buf);
                    tx.send(&buf).unwrap();
                }
                tx.close();
            }
            // args: n. Receives until Closed; every message must be the next expected one.
            "recv" => {
                let n: u64 = ctx.arg(0);
                let mut rx = ring.receiver().unwrap();
                Gate::new(&seg).arrive_and_wait();
                let (mut got, mut want) = (Vec::new(), Vec::new());
                let mut next = 0u64;
                loop {
                    match rx.recv_into_timeout(&mut got, TIMEOUT) {
                        Ok(len) => {
                            fill(next, &mut want);
                            assert_eq!(len, want.len(), "length of message {next}");
                            assert!(got == want, "content of message {next}");
                            next += 1;
                        }
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("recv after {next} messages: {e}"),
                    }
                }
                assert_eq!(next, n, "messages received");
                seg.counter("received").unwrap().store(next);
            }
            // args: delay_ms. Sleeps, then sends one message.
            "send_later" => {
                let mut tx = ring.sender().unwrap();
                std::thread::sleep(Duration::from_millis(ctx.arg(0)));
                tx.send(b"woken").unwrap();
            }
            // Receives once, blocking; must get Closed.
            "recv_until_closed" => {
                let mut rx = ring.receiver().unwrap();
                seg.counter("ready").unwrap().store(1);
                assert_eq!(rx.recv_timeout(TIMEOUT), Err(RecvError::Closed));
            }
            // Fills the ring, then times a send that cannot succeed.
            "send_timeout" => {
                let mut tx = ring.sender().unwrap();
                while tx.try_send(&[1; MAX as usize]).is_ok() {}
                let t = Instant::now();
                let r = tx.send_timeout(&[2; MAX as usize], Duration::from_millis(100));
                let e = t.elapsed();
                assert_eq!(r, Err(SendError::Timeout));
                assert!(
                    e >= Duration::from_millis(100) && e < Duration::from_secs(5),
                    "send_timeout(100ms) took {e:?}"
                );
            }
            // args: k. Sends messages 0..k, says so, then holds the side until killed.
            "send_k_then_hold" => {
                let k: u64 = ctx.arg(0);
                let mut tx = ring.sender().unwrap();
                let mut buf = Vec::new();
                for i in 0..k {
                    fill(i, &mut buf);
                    tx.send(&buf).unwrap();
                }
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("send_k_then_hold was not killed");
            }
            // Claims the receiving side, says so, then holds it until killed (receives nothing).
            "hold_receiver" => {
                let _rx = ring.receiver().unwrap();
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("hold_receiver was not killed");
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn setup(test: &str) -> (SegGuard, Segment) {
    let g = SegGuard::new(test);
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.byte_ring("q", CAP, MAX).unwrap();
    (g, seg)
}

/// Where the ring's positions must stand after messages 0..n, replaying the record rule (a
/// header word, the payload padded to words, a padding record where a record would cross the
/// end); also which word offsets a message started at and how many padding records there were.
fn replay(n: u64) -> (u64, Vec<bool>, u64) {
    let mut pos = 0u64;
    let mut starts = vec![false; (CAP / 8) as usize];
    let mut pads = 0;
    for i in 0..n {
        let size = 8 + (len_of(i) as u64).div_ceil(8) * 8;
        let off = pos % CAP;
        if off + size > CAP {
            pos += CAP - off;
            pads += 1;
        }
        starts[((pos % CAP) / 8) as usize] = true;
        pos += size;
    }
    (pos, starts, pads)
}

#[test]
fn a_million_messages_in_order_between_processes_wrapping_at_every_offset() {
    const N: u64 = 1_000_000;
    let (g, seg) = setup("bytes1m");
    let gate = Gate::new(&seg);
    let mut kids = Children::new();
    kids.spawn("recv", g.name(), &[&N]);
    kids.spawn("send", g.name(), &[&N]);
    gate.release(2, TIMEOUT, &mut kids);
    let t = Instant::now();
    kids.wait_all(Duration::from_secs(300));
    let (bytes, starts, pads) = replay(N);
    eprintln!(
        "byte ring: {N} messages of 0..={MAX} bytes ({bytes} ring bytes, {pads} wraps) between \
         two processes in {:?}",
        t.elapsed()
    );
    assert_eq!(seg.counter("received").unwrap().load(), N);
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    assert!(ring.is_empty() && ring.is_closed());
    assert_eq!(
        ring.positions(),
        (bytes, bytes),
        "records laid out as the rule says"
    );
    assert!(
        starts.iter().all(|&s| s),
        "a message started at every word offset"
    );
    assert!(pads > 1000, "wrapped with padding {pads} times");
    assert_eq!(ring.holders(), (0, 0), "both sides released at exit");
}

#[test]
fn blocking_recv_wakes_on_send_from_another_process() {
    let (g, seg) = setup("bytes_wake");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut rx = ring.receiver().unwrap();
    let mut kids = Children::new();
    let t = Instant::now();
    kids.spawn("send_later", g.name(), &[&300]);
    assert_eq!(rx.recv_timeout(TIMEOUT).unwrap(), b"woken");
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(250),
        "received before the send: {e:?}"
    );
    kids.wait_all(TIMEOUT);
}

#[test]
fn close_from_another_process_wakes_a_blocked_receiver() {
    let (g, seg) = setup("bytes_close");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut kids = Children::new();
    kids.spawn("recv_until_closed", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the receiver child", TIMEOUT, || ready.load() == 1);
    std::thread::sleep(Duration::from_millis(100)); // let it fall asleep
    ring.close();
    kids.wait_all(TIMEOUT);
}

#[test]
fn timeouts_return_on_time() {
    let (g, seg) = setup("bytes_timeout");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut kids = Children::new();
    kids.spawn("send_timeout", g.name(), &[]);
    kids.wait_all(TIMEOUT);
    let mut rx = ring.receiver().unwrap();
    let mut n = 0;
    while let Ok(m) = rx.try_recv() {
        assert_eq!(m, [1; MAX as usize]);
        n += 1;
    }
    assert_eq!(n, CAP / (8 + 200), "the child filled the ring");
    let t = Instant::now();
    assert_eq!(
        rx.recv_timeout(Duration::from_millis(100)),
        Err(RecvError::Timeout)
    );
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(100) && e < Duration::from_secs(5),
        "recv_timeout(100ms) took {e:?}"
    );
}

#[test]
fn killed_senders_side_is_taken_over_and_nothing_is_lost() {
    let (g, seg) = setup("bytes_claim");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("send_k_then_hold", g.name(), &[&5]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the sender child", TIMEOUT, || ready.load() == 1);
    let pid = kids.pid(k);
    match ring.sender() {
        Err(Error::RingSideTaken {
            side: "sender",
            pid: p,
        }) => assert_eq!(p, pid),
        other => panic!(
            "expected RingSideTaken by {pid}, got {:?}",
            other.map(|_| ())
        ),
    }
    assert_eq!(ring.holders().0, pid);
    kids.kill(k);
    let mut tx = ring.sender().expect("the dead holder's side is taken over");
    assert_eq!(ring.holders().0, std::process::id());
    let mut rx = ring.receiver().unwrap();
    let mut want = Vec::new();
    for i in 0..5 {
        fill(i, &mut want);
        assert_eq!(
            rx.try_recv().unwrap(),
            want,
            "message {i} of the dead sender"
        );
    }
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    tx.send(b"after takeover").unwrap();
    assert_eq!(rx.recv().unwrap(), b"after takeover");
}

/// A receiver blocked in `recv` whose sender is SIGKILLed: it drains what the sender sent, then
/// gets `Closed` promptly (issue 10, item 6: it used to block for ever).
#[test]
fn blocked_recv_drains_then_reports_a_killed_sender() {
    let (g, seg) = setup("bytes_dead_sender");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut rx = ring.receiver().unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("send_k_then_hold", g.name(), &[&3]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the sender child", TIMEOUT, || ready.load() == 1);
    let killer = common::kill_later(kids.pid(k), Duration::from_millis(300));
    // Bounded only so that a regression fails instead of hanging the suite.
    let wait = Duration::from_secs(20);
    let mut want = Vec::new();
    for i in 0..3 {
        fill(i, &mut want);
        assert_eq!(rx.recv_timeout(wait).as_ref(), Ok(&want), "message {i}");
    }
    let r = rx.recv_timeout(wait);
    let returned = Instant::now();
    let killed = killer.join().unwrap();
    assert_eq!(r, Err(RecvError::Closed));
    common::assert_noticed_death("recv", killed, returned);
    kids.kill(k);
}

/// A sender blocked in `send` on a full ring whose receiver is SIGKILLed: `Closed` promptly
/// instead of waiting for ever.
#[test]
fn blocked_send_reports_a_killed_receiver() {
    let (g, seg) = setup("bytes_dead_receiver");
    let ring = seg.byte_ring("q", CAP, MAX).unwrap();
    let mut tx = ring.sender().unwrap();
    while tx.try_send(&[1; MAX as usize]).is_ok() {}
    let mut kids = Children::new();
    let k = kids.spawn("hold_receiver", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the receiver child", TIMEOUT, || ready.load() == 1);
    let killer = common::kill_later(kids.pid(k), Duration::from_millis(300));
    let r = tx.send_timeout(&[2; MAX as usize], Duration::from_secs(20));
    let returned = Instant::now();
    let killed = killer.join().unwrap();
    assert_eq!(r, Err(SendError::Closed));
    common::assert_noticed_death("send", killed, returned);
    kids.kill(k);
}
