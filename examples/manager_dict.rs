//! Ten processes write into a shared dict and a shared list; the parent prints both: Python's
//! `Manager().dict()` / `Manager().list()` tutorial, without a manager server.
//!
//! In Python:
//!
//! ```python
//! def f(d, l, i):
//!     d[f"worker-{i}"] = i * i             # a socket round trip and a pickle to the server
//!     d["total"] = d.get("total", 0) + i   # NOT atomic: two round trips, updates get lost
//!     l.append(i)
//!
//! with Manager() as manager:
//!     d = manager.dict(); l = manager.list()
//!     procs = [Process(target=f, args=(d, l, i)) for i in range(10)]
//!     for p in procs: p.start()
//!     for p in procs: p.join()
//!     print(d); print(l)
//! ```
//!
//! With shmkit the dict is a [`ByteMap`](shmkit::ByteMap) and the list a
//! [`List`](shmkit::List) in a named segment: every process maps them and reads and writes them
//! directly (lock-free reads, striped writers, no server, no pickling), `update` is an atomic
//! read-modify-write, and a worker killed in the middle of a write leaves both consistent.
//!
//! Run: `cargo run --example manager_dict`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::{MapOptions, Segment};
    use std::process::Command;
    const WORKERS: u64 = 10;

    let opts = MapOptions::new(64).key_max(16).value_max(16);
    let args: Vec<String> = std::env::args().collect();
    // A worker: this same program, started with `worker <segment name> <i>`.
    if args.len() == 4 && args[1] == "worker" {
        let seg = Segment::open(&args[2])?;
        let (d, l) = (seg.map("d", opts)?, seg.list::<u64>("l", 64)?);
        let i: u64 = args[3].parse()?;
        d.insert(
            format!("worker-{i}").as_bytes(),
            (i * i).to_string().as_bytes(),
        )?;
        d.update(b"total", |old| {
            let sum: u64 = old.map_or(0, |b| String::from_utf8_lossy(b).parse().unwrap_or(0));
            Some((sum + i).to_string().into_bytes())
        })?;
        l.push(i)?;
        return Ok(());
    }

    let name = format!("example-manager-{}", std::process::id());
    let seg = Segment::create(&name, 1 << 20)?;
    // Remove the name when we are done, also if something below fails.
    struct Unlink(Segment);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = self.0.unlink();
        }
    }
    let seg = Unlink(seg);
    let (d, l) = (seg.0.map("d", opts)?, seg.0.list::<u64>("l", 64)?);

    let me = std::env::current_exe()?;
    let children: Vec<_> = (0..WORKERS)
        .map(|i| {
            Command::new(&me)
                .args(["worker", &name, &i.to_string()])
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut c in children {
        assert!(c.wait()?.success(), "a worker failed");
    }

    let mut entries: Vec<(String, String)> = d
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into(),
                String::from_utf8_lossy(&v).into(),
            )
        })
        .collect();
    entries.sort_by_key(|(k, _)| (k.len(), k.clone()));
    let shown: Vec<String> = entries.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    println!("{{{}}}", shown.join(", "));
    println!("{:?}", l.to_vec());

    assert_eq!(d.len(), WORKERS as usize + 1);
    assert_eq!(
        d.get(b"total")?,
        Some((0..WORKERS).sum::<u64>().to_string().into_bytes())
    );
    let mut appended = l.to_vec();
    appended.sort();
    assert_eq!(appended, (0..WORKERS).collect::<Vec<_>>());
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
