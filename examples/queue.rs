//! Worker processes send results to the parent through a queue: Python's classic
//! `multiprocessing.Queue` example.
//!
//! In Python:
//!
//! ```python
//! def f(q, i):
//!     q.put(f"hello from worker {i}")      # pickled, written to a pipe by a feeder thread
//!
//! q = Queue()
//! procs = [Process(target=f, args=(q, i)) for i in range(3)]
//! for p in procs: p.start()
//! print([q.get() for _ in procs])
//! ```
//!
//! With shmkit the queue is a ring in shared memory (`MpmcBytes`, byte messages up to a fixed
//! size; `MpmcRing<T>` for plain `Pod` items): a send copies the bytes into a slot, no pickling,
//! no feeder thread, no system call unless the receiver sleeps. A worker killed mid-send loses at
//! most its own message (counted in `lost()`); the queue keeps working for everyone else.
//!
//! Run: `cargo run --example queue`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::Segment;
    use std::process::Command;
    use std::time::Duration;
    const WORKERS: u32 = 3;

    let args: Vec<String> = std::env::args().collect();
    // A worker: this same program, started with `worker <segment name> <i>`.
    if args.len() == 4 && args[1] == "worker" {
        let seg = Segment::open(&args[2])?;
        let q = seg.mpmc_bytes("results", 16, 256)?; // find the parent's queue by name
        q.send(format!("hello from worker {}", args[3]).as_bytes())?;
        return Ok(());
    }

    let name = format!("example-queue-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    // Remove the name when we are done, also if something below fails.
    struct Unlink(Segment);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = self.0.unlink();
        }
    }
    let seg = Unlink(seg);
    // 16 messages of at most 256 bytes each.
    let q = seg.0.mpmc_bytes("results", 16, 256)?;

    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..WORKERS {
        children.push(
            Command::new(&me)
                .args(["worker", &name, &i.to_string()])
                .spawn()?,
        );
    }
    let mut got = Vec::new();
    for _ in 0..WORKERS {
        // Blocks (spinning briefly, then sleeping on a futex) until a worker sends.
        let msg = q.recv_timeout(Duration::from_secs(30))?;
        got.push(String::from_utf8(msg)?);
    }
    for mut c in children {
        assert!(c.wait()?.success(), "a worker failed");
    }
    got.sort();
    println!("{got:?}");
    assert_eq!(got.len(), WORKERS as usize);
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
