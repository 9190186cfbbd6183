//! The lock family: `Lock`, `RLock`, `Semaphore`/`BoundedSemaphore`, `Event`, the condition
//! variable under `Condition`, and `Barrier`, on the core's robust futex locks.
//!
//! A `Lock` or `RLock` keeps the core's guard between `acquire()` and `release()`
//! (`guards.rs`). A holder that died is reported by `acquire()` raising `shmkit.OwnerDied`
//! *with the lock held* (the caller may repair and `mark_consistent()`); `__enter__` releases
//! it before raising, so `with lock:` never leaves it held.

use crate::errors::{py_err, raise, to_py};
use crate::guards::{extend, Carry, Held};
use crate::segments::segment;
use crate::wait::{sliced, timeout_of};
use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use shmkit::{Error, Handle, LockError};
use std::cell::RefCell;

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
/// `free` says whether the lock word is free (a plain load). If it is, a blocking acquire first
/// tries once with the GIL held: an uncontended acquire then costs one compare-exchange, not a
/// release and retake of the GIL. A try that loses a race falls through to the sliced wait,
/// so the guarantees (GIL released while waiting, Ctrl-C, bounded) are those of `sliced`.
fn take<'a, G>(
    py: Python<'_>,
    block: bool,
    timeout: Option<f64>,
    free: impl Fn() -> bool,
    attempt: impl Fn(Option<std::time::Duration>) -> Result<G, LockError<G>> + Sync + 'a,
) -> PyResult<Got<G>> {
    let timeout = if block {
        timeout_of(timeout)
    } else {
        Some(Default::default())
    };
    let bounded = timeout.is_some();
    let r = if !block {
        Some(Carry(attempt(None)))
    } else {
        let quick = if free() {
            match attempt(None) {
                Err(LockError::Error(Error::WouldBlock { .. })) => None,
                r => Some(Carry(r)),
            }
        } else {
            None
        };
        match quick {
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

/// multiprocessing's `Lock`: a robust non-reentrant lock (the core's `Mutex<()>`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Lock {
    // Declared before `h`: the guard borrows the lock inside `h`'s mapping (guards::extend).
    held: GILProtected<RefCell<Option<Held<shmkit::MutexGuard<'static, ()>>>>>,
    h: Handle<shmkit::Mutex<()>>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

impl Lock {
    fn store(&self, py: Python<'_>, g: shmkit::MutexGuard<'_, ()>) {
        // SAFETY: stored in `self.held`, declared before `self.h`, whose mutex `g` locks;
        // taken out only to be dropped (release, _release_save) while `self` lives.
        let g = unsafe { extend(g) };
        *self.held.get(py).borrow_mut() = Some(Held::new(g));
    }

    /// `Some(true)`: taken; `Some(false)`: not taken; `None`: taken from a dead holder.
    fn acquire_inner(
        &self,
        py: Python<'_>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<bool>> {
        let h = &self.h;
        match take(
            py,
            block,
            timeout,
            || free(h.state()),
            |t| match t {
                None => h.try_lock(),
                Some(t) => h.lock_timeout(t),
            },
        )? {
            Got::Clean(g) => {
                self.store(py, g);
                Ok(Some(true))
            }
            Got::OwnerDied(g) => {
                self.store(py, g);
                Ok(None)
            }
            Got::No => Ok(Some(false)),
        }
    }
}

#[pymethods]
impl Lock {
    /// Finds or creates the lock `name` in segment `segment_name` (created unlocked).
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        Ok(Lock {
            held: GILProtected::new(RefCell::new(None)),
            h: py_err(segment(segment_name)?.mutex(name, ()))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Takes the lock. `block=False`: only if free now. `timeout` (seconds): wait at most
    /// that. Returns whether the lock was taken. Raises `OwnerDied` (holding the lock) if its
    /// previous holder died holding it. Releases the GIL while waiting; Ctrl-C interrupts it.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.acquire_inner(py, block, timeout)?
            .ok_or_else(owner_died)
    }

    /// Releases the lock (any thread of the process that took it may, as in multiprocessing).
    /// `ValueError` if it is not held by this process.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let g = self.held.get(py).borrow_mut().take();
        match g {
            Some(g) => {
                drop(g);
                Ok(())
            }
            None => Err(PyValueError::new_err(
                "semaphore or lock released too many times",
            )),
        }
    }

    /// After `OwnerDied`: declares the protected data repaired, so that later acquirers are
    /// not told again. Does nothing on a lock taken normally.
    fn mark_consistent(&self, py: Python<'_>) -> PyResult<()> {
        match self.held.get(py).borrow_mut().as_mut() {
            Some(h) => {
                h.guard.0.mark_consistent();
                Ok(())
            }
            None => Err(PyValueError::new_err(
                "mark_consistent() needs the lock held",
            )),
        }
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        match self.acquire_inner(py, true, None)? {
            Some(taken) => Ok(taken),
            None => {
                // Never leave the lock held behind an exception that skips __exit__.
                drop(self.held.get(py).borrow_mut().take());
                Err(owner_died())
            }
        }
    }

    // Three optional arguments rather than `*args`: no tuple is built per `with` block.
    #[pyo3(signature = (_t = None, _v = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.release(py)
    }

    /// Whether some thread of this process holds the lock through this object.
    fn _is_owned(&self, py: Python<'_>) -> bool {
        self.held.get(py).borrow_mut().is_some()
    }

    /// For `Condition.wait`: releases, returns the depth (1).
    fn _release_save(&self, py: Python<'_>) -> PyResult<usize> {
        self.release(py).map(|_| 1)
    }

    /// For `Condition.wait`: retakes (raising `OwnerDied`, held, if the holder died).
    fn _acquire_restore(&self, py: Python<'_>, _depth: usize) -> PyResult<()> {
        self.acquire_inner(py, true, None)?
            .ok_or_else(owner_died)
            .map(drop)
    }
}

/// multiprocessing's `RLock`: a robust reentrant lock (the core's `ReentrantMutex`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct RLock {
    // Declared before `h` (see Lock). One guard per level, all of one thread.
    held: GILProtected<RefCell<Vec<Held<shmkit::ReentrantGuard<'static>>>>>,
    h: Handle<shmkit::ReentrantMutex>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
}

impl RLock {
    fn store(&self, py: Python<'_>, g: shmkit::ReentrantGuard<'_>) {
        // SAFETY: as in Lock::store: kept in `self.held`, declared before `self.h`.
        let g = unsafe { extend(g) };
        self.held.get(py).borrow_mut().push(Held::new(g));
    }

    /// `Some(true)`: taken; `Some(false)`: not taken; `None`: taken from a dead holder.
    fn acquire_inner(
        &self,
        py: Python<'_>,
        block: bool,
        timeout: Option<f64>,
    ) -> PyResult<Option<bool>> {
        let h = &self.h;
        match take(
            py,
            block,
            timeout,
            || {
                // Free, or this thread holds it already (a recursive acquire never waits).
                free(h.state())
                    || self
                        .held
                        .get(py)
                        .borrow_mut()
                        .last()
                        .is_some_and(|x| x.mine())
            },
            |t| match t {
                None => h.try_lock(),
                Some(t) => h.lock_timeout(t),
            },
        )? {
            Got::Clean(g) => {
                self.store(py, g);
                Ok(Some(true))
            }
            Got::OwnerDied(g) => {
                self.store(py, g);
                Ok(None)
            }
            Got::No => Ok(Some(false)),
        }
    }

    fn pop_mine(&self, py: Python<'_>) -> PyResult<Held<shmkit::ReentrantGuard<'static>>> {
        let mut held = self.held.get(py).borrow_mut();
        match held.last() {
            Some(h) if h.mine() => Ok(held.pop().expect("checked non-empty")),
            _ => Err(PyAssertionError::new_err(
                "attempt to release recursive lock not owned by thread",
            )),
        }
    }
}

#[pymethods]
impl RLock {
    /// Finds or creates the reentrant lock `name` in segment `segment_name`.
    #[new]
    fn new(segment_name: &str, name: &str) -> PyResult<Self> {
        Ok(RLock {
            held: GILProtected::new(RefCell::new(Vec::new())),
            h: py_err(segment(segment_name)?.reentrant_mutex(name))?,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
        })
    }

    /// Takes the lock (again, if this thread holds it). As `Lock.acquire`.
    #[pyo3(signature = (block = true, timeout = None))]
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.acquire_inner(py, block, timeout)?
            .ok_or_else(owner_died)
    }

    /// Releases one level; only the owning thread may (`AssertionError` otherwise, as in
    /// multiprocessing).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        drop(self.pop_mine(py)?);
        Ok(())
    }

    /// After `OwnerDied`: declares the protected state repaired.
    fn mark_consistent(&self, py: Python<'_>) -> PyResult<()> {
        match self.held.get(py).borrow_mut().last_mut() {
            Some(h) if h.mine() => {
                h.guard.0.mark_consistent();
                Ok(())
            }
            _ => Err(PyValueError::new_err(
                "mark_consistent() needs the lock held",
            )),
        }
    }

    fn __enter__(&self, py: Python<'_>) -> PyResult<bool> {
        match self.acquire_inner(py, true, None)? {
            Some(taken) => Ok(taken),
            None => {
                // As in Lock.__enter__.
                let _ = self.pop_mine(py);
                Err(owner_died())
            }
        }
    }

    // Three optional arguments rather than `*args`: no tuple is built per `with` block.
    #[pyo3(signature = (_t = None, _v = None, _tb = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        self.release(py)
    }

    /// Whether the calling thread holds the lock.
    fn _is_owned(&self, py: Python<'_>) -> bool {
        self.held
            .get(py)
            .borrow_mut()
            .last()
            .is_some_and(|h| h.mine())
    }

    /// The calling thread's depth.
    fn _count(&self, py: Python<'_>) -> usize {
        self.held
            .get(py)
            .borrow_mut()
            .iter()
            .filter(|h| h.mine())
            .count()
    }

    /// For `Condition.wait`: releases every level; returns the depth.
    fn _release_save(&self, py: Python<'_>) -> PyResult<usize> {
        let mut n = 0;
        while self._is_owned(py) {
            drop(self.pop_mine(py)?);
            n += 1;
        }
        if n == 0 {
            return Err(PyAssertionError::new_err("cannot wait on un-acquired lock"));
        }
        Ok(n)
    }

    /// For `Condition.wait`: retakes `depth` levels.
    fn _acquire_restore(&self, py: Python<'_>, depth: usize) -> PyResult<()> {
        for _ in 0..depth.max(1) {
            self.acquire_inner(py, true, None)?.ok_or_else(owner_died)?;
        }
        Ok(())
    }
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
    m.add_class::<Lock>()?;
    m.add_class::<RLock>()?;
    m.add_class::<Semaphore>()?;
    m.add_class::<Event>()?;
    m.add_class::<Condvar>()?;
    m.add_class::<Barrier>()?;
    Ok(())
}
