//! `dict`, `list` and `Namespace` (their native part): the core's `ByteMap` and `ByteList`
//! with byte keys and values; the Python layer encodes keys and pickles values
//! (`shmkit/collections.py`). Every write waits for its stripe's (or the list's) lock in
//! GIL-free slices, so a stopped peer never freezes the interpreter and Ctrl-C interrupts.

use crate::errors::{py_err, to_py};
use crate::segments::segment;
use crate::wait::sliced;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use shmkit::{ByteList, ByteMap, Error, Handle, MapOptions};
use std::time::Duration;

/// Runs `op(slice)` in GIL-free slices until it does not time out.
fn retry<T: Send>(
    py: Python<'_>,
    mut op: impl FnMut(Duration) -> shmkit::Result<T> + Send,
) -> PyResult<T> {
    let r = sliced(py, None, |slice| match op(slice) {
        Err(Error::Timeout { .. }) => None,
        r => Some(r),
    })?;
    match r {
        Some(r) => py_err(r),
        None => Err(to_py(Error::Timeout {
            what: "a shared collection's lock",
            waited: Duration::ZERO,
        })),
    }
}

fn bytes<'py>(py: Python<'py>, v: Option<Vec<u8>>) -> Option<Bound<'py, PyBytes>> {
    v.map(|v| PyBytes::new_bound(py, &v))
}

/// A shared hash map of byte strings (the core's `ByteMap`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct ByteDict {
    h: Handle<ByteMap>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl ByteDict {
    /// Finds or creates the map `name` in segment `segment_name`: `capacity` entries, keys of
    /// at most `key_max` bytes, values of at most `value_max` bytes.
    #[new]
    fn new(
        segment_name: &str,
        name: &str,
        capacity: u64,
        key_max: u64,
        value_max: u64,
    ) -> PyResult<Self> {
        let opts = MapOptions::new(capacity)
            .key_max(key_max)
            .value_max(value_max);
        Ok(ByteDict {
            h: py_err(segment(segment_name)?.map(name, opts))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// `(capacity, key_max, value_max)`.
    #[getter]
    fn dims(&self) -> (u64, u64, u64) {
        let o = self.h.options();
        (o.capacity, o.key_max, o.value_max)
    }

    /// The value of `key` (`None`: absent). Lock-free.
    fn get<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, py_err(self.h.get(key))?))
    }

    /// Whether `key` is present. Lock-free.
    fn contains(&self, key: &[u8]) -> PyResult<bool> {
        py_err(self.h.contains_key(key))
    }

    /// Sets `key` to `value`.
    fn set(&self, py: Python<'_>, key: &[u8], value: &[u8]) -> PyResult<()> {
        let h = &self.h;
        retry(py, |t| h.insert_timeout(key, value, t).map(drop))
    }

    /// Removes `key`; returns its value (`None`: it was absent).
    fn remove<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let h = &self.h;
        Ok(bytes(py, retry(py, |t| h.remove_timeout(key, t))?))
    }

    /// The value of `key`, inserting `value` first if absent (atomically).
    fn setdefault<'py>(
        &self,
        py: Python<'py>,
        key: &[u8],
        value: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let h = &self.h;
        let v = retry(py, |t| {
            let mut out = None;
            h.update_timeout(key, t, |cur| {
                let v = cur.unwrap_or(value).to_vec();
                out = Some(v.clone());
                Some(v)
            })?;
            Ok(out.unwrap_or_default())
        })?;
        Ok(PyBytes::new_bound(py, &v))
    }

    /// Number of entries.
    fn len(&self) -> usize {
        self.h.len()
    }

    /// Removes every entry.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let h = &self.h;
        retry(py, |t| h.clear_timeout(t))
    }

    /// Every `(key, value)` (each entry read whole; not a snapshot of the whole map).
    fn items<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut v: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        py_err(self.h.for_each(|k, val| v.push((k.to_vec(), val.to_vec()))))?;
        let items = v
            .into_iter()
            .map(|(k, val)| (PyBytes::new_bound(py, &k), PyBytes::new_bound(py, &val)));
        Ok(PyList::new_bound(py, items))
    }
}

/// A shared list of byte strings (the core's `ByteList`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct ByteSeq {
    h: Handle<ByteList>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl ByteSeq {
    /// Finds or creates the list `name` in segment `segment_name`: at most `capacity`
    /// elements of at most `elem_max` bytes.
    #[new]
    fn new(segment_name: &str, name: &str, capacity: u64, elem_max: u64) -> PyResult<Self> {
        Ok(ByteSeq {
            h: py_err(segment(segment_name)?.byte_list(name, capacity, elem_max))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// `(capacity, elem_max)`.
    #[getter]
    fn dims(&self) -> (usize, usize) {
        (self.h.capacity(), self.h.elem_max())
    }

    /// Appends `elem`; returns its index. Lock-free between appenders.
    fn append(&self, py: Python<'_>, elem: &[u8]) -> PyResult<usize> {
        let h = &self.h;
        retry(py, |t| h.push_timeout(elem, t))
    }

    /// Element `index` (`None`: past the end, or a hole left by a killed appender).
    fn get<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, py_err(self.h.get(index))?))
    }

    /// Replaces element `index`.
    fn set(&self, py: Python<'_>, index: usize, elem: &[u8]) -> PyResult<()> {
        let h = &self.h;
        retry(py, |t| h.set_timeout(index, elem, t))
    }

    /// Removes and returns the last element (`None`: empty).
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let h = &self.h;
        Ok(bytes(py, retry(py, |t| h.pop_timeout(t))?))
    }

    /// The length (holes included).
    fn len(&self) -> usize {
        self.h.len()
    }

    /// Removes every element.
    fn clear(&self, py: Python<'_>) -> PyResult<()> {
        let h = &self.h;
        retry(py, |t| h.clear_timeout(t))
    }

    /// Every element in order (holes skipped).
    fn items<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        let v: Vec<Vec<u8>> = self.h.iter().collect();
        PyList::new_bound(py, v.iter().map(|e| PyBytes::new_bound(py, e)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ByteDict>()?;
    m.add_class::<ByteSeq>()?;
    Ok(())
}
