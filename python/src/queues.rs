//! `Queue`, `SimpleQueue` and `JoinableQueue` (their native part): a bounded many-producer
//! many-consumer queue of byte messages (the core's `MpmcBytes`); the Python layer pickles.
//!
//! A message longer than the queue's slot goes through a *blob*: a segment of its own holding
//! the bytes in a `ByteList` of 1 MiB pieces, created by the producer and removed by the
//! consumer that reads it; only its name travels through the queue (see
//! `shmkit/queues.py`).

use crate::codec;
use crate::errors::{py_err, raise, to_py};
use crate::fast::{self, Def};
use crate::segments::segment;
use crate::wait::{sliced, timeout_of, Spinner};
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::PyBytes;
use shmkit::{Handle, Segment, SegmentOptions};
use shmkit::{MpmcBytes, RecvError, SendError};
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Bytes per piece of a blob (the `ByteList`'s element size).
const PIECE: usize = 1 << 20;

/// A bounded MPMC queue of byte strings (the core's `MpmcBytes`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct ByteQueue {
    h: Handle<MpmcBytes>,
    /// Puts wait while this many messages are queued (0: only the ring's capacity counts).
    limit: usize,
    /// When a get spins before it sleeps (this process's view).
    spinner: Spinner,
    /// This handle was closed (`Queue.close()`): its puts and gets raise `ValueError`.
    handle_closed: AtomicBool,
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

/// `queue.<name>` (`Empty` or `Full`), raised.
fn queue_exc(py: Python<'_>, name: &str) -> PyErr {
    static QUEUE: GILOnceCell<Py<PyModule>> = GILOnceCell::new();
    let cls = QUEUE
        .get_or_try_init(py, || py.import_bound("queue").map(Bound::unbind))
        .and_then(|m| m.bind(py).getattr(name));
    match cls {
        Ok(cls) => PyErr::from_value_bound(cls.call0().unwrap_or(cls)),
        Err(e) => e,
    }
}

/// The first byte of a message holding the pickle inline (`0x01`: a blob's name, see
/// `shmkit/queues.py`).
const INLINE: u8 = 0;

impl ByteQueue {
    /// `ValueError` if this handle (`slf`, a `ByteQueue`) was closed (as multiprocessing's
    /// message).
    fn check_open(&self, slf: &Bound<'_, PyAny>) -> PyResult<()> {
        if !self.handle_closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(PyValueError::new_err(format!(
            "Queue {} is closed",
            slf.repr().map(|r| r.to_string()).unwrap_or_default()
        )))
    }

    /// `Queue.put(obj, block, timeout)` (see [`queue_put`]); `slf` is this queue.
    fn put_obj(
        &self,
        slf: &Bound<'_, PyAny>,
        obj: &Bound<'_, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<()> {
        let py = slf.py();
        self.check_open(slf)?;
        let big = codec::with_buf(0, |buf| {
            buf.push(INLINE);
            codec::dump(obj, buf)?;
            if buf.len() > self.h.max_msg() {
                return Ok(Some(PyBytes::new_bound(py, &buf[1..])));
            }
            if self.send_msg(py, buf, block, timeout)? {
                Ok(None)
            } else {
                Err(queue_exc(py, "Full"))
            }
        })?;
        if let Some(data) = big {
            slf.call_method1("_put_blob", (data, block, timeout))?;
        }
        Ok(())
    }

    /// `Queue.get(block, timeout)` (see [`queue_get`]); `slf` is this queue.
    fn get_obj<'py>(
        &self,
        slf: &Bound<'py, PyAny>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        self.check_open(slf)?;
        codec::with_buf(0, |buf| {
            if !self.recv_msg(py, block, timeout, buf)? {
                return Err(queue_exc(py, "Empty"));
            }
            if buf.first() == Some(&INLINE) {
                return codec::load(py, &buf[1..]);
            }
            static DECODE: GILOnceCell<PyObject> = GILOnceCell::new();
            let decode = DECODE.get_or_try_init(py, || {
                py.import_bound("shmkit.queues")?
                    .getattr("_decode_blob")
                    .map(Bound::unbind)
            })?;
            decode.bind(py).call1((PyBytes::new_bound(py, buf),))
        })
    }

    /// Sends `data` (see [`put`](ByteQueue::put)).
    fn send_msg(
        &self,
        py: Python<'_>,
        data: &[u8],
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<bool> {
        let (h, limit) = (&self.h, self.limit);
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
        match sliced(py, timeout_of(timeout), attempt)? {
            None => Ok(false),
            Some(r) => r.map(|()| true).map_err(send_err),
        }
    }

    /// Receives the oldest message into `buf`; `false` when there was none in time. A
    /// blocking receive that finds the queue empty first spins briefly ([`Spinner`]), then waits
    /// in GIL-free slices.
    fn recv_msg(
        &self,
        py: Python<'_>,
        block: bool,
        timeout: Option<f64>,
        buf: &mut Vec<u8>,
    ) -> PyResult<bool> {
        let h = &self.h;
        // Fast path: a message is there; taken with the GIL kept.
        match h.try_recv_into(buf) {
            Ok(_) => return Ok(true),
            Err(RecvError::Empty) => {}
            Err(e) => return Err(recv_err(e)),
        }
        if !block {
            return Ok(false);
        }
        let timeout = timeout_of(timeout);
        let start = Instant::now();
        let spun = self
            .spinner
            .spin(py, timeout, || match h.try_recv_into(buf) {
                Err(RecvError::Empty) => None,
                r => Some(r),
            });
        let r = match spun {
            Some(r) => Some(r),
            None => sliced(
                py,
                timeout.map(|t| t.saturating_sub(start.elapsed())),
                |slice| match h.recv_into_timeout(buf, slice) {
                    Err(RecvError::Timeout) | Err(RecvError::Empty) => None,
                    r => Some(r),
                },
            )?,
        };
        match r {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(e)) => Err(recv_err(e)),
        }
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
            spinner: Spinner::new(),
            handle_closed: AtomicBool::new(false),
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
        self.send_msg(py, data, block, timeout)
    }

    /// Marks this handle closed (see `Queue.close`).
    fn _close_handle(&self) {
        self.handle_closed.store(true, Ordering::Relaxed);
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
        codec::with_buf(0, |buf| {
            Ok(self
                .recv_msg(py, block, timeout, buf)?
                .then(|| PyBytes::new_bound(py, buf)))
        })
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

/// `put(obj, block=True, timeout=None)`: puts `obj` (pickled), waiting at most `timeout`
/// seconds (`None`: as long as needed; `block=False`: not at all) for room; `queue.Full` if
/// there was none. Pickles natively for small plain objects (see `codec.rs`) and sends an
/// inline message (`0x00` + pickle); a pickle longer than a slot goes to `self._put_blob`.
unsafe extern "C" fn queue_put(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython through a method descriptor `fast::install` made for
    // `ByteQueue` (GIL held, `slf` an instance); `args` holds `nargs` positional references
    // then one per name in `kwnames`, borrowed for the call (`*args` read only if nargs == 1).
    unsafe {
        fast::call(slf, |py, q: &ByteQueue| {
            let me = Borrowed::from_ptr(py, slf);
            if nargs == 1 && kwnames.is_null() {
                let obj = Borrowed::from_ptr(py, *args);
                return q.put_obj(&me, &obj, true, None).map(|()| fast::none(py));
            }
            let [obj, block, timeout] =
                fast::args(py, "put", ["obj", "block", "timeout"], args, nargs, kwnames)?;
            let obj = fast::required(obj, "put", "obj", 1)?;
            q.put_obj(
                &me,
                &obj,
                fast::truth(block, true)?,
                fast::seconds(timeout)?,
            )
            .map(|()| fast::none(py))
        })
    }
}

/// `get(block=True, timeout=None)`: removes and returns the oldest item, waiting at most
/// `timeout` seconds (`None`: as long as needed; `block=False`: not at all); `queue.Empty` if
/// there was none. Unpickles natively for small plain objects (see `codec.rs`); a blob is read
/// through `shmkit.queues._decode_blob`.
unsafe extern "C" fn queue_get(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `queue_put`.
    unsafe {
        fast::call(slf, |py, q: &ByteQueue| {
            let me = Borrowed::from_ptr(py, slf);
            let got = if nargs == 0 && kwnames.is_null() {
                q.get_obj(&me, true, None)
            } else {
                let [block, timeout] =
                    fast::args(py, "get", ["block", "timeout"], args, nargs, kwnames)?;
                q.get_obj(&me, fast::truth(block, true)?, fast::seconds(timeout)?)
            };
            got.map(|o| fast::Obj(o.into_ptr()))
        })
    }
}

const PUT_DOC: &CStr = c"put(obj, block=True, timeout=None)\n--\n\nPuts obj (pickled), waiting \
at most timeout seconds (None: as long as needed; block=False: not at all) for room; queue.Full if \
there was none. Releases the GIL while it waits; Ctrl-C interrupts it.";
const GET_DOC: &CStr = c"get(block=True, timeout=None)\n--\n\nRemoves and returns the oldest \
item, waiting at most timeout seconds (None: as long as needed; block=False: not at all); \
queue.Empty if there was none. Releases the GIL while it waits; Ctrl-C interrupts it.";

/// The native class's methods (`put_obj`/`get_obj`, which `shmkit.queues` binds as `put` and
/// `get`).
const NATIVE_DEFS: &[Def] = &[
    Def::Fast(c"put_obj", queue_put, PUT_DOC),
    Def::Fast(c"get_obj", queue_get, GET_DOC),
];

/// The same functions under multiprocessing's names, for the Python subclasses.
const DEFS: &[Def] = &[
    Def::Fast(c"put", queue_put, PUT_DOC),
    Def::Fast(c"get", queue_get, GET_DOC),
];

/// Gives the Python subclass `cls` of `ByteQueue` its own `put` and `get` descriptors (those
/// it does not override; `fast::install_on_subclass`); returns whether `cls` is one.
pub(crate) fn specialize(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    fast::install_on_subclass::<ByteQueue>(cls, DEFS)
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
    fast::install::<ByteQueue>(m.py(), NATIVE_DEFS)?;
    m.add_function(wrap_pyfunction!(blob_write, m)?)?;
    m.add_function(wrap_pyfunction!(blob_take, m)?)?;
    Ok(())
}
