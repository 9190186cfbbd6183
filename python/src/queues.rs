//! `Queue`, `SimpleQueue` and `JoinableQueue` (their native part): a bounded many-producer
//! many-consumer queue of byte messages (the core's `MpmcBytes`); the Python layer pickles.
//!
//! A message longer than the queue's slot goes through a *blob*: a segment of its own holding
//! the bytes in a `ByteList` of 1 MiB pieces, created by the producer and removed by the
//! consumer that reads it; only its name travels through the queue (see
//! `shmkit/queues.py`).

use crate::errors::{py_err, raise, to_py};
use crate::segments::segment;
use crate::wait::{sliced, timeout_of};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::{Handle, Segment, SegmentOptions};
use shmkit::{MpmcBytes, RecvError, SendError};
use std::time::Duration;

/// Bytes per piece of a blob (the `ByteList`'s element size).
const PIECE: usize = 1 << 20;

/// A bounded MPMC queue of byte strings (the core's `MpmcBytes`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct ByteQueue {
    h: Handle<MpmcBytes>,
    /// Puts wait while this many messages are queued (0: only the ring's capacity counts).
    limit: usize,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

fn send_err(e: SendError) -> PyErr {
    match e {
        SendError::TooLarge { .. } => PyValueError::new_err(e.to_string()),
        SendError::Closed => PyValueError::new_err("Queue is closed"),
        e => to_py(shmkit::Error::Send(e)),
    }
}

fn recv_err(e: RecvError) -> PyErr {
    match e {
        RecvError::Closed => PyValueError::new_err("Queue is closed"),
        e => to_py(shmkit::Error::Recv(e)),
    }
}

#[pymethods]
impl ByteQueue {
    /// Finds or creates the queue `name` in segment `segment_name` with `capacity` slots
    /// (rounded up to a power of two) of at most `max_msg` bytes; `limit` (0: none) is the
    /// number of queued messages at which puts wait (multiprocessing's `maxsize`).
    #[new]
    #[pyo3(signature = (segment_name, name, capacity, max_msg, limit = 0))]
    fn new(
        segment_name: &str,
        name: &str,
        capacity: u64,
        max_msg: u64,
        limit: usize,
    ) -> PyResult<Self> {
        let h = py_err(segment(segment_name)?.mpmc_bytes(name, capacity, max_msg))?;
        let limit = if limit >= h.capacity() { 0 } else { limit };
        Ok(ByteQueue {
            h,
            limit,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Sends `data`, waiting at most `timeout` seconds (`None`: no limit; `block=False`: not at
    /// all) for room; returns whether it was sent (`False`: still full). Releases the GIL;
    /// Ctrl-C interrupts the wait.
    #[pyo3(signature = (data, block = true, timeout = None))]
    fn put(
        &self,
        py: Python<'_>,
        data: &[u8],
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let (h, limit) = (&self.h, self.limit);
        let attempt = |slice: Duration| -> Option<Result<(), SendError>> {
            if limit > 0 && h.len() >= limit {
                // A `maxsize` below the ring's power-of-two capacity: the ring has room but
                // the queue counts as full; look again shortly.
                std::thread::sleep(slice.min(Duration::from_millis(1)));
                return None;
            }
            match h.send_timeout(data, slice) {
                Err(SendError::Timeout) | Err(SendError::Full) => None,
                r => Some(r),
            }
        };
        if !block {
            if limit > 0 && h.len() >= limit {
                return Ok(false);
            }
            return match h.try_send(data) {
                Ok(()) => Ok(true),
                Err(SendError::Full) => Ok(false),
                Err(e) => Err(send_err(e)),
            };
        }
        // Fast path: room now, no wait, the GIL kept (a wait would release it).
        if limit == 0 || h.len() < limit {
            match h.try_send(data) {
                Ok(()) => return Ok(true),
                Err(SendError::Full) => {}
                Err(e) => return Err(send_err(e)),
            }
        }
        match sliced(py, timeout_of(timeout), attempt)? {
            None => Ok(false),
            Some(r) => r.map(|()| true).map_err(send_err),
        }
    }

    /// Receives the oldest message, waiting at most `timeout` seconds (`None`: no limit;
    /// `block=False`: not at all); `None` when there was none. Releases the GIL; Ctrl-C
    /// interrupts the wait.
    #[pyo3(signature = (block = true, timeout = None))]
    fn get<'py>(
        &self,
        py: Python<'py>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let h = &self.h;
        let r = if block {
            match h.try_recv() {
                // Fast path: a message is there, no wait.
                Ok(v) => return Ok(Some(PyBytes::new_bound(py, &v))),
                Err(RecvError::Empty) => {}
                Err(e) => return Err(recv_err(e)),
            }
            sliced(py, timeout_of(timeout), |slice| {
                match h.recv_timeout(slice) {
                    Err(RecvError::Timeout) | Err(RecvError::Empty) => None,
                    r => Some(r),
                }
            })?
        } else {
            match h.try_recv() {
                Err(RecvError::Empty) => None,
                r => Some(r),
            }
        };
        match r {
            None => Ok(None),
            Some(Ok(v)) => Ok(Some(PyBytes::new_bound(py, &v))),
            Some(Err(e)) => Err(recv_err(e)),
        }
    }

    /// Approximate number of queued messages.
    fn qsize(&self) -> usize {
        self.h.len()
    }

    /// Whether puts would wait now (approximate).
    fn full(&self) -> bool {
        let n = self.h.len();
        n >= self.h.capacity() || (self.limit > 0 && n >= self.limit)
    }

    /// The number of slots (a power of two).
    #[getter]
    fn capacity(&self) -> usize {
        self.h.capacity()
    }

    /// The largest message a slot holds, in bytes.
    #[getter]
    fn max_msg(&self) -> usize {
        self.h.max_msg()
    }

    /// Messages lost with processes killed while putting or getting them.
    #[getter]
    fn lost(&self) -> u64 {
        self.h.lost()
    }

    /// Closes the queue for every process: puts fail, gets drain what is left.
    fn close_queue(&self) {
        self.h.close()
    }

    /// Whether the queue was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.h.is_closed()
    }
}

/// Writes `data` into a new segment `name` (not removed at exit: the reader removes it).
#[pyfunction]
fn blob_write(py: Python<'_>, name: &str, data: &[u8]) -> PyResult<()> {
    py.allow_threads(|| {
        let pieces = pieces(data.len());
        // A list element takes two copies of its bytes (the core's latch); pages untouched
        // by the pieces are never allocated.
        let size = (pieces + 1) * (2 * PIECE as u64 + (1 << 16)) + (1 << 20);
        let seg = SegmentOptions::new()
            .dir_capacity(4)
            .create(name, size)
            .map_err(to_py)?;
        let fill = || -> shmkit::Result<()> {
            let list = seg.byte_list("blob", pieces, PIECE as u64)?;
            for piece in data.chunks(PIECE) {
                list.push(piece)?;
            }
            Ok(())
        };
        fill().map_err(|e| {
            let _ = Segment::remove(name);
            to_py(e)
        })
    })
}

/// Reads the blob `name` of `length` bytes (as written by `blob_write`) and removes it.
#[pyfunction]
fn blob_take<'py>(py: Python<'py>, name: &str, length: usize) -> PyResult<Bound<'py, PyBytes>> {
    let out = py.allow_threads(|| -> shmkit::Result<Vec<u8>> {
        let seg = Segment::open(name)?;
        // The reader owns the blob from here: its name goes now, the mapping with `seg`.
        let _ = Segment::remove(name);
        let list = seg.byte_list("blob", pieces(length), PIECE as u64)?;
        let mut out = Vec::with_capacity(length.min(1 << 30));
        for i in 0..list.len() {
            match list.get(i)? {
                Some(p) => out.extend_from_slice(&p),
                None => break,
            }
        }
        Ok(out)
    });
    match out {
        Ok(v) if v.len() == length => Ok(PyBytes::new_bound(py, &v)),
        Ok(v) => Err(raise(
            "Error",
            (format!(
                "large queue message {name}: {} of its {length} bytes found (its writer died?)",
                v.len()
            ),),
        )),
        Err(e) => Err(raise(
            "Error",
            (format!("large queue message {name}: {e}"),),
        )),
    }
}

/// Pieces of a blob of `length` bytes.
fn pieces(length: usize) -> u64 {
    length.div_ceil(PIECE).max(1) as u64
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ByteQueue>()?;
    m.add_function(wrap_pyfunction!(blob_write, m)?)?;
    m.add_function(wrap_pyfunction!(blob_take, m)?)?;
    Ok(())
}
