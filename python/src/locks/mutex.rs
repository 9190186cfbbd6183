//! `Lock` and `RLock`: the core's robust `Mutex<()>` and `ReentrantMutex`, holding the core's
//! guard between `acquire()` and `release()` (`guards.rs`).
//!
//! A holder that died is reported by `acquire()` raising `shmkit.OwnerDied` *with the lock
//! held* (the caller may repair and `mark_consistent()`); `__enter__` releases it before
//! raising, so `with lock:` never leaves it held.
//!
//! `acquire`, `release`, `__enter__` and `__exit__` are hand-made CPython methods (`fast.rs`):
//! an uncontended `with lock:` is then two plain C calls, each a compare-exchange and a few
//! loads, as multiprocessing's `SemLock` is.

use super::{free, owner_died, take, Got};
use crate::errors::py_err;
use crate::fast::{self, Def};
use crate::guards::{extend, Held};
use crate::segments::segment;
use pyo3::exceptions::{PyAssertionError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use shmkit::Handle;
use std::cell::RefCell;

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
            || h.try_lock_if_free(),
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

    /// Takes the lock; see the Python docs of `acquire` below.
    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.acquire_inner(py, block, timeout)?
            .ok_or_else(owner_died)
    }

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

    fn enter(&self, py: Python<'_>) -> PyResult<bool> {
        match self.acquire_inner(py, true, None)? {
            Some(taken) => Ok(taken),
            None => {
                // Never leave the lock held behind an exception that skips __exit__.
                drop(self.held.get(py).borrow_mut().take());
                Err(owner_died())
            }
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
            || h.try_lock_if_free(),
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

    fn acquire(&self, py: Python<'_>, block: bool, timeout: Option<f64>) -> PyResult<bool> {
        self.acquire_inner(py, block, timeout)?
            .ok_or_else(owner_died)
    }

    fn release(&self, py: Python<'_>) -> PyResult<()> {
        drop(self.pop_mine(py)?);
        Ok(())
    }

    fn enter(&self, py: Python<'_>) -> PyResult<bool> {
        match self.acquire_inner(py, true, None)? {
            Some(taken) => Ok(taken),
            None => {
                // As in Lock.__enter__.
                let _ = self.pop_mine(py);
                Err(owner_died())
            }
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

/// The four hot methods of `Lock` and `RLock`, as hand-made CPython methods (`fast.rs`).
macro_rules! fast_methods {
    ($t:ty, $acquire:ident, $release:ident, $enter:ident, $exit:ident) => {
        unsafe extern "C" fn $acquire(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: called by CPython through the method descriptor `install` made for `$t`.
            unsafe {
                fast::call(slf, |py, l: &$t| {
                    let taken = if nargs == 0 && kwnames.is_null() {
                        l.acquire(py, true, None)?
                    } else {
                        // SAFETY: the arguments CPython passed.
                        let [block, timeout] =
                            fast::args(py, "acquire", ["block", "timeout"], args, nargs, kwnames)?;
                        l.acquire(py, fast::truth(block, true)?, fast::seconds(timeout)?)?
                    };
                    Ok(fast::boolean(py, taken))
                })
            }
        }

        unsafe extern "C" fn $release(
            slf: *mut ffi::PyObject,
            _: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: as above.
            unsafe { fast::call(slf, |py, l: &$t| l.release(py).map(|()| fast::none(py))) }
        }

        unsafe extern "C" fn $enter(
            slf: *mut ffi::PyObject,
            _: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: as above.
            unsafe { fast::call(slf, |py, l: &$t| l.enter(py).map(|b| fast::boolean(py, b))) }
        }

        unsafe extern "C" fn $exit(
            slf: *mut ffi::PyObject,
            _: *const *mut ffi::PyObject,
            _: ffi::Py_ssize_t,
            _: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: as above; the exception arguments are not looked at.
            unsafe { fast::call(slf, |py, l: &$t| l.release(py).map(|()| fast::none(py))) }
        }
    };
}

fast_methods!(Lock, lock_acquire, lock_release, lock_enter, lock_exit);
fast_methods!(RLock, rlock_acquire, rlock_release, rlock_enter, rlock_exit);

const ACQUIRE_DOC: &std::ffi::CStr = c"acquire(block=True, timeout=None)\n--\n\nTakes the lock \
(again, for an RLock held by this thread). block=False: only if free now. timeout (seconds): wait \
at most that. Returns whether the lock was taken. Raises OwnerDied (holding the lock) if its \
previous holder died holding it. Releases the GIL while waiting; Ctrl-C interrupts it.";
const RELEASE_DOC: &std::ffi::CStr = c"release()\n--\n\nReleases the lock (one level of an \
RLock). A Lock may be released by any thread of the process that took it (ValueError if it is not \
held); an RLock only by the thread holding it (AssertionError otherwise), as in multiprocessing.";
const ENTER_DOC: &std::ffi::CStr =
    c"__enter__()\n--\n\nacquire(); an OwnerDied is raised with the lock released.";
const EXIT_DOC: &std::ffi::CStr = c"__exit__(*exc_info)\n--\n\nrelease().";

/// The hand-made methods of `Lock`.
const LOCK_DEFS: &[Def] = &[
    Def::Fast(c"acquire", lock_acquire, ACQUIRE_DOC),
    Def::NoArgs(c"release", lock_release, RELEASE_DOC),
    Def::NoArgs(c"__enter__", lock_enter, ENTER_DOC),
    Def::Fast(c"__exit__", lock_exit, EXIT_DOC),
];

/// The hand-made methods of `RLock`.
const RLOCK_DEFS: &[Def] = &[
    Def::Fast(c"acquire", rlock_acquire, ACQUIRE_DOC),
    Def::NoArgs(c"release", rlock_release, RELEASE_DOC),
    Def::NoArgs(c"__enter__", rlock_enter, ENTER_DOC),
    Def::Fast(c"__exit__", rlock_exit, EXIT_DOC),
];

/// Gives the Python subclass `cls` of `Lock` or `RLock` descriptors of its own for the
/// hand-made methods (`fast::install_on_subclass`); returns whether `cls` is one.
pub(crate) fn specialize(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    Ok(fast::install_on_subclass::<RLock>(cls, RLOCK_DEFS)?
        || fast::install_on_subclass::<Lock>(cls, LOCK_DEFS)?)
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Lock>()?;
    m.add_class::<RLock>()?;
    fast::install::<Lock>(py, LOCK_DEFS)?;
    fast::install::<RLock>(py, RLOCK_DEFS)
}
