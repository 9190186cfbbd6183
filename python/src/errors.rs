//! How `shmkit::Error` becomes a Python exception.
//!
//! The exception classes are defined in Python, in `shmkit/errors.py` (so that they can derive
//! from both `shmkit.Error` and the built-in exception multiprocessing raises for the same
//! condition, e.g. `TimeoutError` or `threading.BrokenBarrierError`); this file picks the class
//! for each variant. The message is the core's `Display`, which names what was found.

use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyType;
use pyo3::PyErrArguments;
use shmkit::Error;

/// The class `name` of `shmkit.errors`.
fn class(py: Python<'_>, name: &str) -> PyResult<Py<PyType>> {
    static MODULE: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
    let m = MODULE.get_or_try_init(py, || py.import_bound("shmkit.errors").map(|m| m.unbind()))?;
    Ok(m.bind(py)
        .getattr(name)?
        .downcast_into::<PyType>()?
        .unbind())
}

/// A `shmkit.errors.<name>` exception with `args`.
pub fn raise<A: PyErrArguments + Send + Sync + 'static>(name: &str, args: A) -> PyErr {
    Python::with_gil(|py| match class(py, name) {
        Ok(cls) => PyErr::from_type_bound(cls.into_bound(py), args),
        Err(e) => e,
    })
}

/// The Python exception for `e`.
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::NotFound { .. } | Error::ObjectNotFound { .. } => raise("NotFound", (msg,)),
        Error::TypeMismatch { .. } => raise("TypeMismatch", (msg,)),
        Error::OwnerDied { .. } => raise("OwnerDied", (msg,)),
        Error::NotRecoverable { .. } => raise("NotRecoverable", (msg,)),
        Error::WouldDeadlock { .. } => raise("WouldDeadlock", (msg,)),
        Error::Timeout { .. } => raise("Timeout", (msg,)),
        Error::BarrierBroken { .. } => raise("BrokenBarrierError", (msg,)),
        Error::SemaphoreOverRelease { .. } => raise("SemaphoreOverRelease", (msg,)),
        Error::OutOfSpace { needed, .. } => raise("OutOfSpace", (msg, needed)),
        Error::DirectoryFull { .. } => raise("OutOfSpace", (msg, 0u64)),
        Error::AlreadyExists { .. } => raise("AlreadyExists", (msg,)),
        Error::IndexOutOfBounds { .. } => PyIndexError::new_err(msg),
        Error::LengthMismatch { .. } | Error::InvalidName { .. } | Error::InvalidSize { .. } => {
            PyValueError::new_err(msg)
        }
        _ => raise("Error", (msg,)),
    }
}

/// `to_py` for `Result`s: `r.map_err(to_py)` reads as `py_err(r)`.
pub fn py_err<T>(r: shmkit::Result<T>) -> PyResult<T> {
    r.map_err(to_py)
}
