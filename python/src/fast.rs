//! Hand-made CPython methods for the few calls that a program makes millions of times
//! (`Lock.acquire`/`release`/`with`, `Value.value`, `Value.fetch_add` …).
//!
//! PyO3 0.22 calls every method through `METH_VARARGS` under the stable ABI (an argument tuple
//! per call) and, whatever the ABI, through a trampoline that counts the GIL, finds the type
//! object and borrow-checks `self`: about 250 instructions a call (callgrind), several times the
//! work of a lock or an atomic. The methods here are plain `METH_FASTCALL | METH_KEYWORDS`,
//! `METH_NOARGS` and getset functions (all in the stable ABI since Python 3.10), installed on
//! the PyO3 class after it is created, which replace PyO3's methods of the same names:
//!
//! - `self` is not type-checked here: CPython's method and getset descriptors check that `self`
//!   is an instance of the class they were made for before they call the function;
//! - the classes are `frozen`, so `&T` needs no borrow flag;
//! - a panic is caught and raised as PyO3's `PanicException`, as PyO3 does.
//!
//! The bodies call the same Rust code as the PyO3 methods did; only the calling glue differs.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::True;
use pyo3::types::PyType;
use pyo3::PyClass;
use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `METH_FASTCALL | METH_KEYWORDS`: `(self, args, nargs, kwnames)`.
pub type FastFn = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *const *mut ffi::PyObject,
    ffi::Py_ssize_t,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

/// `METH_NOARGS`: `(self, NULL)`.
pub type NoArgsFn =
    unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject) -> *mut ffi::PyObject;

/// One method or property of a class.
pub enum Def {
    Fast(&'static CStr, FastFn, &'static CStr),
    NoArgs(&'static CStr, NoArgsFn, &'static CStr),
    /// A property: getter, optional setter.
    GetSet(
        &'static CStr,
        ffi::getter,
        Option<ffi::setter>,
        &'static CStr,
    ),
}

/// Installs `defs` on the class `T` (replacing attributes of the same names).
pub fn install<T: PyClass>(py: Python<'_>, defs: &[Def]) -> PyResult<()> {
    install_on(&py.get_type_bound::<T>(), defs)
}

/// Installs `defs` (the functions of `T`) again on `cls` if it is a subclass of `T`, with
/// descriptors made for `cls`; returns whether it did.
///
/// CPython specializes a call of a C method (`PRECALL_*_METHOD_DESCRIPTOR_*` in 3.11, `CALL_*`
/// later) only when the instance's type *is* the class the method descriptor was made for: the
/// package's classes are Python subclasses of the native ones (`shmkit.Lock` of
/// `_native.Lock`), so a method found on the native class takes the generic call path, which
/// costs about as much again as the method itself (measured: `Value.fetch_add` 54 ns through
/// the subclass, 39 ns on an exact `_native.Value`). The same functions stay sound on `cls`:
/// its descriptors check that `self` is an instance of `cls`, hence of `T`. A name that `cls`
/// defines itself (a Python method overriding the native one, e.g. `JoinableQueue.put`) is
/// left alone.
pub fn install_on_subclass<T: PyClass>(cls: &Bound<'_, PyType>, defs: &[Def]) -> PyResult<bool> {
    if !cls.is_subclass_of::<T>()? {
        return Ok(false);
    }
    let own = cls.getattr("__dict__")?;
    let mut keep = Vec::with_capacity(defs.len());
    for d in defs {
        if !own.contains(d.name().to_str().expect("ASCII names"))? {
            keep.push(d);
        }
    }
    install_on(cls, keep)?;
    Ok(true)
}

impl Def {
    fn name(&self) -> &'static CStr {
        match *self {
            Def::Fast(n, ..) | Def::NoArgs(n, ..) | Def::GetSet(n, ..) => n,
        }
    }
}

fn install_on<'d>(ty: &Bound<'_, PyType>, defs: impl IntoIterator<Item = &'d Def>) -> PyResult<()> {
    let py = ty.py();
    for d in defs {
        let (name, descr) = match *d {
            Def::Fast(name, f, doc) => (
                name,
                method(
                    ty,
                    name,
                    meth_fast(f),
                    doc,
                    ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
                ),
            ),
            Def::NoArgs(name, f, doc) => {
                (name, method(ty, name, meth_plain(f), doc, ffi::METH_NOARGS))
            }
            Def::GetSet(name, get, set, doc) => {
                // Lives as long as the class (for ever: the module is never unloaded).
                let def = Box::leak(Box::new(ffi::PyGetSetDef {
                    name: name.as_ptr(),
                    get: Some(get),
                    set,
                    doc: doc.as_ptr(),
                    closure: std::ptr::null_mut(),
                }));
                // SAFETY: `ty` is a live type object; `def` is 'static.
                let p = unsafe { ffi::PyDescr_NewGetSet(ty.as_ptr().cast(), def) };
                (name, p)
            }
        };
        // SAFETY: a new reference or NULL with an exception set.
        let descr = unsafe { Bound::from_owned_ptr_or_err(py, descr)? };
        ty.setattr(name.to_str().expect("ASCII names"), descr)?;
    }
    Ok(())
}

fn meth_fast(f: FastFn) -> ffi::PyMethodDefPointer {
    // SAFETY: CPython calls a METH_FASTCALL | METH_KEYWORDS function with exactly `FastFn`'s
    // arguments; the union only stores the pointer (C casts it the same way).
    let f = unsafe { std::mem::transmute::<FastFn, ffi::PyCFunction>(f) };
    ffi::PyMethodDefPointer { PyCFunction: f }
}

fn meth_plain(f: NoArgsFn) -> ffi::PyMethodDefPointer {
    ffi::PyMethodDefPointer { PyCFunction: f }
}

fn method(
    ty: &Bound<'_, PyType>,
    name: &'static CStr,
    meth: ffi::PyMethodDefPointer,
    doc: &'static CStr,
    flags: std::ffi::c_int,
) -> *mut ffi::PyObject {
    let def = Box::leak(Box::new(ffi::PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: meth,
        ml_flags: flags,
        ml_doc: doc.as_ptr(),
    }));
    // SAFETY: `ty` is a live type object; `def` is 'static.
    unsafe { ffi::PyDescr_NewMethod(ty.as_ptr().cast(), def) }
}

/// Runs `body` with the GIL token and `self` as `&T`; converts its result or exception (or
/// panic) into CPython's convention.
///
/// # Safety
/// Called by CPython (GIL held) from a method or getset descriptor made by [`install`] for `T`,
/// which has checked that `slf` is an instance of `T`.
#[inline(always)]
pub unsafe fn call<T, O>(
    slf: *mut ffi::PyObject,
    body: impl FnOnce(Python<'_>, &T) -> PyResult<O>,
) -> O::Out
where
    T: PyClass<Frozen = True> + Sync,
    O: Ret,
{
    // SAFETY: the GIL is held by the caller (CPython).
    let py = unsafe { Python::assume_gil_acquired() };
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `slf` is a borrowed reference to an instance of `T` (checked by the
        // descriptor), alive for this call.
        let obj = unsafe { Borrowed::from_ptr(py, slf) };
        // SAFETY: as above: an instance of `T` or of a subclass.
        let me = unsafe { obj.downcast_unchecked::<T>() }.get();
        body(py, me)
    }));
    match r {
        Ok(Ok(v)) => v.out(),
        Ok(Err(e)) => {
            e.restore(py);
            O::ERROR
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic in shmkit._native".into());
            pyo3::panic::PanicException::new_err(msg).restore(py);
            O::ERROR
        }
    }
}

/// What a function gives back to CPython: an object (NULL on error) or a status (-1 on error).
pub trait Ret {
    type Out;
    const ERROR: Self::Out;
    fn out(self) -> Self::Out;
}

/// A new reference to return (ownership passes to CPython).
pub struct Obj(pub *mut ffi::PyObject);

impl Ret for Obj {
    type Out = *mut ffi::PyObject;
    const ERROR: *mut ffi::PyObject = std::ptr::null_mut();
    fn out(self) -> *mut ffi::PyObject {
        self.0
    }
}

/// A setter's success.
pub struct Status;

impl Ret for Status {
    type Out = c_int;
    const ERROR: c_int = -1;
    fn out(self) -> c_int {
        0
    }
}

/// `None`, as a new reference.
pub fn none(py: Python<'_>) -> Obj {
    Obj(py.None().into_ptr())
}

/// `True` or `False`, as a new reference.
pub fn boolean(py: Python<'_>, b: bool) -> Obj {
    Obj(b.into_py(py).into_ptr())
}

/// Any Rust value PyO3 converts, as a new reference.
pub fn obj(o: PyObject) -> Obj {
    Obj(o.into_ptr())
}

/// The unused closure pointer of a getset function.
pub type Closure = *mut c_void;

/// The arguments of a `METH_FASTCALL | METH_KEYWORDS` call matched to the parameter `names`
/// (positional first, then by keyword): `None` for a parameter not given. Raises `TypeError`
/// as Python does for too many, unknown or repeated arguments.
///
/// # Safety
/// `args`, `nargs` and `kwnames` are those CPython passed to the function (borrowed for the
/// call).
#[inline]
pub unsafe fn args<'a, 'py, const N: usize>(
    py: Python<'py>,
    what: &str,
    names: [&str; N],
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<[Option<Borrowed<'a, 'py, PyAny>>; N]> {
    let mut out = [None; N];
    if nargs == 0 && kwnames.is_null() {
        return Ok(out);
    }
    let npos = nargs as usize; // CPython never passes a negative count
    if npos > N {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what}() takes at most {N} arguments ({npos} given)"
        )));
    }
    for (i, o) in out.iter_mut().enumerate().take(npos) {
        // SAFETY: `args` holds `nargs` (+ keywords) borrowed references.
        *o = Some(unsafe { Borrowed::from_ptr(py, *args.add(i)) });
    }
    if kwnames.is_null() {
        return Ok(out);
    }
    // SAFETY: `kwnames` is a tuple of str, borrowed for the call.
    let kw = unsafe { Borrowed::from_ptr(py, kwnames) };
    let kw = kw.downcast::<pyo3::types::PyTuple>()?;
    for (k, name) in kw.iter().enumerate() {
        let name: String = name.extract()?;
        let Some(i) = names.iter().position(|n| *n == name) else {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{what}() got an unexpected keyword argument '{name}'"
            )));
        };
        if out[i].is_some() {
            return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                "{what}() got multiple values for argument '{name}'"
            )));
        }
        // SAFETY: the keyword values follow the positional ones in `args`.
        out[i] = Some(unsafe { Borrowed::from_ptr(py, *args.add(npos + k)) });
    }
    Ok(out)
}

/// A required argument from [`args`]: `TypeError` "`method`() missing required argument
/// '`name`' (pos `pos`)", CPython's wording, when it is absent.
pub fn required<'a, 'py>(
    o: Option<Borrowed<'a, 'py, PyAny>>,
    method: &str,
    name: &str,
    pos: usize,
) -> PyResult<Borrowed<'a, 'py, PyAny>> {
    o.ok_or_else(|| {
        pyo3::exceptions::PyTypeError::new_err(format!(
            "{method}() missing required argument '{name}' (pos {pos})"
        ))
    })
}

/// `block`-style truth of an optional argument (`default` when absent).
pub fn truth(o: Option<Borrowed<'_, '_, PyAny>>, default: bool) -> PyResult<bool> {
    match o {
        None => Ok(default),
        Some(o) => o.is_truthy(),
    }
}

/// An optional `timeout` argument (`None` when absent or `None`).
pub fn seconds(o: Option<Borrowed<'_, '_, PyAny>>) -> PyResult<Option<f64>> {
    match o {
        Some(o) if !o.is_none() => o.extract().map(Some),
        _ => Ok(None),
    }
}
