//! The lock family: `Lock`, `RLock`, `Semaphore`/`BoundedSemaphore`, `Event`, the condition
//! variable under `Condition` and `Barrier`, on the core's robust futex locks.

use crate::errors::py_err;
use crate::segments::segment;
use crate::wait::{sliced, timeout_of};
use pyo3::prelude::*;
use shmkit::Handle;

/// A flag processes wait for (the core's `Event`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Event {
    h: Handle<shmkit::Event>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl Event {
    /// Finds or creates the event `name` in segment `segment_name` (created clear).
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        Ok(Event {
            h: py_err(segment(segment_name)?.event(name))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Whether the flag is set.
    fn is_set(&self) -> bool {
        self.h.is_set()
    }

    /// Sets the flag and wakes every waiter, in every process.
    fn set(&self) {
        self.h.set()
    }

    /// Clears the flag.
    fn clear(&self) {
        self.h.clear()
    }

    /// Waits until the flag is set, at most `timeout` seconds (`None`: no limit); returns
    /// whether it is set. Releases the GIL; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if self.h.is_set() {
            return Ok(true);
        }
        let h = &self.h;
        let r = sliced(py, timeout_of(timeout), |slice| {
            h.wait_timeout(slice).then_some(())
        })?;
        Ok(r.is_some())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Event>()?;
    Ok(())
}
