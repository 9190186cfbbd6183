//! `Pipe` and `Connection` (their native part), on the core's duplex `Pipe`.
//!
//! Each end is claimed by the first process that uses it (not the one that created it), so
//! the parent can make a pipe and hand one end to a child under any start method. A message of
//! any length travels as one or more records of at most `max_msg` bytes, each starting with a
//! flag byte: [`MORE`] (more pieces follow), [`LAST`] (the message ends here), [`ABORT`] (the
//! sender was interrupted mid-message: drop the pieces so far).

use crate::codec;
use crate::errors::{py_err, to_py};
use crate::fast::{self, Def};
use crate::segments::segment;
use crate::wait::{sliced, timeout_of, Spinner};
use pyo3::exceptions::{PyBrokenPipeError, PyEOFError, PyOSError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use shmkit::Handle;
use shmkit::{Pipe, PipeEnd, RecvError, SendError};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const LAST: u8 = 0;
const MORE: u8 = 1;
const ABORT: u8 = 2;

/// [`PipeEndpoint::mode`] bits.
const READABLE: u8 = 1;
const WRITABLE: u8 = 2;
const CLOSED: u8 = 4;

/// This process's claim of an end, and a message being received.
struct Claimed {
    pid: u32,
    conn: shmkit::Connection,
    /// The message being received: the pieces so far (its allocation is reused).
    partial: Vec<u8>,
    /// One record, as received (`max_msg` bytes, reused).
    rec: Vec<u8>,
    /// A receive found the pipe closed and drained (or the other end dead).
    eof: bool,
}

/// One end of a shared pipe.
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct PipeEndpoint {
    h: Handle<Pipe>,
    end: PipeEnd,
    state: Mutex<Option<Claimed>>,
    /// When a receive spins before it sleeps (this process's view).
    spinner: Spinner,
    /// This handle's mode for `Connection.send`/`recv` ([`READABLE`], [`WRITABLE`],
    /// [`CLOSED`]): checked natively so that those are one native call each.
    mode: AtomicU8,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

fn send_err(e: SendError) -> PyErr {
    match e {
        SendError::Closed => PyBrokenPipeError::new_err("the other end closed the pipe or died"),
        e => to_py(shmkit::Error::Send(e)),
    }
}

impl PipeEndpoint {
    /// The end's state, for one thread at a time. Another thread of this process may hold
    /// it while it waits with the GIL released: wait for it without the GIL (never block on
    /// the mutex while holding the GIL, which that thread needs to finish), checking Ctrl-C.
    fn lock(&self, py: Python<'_>) -> PyResult<MutexGuard<'_, Option<Claimed>>> {
        loop {
            match self.state.try_lock() {
                Ok(g) => return Ok(g),
                Err(std::sync::TryLockError::Poisoned(e)) => return Ok(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    py.allow_threads(|| std::thread::sleep(Duration::from_micros(200)));
                    py.check_signals()?;
                }
            }
        }
    }

    /// This process's connection, claiming the end on first use (the pid is the core's cached one:
    /// `getpid` is a system call, two per round trip cost more than the ring). A claim inherited through
    /// `fork` is the parent's: it is forgotten (not released) and the end claimed anew.
    fn claimed<'a>(&self, g: &'a mut MutexGuard<'_, Option<Claimed>>) -> PyResult<&'a mut Claimed> {
        let pid = shmkit::process::pid();
        if g.as_ref().is_some_and(|c| c.pid != pid) {
            if let Some(old) = g.take() {
                std::mem::forget(old);
            }
        }
        if g.is_none() {
            let conn = py_err(self.h.end(self.end))?;
            let rec = vec![0; conn.max_msg()];
            **g = Some(Claimed {
                pid,
                conn,
                partial: Vec::new(),
                rec,
                eof: false,
            });
        }
        Ok(g.as_mut().expect("claimed above"))
    }
}

impl PipeEndpoint {
    /// `OSError` if this handle is closed or lacks `need` (with `msg`).
    fn check(&self, need: u8, msg: &'static str) -> PyResult<()> {
        let m = self.mode.load(Ordering::Relaxed);
        if m & CLOSED != 0 {
            return Err(PyOSError::new_err("handle is closed"));
        }
        if m & need == 0 {
            return Err(PyOSError::new_err(msg));
        }
        Ok(())
    }

    /// Sends `data` (see [`send`](PipeEndpoint::send)): one record when it fits, else pieces.
    fn send_msg(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let mut g = self.lock(py)?;
        let c = self.claimed(&mut g)?;
        let piece = c.conn.max_msg().saturating_sub(1).max(1);
        codec::with_buf(1, |record| {
            let mut chunks = data.chunks(piece).peekable();
            let mut first = true;
            while first || chunks.peek().is_some() {
                let chunk = chunks.next().unwrap_or(&[]);
                let flag = if chunks.peek().is_some() { MORE } else { LAST };
                record.clear();
                record.push(flag);
                record.extend_from_slice(chunk);
                if let Err(e) = send_record(py, &mut c.conn, record) {
                    if !first {
                        // Pieces went out: cancel them, or close the pipe rather than let the
                        // receiver glue them to the next message.
                        if c.conn.try_send(&[ABORT]).is_err() {
                            c.conn.close();
                        }
                    }
                    return Err(e);
                }
                first = false;
            }
            Ok(())
        })
    }

    /// Receives one whole message into `out` (replacing its contents); `false` when none came
    /// within `timeout`. Takes the records already there with the GIL kept; else spins briefly
    /// ([`Spinner`]) with the GIL released; else waits in GIL-free slices.
    fn recv_msg(&self, py: Python<'_>, timeout: Option<f64>, out: &mut Vec<u8>) -> PyResult<bool> {
        let mut g = self.lock(py)?;
        let c = self.claimed(&mut g)?;
        let (conn, partial, rec) = (&mut c.conn, &mut c.partial, &mut c.rec);
        let r = match drain(conn, partial, rec) {
            Some(r) => Some(r),
            None => {
                let timeout = timeout_of(timeout);
                let start = Instant::now();
                match self.spinner.spin(py, timeout, || drain(conn, partial, rec)) {
                    Some(r) => Some(r),
                    None => sliced(
                        py,
                        timeout.map(|t| t.saturating_sub(start.elapsed())),
                        |slice| loop {
                            if let Some(r) = drain(conn, partial, rec) {
                                return Some(r);
                            }
                            match conn.recv_timeout(slice) {
                                Ok(r) => {
                                    if feed(partial, &r) {
                                        return Some(Ok(()));
                                    }
                                }
                                Err(RecvError::Timeout) | Err(RecvError::Empty) => return None,
                                Err(e) => return Some(Err(e)),
                            }
                        },
                    )?,
                }
            }
        };
        match r {
            None => Ok(false),
            Some(Ok(())) => {
                // The message changes hands without a copy (the buffers trade places).
                std::mem::swap(out, &mut c.partial);
                c.partial.clear();
                Ok(true)
            }
            Some(Err(RecvError::Closed)) => {
                c.partial.clear();
                c.eof = true;
                Err(PyEOFError::new_err(
                    "the pipe is closed (or the other end died) and drained",
                ))
            }
            Some(Err(e)) => Err(to_py(shmkit::Error::Recv(e))),
        }
    }
}

impl PipeEndpoint {
    /// Sends a picklable object (`Connection.send`): `OSError` if this handle is closed or
    /// read-only; `BrokenPipeError` if the pipe is closed or the other end died. Pickles
    /// natively for small plain objects (see `codec.rs`); waits for room with the GIL released.
    fn send_obj(&self, py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
        self.check(WRITABLE, "connection is read-only")?;
        codec::with_buf(0, |buf| {
            // The record's flag byte first, then the pickle: a message that fits one record
            // goes out without another copy.
            buf.push(LAST);
            codec::dump(obj, buf)?;
            let mut g = self.lock(py)?;
            let c = self.claimed(&mut g)?;
            if buf.len() <= c.conn.max_msg() {
                return send_record(py, &mut c.conn, buf);
            }
            drop(g);
            self.send_msg(py, &buf[1..])
        })
    }

    /// Receives a picklable object sent with `send` (`Connection.recv`): one whole message, as
    /// long as it takes, unpickled (natively for small plain objects, see `codec.rs`).
    /// `OSError` if this handle is closed or write-only; `EOFError` once the pipe is closed (or
    /// the other end died) and drained. Releases the GIL while it waits; Ctrl-C interrupts it.
    fn recv_obj<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.check(READABLE, "connection is write-only")?;
        codec::with_buf(0, |buf| {
            if !self.recv_msg(py, None, buf)? {
                return Err(PyOSError::new_err(
                    "a receive without timeout ended without a message",
                ));
            }
            // The end's state is unlocked here: unpickling may run any Python code.
            codec::load(py, buf)
        })
    }
}

#[pymethods]
impl PipeEndpoint {
    /// Finds or creates the pipe `name` in segment `segment_name` (`capacity` bytes per
    /// direction, records of at most `max_msg` bytes) and stands for its end `end` (0 = A,
    /// 1 = B), not claimed yet.
    #[new]
    fn new(segment_name: &str, name: &str, end: u8, capacity: u64, max_msg: u64) -> PyResult<Self> {
        let h = py_err(segment(segment_name)?.pipe(name, capacity, max_msg))?;
        Ok(PipeEndpoint {
            h,
            end: if end == 0 { PipeEnd::A } else { PipeEnd::B },
            state: Mutex::new(None),
            spinner: Spinner::new(),
            mode: AtomicU8::new(READABLE | WRITABLE),
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// 0 for end A, 1 for end B.
    #[getter]
    fn end(&self) -> u8 {
        u8::from(self.end == PipeEnd::B)
    }

    /// The pipe's capacity per direction and its record size.
    #[getter]
    fn dims(&self) -> (usize, usize) {
        (self.h.capacity(), self.h.max_msg())
    }

    /// Sends `data` as one message (in pieces if it is longer than a record), waiting for room
    /// as long as needed. Releases the GIL; Ctrl-C interrupts it (a partly sent message is
    /// then cancelled). `BrokenPipeError` if the pipe is closed or the other end died.
    fn send(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        self.send_msg(py, data)
    }

    /// Sets this handle's mode (`Connection`'s `readable` and `writable`).
    fn _set_mode(&self, readable: bool, writable: bool) {
        let m = (self.mode.load(Ordering::Relaxed) & CLOSED)
            | if readable { READABLE } else { 0 }
            | if writable { WRITABLE } else { 0 };
        self.mode.store(m, Ordering::Relaxed);
    }

    /// Receives one whole message, waiting at most `timeout` seconds (`None`: no limit);
    /// `None` when none came in time. `EOFError` once the pipe is closed (or the other end
    /// died) and drained. Releases the GIL; Ctrl-C interrupts it (pieces received so far are
    /// kept for the next call).
    #[pyo3(signature = (timeout = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        codec::with_buf(0, |buf| {
            Ok(self
                .recv_msg(py, timeout, buf)?
                .then(|| PyBytes::new_bound(py, buf)))
        })
    }

    /// Whether a receive would not block: a message (or a piece of one) is waiting, or the
    /// pipe is closed or its other end died. Waits at most `timeout` seconds (`None`: no
    /// limit; with 0 and nobody live at the other end, up to 20 ms, the time the core takes to
    /// notice a dead peer). Releases the GIL; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = 0.0))]
    fn poll(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        let mut g = self.lock(py)?;
        let c = self.claimed(&mut g)?;
        if c.eof {
            return Ok(true);
        }
        let conn = &mut c.conn;
        if conn.poll(Duration::ZERO) {
            return Ok(true);
        }
        let t = timeout_of(timeout);
        if t == Some(Duration::ZERO) {
            // The core notices a dead peer at its periodic recheck, not in a zero wait: when
            // nobody live holds the other end, wait one recheck period to let it look.
            if conn.peer().is_none() {
                return Ok(py.allow_threads(|| conn.poll(Duration::from_millis(20))));
            }
            return Ok(false);
        }
        Ok(sliced(py, t, |slice| conn.poll(slice).then_some(()))?.is_some())
    }

    /// Closes the pipe for both ends if this process holds this end (the other end's
    /// receives drain and then raise `EOFError`); an end this process never used is only
    /// let go.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.mode.fetch_or(CLOSED, Ordering::Relaxed);
        let mut g = self.lock(py)?;
        if let Some(c) = g.take() {
            if c.pid == shmkit::process::pid() {
                c.conn.close();
                drop(c);
            } else {
                std::mem::forget(c);
            }
        }
        Ok(())
    }

    /// The pid of the live process holding the other end (`None`: nobody, or its holder died).
    fn peer_pid(&self, py: Python<'_>) -> PyResult<Option<u32>> {
        let mut g = self.lock(py)?;
        let c = self.claimed(&mut g)?;
        Ok(c.conn.peer())
    }
}

/// Adds the record `rec` to the message being received in `partial`; `true` once `rec` ends
/// it (the whole message is then in `partial`). An `ABORT` record (or an empty, invalid one)
/// drops the pieces so far.
fn feed(partial: &mut Vec<u8>, rec: &[u8]) -> bool {
    match rec.first().copied() {
        Some(MORE) => partial.extend_from_slice(&rec[1..]),
        Some(LAST) => {
            partial.extend_from_slice(&rec[1..]);
            return true;
        }
        _ => partial.clear(),
    }
    false
}

/// Takes the records already there (into `rec`, a buffer of `max_msg` bytes), without
/// waiting: `Ok` when a whole message is in `partial`, an error, or `None` (nothing more now;
/// pieces taken stay in `partial`).
fn drain(
    conn: &mut shmkit::Connection,
    partial: &mut Vec<u8>,
    rec: &mut [u8],
) -> Option<Result<(), RecvError>> {
    loop {
        match conn.try_recv_slice(rec) {
            Ok(n) => {
                if feed(partial, &rec[..n.min(rec.len())]) {
                    return Some(Ok(()));
                }
            }
            Err(RecvError::Empty) => return None,
            Err(e) => return Some(Err(e)),
        }
    }
}

/// Sends one record: at once when there is room (the GIL kept), else waiting for room in
/// GIL-free slices.
fn send_record(py: Python<'_>, conn: &mut shmkit::Connection, rec: &[u8]) -> PyResult<()> {
    match conn.try_send(rec) {
        Err(SendError::Full) => {
            match sliced(py, None, |slice| match conn.send_timeout(rec, slice) {
                Err(SendError::Timeout) | Err(SendError::Full) => None,
                r => Some(r),
            }) {
                Ok(Some(r)) => r.map_err(send_err),
                Ok(None) => unreachable_timeout(),
                Err(e) => Err(e),
            }
        }
        r => r.map_err(send_err),
    }
}

/// `sliced` with no timeout never gives up.
fn unreachable_timeout() -> PyResult<()> {
    Err(PyOSError::new_err(
        "a wait without timeout ended without result",
    ))
}

impl Drop for PipeEndpoint {
    /// Dropping the end this process holds closes the pipe, as garbage collecting a
    /// multiprocessing `Connection` closes its descriptor; a claim inherited through `fork`
    /// is the parent's and is left alone.
    fn drop(&mut self) {
        let g = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.take() {
            if c.pid == shmkit::process::pid() {
                c.conn.close();
                drop(c);
            } else {
                std::mem::forget(c);
            }
        }
    }
}

/// `Connection.send(obj)` (by position, or `obj=` as multiprocessing's Python method allows).
unsafe extern "C" fn pipe_send(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: called by CPython through a method descriptor `fast::install` made for
    // `PipeEndpoint` (GIL held, `slf` an instance); `args` holds `nargs` positional references
    // then one per name in `kwnames`, borrowed for the call (`*args` read only if nargs == 1).
    unsafe {
        fast::call(slf, |py, p: &PipeEndpoint| {
            let obj = if nargs == 1 && kwnames.is_null() {
                Borrowed::from_ptr(py, *args)
            } else {
                let [obj] = fast::args(py, "send", ["obj"], args, nargs, kwnames)?;
                fast::required(obj, "send", "obj", 1)?
            };
            p.send_obj(py, &obj).map(|()| fast::none(py))
        })
    }
}

/// `Connection.recv()` (METH_NOARGS).
unsafe extern "C" fn pipe_recv(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as in `pipe_send`.
    unsafe {
        fast::call(slf, |py, p: &PipeEndpoint| {
            p.recv_obj(py).map(|o| fast::Obj(o.into_ptr()))
        })
    }
}

const SEND_DOC: &CStr = c"send(obj)\n--\n\nSends a picklable object: OSError if this handle is \
closed or read-only; BrokenPipeError if the pipe is closed or the other end died. Waits for room \
with the GIL released; Ctrl-C interrupts it.";
const RECV_DOC: &CStr = c"recv()\n--\n\nReceives an object sent with send(), as long as it \
takes: OSError if this handle is closed or write-only; EOFError once the pipe is closed (or the \
other end died) and drained. Releases the GIL while it waits; Ctrl-C interrupts it.";

/// The native class's methods (`send_obj`/`recv_obj`).
const NATIVE_DEFS: &[Def] = &[
    Def::Fast(c"send_obj", pipe_send, SEND_DOC),
    Def::NoArgs(c"recv_obj", pipe_recv, RECV_DOC),
];

/// The same functions under multiprocessing's names, for `Connection`.
const DEFS: &[Def] = &[
    Def::Fast(c"send", pipe_send, SEND_DOC),
    Def::NoArgs(c"recv", pipe_recv, RECV_DOC),
];

/// Gives the Python subclass `cls` of `PipeEndpoint` its own `send` and `recv` descriptors
/// (`fast::install_on_subclass`); returns whether `cls` is one.
pub(crate) fn specialize(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    fast::install_on_subclass::<PipeEndpoint>(cls, DEFS)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PipeEndpoint>()?;
    fast::install::<PipeEndpoint>(m.py(), NATIVE_DEFS)?;
    Ok(())
}
