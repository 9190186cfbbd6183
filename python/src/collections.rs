//! `dict`, `list` and `Namespace` (their native part): the core's `ByteMap` and `ByteList`
//! with byte keys and values; the Python layer encodes keys and pickles values
//! (`shmkit/collections.py`). Every write waits for its stripe's (or the list's) lock in
//! GIL-free slices, so a stopped peer never freezes the interpreter and Ctrl-C interrupts.

use crate::codec;
use crate::errors::{py_err, to_py};
use crate::segments::segment;
use crate::wait::sliced;
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBytes, PyFloat, PyInt, PyList, PyString};
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

    /// `d[key]`: the value of the Python key `key` (encoded as `shmkit.collections.encode_key`
    /// does), unpickled; `self.__missing__(key)` when absent. Lock-free.
    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let h = &slf.get().h;
        let found = codec::with_buf(1, |k| -> PyResult<_> {
            encode_key(key, k)?;
            codec::with_buf(0, |v| -> PyResult<_> {
                if py_err(h.get_into(k, v))? {
                    Ok(Some(codec::load(py, v)?))
                } else {
                    Ok(None)
                }
            })
        })?;
        match found {
            Some(v) => Ok(v),
            None => slf.call_method1("__missing__", (key,)),
        }
    }

    /// `d[key] = value`: pickles `value` (natively for small plain objects) under the Python
    /// key `key`. Takes the key's stripe lock at once when it is free, with the GIL kept; else
    /// waits for it in GIL-free slices.
    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let h = &self.h;
        codec::with_buf(1, |k| {
            encode_key(key, k)?;
            codec::with_buf(0, |v| {
                codec::dump(value, v)?;
                let (k, v) = (&*k, &*v);
                match h.insert_timeout(k, v, Duration::ZERO) {
                    Err(Error::Timeout { .. }) => {
                        retry(py, |t| h.insert_timeout(k, v, t).map(drop))
                    }
                    r => py_err(r).map(drop),
                }
            })
        })
    }

    /// `del d[key]`: `KeyError` when absent.
    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        let h = &self.h;
        let removed = codec::with_buf(1, |k| {
            encode_key(key, k)?;
            let k = &*k;
            retry(py, |t| h.remove_timeout(k, t))
        })?;
        match removed {
            Some(_) => Ok(()),
            None => Err(PyKeyError::new_err((key.clone().unbind(),))),
        }
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

/// Appends the canonical encoding of the dict key `key` to `out`: natively for a str, an
/// int, a non-integral float and bytes (exact types), as `shmkit.collections.encode_key` does
/// (`b"s"` + UTF-8, `b"i"` + decimal, `b"f"` + big-endian double, `b"b"` + bytes); through
/// that function for everything else (which raises `TypeError` for unsupported keys).
fn encode_key(key: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    if let Ok(s) = key.downcast_exact::<PyString>() {
        // A str with lone surrogates fails here; encode_key writes it (surrogatepass).
        if let Ok(b) = s.encode_utf8() {
            out.push(b's');
            out.extend_from_slice(b.as_bytes());
            return Ok(());
        }
    } else if key.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = key.extract::<i64>() {
            out.push(b'i');
            out.extend_from_slice(v.to_string().as_bytes());
            return Ok(());
        }
    } else if let Ok(b) = key.downcast_exact::<PyBytes>() {
        out.push(b'b');
        out.extend_from_slice(b.as_bytes());
        return Ok(());
    } else if let Ok(f) = key.downcast_exact::<PyFloat>() {
        let f = f.value();
        // An integral float is the int key (1.0 == 1): encode_key writes it.
        if !(f.is_finite() && f.fract() == 0.0) {
            out.push(b'f');
            out.extend_from_slice(&f.to_be_bytes());
            return Ok(());
        }
    }
    static ENCODE_KEY: GILOnceCell<PyObject> = GILOnceCell::new();
    let py = key.py();
    let f = ENCODE_KEY.get_or_try_init(py, || {
        py.import_bound("shmkit.collections")?
            .getattr("encode_key")
            .map(Bound::unbind)
    })?;
    let b = f.bind(py).call1((key,))?;
    out.extend_from_slice(b.downcast::<PyBytes>()?.as_bytes());
    Ok(())
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
