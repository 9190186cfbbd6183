//! The harness every cross-process test uses (ARCHITECTURE.md, "Verification, by layer").
//!
//! # How a cross-process test is written
//!
//! Children are **real processes**: the test binary re-executes itself
//! (`std::env::current_exe()`) with `--exact xproc_child --nocapture --test-threads=1` and three
//! environment variables, [`ROLE_VAR`] (what the child does), [`SEG_VAR`] (the segment name or
//! path it works on) and [`ARGS_VAR`] (further arguments). Every test file that starts children
//! therefore holds exactly one child entry point, named [`CHILD_TEST`]:
//!
//! ```ignore
//! mod common;
//! use common::{Children, ChildCtx, SegGuard};
//!
//! #[test]
//! fn xproc_child() {
//!     common::run_child(|ctx: &ChildCtx| match ctx.role.as_str() {
//!         "add" => { /* open ctx.seg, add ctx.arg::<u64>(0) … */ }
//!         other => panic!("unknown role {other}"),
//!     });
//! }
//!
//! #[test]
//! fn a_child_adds() {
//!     let seg = SegGuard::new("a_child_adds");          // unique name, removed on Drop
//!     let s = shmkit::Segment::create(seg.name(), 1 << 16).unwrap();
//!     let mut kids = Children::new();                    // kills + reaps on Drop
//!     kids.spawn("add", seg.name(), &[&5]);
//!     kids.wait_all(common::TIMEOUT);                    // fails on exit != 0 or a hang
//!     assert_eq!(s.counter("c").unwrap().load(), 5);
//! }
//! ```
//!
//! In the parent the `xproc_child` "test" finds no [`ROLE_VAR`] and returns at once; in a child
//! it runs the role and the test binary exits non-zero if the role panics.
//!
//! What the harness guarantees:
//! - **unique names**: [`unique_name`] = test name + pid + a per-process counter, so parallel tests
//!   and concurrent `cargo test` runs never share a segment;
//! - **cleanup**: [`SegGuard`] removes the named segment, [`TempDir`] its directory, on Drop (also
//!   when the test panics);
//! - **no orphans**: [`Children`] kills (SIGKILL) and reaps every child it still holds on Drop, and
//!   every child is started with `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the test thread
//!   that spawned it even if the test binary itself is killed;
//! - **no hangs**: [`Children::wait_all`] fails the test when a child outlives its timeout, and
//!   every waiting loop inside children is bounded too ([`Gate`]);
//! - **useful failures**: each child's stderr is captured and quoted in the panic message when
//!   it fails (its stdout, the test harness's chatter, is discarded).
//!
//! [`Gate`] is a start flag kept in a segment: children announce themselves and wait for it, the
//! parent opens it once all have arrived, so they really run at the same time.

#![allow(dead_code)]

use shmkit::{Handle, Segment};
use std::ffi::OsString;
use std::fmt::Display;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable that holds a child's role (absent in the parent).
pub const ROLE_VAR: &str = "SHMKIT_XPROC_ROLE";
/// Environment variable that holds the segment name (or file path) a child works on.
pub const SEG_VAR: &str = "SHMKIT_XPROC_SEG";
/// Environment variable that holds a child's further arguments, separated by [`ARG_SEP`].
pub const ARGS_VAR: &str = "SHMKIT_XPROC_ARGS";
/// Separator of the arguments in [`ARGS_VAR`] (ASCII unit separator).
pub const ARG_SEP: char = '\u{1f}';
/// Name of the child entry-point test every test file that spawns children defines.
pub const CHILD_TEST: &str = "xproc_child";
/// A generous bound for children that should finish quickly (debug builds, 2 shared cores).
pub const TIMEOUT: Duration = Duration::from_secs(60);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A segment name unique to this test, this process and this call: `shmkit-t-<test>-<pid>-<n>`.
pub fn unique_name(test: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("shmkit-t-{test}-{}-{n}", std::process::id())
}

/// Owns a unique named segment name and removes `/dev/shm/<name>` on Drop (if it exists).
pub struct SegGuard {
    name: String,
}

impl SegGuard {
    /// A fresh unique name for `test` (nothing is created yet).
    pub fn new(test: &str) -> Self {
        SegGuard {
            name: unique_name(test),
        }
    }

    /// The segment name, for `Segment::create`/`open` and for children.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The segment's path in `/dev/shm`.
    pub fn path(&self) -> PathBuf {
        Path::new(shmkit::SHM_DIR).join(&self.name)
    }
}

impl Drop for SegGuard {
    fn drop(&mut self) {
        // symlink_metadata: also removes a symlink a test planted under the name.
        if std::fs::symlink_metadata(self.path()).is_ok() {
            let _ = std::fs::remove_file(self.path());
        }
    }
}

/// A private temporary directory (mode 0700), removed with its contents on Drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/<unique_name(test)>`.
    pub fn new(test: &str) -> Self {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(unique_name(test));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, file: &str) -> PathBuf {
        self.path.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a child was asked to do.
#[derive(Debug)]
pub struct ChildCtx {
    /// The role ([`ROLE_VAR`]).
    pub role: String,
    /// The segment name or path ([`SEG_VAR`]).
    pub seg: String,
    /// Further arguments ([`ARGS_VAR`]).
    pub args: Vec<String>,
}

impl ChildCtx {
    /// Argument `i` parsed as `T`; panics (failing the child) if missing or malformed.
    pub fn arg<T: std::str::FromStr>(&self, i: usize) -> T
    where
        T::Err: std::fmt::Debug,
    {
        let s = self
            .args
            .get(i)
            .unwrap_or_else(|| panic!("child {}: missing argument {i}", self.role));
        s.parse()
            .unwrap_or_else(|e| panic!("child {}: argument {i} = {s:?}: {e:?}", self.role))
    }

    /// Argument `i` as a string.
    pub fn arg_str(&self, i: usize) -> &str {
        self.args
            .get(i)
            .unwrap_or_else(|| panic!("child {}: missing argument {i}", self.role))
    }

    /// Opens the named segment [`SEG_VAR`] (panics on error).
    pub fn open(&self) -> Segment {
        Segment::open(&self.seg).unwrap_or_else(|e| panic!("child {}: open: {e}", self.role))
    }
}

/// The child entry point: call it from the test named [`CHILD_TEST`]. In the parent (no
/// [`ROLE_VAR`]) it returns at once; in a child it runs `body` with the role and arguments.
pub fn run_child(body: impl FnOnce(&ChildCtx)) {
    let Some(role) = std::env::var_os(ROLE_VAR) else {
        return;
    };
    let ctx = ChildCtx {
        role: role.to_string_lossy().into_owned(),
        seg: std::env::var(SEG_VAR).unwrap_or_default(),
        args: std::env::var(ARGS_VAR)
            .map(|a| {
                if a.is_empty() {
                    Vec::new()
                } else {
                    a.split(ARG_SEP).map(str::to_owned).collect()
                }
            })
            .unwrap_or_default(),
    };
    body(&ctx);
}

struct Proc {
    child: Child,
    label: String,
    stderr: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
}

impl Proc {
    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// The children of one test. Dropping it SIGKILLs and reaps every child not yet reaped, so a
/// failing test leaves no process behind.
#[derive(Default)]
pub struct Children {
    procs: Vec<Proc>,
}

impl Children {
    /// No children yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a child of this test binary with `role`, `seg` and `args`; returns its index.
    pub fn spawn(&mut self, role: &str, seg: &str, args: &[&dyn Display]) -> usize {
        self.spawn_with(role, seg, args, |_| {})
    }

    /// Like [`spawn`](Children::spawn), letting `configure` add to the command (e.g. extra
    /// environment variables).
    pub fn spawn_with(
        &mut self,
        role: &str,
        seg: &str,
        args: &[&dyn Display],
        configure: impl FnOnce(&mut Command),
    ) -> usize {
        let exe = std::env::current_exe().expect("current_exe");
        let joined = args
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(&ARG_SEP.to_string());
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .env(ROLE_VAR, role)
            .env(SEG_VAR, seg)
            .env(ARGS_VAR, OsString::from(joined))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure runs in the child between fork and exec and calls only prctl,
        // which is async-signal-safe; it touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                // Die with the thread that spawned us, so nothing outlives a killed test.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        configure(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning child {role}: {e}"));
        let mut pipe = child.stderr.take().expect("stderr piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        });
        let label = format!(
            "child #{} (role {role}, pid {})",
            self.procs.len(),
            child.id()
        );
        self.procs.push(Proc {
            child,
            label,
            stderr: Some(stderr),
            status: None,
        });
        self.procs.len() - 1
    }

    /// Whether some child has already exited unsuccessfully (does not wait).
    pub fn any_failed(&mut self) -> bool {
        self.procs.iter_mut().any(|p| {
            if p.status.is_none() {
                p.status = p.child.try_wait().expect("try_wait");
            }
            p.status.is_some_and(|s| !s.success())
        })
    }

    /// The exit status of child `i` if it has exited (reaping it), without waiting.
    pub fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let p = &mut self.procs[i];
        if p.status.is_none() {
            p.status = p.child.try_wait().expect("try_wait");
        }
        p.status
    }

    /// Number of children started.
    pub fn len(&self) -> usize {
        self.procs.len()
    }

    /// Whether none were started.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// The pid of child `i`.
    pub fn pid(&self, i: usize) -> u32 {
        self.procs[i].child.id()
    }

    /// Waits (at most 30 s, else the test fails) until child `i` is stopped (state `T` in
    /// `/proc`), e.g. by a `stop:` test point; `what` names where, for the failure message.
    pub fn wait_stopped(&self, i: usize, what: &str) {
        let pid = self.pid(i);
        wait_until(
            &format!("the child to stop at {what}"),
            Duration::from_secs(30),
            || {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|s| {
                        let i = s.rfind(')')?;
                        s[i + 1..].split_whitespace().next().map(|st| st == "T")
                    })
                    .unwrap_or(false)
            },
        );
    }

    /// Resumes child `i` (SIGCONT) after [`wait_stopped`](Self::wait_stopped).
    pub fn resume(&self, i: usize) {
        // SAFETY: kill(2) with a pid of our own child, which is not reaped while `self` holds
        // its `Child` (so the pid cannot have been reused); no memory is involved.
        unsafe { libc::kill(self.pid(i) as libc::pid_t, libc::SIGCONT) };
    }

    /// SIGKILLs child `i` and reaps it; returns its exit status.
    pub fn kill(&mut self, i: usize) -> ExitStatus {
        let p = &mut self.procs[i];
        if let Some(s) = p.status {
            return s;
        }
        let _ = p.child.kill();
        let s = p.child.wait().expect("reaping a killed child");
        p.status = Some(s);
        p.stderr_text();
        s
    }

    /// Waits until child `i` exits (at most `timeout`, else the test fails) and returns its
    /// status without judging it.
    pub fn wait(&mut self, i: usize, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let p = &mut self.procs[i];
            if let Some(s) = p.status {
                return s;
            }
            if let Some(s) = p.child.try_wait().expect("try_wait") {
                p.status = Some(s);
                return s;
            }
            if Instant::now() >= deadline {
                let label = p.label.clone();
                self.kill(i);
                let err = self.procs[i].stderr_text();
                panic!("{label} still running after {timeout:?}; killed it. stderr:\n{err}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for child `i` and fails the test unless it exited with status 0.
    pub fn wait_ok(&mut self, i: usize, timeout: Duration) {
        let s = self.wait(i, timeout);
        if !s.success() {
            let label = self.procs[i].label.clone();
            let err = self.procs[i].stderr_text();
            panic!("{label} failed: {}. stderr:\n{err}", describe(s));
        }
    }

    /// Waits for every child (all within `timeout` from now) and fails the test if any exited
    /// non-zero, was killed by a signal, or is still running at the deadline (then all are
    /// killed by Drop).
    pub fn wait_all(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut failures = Vec::new();
        for i in 0..self.procs.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            let s = self.wait(i, left.max(Duration::from_millis(1)));
            if !s.success() {
                let label = self.procs[i].label.clone();
                let err = self.procs[i].stderr_text();
                failures.push(format!("{label} failed: {}. stderr:\n{err}", describe(s)));
            }
        }
        if !failures.is_empty() {
            panic!(
                "{} of {} children failed:\n{}",
                failures.len(),
                self.procs.len(),
                failures.join("\n")
            );
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if self.procs[i].status.is_none() {
                self.kill(i);
            }
        }
    }
}

/// "exit status 3" / "killed by signal 9".
pub fn describe(s: ExitStatus) -> String {
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{s:?}"),
    }
}

/// Polls `cond` every millisecond until it holds; fails the test with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A start flag in a segment (two counters, `__gate.arrived` and `__gate.go`): children call
/// [`arrive_and_wait`](Gate::arrive_and_wait), the parent [`release`](Gate::release)s them once
/// `n` have arrived, so that they start their work together.
pub struct Gate {
    arrived: Handle<shmkit::Counter>,
    go: Handle<shmkit::Counter>,
}

impl Gate {
    /// Finds or creates the gate's counters in `seg`.
    pub fn new(seg: &Segment) -> Self {
        Gate {
            arrived: seg.counter("__gate.arrived").expect("gate counter"),
            go: seg.counter("__gate.go").expect("gate counter"),
        }
    }

    /// Child side: announces this child, then waits (bounded by [`TIMEOUT`]) for the start.
    /// Sleeps in short steps rather than spinning, so that waiting children do not steal the
    /// two CPUs from the parent still starting the others.
    pub fn arrive_and_wait(&self) {
        self.arrived.inc();
        let deadline = Instant::now() + TIMEOUT;
        while self.go.load() == 0 {
            assert!(Instant::now() < deadline, "the gate never opened");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// Parent side: waits (bounded) until `n` children arrived, then opens the gate. If one of
    /// `kids` dies before arriving, fails at once with its stderr instead of waiting in vain.
    pub fn release(&self, n: u64, timeout: Duration, kids: &mut Children) {
        let deadline = Instant::now() + timeout;
        while self.arrived.load() < n {
            if kids.any_failed() {
                kids.wait_all(TIMEOUT); // panics, quoting the failed child's stderr
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?}: {} of {n} children at the gate",
                self.arrived.load()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        self.go.store(1);
    }
}

/// SIGKILLs process `pid` from another thread after `after` and returns the instant of the kill
/// (for tests that time how soon a blocked call in this thread notices the death). The caller
/// still reaps the child (e.g. [`Children::kill`]); until then it is a zombie, which counts as
/// dead.
pub fn kill_later(pid: u32, after: Duration) -> JoinHandle<Instant> {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        let t = Instant::now();
        // SAFETY: kill takes two integers and touches no memory of ours.
        let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        assert_eq!(r, 0, "kill({pid}, SIGKILL)");
        t
    })
}

/// Asserts that a blocked call that returned at `returned` noticed a peer killed at `killed`
/// promptly: the guarantee is 50 ms; the bound here is 1 s, for a loaded CI machine (the bug it
/// catches is a call that never returns).
pub fn assert_noticed_death(what: &str, killed: Instant, returned: Instant) {
    let d = returned.saturating_duration_since(killed);
    eprintln!("{what}: returned {d:?} after the peer's SIGKILL");
    assert!(
        returned >= killed,
        "{what} returned before the peer was killed"
    );
    assert!(
        d < Duration::from_secs(1),
        "{what} noticed the peer's death only after {d:?}"
    );
}
