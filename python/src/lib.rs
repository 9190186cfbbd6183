//! `shmkit._native`: the native half of the `shmkit` Python package.
//!
//! Each family of objects has its own file, with a `register` function called below; the
//! pure-Python layer (`python/shmkit/`) builds multiprocessing's API on these classes. The
//! common mechanism every family uses (read `python/README.md` before adding one):
//!
//! - [`segments`]: where objects live. A process-wide table of open segments by name;
//!   a native object is always created or opened as *(segment name, object name)* and keeps a
//!   `Handle` (which keeps the mapping alive).
//! - [`errors`]: how `shmkit::Error` becomes a Python exception (`shmkit.errors`).
//! - [`wait`]: how a blocking call waits: in slices, with the GIL released, checking for
//!   signals (Ctrl-C) between slices.

// pyo3 0.22's #[pyfunction]/#[pymethods] expansions convert PyErr into itself (a known false
// positive of newer clippy on that pyo3 version).
#![allow(clippy::useless_conversion)]

use pyo3::prelude::*;

mod codec;
mod collections;
mod counters;
mod errors;
mod fast;
mod guards;
mod locks;
mod pipe;
mod queues;
mod segments;
mod values;
mod wait;

/// The native module; see the package `shmkit` for the documented API.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    segments::register(m)?;
    counters::register(m)?;
    locks::register(m)?;
    values::register(m)?;
    queues::register(m)?;
    pipe::register(m)?;
    collections::register(m)?;
    m.add_function(wrap_pyfunction!(_specialize, m)?)?;
    Ok(())
}

/// Gives `cls`, a Python subclass of `Lock`, `RLock`, `Value`, `ByteQueue` or `PipeEndpoint`, its own descriptors for the
/// hand-made hot methods (`fast::install_on_subclass`: only then does CPython specialize their
/// calls). `TypeError` for any other class.
#[pyfunction]
fn _specialize(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<()> {
    if locks::specialize(cls)?
        || values::specialize(cls)?
        || queues::specialize(cls)?
        || pipe::specialize(cls)?
    {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(
            "_specialize() takes a subclass of Lock, RLock, Value, ByteQueue or PipeEndpoint",
        ))
    }
}
