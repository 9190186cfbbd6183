//! How a blocking call waits: in slices of at most [`SLICE`], with the GIL released during each
//! slice (other Python threads run), and `PyErr_CheckSignals` between slices, so that Ctrl-C
//! (or any signal handler that raises) interrupts a blocked `acquire`, `wait` or `get` with its
//! exception. Every blocking method of the package waits through [`sliced`].

use pyo3::prelude::*;
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
