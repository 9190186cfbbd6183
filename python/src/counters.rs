//! `Counter` and `ShardedCounter`: wait-free counters (the core's `Counter` and
//! `ShardedCounter`), no lock, no system call.

use crate::errors::py_err;
use crate::segments::segment;
use pyo3::prelude::*;
use shmkit::Handle;

/// A wait-free 64-bit counter shared by every process that has it (wrapping arithmetic).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Counter {
    h: Handle<shmkit::Counter>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl Counter {
    /// Finds or creates the counter `name` in segment `segment` (a new one starts at 0).
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        let h = py_err(segment(segment_name)?.counter(name))?;
        Ok(Counter {
            h,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Adds `n` (default 1).
    #[pyo3(signature = (n = 1))]
    fn add(&self, n: u64) {
        self.h.add(n)
    }

    /// Subtracts `n` (default 1).
    #[pyo3(signature = (n = 1))]
    fn sub(&self, n: u64) {
        self.h.sub(n)
    }

    /// Adds `n` and returns the value before.
    #[pyo3(signature = (n = 1))]
    fn fetch_add(&self, n: u64) -> u64 {
        self.h.fetch_add(n)
    }

    /// Subtracts `n` and returns the value before.
    #[pyo3(signature = (n = 1))]
    fn fetch_sub(&self, n: u64) -> u64 {
        self.h.fetch_sub(n)
    }

    /// Sets the value and returns the one before.
    fn swap(&self, v: u64) -> u64 {
        self.h.swap(v)
    }

    /// Sets the value to `new` if it is `current`; returns `(True, current)` or `(False, actual)`.
    fn compare_exchange(&self, current: u64, new: u64) -> (bool, u64) {
        match self.h.compare_exchange(current, new) {
            Ok(v) => (true, v),
            Err(v) => (false, v),
        }
    }

    /// Sets the value to 0 and returns the one before.
    fn reset(&self) -> u64 {
        self.h.reset()
    }

    /// The current value (settable).
    #[getter]
    fn get_value(&self) -> u64 {
        self.h.load()
    }

    #[setter]
    fn set_value(&self, v: u64) {
        self.h.store(v)
    }
}

/// A counter split over cache lines, one per group of processes' CPUs: `add` from many
/// processes at once does not contend; `value` sums the stripes (a consistent total only once
/// the adders have stopped).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct ShardedCounter {
    h: Handle<shmkit::ShardedCounter>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl ShardedCounter {
    /// Finds or creates the sharded counter `name` in segment `segment`.
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        let h = py_err(segment(segment_name)?.sharded_counter(name))?;
        Ok(ShardedCounter {
            h,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Adds `n` (default 1) to this process's stripe.
    #[pyo3(signature = (n = 1))]
    fn add(&self, n: u64) {
        self.h.add(n)
    }

    /// Subtracts `n` (default 1).
    #[pyo3(signature = (n = 1))]
    fn sub(&self, n: u64) {
        self.h.sub(n)
    }

    /// Sets every stripe to 0 and returns the total before.
    fn reset(&self) -> u64 {
        self.h.reset()
    }

    /// The sum of the stripes.
    #[getter]
    fn value(&self) -> u64 {
        self.h.sum()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Counter>()?;
    m.add_class::<ShardedCounter>()?;
    Ok(())
}
