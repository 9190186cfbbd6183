//! The peers of `benches/ring.rs` that run as programs of their own, driven through
//! stdin/stdout: `benches/peers` (ipc-channel, iceoryx2; built here on first use) and
//! `benches/python/ring.py`; and the clean-up after iceoryx2.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Clone, Copy)]
pub(crate) enum Peer {
    /// `target/ring-peers/release/shmkit-ring-peers MODE`.
    Rust(&'static str),
    /// `python3 benches/python/ring.py MODE`.
    Python(&'static str),
}

pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Builds `benches/peers` once per run; the binary, or why it cannot be had.
pub(crate) fn peers_binary() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let manifest =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/Cargo.toml");
            let target = target_dir().join("ring-peers");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            println!(
                "ring bench: building the ipc-channel and iceoryx2 peers ({}; about 2 minutes \
                 the first time)",
                manifest.display()
            );
            let status = Command::new(cargo)
                .args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target)
                .stdin(Stdio::null())
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !status.success() {
                return Err(format!("building {} failed ({status})", manifest.display()));
            }
            Ok(target.join("release/shmkit-ring-peers"))
        })
        .clone()
}

fn python_available() -> Result<(), String> {
    match Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`python3 --version` failed ({s})")),
        Err(e) => Err(format!("python3 not found ({e})")),
    }
}

impl Peer {
    /// The command to start this peer, or why it cannot be started.
    pub(crate) fn command(self) -> Result<Command, String> {
        match self {
            Peer::Rust(mode) => {
                let bin = peers_binary()?;
                let mut c = Command::new(bin);
                c.arg(mode);
                Ok(c)
            }
            Peer::Python(mode) => {
                python_available()?;
                let script =
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/ring.py");
                let mut c = Command::new("python3");
                c.arg(script).arg(mode);
                Ok(c)
            }
        }
    }

    fn is_iceoryx2(self) -> bool {
        matches!(self, Peer::Rust("iox2-pingpong"))
    }
}

/// A running peer speaking the line protocol (`ready`; `run N` → ns; `lat N` → samples).
pub(crate) struct LinePeer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    what: String,
}

impl LinePeer {
    pub(crate) fn start(mut cmd: Command, what: &str) -> LinePeer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("peer stdout"));
        let mut peer = LinePeer {
            child,
            stdin,
            stdout,
            what: what.to_owned(),
        };
        let line = peer.line();
        assert_eq!(line.trim(), "ready", "{what} did not start: {line:?}");
        peer
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading from {}: {e}", self.what));
        assert!(
            !line.is_empty(),
            "{} exited (see its error above)",
            self.what
        );
        line
    }

    fn ask(&mut self, cmd: &str, n: u64) -> String {
        let stdin = self.stdin.as_mut().expect("peer stdin");
        writeln!(stdin, "{cmd} {n}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("writing to {}: {e}", self.what));
        self.line()
    }

    /// One round of `n` units: the time the peer measured.
    pub(crate) fn run(&mut self, n: u64) -> Duration {
        let line = self.ask("run", n);
        let ns = line
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{} answered {line:?}", self.what));
        Duration::from_nanos(ns)
    }

    /// `n` round trips, each timed by the peer.
    pub(crate) fn lat(&mut self, n: u64) -> Vec<u64> {
        let line = self.ask("lat", n);
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|w| w.parse::<u64>())
            .collect::<Result<_, _>>()
            .unwrap_or_else(|_| panic!("{} answered a bad sample line", self.what));
        assert_eq!(v.len() as u64, n, "{}: wrong number of samples", self.what);
        v
    }
}

impl Drop for LinePeer {
    fn drop(&mut self) {
        // EOF on stdin stops the peer, which stops its child.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The entries of `/dev/shm/iox2_*` and `/tmp/iceoryx2` that existed before an iceoryx2 peer
/// ran; on drop, removes every such entry that appeared since (and only those).
struct Iox2Leftovers {
    before: BTreeSet<PathBuf>,
    tmp_existed: bool,
}

const IOX2_TMP: &str = "/tmp/iceoryx2";

fn iox2_entries() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with("iox2_") {
                out.insert(e.path());
            }
        }
    }
    fn walk(p: &Path, out: &mut BTreeSet<PathBuf>) {
        if let Ok(dir) = std::fs::read_dir(p) {
            for e in dir.flatten() {
                let path = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&path, out);
                }
                out.insert(path);
            }
        }
    }
    walk(Path::new(IOX2_TMP), &mut out);
    out
}

impl Iox2Leftovers {
    fn snapshot() -> Iox2Leftovers {
        Iox2Leftovers {
            before: iox2_entries(),
            tmp_existed: Path::new(IOX2_TMP).exists(),
        }
    }
}

impl Drop for Iox2Leftovers {
    fn drop(&mut self) {
        // Deepest first, so that directories are empty when their turn comes.
        let now = iox2_entries();
        let new: Vec<&PathBuf> = now.difference(&self.before).collect();
        for p in new.into_iter().rev() {
            if p.is_dir() {
                let _ = std::fs::remove_dir(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
        if !self.tmp_existed {
            let _ = std::fs::remove_dir(IOX2_TMP);
        }
    }
}

/// A started peer, with the cleanup its kind needs (dropped after the peer).
pub(crate) struct PeerRun {
    pub(crate) peer: LinePeer,
    _leftovers: Option<Iox2Leftovers>,
}

impl PeerRun {
    pub(crate) fn start(cmd: Command, kind: Peer, what: &str) -> PeerRun {
        let leftovers = kind.is_iceoryx2().then(Iox2Leftovers::snapshot);
        PeerRun {
            peer: LinePeer::start(cmd, what),
            _leftovers: leftovers,
        }
    }
}
