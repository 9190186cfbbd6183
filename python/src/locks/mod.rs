//! The lock family: `Lock`, `RLock` (in `mutex.rs`), `Semaphore`/`BoundedSemaphore`,
//! `Event`, the condition variable under `Condition`, and `Barrier`, on the core's robust
//! futex locks. This file has the common acquisition rule ([`take`]) and the others.

use crate::errors::{py_err, raise, to_py};
use crate::guards::Carry;
use crate::segments::segment;
use crate::wait::{sliced, timeout_of};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use shmkit::{Error, Handle, LockError};

mod mutex;

pub(crate) use mutex::specialize;

/// Rounds of doubling `pause` spins (2^GIL_SPINS - 1 pauses in all, about 2 µs: the core's
/// own spin phase) a blocking acquire waits with the GIL held before it releases the GIL.
/// Measured with the bench's `Value += 1 under get_lock(), 2 processes` (python/README.md):
/// without it, every acquire that found the lock held paid a GIL release and retake, and the
/// two processes spent more time handing the GIL over than holding the lock.
const GIL_SPINS: u32 = 6;

/// How an acquisition ended, seen from Python.
enum Got<G> {
    Clean(G),
    OwnerDied(G),
    No,
}

/// Takes a core lock the Python way: `block=False` tries once; otherwise waits in slices
/// (GIL released, signals checked) for at most `timeout`. `WouldDeadlock` (this thread holds
/// a non-reentrant lock) is `No` for a bounded acquire and an exception for an unbounded one.
///
/// `free` says whether the lock word is free (a plain load); `quick` takes the lock only if
/// no thread holds it (the core's `try_lock_if_free`: compare-exchanges, never a liveness
/// check). A blocking acquire first looks with the GIL held: if the lock is free it tries
/// once (an uncontended acquire costs one compare-exchange, not a release and retake of the
/// GIL); if not, it spins for about as long as a short critical section (`v.value += 1`
/// under the lock) lasts, still holding the GIL, and tries whenever the lock comes free. A
/// try that loses the race to another process keeps spinning: with `try_lock`, each lost
/// race cost a `/proc` read of the winner's liveness, several times the wait itself. Only
/// then does it release the GIL and wait in the core (which spins again, then sleeps on the
/// futex, and takes over a dead holder's lock). So the guarantees (GIL released while
/// waiting, Ctrl-C, bounded, a dead holder detected) are those of `sliced` and the core's
/// `lock_timeout`; the spin with the GIL held is bounded by [`GIL_SPINS`].
fn take<'a, G>(
    py: Python<'_>,
    block: bool,
    timeout: Option<f64>,
    free: impl Fn() -> bool,
    quick: impl Fn() -> Result<G, LockError<G>>,
    attempt: impl Fn(Option<std::time::Duration>) -> Result<G, LockError<G>> + Sync + 'a,
) -> PyResult<Got<G>> {
    // `acquire(timeout=0)` (or negative) does not spin: it means "now or not at all".
    let spin = block && timeout.is_none_or(|t| t > 0.0);
    let mut tried = false;
    for round in 0..if spin { GIL_SPINS + 1 } else { 0 } {
        if round > 0 {
            for _ in 0..1u32 << (round - 1) {
                std::hint::spin_loop();
            }
        }
        if free() {
            tried = true;
            match quick() {
                Ok(g) => return Ok(Got::Clean(g)),
                Err(LockError::OwnerDied(g)) => return Ok(Got::OwnerDied(g)),
                Err(LockError::Error(Error::WouldBlock { .. })) => {} // lost a race: spin on
                Err(_) => break, // an error: the general path below decides
            }
        }
    }
    let timeout = if block {
        timeout_of(timeout)
    } else {
        Some(Default::default())
    };
    let bounded = timeout.is_some();
    let r = if !block {
        Some(Carry(attempt(None)))
    } else {
        let first = if !tried && free() {
            match quick() {
                Err(LockError::Error(Error::WouldBlock { .. })) => None,
                r => Some(Carry(r)),
            }
        } else {
            None
        };
        match first {
            Some(r) => Some(r),
            None => sliced(py, timeout, |slice| match attempt(Some(slice)) {
                Err(LockError::Error(Error::Timeout { .. })) => None,
                r => Some(Carry(r)),
            })?,
        }
    };
    match r.map(|c| c.0) {
        None => Ok(Got::No),
        Some(Ok(g)) => Ok(Got::Clean(g)),
        Some(Err(LockError::OwnerDied(g))) => Ok(Got::OwnerDied(g)),
        Some(Err(LockError::Error(Error::WouldBlock { .. }))) => Ok(Got::No),
        Some(Err(LockError::Error(e @ Error::WouldDeadlock { .. }))) => {
            if bounded {
                Ok(Got::No)
            } else {
                Err(to_py(e))
            }
        }
        Some(Err(LockError::Error(e))) => Err(to_py(e)),
    }
}

/// Whether a lock word is free to take (unowned, recoverable).
fn free(s: shmkit::LockState) -> bool {
    s.owner_tid.is_none() && !s.not_recoverable
}

fn owner_died() -> PyErr {
    raise(
        "OwnerDied",
        (
            "the previous holder of the lock died holding it; you hold the lock now: repair the \
          data it protects and call mark_consistent(), or release() and the next acquirer is \
          told again",
        ),
    )
}

/// multiprocessing's `Semaphore` and `BoundedSemaphore` (the core's `Semaphore`; permits held
/// by a process that died are reclaimed).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Semaphore {
    h: Handle<shmkit::Semaphore>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl Semaphore {
    /// Finds or creates the semaphore `name` with `value` free permits; `bound` > 0 makes it
    /// bounded (releasing past it raises `ValueError`).
    #[new]
    #[pyo3(signature = (segment_name, name, value, bound = 0))]
    fn new(segment_name: &str, name: &str, value: u32, bound: u32) -> PyResult<Self> {
        let seg = segment(segment_name)?;
        let h = if bound == 0 {
            seg.semaphore(name, value)
        } else {
            seg.bounded_semaphore(name, value, bound)
        };
        Ok(Semaphore {
            h: py_err(h)?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Takes a permit; as `Lock.acquire`.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        let h = &self.h;
        let r = if !block {
            Some(h.try_acquire())
        } else {
            sliced(py, timeout_of(timeout), |slice| {
                match h.acquire_timeout(slice) {
                    Err(Error::Timeout { .. }) => None,
                    r => Some(r),
                }
            })?
        };
        match r {
            None | Some(Err(Error::WouldBlock { .. })) => Ok(false),
            Some(r) => py_err(r).map(|_| true),
        }
    }

    /// Returns a permit (`ValueError` past a bounded semaphore's bound).
    fn release(&self) -> PyResult<()> {
        py_err(self.h.release())
    }

    /// Free permits now.
    fn get_value(&self) -> u32 {
        self.h.available()
    }

    /// The bound (`None` for an unbounded semaphore).
    #[getter]
    fn bound(&self) -> Option<u32> {
        self.h.bound()
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        self.acquire(py, true, None)
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.release()
    }
}

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

/// The condition variable under `Condition` (the core's `Condvar`, used without its mutex:
/// the Python layer pairs it with a `Lock` or `RLock`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Condvar {
    h: Handle<shmkit::Condvar>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl Condvar {
    /// Finds or creates the condition variable `name` in segment `segment_name`.
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        Ok(Condvar {
            h: py_err(segment(segment_name)?.condvar(name))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// The notify counter; read it while holding the lock, before releasing it to wait.
    fn generation(&self) -> u32 {
        self.h.generation()
    }

    /// Waits until a notify after `since`, at most `timeout`; returns whether one came.
    #[pyo3(signature = (since, timeout = None))]
    fn wait_since(&self, py: Python<'_>, since: u32, timeout: Option<f64>) -> PyResult<bool> {
        let h = &self.h;
        let r = sliced(py, timeout_of(timeout), |slice| {
            h.wait_since(since, Some(slice)).then_some(())
        })?;
        Ok(r.is_some())
    }

    /// Wakes up to `n` waiters.
    #[pyo3(signature = (n = 1))]
    fn notify(&self, n: u32) {
        self.h.notify_n(n)
    }

    /// Wakes every waiter.
    fn notify_all(&self) {
        self.h.notify_all()
    }
}

/// multiprocessing's `Barrier` (the core's `Barrier`: a party that dies breaks it).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Barrier {
    h: Handle<shmkit::Barrier>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

#[pymethods]
impl Barrier {
    /// Finds or creates the barrier `name` for `parties` parties.
    #[new]
    fn new(segment_name: &str, name: &str, parties: u32) -> PyResult<Self> {
        if parties == 0 || parties > shmkit::limits::MAX_PARTIES {
            return Err(PyValueError::new_err(format!(
                "parties must be 1 to {}",
                shmkit::limits::MAX_PARTIES
            )));
        }
        Ok(Barrier {
            h: py_err(segment(segment_name)?.barrier(name, parties))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Arrives and waits for the others, at most `timeout` (running out breaks the barrier);
    /// returns the arrival index (0 … parties-1). `BrokenBarrierError` if it is or gets
    /// broken. Releases the GIL; Ctrl-C breaks the barrier and raises KeyboardInterrupt.
    #[pyo3(signature = (timeout = None))]
    fn _wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<u32> {
        let h = &self.h;
        let t = timeout_of(timeout);
        let mut interrupted: Option<Carry<PyErr>> = None;
        let r = py.allow_threads(|| {
            h.wait_interruptible(t, || {
                if interrupted.is_none() {
                    if let Err(e) = Python::with_gil(|py| py.check_signals()) {
                        interrupted = Some(Carry(e));
                    }
                }
                interrupted.is_some()
            })
        });
        if let Some(e) = interrupted {
            return Err(e.0);
        }
        py_err(r)
    }

    /// The number of parties.
    #[getter]
    fn parties(&self) -> u32 {
        self.h.parties()
    }

    /// Parties waiting now.
    #[getter]
    fn n_waiting(&self) -> u32 {
        self.h.arrived()
    }

    /// Whether the barrier is broken.
    #[getter]
    fn broken(&self) -> bool {
        self.h.is_broken()
    }

    /// Breaks the barrier: waiting parties and later waits get `BrokenBarrierError`.
    fn abort(&self) {
        self.h.abort()
    }

    /// Repairs the barrier for a new round (parties waiting now get `BrokenBarrierError`).
    fn reset(&self) -> PyResult<()> {
        py_err(self.h.reset())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    mutex::register(m)?;
    m.add_class::<Semaphore>()?;
    m.add_class::<Event>()?;
    m.add_class::<Condvar>()?;
    m.add_class::<Barrier>()?;
    Ok(())
}
