//! The parent's side of the demo: it starts the worker processes, releases them into each phase,
//! shows the progress and stops everything, also when a worker fails or on Ctrl-C.

use super::progress::{Display, Progress};
use super::shared::{mono_ns, Shared};
use super::READY_TIMEOUT;
use crate::signal;
use shmkit::Segment;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often the parent looks at the workers and the progress during a phase.
const POLL: Duration = Duration::from_millis(20);

/// Owns the segment and the workers: dropping it kills and reaps the workers that are still
/// running and removes the segment, whatever path the demo leaves by.
pub struct Cleanup {
    pub seg: Segment,
    pub children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
        let _ = self.seg.unlink();
    }
}

/// How the work phase ended, if not normally.
pub enum Abort {
    Interrupted,
    Failed(String),
}

/// `exit code 3` or `killed by signal 9`.
pub fn describe_status(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "unknown status".to_string(),
    }
}

/// Starts `n` workers (`exe __worker`) on segment `name`, each doing `increments` (or running
/// until the stop flag), and hands them to `guard`.
pub fn spawn_workers(
    guard: &mut Cleanup,
    exe: &Path,
    name: &str,
    n: u32,
    increments: Option<u64>,
) -> Result<(), String> {
    for i in 0..n {
        let mut cmd = Command::new(exe);
        cmd.arg("__worker")
            .args(["--name", name, "--index", &i.to_string()])
            .args(["--parent", &std::process::id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(k) = increments {
            cmd.args(["--increments", &k.to_string()]);
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting worker {i} ({}): {e}", exe.display()))?;
        guard.children.push(child);
    }
    Ok(())
}

/// Waits for every worker to exit and checks that each finished its work cleanly.
pub fn reap_workers(guard: &mut Cleanup) -> Result<(), String> {
    for (i, c) in guard.children.iter_mut().enumerate() {
        let status = c
            .wait()
            .map_err(|e| format!("waiting for worker {i}: {e}"))?;
        if !status.success() {
            return Err(format!("worker {i} failed ({})", describe_status(status)));
        }
    }
    Ok(())
}

/// Starts the phases and watches the workers.
pub struct Supervisor<'a> {
    pub guard: &'a mut Cleanup,
    pub shared: &'a Shared,
    pub n: u32,
}

impl Supervisor<'_> {
    /// Fails on Ctrl-C or when a worker exited with an error.
    fn check(&mut self) -> Result<(), Abort> {
        if signal::interrupted() {
            return Err(Abort::Interrupted);
        }
        for (i, c) in self.guard.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = c.try_wait() {
                if !status.success() {
                    return Err(Abort::Failed(format!(
                        "worker {i} failed ({})",
                        describe_status(status)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits until every worker has opened the segment and waits at the start flag.
    pub fn wait_ready(&mut self) -> Result<(), Abort> {
        let t = Instant::now();
        while self.shared.ready.load() < self.n as u64 {
            self.check()?;
            if t.elapsed() > READY_TIMEOUT {
                return Err(Abort::Failed(format!(
                    "only {} of {} workers were ready after {READY_TIMEOUT:?}",
                    self.shared.ready.load(),
                    self.n
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Releases all workers into `progress.phase` at once, shows its progress until every
    /// worker is done (stopping a timed phase after `progress.run_for`), and returns the time
    /// from the start flag to the last worker's last increment.
    pub fn phase(&mut self, progress: Progress) -> Result<Duration, Abort> {
        let shared = self.shared;
        let phase = progress.phase;
        let mut display = Display::new();
        let t0 = Instant::now();
        let t0_ns = mono_ns();
        shared.start.store(phase as u32);
        loop {
            std::thread::sleep(POLL);
            let elapsed = t0.elapsed();
            if let Err(e) = self.check() {
                display.abandon();
                return Err(e);
            }
            if progress.run_for.is_some_and(|r| elapsed >= r) && shared.stop.load() == 0 {
                shared.stop.store(1);
            }
            if shared.done.load() >= self.n as u64 * phase as u64 {
                // Precisely: from the start flag to the last worker's last increment.
                let ns = shared.finished(phase).load().saturating_sub(t0_ns);
                let elapsed = Duration::from_nanos(ns);
                display.done(&progress.line(shared.progress(phase), elapsed, true));
                return Ok(elapsed);
            }
            display.running(&progress.line(shared.progress(phase), elapsed, false));
        }
    }
}
