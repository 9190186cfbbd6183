//! A parent and a child process talk through a duplex pipe: Python's `multiprocessing.Pipe`
//! example, ported.
//!
//! In Python:
//!
//! ```python
//! def f(conn):
//!     conn.send([42, None, 'hello'])
//!     print(conn.recv())               # the parent's answer
//!     conn.close()
//!
//! parent_conn, child_conn = Pipe()
//! p = Process(target=f, args=(child_conn,))
//! p.start()
//! print(parent_conn.recv())            # prints "[42, None, 'hello']"
//! parent_conn.send('thanks')
//! p.join()
//! ```
//!
//! With shmkit the pipe lives in a named segment; each process claims one end (a second claim of
//! a live end fails). Messages are bytes; with the `serde` feature `send_value`/`recv_value`
//! carry any serde type (`cargo run --example pipe --features serde`).
//!
//! Run: `cargo run --example pipe`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::Segment;
    use shmkit::{PipeEnd, RecvError};
    use std::process::Command;

    let args: Vec<String> = std::env::args().collect();
    // The child: this same program, started with `child <segment name>`.
    if args.len() == 3 && args[1] == "child" {
        let seg = Segment::open(&args[2])?;
        let pipe = seg.pipe("conn", 64 * 1024, 4096)?;
        let mut conn = pipe.end(PipeEnd::B)?;
        #[cfg(feature = "serde")]
        conn.send_value(&(42, None::<i32>, "hello"))?;
        #[cfg(not(feature = "serde"))]
        for part in [&b"42"[..], b"None", b"hello"] {
            conn.send(part)?;
        }
        let answer = conn.recv()?;
        println!("child got: {}", String::from_utf8_lossy(&answer));
        conn.close();
        return Ok(());
    }

    // The parent: a named segment with a unique name, removed when we are done.
    let name = format!("example-pipe-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    struct Unlink(Segment);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = self.0.unlink();
        }
    }
    let seg = Unlink(seg);
    // 64 KiB per direction, messages of up to 4 KiB.
    let pipe = seg.0.pipe("conn", 64 * 1024, 4096)?;
    let mut conn = pipe.end(PipeEnd::A)?;

    let mut child = Command::new(std::env::current_exe()?)
        .args(["child", &name])
        .spawn()?;

    #[cfg(feature = "serde")]
    {
        let (n, none, s): (i32, Option<i32>, String) = conn.recv_value()?;
        println!("parent got: [{n}, {none:?}, {s:?}]");
    }
    #[cfg(not(feature = "serde"))]
    {
        let parts: Vec<String> = (0..3)
            .map(|_| {
                conn.recv()
                    .map(|m| String::from_utf8_lossy(&m).into_owned())
            })
            .collect::<Result<_, _>>()?;
        println!("parent got: {parts:?}");
    }
    conn.send(b"thanks")?;
    // The child closes its end: what it sent is drained, then recv reports Closed.
    assert_eq!(conn.recv(), Err(RecvError::Closed));
    assert!(child.wait()?.success(), "the child failed");
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
