//! An anonymous segment shared with `fork()`ed children: no name, nothing in /dev/shm to clean
//! up; the memory goes away with the last process that maps it.
//!
//! (Python's `multiprocessing` with the `fork` start method shares `Value`s this way.)
//!
//! `fork()` is only safe here because this program has a single thread when it forks (no test
//! harness, no thread pool): a child of a multi-threaded process may inherit locks held by
//! threads that do not exist in it.
//!
//! Run: `cargo run --example fork_anonymous`

#[cfg(not(feature = "loom"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use shmkit::Segment;
    const CHILDREN: u64 = 3;

    // A sealed memfd mapped shared: fork()ed children see the same memory.
    let seg = Segment::anonymous(1 << 20)?;
    let hits = seg.counter("hits")?;
    let last = seg.value::<u32>("last_pid", 0)?;

    let mut pids = Vec::new();
    for i in 1..=CHILDREN {
        // SAFETY: this process is single-threaded, so the child inherits no lock held by
        // another thread; the child only touches atomics in the shared mapping and leaves
        // with `_exit`, running none of the parent's destructors.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => return Err(std::io::Error::last_os_error().into()),
            0 => {
                // In the child: the handles were inherited with the mapping.
                hits.add(i * 100);
                last.store(std::process::id());
                // SAFETY: `_exit` ends the child at once; it never returns.
                unsafe { libc::_exit(0) };
            }
            child => pids.push(child),
        }
    }
    for pid in pids {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid place for its exit status.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(r == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    // 100 + 200 + 300: every child's add arrived.
    println!(
        "children added {} in total; the last to write was pid {}",
        hits.load(),
        last.load()
    );
    assert_eq!(hits.load(), 600);
    Ok(())
}

/// The `loom` build (model checking only) has no segments: nothing to run.
#[cfg(feature = "loom")]
fn main() {}
