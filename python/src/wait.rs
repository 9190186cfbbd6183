//! How a blocking call waits: in slices of at most [`SLICE`], with the GIL released during each
//! slice (other Python threads run), and `PyErr_CheckSignals` between slices, so that Ctrl-C
//! (or any signal handler that raises) interrupts a blocked `acquire`, `wait` or `get` with its
//! exception. Every blocking method of the package waits through [`sliced`].

use pyo3::prelude::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest a blocking call stays in the core before it looks at pending signals.
pub const SLICE: Duration = Duration::from_millis(50);

/// Calls `attempt(slice)` with the GIL released until it returns `Some`, the `timeout` (`None`:
/// no limit) has run out (then `Ok(None)`, after at least one attempt), or a signal handler
/// raised (then that exception). `attempt` waits at most `slice` and returns `None` if what it
/// waits for did not happen in that time.
pub fn sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<Duration>,
    mut attempt: impl FnMut(Duration) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
        };
        if let Some(v) = py.allow_threads(|| attempt(slice)) {
            return Ok(Some(v));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// How long a receive spins (GIL released) on an empty queue or pipe before it waits in
/// [`sliced`] (where the core spins ~2 µs more, then sleeps on a futex). A sleeping receiver
/// costs its sender a futex wake-up and itself a scheduler wake-up (measured 5–10 µs each on
/// the loaded 2-core reference machine, against a Python peer's 1–3 µs between two messages):
/// spinning about as long as a wake-up costs keeps a live exchange out of the kernel and
/// wastes at most that much when the peer is slow (the classic spin-then-block bound).
/// `SHMKIT_SPIN_US` in the environment (read once) overrides it; 0 turns the spin off.
pub fn spin_budget() -> Duration {
    static BUDGET: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        let us = std::env::var("SHMKIT_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(SPIN_US);
        Duration::from_micros(us.min(10_000))
    })
}

/// The default of [`spin_budget`], in microseconds.
const SPIN_US: u64 = 20;

/// When a receive spins before it sleeps: an adaptive policy per object (process-local). A
/// spin pays only while the peer runs on another CPU; when it shares ours (a loaded machine,
/// 2 cores) the spinner keeps it from running and every spin runs out (measured: a pipe round
/// trip of 150 µs instead of 5–10 µs). So spins that find their message earn credit, spins
/// that run out lose half of it, and with no credit left a receive goes straight to its
/// sleep, spinning again once in [`PROBE`] receives to see whether spinning pays again.
pub struct Spinner {
    credit: AtomicU32,
    skipped: AtomicU32,
}

/// Most credit a spinner holds (a success adds 2, a failure halves).
const MAX_CREDIT: u32 = 16;
/// With no credit, one receive in this many spins anyway.
const PROBE: u32 = 32;

impl Spinner {
    pub const fn new() -> Self {
        Spinner {
            credit: AtomicU32::new(MAX_CREDIT / 2),
            skipped: AtomicU32::new(0),
        }
    }

    /// Tries `attempt` with the GIL released until it returns `Some` or [`spin_budget`] (or
    /// the call's `timeout`, if shorter) has passed (then `None`): the short busy wait before
    /// a receive sleeps, when the policy says it pays (else `None` at once). Never waits
    /// longer than the budget, so a blocked call still reaches [`sliced`] (and Ctrl-C)
    /// promptly.
    pub fn spin<T: Send>(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        mut attempt: impl FnMut() -> Option<T> + Send,
    ) -> Option<T> {
        let budget = timeout.map_or(spin_budget(), |t| t.min(spin_budget()));
        if budget.is_zero() {
            return None;
        }
        let credit = self.credit.load(Ordering::Relaxed);
        if credit == 0 && self.skipped.fetch_add(1, Ordering::Relaxed) % PROBE != PROBE - 1 {
            return None;
        }
        let r = py.allow_threads(|| {
            let start = Instant::now();
            loop {
                for _ in 0..16 {
                    if let Some(v) = attempt() {
                        return Some(v);
                    }
                    std::hint::spin_loop();
                }
                if start.elapsed() >= budget {
                    return None;
                }
            }
        });
        let credit = if r.is_some() {
            (credit + 2).min(MAX_CREDIT)
        } else {
            credit / 2
        };
        self.credit.store(credit, Ordering::Relaxed);
        r
    }
}

impl Default for Spinner {
    fn default() -> Self {
        Spinner::new()
    }
}

/// Python's timeout argument: `None` waits for ever; a negative or NaN number is 0 (as
/// multiprocessing does); a huge one is capped at a year.
pub fn timeout_of(t: Option<f64>) -> Option<Duration> {
    t.map(|s| {
        if s.is_nan() || s <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(s.min(365.0 * 86_400.0))
        }
    })
}
