//! A child process stores an `f64` that the parent reads: Python's `Value('d')`.
//!
//! In Python:
//!
//! ```python
//! def f(n):
//!     n.value = 3.141592653589793
//!
//! num = Value('d', 0.0)
//! p = Process(target=f, args=(num,)); p.start(); p.join()
//! print(num.value)
//! ```
//!
//! Run: `cargo run --example shared_value`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::Segment;
    use std::process::Command;

    let args: Vec<String> = std::env::args().collect();
    // The child: this same program, started with `child <segment name>`.
    if args.len() == 3 && args[1] == "child" {
        let seg = Segment::open(&args[2])?;
        // Opens the existing value; `0.0` would only be used if it did not exist yet.
        let num = seg.value::<f64>("num", 0.0)?;
        num.store(std::f64::consts::PI);
        // Values of any 1, 2, 4 or 8-byte plain type also have swap, compare_exchange and
        // fetch_update; integers and floats have fetch_add and fetch_sub.
        return Ok(());
    }

    let name = format!("example-shared-value-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    let run = || -> Result<_, Box<dyn std::error::Error>> {
        let num = seg.value::<f64>("num", 0.0)?; // an AtomicValue<f64>, starting at 0.0
        let status = Command::new(std::env::current_exe()?)
            .args(["child", &name])
            .status()?;
        Ok((num, status))
    };
    let result = run();
    seg.unlink()?; // remove the name whatever happened; our mapping stays valid
    let (num, status) = result?;
    assert!(status.success(), "the child failed");

    println!("the child stored {}", num.load());
    assert_eq!(num.load(), std::f64::consts::PI);
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
