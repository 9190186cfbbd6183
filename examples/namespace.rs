//! Python's `Manager().Namespace()`: named attributes of any type shared by processes, without a
//! manager server. Needs the feature `serde`: `cargo run --example namespace --features serde`.
//!
//! In Python:
//!
//! ```python
//! def f(ns):
//!     ns.x += 1
//!     ns.y = [ns.y[0] + 1, "seen"]
//!
//! with Manager() as manager:
//!     ns = manager.Namespace(); ns.x = 1; ns.y = [10, "new"]
//!     p = Process(target=f, args=(ns,)); p.start(); p.join()
//!     print(ns)            # Namespace(x=2, y=[11, 'seen'])
//! ```
//!
//! Here the segment's directory names the namespace and a [`Namespace`](shmkit::Namespace) (a
//! map from attribute names to serde values) holds the attributes; `update` changes one
//! attribute atomically (Python's `ns.x += 1` is two round trips and may lose updates).

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::{MapOptions, Segment};
    use std::process::Command;

    let opts = MapOptions::new(16).key_max(16).value_max(64);
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "worker" {
        let ns = Segment::open(&args[2])?.namespace("ns", opts)?;
        ns.update::<i64>("x", |x| x.map(|x| x + 1))?;
        let (y0, _) = ns.get::<(i64, String)>("y")?.unwrap_or_default();
        ns.set("y", &(y0 + 1, "seen"))?;
        return Ok(());
    }

    let name = format!("example-namespace-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    struct Unlink(Segment);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = self.0.unlink();
        }
    }
    let seg = Unlink(seg);
    let ns = seg.0.namespace("ns", opts)?;
    ns.set("x", &1i64)?;
    ns.set("y", &(10i64, "new"))?;
    let status = Command::new(std::env::current_exe()?)
        .args(["worker", &name])
        .status()?;
    assert!(status.success(), "the worker failed");
    let (x, y) = (
        ns.get::<i64>("x")?.unwrap(),
        ns.get::<(i64, String)>("y")?.unwrap(),
    );
    println!("Namespace(x={x}, y={y:?})");
    assert_eq!((x, y), (2, (11, "seen".to_string())));
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
