//! A Python peer process for the benches that time `multiprocessing` in the same run
//! (`benches/map.rs`, `benches/seqlock.rs`): the script prints `ready`, then answers each line
//! `N` (a number of operations) with the nanoseconds those took, and exits on `quit` or EOF.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running peer; dropping it stops the script (and kills it if it does not stop in 10 s).
pub struct PythonPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PythonPeer {
    /// Starts `python3 script args…` and waits for its `ready`; `None` (with a printed reason
    /// naming `label`) when python3 cannot be run.
    pub fn start(label: &str, script: &str, args: &[String]) -> Option<PythonPeer> {
        let child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                println!("{label}: skipped, cannot run python3: {e}");
                return None;
            }
        };
        let mut py = PythonPeer {
            stdin: child.stdin.take().expect("python stdin"),
            stdout: BufReader::new(child.stdout.take().expect("python stdout")),
            child,
        };
        let mut line = String::new();
        py.stdout
            .read_line(&mut line)
            .expect("read from the python peer");
        assert_eq!(line.trim(), "ready", "python peer did not start");
        Some(py)
    }

    /// Has the peer run `iters` operations; the time it measured.
    pub fn run(&mut self, iters: u64) -> Duration {
        writeln!(self.stdin, "{iters}").expect("write to the python peer");
        self.stdin.flush().expect("write to the python peer");
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read from the python peer");
        Duration::from_nanos(line.trim().parse().expect("python reports nanoseconds"))
    }
}

impl Drop for PythonPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
