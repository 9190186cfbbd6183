use super::*;
use crate::ring::{RecvError, SendError};
use std::time::Duration;

#[test]
fn both_directions_are_independent() {
    let p = Pipe::new(256, 100).unwrap();
    assert_eq!((p.capacity(), p.max_msg()), (256, 100));
    let mut a = p.end(PipeEnd::A).unwrap();
    let mut b = p.end(PipeEnd::B).unwrap();
    assert_eq!(
        (a.end(), b.end(), a.end().other()),
        (PipeEnd::A, PipeEnd::B, PipeEnd::B)
    );
    a.send(b"to b").unwrap();
    b.send(b"to a, longer").unwrap();
    assert_eq!(p.len(), (16, 24));
    assert_eq!(b.try_recv().unwrap(), b"to b");
    assert_eq!(b.try_recv(), Err(RecvError::Empty));
    let mut buf = Vec::new();
    assert_eq!(a.recv_into(&mut buf), Ok(12));
    assert_eq!(buf, b"to a, longer");
    assert!(p.is_empty());
    // Fill A→B: B→A keeps working.
    while a.try_send(&[1; 100]).is_ok() {}
    assert_eq!(a.try_send(&[1; 100]), Err(SendError::Full));
    b.send(b"still").unwrap();
    assert_eq!(a.recv().unwrap(), b"still");
    assert_eq!(
        a.send_timeout(&[1; 100], Duration::from_millis(10)),
        Err(SendError::Timeout)
    );
}

#[test]
fn one_connection_per_end() {
    let p = Pipe::new(256, 100).unwrap();
    let a = p.end(PipeEnd::A).unwrap();
    assert_eq!(a.peer(), None, "end B not yet taken");
    assert!(matches!(
        p.end(PipeEnd::A),
        Err(Error::RingSideTaken {
            side: "pipe end A",
            ..
        })
    ));
    let b = p.end(PipeEnd::B).unwrap();
    assert_eq!(p.holders(), (std::process::id(), std::process::id()));
    drop(a);
    assert_eq!(p.holders(), (0, std::process::id()));
    let _a = p.end(PipeEnd::A).unwrap();
    drop(b);
    let _b = p.end(PipeEnd::B).unwrap();
}

#[test]
fn close_drains_then_closed_both_ways() {
    let p = Pipe::new(256, 100).unwrap();
    let mut a = p.end(PipeEnd::A).unwrap();
    let mut b = p.end(PipeEnd::B).unwrap();
    a.send(b"last words").unwrap();
    b.send(b"unread reply").unwrap();
    a.close();
    assert!(a.is_closed() && b.is_closed() && p.is_closed());
    assert_eq!(a.send(b"x"), Err(SendError::Closed));
    assert_eq!(b.send(b"x"), Err(SendError::Closed), "broken pipe");
    assert!(b.poll(Duration::ZERO));
    assert_eq!(b.recv().unwrap(), b"last words");
    assert!(
        b.poll(Duration::MAX),
        "closed and drained: recv would not block"
    );
    assert_eq!(b.recv(), Err(RecvError::Closed));
    assert_eq!(
        a.recv().unwrap(),
        b"unread reply",
        "the closer can still drain"
    );
    assert_eq!(a.recv(), Err(RecvError::Closed));
}

#[test]
fn ping_pong_between_threads() {
    const N: u32 = 5_000;
    let p = Pipe::new(64, 16).unwrap();
    let mut a = p.end(PipeEnd::A).unwrap();
    let mut b = p.end(PipeEnd::B).unwrap();
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut buf = [0u8; 16];
            loop {
                match b.recv_timeout(Duration::from_secs(30)) {
                    Ok(m) => {
                        let n = u32::from_le_bytes(m[..4].try_into().unwrap());
                        buf[..4].copy_from_slice(&(n + 1).to_le_bytes());
                        b.send(&buf[..4 + (n % 13) as usize]).unwrap();
                    }
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        for i in 0..N {
            a.send(&i.to_le_bytes()).unwrap();
            let r = a.recv().unwrap();
            assert_eq!(r.len(), 4 + (i % 13) as usize);
            assert_eq!(u32::from_le_bytes(r[..4].try_into().unwrap()), i + 1);
        }
        a.close();
    });
}

#[test]
fn slice_receive_and_too_small() {
    let p = Pipe::new(256, 100).unwrap();
    let mut a = p.end(PipeEnd::A).unwrap();
    let mut b = p.end(PipeEnd::B).unwrap();
    a.send(b"twelve bytes").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(
        b.try_recv_slice(&mut small),
        Err(RecvError::TooSmall { needed: 12 })
    );
    let mut big = [0u8; 12];
    assert_eq!(b.try_recv_slice(&mut big), Ok(12));
    assert_eq!(&big, b"twelve bytes");
}

#[cfg(feature = "serde")]
#[test]
fn values_both_ways() {
    let p = Pipe::new(256, 64).unwrap();
    let mut a = p.end(PipeEnd::A).unwrap();
    let mut b = p.end(PipeEnd::B).unwrap();
    a.send_value(&(42u8, None::<i32>, "hello")).unwrap();
    let v: (u8, Option<i32>, String) = b.recv_value().unwrap();
    assert_eq!(v, (42, None, "hello".into()));
    b.send_value(&vec![1.5f64, 2.5]).unwrap();
    assert_eq!(a.recv_value::<Vec<f64>>().unwrap(), [1.5, 2.5]);
    assert!(matches!(
        a.send_value(&[0u64; 70].as_slice()),
        Err(Error::Send(SendError::TooLarge { .. }))
    ));
}

#[test]
fn layout_is_pinned() {
    // The ends line, two RingHeads (three padded lines each), then both directions' words.
    let line = core::mem::size_of::<CachePadded<u64>>();
    let p = Pipe::new(64, 8).unwrap();
    let base = &*p as *const Pipe as *const u8 as usize;
    assert_eq!(p.data.as_ptr() as usize - base, 7 * line);
    assert_eq!(p.data.len(), 16);
    assert_eq!(
        core::mem::size_of_val(&*p),
        (7 * line + 128).next_multiple_of(line)
    );
}

/// Pipe connections own their pipe and move into threads (issue 11, item 7).
#[test]
fn connections_are_owned_and_move_into_threads() {
    fn owned<E: Send + Sync + 'static>(_: &E) {}
    let pipe = Pipe::new(256, 64).unwrap();
    let mut a = pipe.end(PipeEnd::A).unwrap();
    let mut b = pipe.end(PipeEnd::B).unwrap();
    drop(pipe); // the connections keep it alive
    owned(&a);
    let t = std::thread::spawn(move || {
        while let Ok(m) = b.recv() {
            b.send(&[m[0] + 1]).unwrap();
        }
    });
    for i in 0..100u8 {
        a.send(&[i]).unwrap();
        assert_eq!(a.recv().unwrap(), [i + 1]);
    }
    a.close();
    t.join().unwrap();
}
