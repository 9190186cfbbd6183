//! N processes increment one shared counter: Python's `multiprocessing.Value` + `get_lock()`
//! example, without the lock.
//!
//! In Python:
//!
//! ```python
//! def work(counter):
//!     for _ in range(10_000):
//!         with counter.get_lock():      # without the lock, updates are lost
//!             counter.value += 1
//!
//! counter = Value('i', 0)
//! procs = [Process(target=work, args=(counter,)) for _ in range(4)]
//! ```
//!
//! With shmkit the increment is one atomic instruction: no lock, no lost update.
//!
//! Run: `cargo run --example counter_workers`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::Segment;
    use std::process::Command;
    const WORKERS: u64 = 4;
    const INCREMENTS: u64 = 10_000;

    let args: Vec<String> = std::env::args().collect();
    // A worker: this same program, started with `worker <segment name>`.
    if args.len() == 3 && args[1] == "worker" {
        let seg = Segment::open(&args[2])?; // open the parent's segment by name
        let counter = seg.counter("counter")?; // find the counter in it, typed
        for _ in 0..INCREMENTS {
            counter.inc(); // atomic: safe from any number of processes at once
        }
        return Ok(());
    }

    // The parent: create a named segment in /dev/shm (unique name, mode 0600).
    let name = format!("example-counter-workers-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    // Remove the name when we are done, also if something below fails.
    struct Unlink(Segment);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = self.0.unlink();
        }
    }
    let seg = Unlink(seg);
    let counter = seg.0.counter("counter")?;

    // Start the workers: separate processes, each re-running this program as a worker.
    let me = std::env::current_exe()?;
    let mut children = Vec::new();
    for _ in 0..WORKERS {
        children.push(Command::new(&me).args(["worker", &name]).spawn()?);
    }
    for mut c in children {
        assert!(c.wait()?.success(), "a worker failed");
    }

    // Every increment of every process is there.
    println!(
        "{WORKERS} processes x {INCREMENTS} increments = {}",
        counter.load()
    );
    assert_eq!(counter.load(), WORKERS * INCREMENTS);
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
