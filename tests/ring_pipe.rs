//! The duplex pipe between real processes (children re-exec this test binary, see `common`):
//! Python's `multiprocessing.Pipe` example, ping-pong, close, one end per process.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TIMEOUT};
use shmkit::{Error, Segment};
use shmkit::{PipeEnd, RecvError, SendError};
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
const CAP: u64 = 4096;
const MAX: u64 = 512;

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| {
        let seg = ctx.open();
        let pipe = seg.pipe("p", CAP, MAX).unwrap();
        match ctx.role.as_str() {
            // Python: `def f(conn): conn.send([42, None, 'hello']); conn.close()`, as bytes.
            "python_example" => {
                let mut conn = pipe.end(PipeEnd::B).unwrap();
                for m in [&b"42"[..], b"None", b"hello"] {
                    conn.send(m).unwrap();
                }
                conn.close();
            }
            // The same with a typed value (feature serde).
            #[cfg(feature = "serde")]
            "python_example_values" => {
                let mut conn = pipe.end(PipeEnd::B).unwrap();
                conn.send_value(&(42i64, None::<i64>, "hello")).unwrap();
                conn.close();
            }
            // Answers every message n (a u64) with n + 1 followed by n % 100 bytes, until
            // Closed.
            "echo" => {
                let mut conn = pipe.end(PipeEnd::B).unwrap();
                let mut buf = Vec::new();
                loop {
                    match conn.recv_timeout(TIMEOUT) {
                        Ok(m) => {
                            let n = u64::from_le_bytes(m[..8].try_into().unwrap());
                            buf.clear();
                            buf.extend_from_slice(&(n + 1).to_le_bytes());
                            buf.resize(8 + (n % 100) as usize, n as u8);
                            conn.send(&buf).unwrap();
                        }
                        Err(RecvError::Closed) => break,
                        Err(e) => panic!("echo: {e}"),
                    }
                }
            }
            // Takes end A, sends two messages, says so, then holds the end until killed.
            "send_two_then_hold_a" => {
                let mut conn = pipe.end(PipeEnd::A).unwrap();
                conn.send(b"one").unwrap();
                conn.send(b"two").unwrap();
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("send_two_then_hold_a was not killed");
            }
            // Takes end A, says so, then holds it until killed.
            "hold_a" => {
                let _conn = pipe.end(PipeEnd::A).unwrap();
                seg.counter("ready").unwrap().store(1);
                std::thread::sleep(TIMEOUT);
                panic!("hold_a was not killed");
            }
            // Takes end B and blocks in recv until the parent closes; then a send must fail.
            "recv_until_closed" => {
                let mut conn = pipe.end(PipeEnd::B).unwrap();
                seg.counter("ready").unwrap().store(1);
                assert_eq!(conn.recv_timeout(TIMEOUT).unwrap(), b"bye");
                assert_eq!(conn.recv_timeout(TIMEOUT), Err(RecvError::Closed));
                assert_eq!(conn.send(b"x"), Err(SendError::Closed));
            }
            other => panic!("unknown role {other}"),
        }
    });
}

fn setup(test: &str) -> (SegGuard, Segment) {
    let g = SegGuard::new(test);
    let seg = Segment::create(g.name(), SIZE).unwrap();
    seg.pipe("p", CAP, MAX).unwrap();
    (g, seg)
}

#[test]
fn python_pipe_example() {
    // parent_conn, child_conn = Pipe(); p = Process(target=f, args=(child_conn,)); p.start()
    // print(parent_conn.recv())   # prints "[42, None, 'hello']"
    let (g, seg) = setup("pipe_python");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut conn = pipe.end(PipeEnd::A).unwrap();
    let mut kids = Children::new();
    kids.spawn("python_example", g.name(), &[]);
    assert!(conn.poll(TIMEOUT), "the child's message arrives");
    let got: Vec<Vec<u8>> = (0..3).map(|_| conn.recv().unwrap()).collect();
    assert_eq!(got, [&b"42"[..], b"None", b"hello"]);
    assert_eq!(
        conn.recv(),
        Err(RecvError::Closed),
        "the child closed its end"
    );
    kids.wait_all(TIMEOUT);
}

#[cfg(feature = "serde")]
#[test]
fn python_pipe_example_with_values() {
    let (g, seg) = setup("pipe_python_values");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut conn = pipe.end(PipeEnd::A).unwrap();
    let mut kids = Children::new();
    kids.spawn("python_example_values", g.name(), &[]);
    let v: (i64, Option<i64>, String) = conn.recv_value().unwrap();
    assert_eq!(v, (42, None, "hello".to_string()));
    assert!(matches!(
        conn.recv_value::<u8>(),
        Err(Error::Recv(RecvError::Closed))
    ));
    kids.wait_all(TIMEOUT);
}

#[test]
fn ping_pong_both_ways() {
    const N: u64 = 20_000;
    let (g, seg) = setup("pipe_pingpong");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut conn = pipe.end(PipeEnd::A).unwrap();
    let mut kids = Children::new();
    kids.spawn("echo", g.name(), &[]);
    let t = Instant::now();
    let mut reply = Vec::new();
    for n in 0..N {
        conn.send(&n.to_le_bytes()).unwrap();
        let len = conn.recv_into(&mut reply).unwrap();
        assert_eq!(len, 8 + (n % 100) as usize, "reply {n}");
        assert_eq!(u64::from_le_bytes(reply[..8].try_into().unwrap()), n + 1);
        assert!(
            reply[8..].iter().all(|&b| b == n as u8),
            "reply {n} content"
        );
    }
    eprintln!(
        "pipe: {N} round trips between two processes in {:?}",
        t.elapsed()
    );
    conn.close();
    kids.wait_all(TIMEOUT);
}

#[test]
fn close_wakes_the_peer_which_drains_then_sees_closed() {
    let (g, seg) = setup("pipe_close");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut conn = pipe.end(PipeEnd::A).unwrap();
    let mut kids = Children::new();
    kids.spawn("recv_until_closed", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the child", TIMEOUT, || ready.load() == 1);
    std::thread::sleep(Duration::from_millis(100)); // let it fall asleep
    conn.send(b"bye").unwrap();
    conn.close();
    kids.wait_all(TIMEOUT);
    assert_eq!(conn.send(b"x"), Err(SendError::Closed));
}

#[test]
fn one_end_per_process_and_a_dead_holders_end_is_taken_over() {
    let (g, seg) = setup("pipe_claim");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("hold_a", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the child", TIMEOUT, || ready.load() == 1);
    let pid = kids.pid(k);
    match pipe.end(PipeEnd::A) {
        Err(Error::RingSideTaken {
            side: "pipe end A",
            pid: p,
        }) => assert_eq!(p, pid),
        other => panic!(
            "expected RingSideTaken by {pid}, got {:?}",
            other.map(|_| ())
        ),
    }
    let mut b = pipe.end(PipeEnd::B).expect("the other end is free");
    assert_eq!(pipe.holders(), (pid, std::process::id()));
    assert_eq!(b.peer(), Some(pid));
    kids.kill(k);
    assert_eq!(b.peer(), None, "the peer died without closing");
    let mut a = pipe
        .end(PipeEnd::A)
        .expect("the dead holder's end is taken over");
    a.send(b"mine now").unwrap();
    assert_eq!(b.recv().unwrap(), b"mine now");
}

// Runs the `shmkit` binary, which exists only with the (default) `cli` feature.
#[cfg(feature = "cli")]
#[test]
fn shmkit_stat_describes_byte_rings_and_pipes() {
    let (g, seg) = setup("pipe_stat");
    let ring = seg.byte_ring("r", 1024, 100).unwrap();
    let (mut tx, _rx) = ring.split().unwrap();
    tx.send(b"twelve bytes").unwrap();
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut a = pipe.end(PipeEnd::A).unwrap();
    a.send(b"x").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shmkit"))
        .args(["stat", g.name()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |obj: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{obj} ")))
            .unwrap_or_else(|| panic!("no row {obj} in:\n{stdout}"))
            .to_string()
    };
    let me = std::process::id();
    let r = line("r");
    assert!(
        r.contains("bytes_queue")
            && r.contains("24/1024 bytes used, max_msg 100")
            && r.contains(&format!("sender pid {me}, receiver pid {me}")),
        "{r}"
    );
    let p = line("p");
    assert!(
        p.contains("pipe")
            && p.contains("A->B 16 bytes used, B->A 0 bytes used")
            && p.contains(&format!("capacity {CAP} each, max_msg {MAX}"))
            && p.contains(&format!("end A pid {me}, end B pid 0")),
        "{p}"
    );
}

/// A peer killed without closing: blocking receives drain what it sent and then report `Closed`
/// (Python's `EOFError`), and blocking sends into the full direction fail with `Closed`
/// (`BrokenPipeError`), instead of waiting forever.
#[test]
fn a_killed_peer_reads_as_closed() {
    let (g, seg) = setup("pipe_dead_peer");
    let pipe = seg.pipe("p", CAP, MAX).unwrap();
    let mut b = pipe.end(PipeEnd::B).unwrap();
    let mut kids = Children::new();
    let k = kids.spawn("send_two_then_hold_a", g.name(), &[]);
    let ready = seg.counter("ready").unwrap();
    common::wait_until("the child", TIMEOUT, || ready.load() == 1);
    kids.kill(k);
    let t = std::time::Instant::now();
    assert_eq!(b.recv().unwrap(), b"one");
    assert_eq!(b.recv().unwrap(), b"two");
    assert_eq!(b.recv(), Err(RecvError::Closed));
    // Fill the direction towards the dead peer; the next blocking send gives up.
    while b.try_send(&[7; 100]).is_ok() {}
    assert_eq!(b.send(&[7; 100]), Err(SendError::Closed));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}
