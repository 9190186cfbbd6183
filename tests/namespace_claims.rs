//! Claims across pid namespaces (containers sharing `/dev/shm`): a process in a new pid namespace
//! (`unshare --pid --fork --mount-proc`) sees pid numbers that name other processes or none, so
//! it must never judge a holder of the parent namespace dead by its pid, and the other way round.
//! Checked for the seqlock writer lock, the SPSC ring sides and a directory entry whose creator
//! is still initializing it (parked at the `directory.create.named` test point).
//!
//! Needs root (CI runs as root) and `unshare`; elsewhere the test prints why it skipped.
#![cfg(not(feature = "loom"))]

mod common;

use common::{ChildCtx, Children, SegGuard, TIMEOUT};
use shmkit::{Counter, Error, Segment, SegmentOptions};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SIZE: u64 = 1 << 20;
const T100: Duration = Duration::from_millis(100);

/// Child entry point (see `common`): does nothing in the parent.
#[test]
fn xproc_child() {
    common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
        // In the parent's namespace: starts creating `obj` and parks (SHMKIT_HOOK) forever.
        "park_creator" => {
            let _ = ctx.open().counter("obj");
            unreachable!("the park point returned");
        }
        // In a new pid namespace; args: the parent's pid-namespace inode.
        "intruder" => intruder(ctx),
        other => panic!("unknown role {other}"),
    });
}

fn intruder(ctx: &ChildCtx) {
    let me = shmkit::process::me();
    assert_ne!(
        me.pid_ns,
        ctx.arg::<u64>(0),
        "not in another pid namespace (pid {})",
        me.pid
    );
    let seg = ctx.open();
    // The seqlock writer lock held by the parent (its pid means nothing here).
    let v = seg.seqlock::<u64>("v", 0).unwrap();
    assert!(
        matches!(v.try_writer(), Err(Error::WriterBusy { .. })),
        "took a live foreign writer's lock"
    );
    let t = Instant::now();
    assert!(
        matches!(v.write_timeout(&9, T100), Err(Error::Timeout { .. })),
        "write_timeout did not time out"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        v.check_writer().is_ok(),
        "a live foreign writer reported dead"
    );
    // The SPSC producer side held by the parent.
    let ring = seg.spsc::<u64>("ring", 8).unwrap();
    match ring.producer() {
        Err(Error::RingSideTaken { side, .. }) => assert_eq!(side, "producer"),
        other => panic!("took a live foreign producer side: {:?}", other.map(|_| ())),
    }
    // A directory entry a live creator of the parent namespace is initializing.
    let quick = SegmentOptions::new()
        .wait_timeout(Duration::from_millis(300))
        .open(&ctx.seg)
        .unwrap();
    match quick.counter("obj") {
        Err(Error::Timeout { .. }) => {}
        other => panic!("find-or-create of an entry in creation: {other:?}"),
    }
    match quick.open_object::<Counter>("obj") {
        Err(Error::Timeout { .. }) => {}
        other => panic!("open of an entry in creation: {other:?}"),
    }
    // Now hold claims of our own for the parent to respect.
    let v2 = seg.seqlock::<u64>("v2", 0).unwrap();
    let _w = v2.writer().unwrap();
    let ring2 = seg.spsc::<u64>("ring2", 8).unwrap();
    let _c = ring2.consumer().unwrap();
    seg.counter("ns_holds").unwrap().store(1);
    let done = seg.counter("done").unwrap();
    let t = Instant::now();
    while done.load() == 0 {
        assert!(t.elapsed() < TIMEOUT, "the parent never finished");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `unshare --pid --fork --mount-proc` works here; prints why not when it does not.
fn can_unshare() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: a new pid namespace (unshare --pid) needs root (CI runs as root)");
        return false;
    }
    match Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            println!(
                "skipped: unshare --pid --fork --mount-proc failed here ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            println!("skipped: cannot run unshare: {e}");
            false
        }
    }
}

/// The intruder: this test binary re-executed inside a new pid namespace, with the harness's
/// environment. Killed (with everything in its namespace) and reaped on drop.
struct NsChild(std::process::Child);

impl NsChild {
    fn spawn(seg: &str, parent_ns: u64) -> NsChild {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = Command::new("unshare");
        // --kill-child: the namespace's first process dies with unshare (and takes every
        // process of the namespace with it).
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .arg(exe)
            .args([
                "--exact",
                common::CHILD_TEST,
                "--nocapture",
                "--test-threads=1",
            ])
            .env(common::ROLE_VAR, "intruder")
            .env(common::SEG_VAR, seg)
            .env(common::ARGS_VAR, parent_ns.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: runs between fork and exec and calls only prctl (async-signal-safe).
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        NsChild(cmd.spawn().expect("spawning unshare"))
    }

    /// Waits (bounded) for a successful exit, quoting the child's stderr otherwise.
    fn wait_ok(&mut self) {
        let t = Instant::now();
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = self.0.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                assert!(s.success(), "the intruder failed ({s}):\n{err}");
                return;
            }
            assert!(
                t.elapsed() < TIMEOUT,
                "the intruder still runs after {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn failed(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(s)) if !s.success())
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn claims_are_never_taken_across_pid_namespaces() {
    if !can_unshare() {
        return;
    }
    let g = SegGuard::new("pidns");
    let seg = Segment::create(g.name(), SIZE).unwrap();
    // This process (parent namespace) holds the writer lock and the producer side.
    let v = seg.seqlock::<u64>("v", 0).unwrap();
    let _w = v.writer().unwrap();
    let ring = seg.spsc::<u64>("ring", 8).unwrap();
    let _p = ring.producer().unwrap();
    let v2 = seg.seqlock::<u64>("v2", 0).unwrap();
    let ring2 = seg.spsc::<u64>("ring2", 8).unwrap();
    // A live creator of the parent namespace parked in the middle of creating `obj`.
    let mut kids = Children::new();
    let creator = kids.spawn_with("park_creator", g.name(), &[], |cmd| {
        cmd.env(shmkit::hooks::VAR, "park:directory.create.named:obj");
    });
    common::wait_until("the creator to publish obj", TIMEOUT, || {
        seg.entries()
            .unwrap()
            .iter()
            .any(|e| e.name == "obj" && !e.ready)
    });
    let mut ns = NsChild::spawn(g.name(), shmkit::process::me().pid_ns);
    let holds = seg.counter("ns_holds").unwrap();
    let t = Instant::now();
    while holds.load() == 0 {
        if ns.failed() {
            ns.wait_ok(); // panics with the intruder's stderr
        }
        assert!(t.elapsed() < TIMEOUT, "the intruder never took its claims");
        std::thread::sleep(Duration::from_millis(2));
    }
    // The other way round: the intruder's pid (1 or 2 in its namespace) names another
    // process here, or none; its claims stand.
    assert!(matches!(v2.try_writer(), Err(Error::WriterBusy { .. })));
    assert!(matches!(
        v2.write_timeout(&1, T100),
        Err(Error::Timeout { .. })
    ));
    assert!(v2.check_writer().is_ok());
    match ring2.consumer() {
        Err(Error::RingSideTaken { side, .. }) => assert_eq!(side, "consumer"),
        other => panic!("took a live foreign consumer side: {:?}", other.map(|_| ())),
    }
    seg.counter("done").unwrap().store(1);
    ns.wait_ok();
    // The entry in creation is still the parked creator's.
    let e = seg.entries().unwrap();
    assert!(e.iter().any(|e| e.name == "obj" && !e.ready), "{e:?}");
    kids.kill(creator);
}
