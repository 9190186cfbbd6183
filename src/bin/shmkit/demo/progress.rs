//! The demo's progress lines, e.g.
//! `  Counter         running   0.52 s      5,309,645 (of 1.0 s)  10.3 M/s`:
//! rewritten in place on a terminal, one line every 500 ms otherwise.

use super::shared::Phase;
use crate::fmt;
use std::io::{IsTerminal, Stdout, Write};
use std::time::{Duration, Instant};

/// How often a progress line is printed when stdout is not a terminal.
const PRINT_EVERY: Duration = Duration::from_millis(500);

/// What a phase's line says besides its count.
pub struct Progress {
    /// The phase shown.
    pub phase: Phase,
    /// The phase's total, when known (shown as ` / total (pct%)`).
    pub expected: Option<u64>,
    /// How long a timed phase runs (shown as ` (of 1.0 s)` when no total is known).
    pub run_for: Option<Duration>,
}

impl Progress {
    /// The line for `count` increments after `elapsed`.
    pub fn line(&self, count: u64, elapsed: Duration, done: bool) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let of = match (self.expected, self.run_for) {
            (Some(e), _) => format!(
                " / {} ({:.0}%)",
                fmt::thousands(e),
                100.0 * count as f64 / e.max(1) as f64
            ),
            (None, Some(r)) => format!(" (of {:.1} s)", r.as_secs_f64()),
            _ => String::new(),
        };
        format!(
            "  {}  {} {:>6.2} s  {:>13}{of}  {}",
            self.phase.label(),
            if done { "done   " } else { "running" },
            secs,
            fmt::thousands(count),
            fmt::rate(count as f64 / secs)
        )
    }
}

/// Where the lines go. Write errors (a closed stdout) are ignored: the demo must go on to stop
/// its workers and remove its segment.
pub struct Display {
    out: Stdout,
    tty: bool,
    last_print: Instant,
}

impl Display {
    /// A display on stdout.
    pub fn new() -> Display {
        let out = std::io::stdout();
        Display {
            tty: out.is_terminal(),
            out,
            last_print: Instant::now(),
        }
    }

    /// Shows a running phase's line: in place on a terminal, else every [`PRINT_EVERY`].
    pub fn running(&mut self, line: &str) {
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2K{line}");
            let _ = self.out.flush();
        } else if self.last_print.elapsed() >= PRINT_EVERY {
            self.last_print = Instant::now();
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// Shows a phase's final line (replacing the running one on a terminal).
    pub fn done(&mut self, line: &str) {
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        let _ = writeln!(self.out, "{clear}{line}");
        let _ = self.out.flush();
    }

    /// Ends the running line when the phase is abandoned.
    pub fn abandon(&mut self) {
        if self.tty {
            let _ = writeln!(self.out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let p = Progress {
            phase: Phase::Locked,
            expected: Some(2_000),
            run_for: None,
        };
        assert_eq!(
            p.line(500, Duration::from_millis(500), false),
            "  Mutex<u64>      running   0.50 s            500 / 2,000 (25%)  1.0 k/s"
        );
        let p = Progress {
            phase: Phase::Counter,
            expected: None,
            run_for: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            p.line(4_000_000, Duration::from_secs(2), true),
            "  Counter         done      2.00 s      4,000,000 (of 1.0 s)  2.0 M/s"
        );
    }
}
