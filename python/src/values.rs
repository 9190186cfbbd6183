//! `Value` and `Array`: multiprocessing's typecodes on the core's `AtomicValue<T>` (a value is
//! one atomic word: reads and writes never tear, `fetch_add` & co. are single atomic
//! operations) and `SeqArray<T>` (readers never block writers; every read is a consistent copy).
//!
//! `Value.value`, `fetch_add`, `fetch_sub` and `get_lock` are hand-made CPython methods
//! (`fast.rs`): `with v.get_lock(): v.value += 1` is then four C calls and no Python frame.

use crate::errors::{py_err, to_py};
use crate::fast::{self, Def};
use crate::guards::Carry;
use crate::segments::segment;
use crate::wait::sliced;
use pyo3::exceptions::{PyAttributeError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILProtected;
use pyo3::types::{PyBytes, PyList, PySlice};
use shmkit::bytemuck;
use shmkit::{ArrayWriter, AtomicValue, Handle, SeqArray};
use std::cell::RefCell;

/// The element of a `'c'` value or array: one byte, returned to Python as `bytes` of length 1.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[bytemuck(crate = "shmkit::bytemuck")]
#[repr(transparent)]
pub struct Char(u8);

/// Conversion between Python objects and elements, as ctypes does it (integers are truncated
/// to the type's width, like `ctypes.c_int(2**32 + 1).value == 1`).
trait Elem: shmkit::Pod + Send + Sync {
    /// 1 (the default step of `fetch_add`/`fetch_sub`).
    const ONE: Self;
    fn from_py(o: &Bound<'_, PyAny>) -> PyResult<Self>;
    fn to_py(self, py: Python<'_>) -> PyObject;
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const ONE: Self = 1;
            fn from_py(o: &Bound<'_, PyAny>) -> PyResult<Self> {
                match o.extract::<i64>() {
                    Ok(v) => Ok(v as $t),
                    Err(e) => o.extract::<u64>().map(|v| v as $t).map_err(|_| e),
                }
            }
            fn to_py(self, py: Python<'_>) -> PyObject {
                self.into_py(py)
            }
        }
    )*};
}
int_elem!(i8, u8, i16, u16, i32, u32, i64, u64);

macro_rules! float_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const ONE: Self = 1.0;
            fn from_py(o: &Bound<'_, PyAny>) -> PyResult<Self> {
                Ok(o.extract::<f64>()? as $t)
            }
            fn to_py(self, py: Python<'_>) -> PyObject {
                (self as f64).into_py(py)
            }
        }
    )*};
}
float_elem!(f32, f64);

impl Elem for Char {
    const ONE: Self = Char(1);
    fn from_py(o: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(b) = o.downcast::<PyBytes>() {
            if let [c] = b.as_bytes() {
                return Ok(Char(*c));
            }
        } else if let Ok(i) = o.extract::<u8>() {
            return Ok(Char(i));
        }
        Err(PyTypeError::new_err(
            "one character bytes, bytearray or integer expected",
        ))
    }
    fn to_py(self, py: Python<'_>) -> PyObject {
        PyBytes::new_bound(py, &[self.0]).into_py(py)
    }
}

/// One handle per typecode. `'l'`/`'L'` are C longs: 8 bytes on 64-bit Linux.
enum Slot<W: ?Sized + Family> {
    I8(W::Of<i8>),
    U8(W::Of<u8>),
    I16(W::Of<i16>),
    U16(W::Of<u16>),
    I32(W::Of<i32>),
    U32(W::Of<u32>),
    I64(W::Of<i64>),
    U64(W::Of<u64>),
    F32(W::Of<f32>),
    F64(W::Of<f64>),
    C(W::Of<Char>),
}

/// Which core type a `Slot` holds handles of.
trait Family {
    type Of<T: Elem>: Send + Sync;
}
struct Values;
impl Family for Values {
    type Of<T: Elem> = Handle<AtomicValue<T>>;
}
struct Arrays;
impl Family for Arrays {
    type Of<T: Elem> = Handle<SeqArray<T>>;
}

/// `$body` for every typecode, with `$h` the typed handle (`$num` also for every number, and
/// `$c` for `'c'`).
macro_rules! each {
    ($v:expr, $h:ident => $body:expr) => {
        each!($v, $h => $body, $h => $body)
    };
    ($v:expr, $h:ident => $num:expr, $c:ident => $cbody:expr) => {
        match $v {
            Slot::I8($h) => $num,
            Slot::U8($h) => $num,
            Slot::I16($h) => $num,
            Slot::U16($h) => $num,
            Slot::I32($h) => $num,
            Slot::U32($h) => $num,
            Slot::I64($h) => $num,
            Slot::U64($h) => $num,
            Slot::F32($h) => $num,
            Slot::F64($h) => $num,
            Slot::C($c) => $cbody,
        }
    };
}

/// Makes the slot for `code` with `make::<T>()`.
macro_rules! slot_of {
    ($code:expr, $make:ident) => {
        match $code {
            'b' => Slot::I8($make!(i8)),
            'B' => Slot::U8($make!(u8)),
            'h' => Slot::I16($make!(i16)),
            'H' => Slot::U16($make!(u16)),
            'i' => Slot::I32($make!(i32)),
            'I' => Slot::U32($make!(u32)),
            'l' | 'q' => Slot::I64($make!(i64)),
            'L' | 'Q' => Slot::U64($make!(u64)),
            'f' => Slot::F32($make!(f32)),
            'd' => Slot::F64($make!(f64)),
            'c' => Slot::C($make!(Char)),
            other => {
                return Err(PyValueError::new_err(format!(
                    "typecode {other:?} is not one of b B h H i I l L q Q f d c"
                )))
            }
        }
    };
}

fn no_char_ops() -> PyErr {
    PyTypeError::new_err("atomic arithmetic needs a numeric typecode, not 'c'")
}

/// A single shared number (or character) read and written atomically (the core's
/// `AtomicValue`).
#[pyclass(subclass, module = "shmkit._native", frozen)]
pub struct Value {
    v: Slot<Values>,
    /// The lock `get_lock()` returns (`None`: made with `lock=False`).
    lock: GILProtected<RefCell<Option<PyObject>>>,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
    #[pyo3(get)]
    _typecode: char,
}

#[pymethods]
impl Value {
    /// Finds or creates the value `name` of typecode `typecode` in `segment_name`; a new one
    /// starts at `init` (an existing one keeps its contents).
    #[new]
    fn new(
        segment_name: &str,
        name: &str,
        typecode: char,
        init: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let seg = segment(segment_name)?;
        macro_rules! make {
            ($t:ty) => {
                py_err(seg.value::<$t>(name, <$t as Elem>::from_py(init)?))?
            };
        }
        Ok(Value {
            v: slot_of!(typecode, make),
            lock: GILProtected::new(RefCell::new(None)),
            _segment: segment_name.to_string(),
            _name: name.to_string(),
            _typecode: typecode,
        })
    }

    /// Sets the lock `get_lock()` returns (`None`: none).
    #[pyo3(signature = (lock))]
    fn _set_lock(&self, py: Python<'_>, lock: Option<PyObject>) {
        *self.lock.get(py).borrow_mut() = lock;
    }

    /// The lock given at creation, or `None`.
    #[getter]
    fn _lock(&self, py: Python<'_>) -> Option<PyObject> {
        self.lock.get(py).borrow().as_ref().map(|l| l.clone_ref(py))
    }

    /// The lock for the garbage collector (a lock object that refers back to its value makes
    /// a cycle; the lock's own `tp_clear` breaks it).
    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        // SAFETY: the collector calls tp_traverse with the GIL held.
        let py = unsafe { Python::assume_gil_acquired() };
        // Busy only while `_set_lock` swaps it: then the collector sees one edge fewer.
        if let Ok(l) = self.lock.get(py).try_borrow() {
            if let Some(l) = l.as_ref() {
                visit.call(l)?;
            }
        }
        Ok(())
    }

    /// Sets the value and returns the previous one (one atomic operation).
    fn swap(&self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        each!(&self.v, h => Ok(h.swap(Elem::from_py(v)?).to_py(py)))
    }

    /// Sets the value to `new` if it is `current` (compared bit for bit); returns
    /// `(True, current)` on success, `(False, actual value)` otherwise.
    fn compare_exchange(
        &self,
        py: Python<'_>,
        current: &Bound<'_, PyAny>,
        new: &Bound<'_, PyAny>,
    ) -> PyResult<(bool, PyObject)> {
        each!(&self.v, h => Ok(match h.compare_exchange(Elem::from_py(current)?, Elem::from_py(new)?) {
            Ok(v) => (true, v.to_py(py)),
            Err(v) => (false, v.to_py(py)),
        }))
    }
}

impl Value {
    fn get(&self, py: Python<'_>) -> PyObject {
        each!(&self.v, h => h.load().to_py(py))
    }

    fn set(&self, v: &Bound<'_, PyAny>) -> PyResult<()> {
        each!(&self.v, h => { h.store(Elem::from_py(v)?); Ok(()) })
    }

    // No Python object is made or dropped here: the fast methods run without PyO3's GIL
    // count, so a dropped `Py` would be deferred to PyO3's pool (a lock) instead of decref'd.
    fn fetch_add(&self, py: Python<'_>, n: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
        each!(&self.v, h => {
            let n = match n { Some(n) => Elem::from_py(n)?, None => Elem::ONE };
            Ok(h.fetch_add(n).to_py(py))
        }, _c => Err(no_char_ops()))
    }

    fn fetch_sub(&self, py: Python<'_>, n: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
        each!(&self.v, h => {
            let n = match n { Some(n) => Elem::from_py(n)?, None => Elem::ONE };
            Ok(h.fetch_sub(n).to_py(py))
        }, _c => Err(no_char_ops()))
    }

    fn get_lock(&self, py: Python<'_>) -> PyResult<PyObject> {
        match &*self.lock.get(py).borrow() {
            Some(l) => Ok(l.clone_ref(py)),
            None => Err(PyAttributeError::new_err(format!(
                "the value {}/{} was created with lock=False and has no lock",
                self._segment, self._name
            ))),
        }
    }
}

unsafe extern "C" fn value_get(slf: *mut ffi::PyObject, _: fast::Closure) -> *mut ffi::PyObject {
    // SAFETY: called by CPython through the getset descriptor `install` made for `Value`.
    unsafe {
        fast::call(slf, |py, v: &Value| {
            // 'q'/'l' (the common counter): the int straight from the load.
            if let Slot::I64(h) = &v.v {
                return Ok(fast::Obj(ffi::PyLong_FromLongLong(h.load())));
            }
            Ok(fast::obj(v.get(py)))
        })
    }
}

unsafe extern "C" fn value_set(
    slf: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
    _: fast::Closure,
) -> std::ffi::c_int {
    // SAFETY: as above; `value` is borrowed for the call (NULL: `del v.value`).
    unsafe {
        fast::call(slf, |py, v: &Value| {
            let Some(value) = Borrowed::from_ptr_or_opt(py, value) else {
                return Err(PyAttributeError::new_err(
                    "a Value's value cannot be deleted",
                ));
            };
            // 'q'/'l' and an int that fits: no conversion layers (as `fetch_add`).
            if let (Slot::I64(h), Some(n)) = (&v.v, exact_i64(value.as_ptr())) {
                h.store(n);
                return Ok(fast::Status);
            }
            v.set(&value).map(|()| fast::Status)
        })
    }
}

/// `o` as an `i64` if it is an `int` (exactly) that fits; `None` (no exception set) otherwise.
///
/// # Safety
/// GIL held; `o` is a live object.
#[inline(always)]
unsafe fn exact_i64(o: *mut ffi::PyObject) -> Option<i64> {
    // SAFETY: per the contract (a type check, then the int's own conversion).
    unsafe {
        if ffi::PyLong_CheckExact(o) == 0 {
            return None;
        }
        let n = ffi::PyLong_AsLongLong(o);
        if n == -1 && !ffi::PyErr_Occurred().is_null() {
            ffi::PyErr_Clear(); // out of range: the general path decides (u64, or OverflowError)
            return None;
        }
        Some(n)
    }
}

/// CPython's cached `int` 1 (small ints are shared: `fetch_add(1)` passes this object), or
/// NULL before `register`. Only compared with: a miss takes the general conversion.
static SMALL_ONE: std::sync::atomic::AtomicPtr<ffi::PyObject> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

#[inline(always)]
fn small_one() -> *mut ffi::PyObject {
    SMALL_ONE.load(std::sync::atomic::Ordering::Relaxed)
}

/// `fetch_add` and `fetch_sub`: `(n=1)`.
macro_rules! fetch_op {
    ($f:ident, $op:ident, $name:literal) => {
        unsafe extern "C" fn $f(
            slf: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargs: ffi::Py_ssize_t,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            // SAFETY: called by CPython through the method descriptor `install` made for
            // `Value` (so `slf` is a `Value`, GIL held). `args`, `nargs` and `kwnames` are
            // METH_FASTCALL's: `args` holds `nargs` positional references, then one per name
            // in `kwnames`, all borrowed for the call; `*args` is read only when `nargs == 1`.
            unsafe {
                fast::call(slf, |py, v: &Value| {
                    // 'q'/'l' with no argument or an int that fits: no conversion layers.
                    if let (Slot::I64(h), true) = (&v.v, kwnames.is_null()) {
                        let n = match nargs {
                            0 => Some(1),
                            1 if *args == small_one() => Some(1), // `fetch_add(1)`
                            1 => exact_i64(*args),
                            _ => None,
                        };
                        if let Some(n) = n {
                            return Ok(fast::Obj(ffi::PyLong_FromLongLong(h.$op(n))));
                        }
                    }
                    let n = if nargs == 1 && kwnames.is_null() {
                        Some(Borrowed::from_ptr(py, *args)) // the common `fetch_add(k)`
                    } else {
                        let [n] = fast::args(py, $name, ["n"], args, nargs, kwnames)?;
                        n
                    };
                    let n = n.filter(|n| !n.is_none());
                    v.$op(py, n.as_deref()).map(fast::obj)
                })
            }
        }
    };
}
fetch_op!(value_fetch_add, fetch_add, "fetch_add");
fetch_op!(value_fetch_sub, fetch_sub, "fetch_sub");

unsafe extern "C" fn value_get_lock(
    slf: *mut ffi::PyObject,
    _: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: as above.
    unsafe { fast::call(slf, |py, v: &Value| v.get_lock(py).map(fast::obj)) }
}

/// A fixed-length shared array (the core's `SeqArray`): every element read is untorn, a slice
/// read is a copy block by block; writers serialize on the array's writer lock (robust: a dead
/// writer is taken over), waited for with the GIL released.
#[pyclass(subclass, module = "shmkit._native", frozen, sequence)]
pub struct Array {
    a: Slot<Arrays>,
    len: usize,
    #[pyo3(get)]
    _segment: String,
    #[pyo3(get)]
    _name: String,
    #[pyo3(get)]
    _typecode: char,
}

enum Key {
    One(usize),
    Range {
        start: usize,
        step: isize,
        count: usize,
    },
}

impl Array {
    fn key(&self, key: &Bound<'_, PyAny>) -> PyResult<Key> {
        if let Ok(s) = key.downcast::<PySlice>() {
            let i = s.indices(self.len as isize)?;
            return Ok(Key::Range {
                start: i.start.max(0) as usize,
                step: i.step,
                count: i.slicelength,
            });
        }
        let i: isize = key.extract()?;
        let len = self.len as isize;
        let j = if i < 0 { i + len } else { i };
        if j < 0 || j >= len {
            return Err(pyo3::exceptions::PyIndexError::new_err("invalid index"));
        }
        Ok(Key::One(j as usize))
    }
}

/// Takes the array's writer lock the way every blocking call waits (`wait::sliced`): a writer
/// that keeps it (or is stopped with SIGSTOP) does not hold the GIL hostage, and Ctrl-C
/// interrupts the wait.
fn writer<'a, T: Elem>(py: Python<'_>, h: &'a SeqArray<T>) -> PyResult<ArrayWriter<'a, T>> {
    let got = sliced(py, None, |slice| match h.writer_timeout(slice) {
        Err(shmkit::Error::Timeout { .. }) => None,
        r => Some(Carry(r)),
    })?;
    match got {
        Some(Carry(r)) => py_err(r),
        // `sliced` without a timeout returns only with a result or an exception.
        None => Err(to_py(shmkit::Error::Timeout {
            what: "the array's writer lock",
            waited: std::time::Duration::ZERO,
        })),
    }
}

fn indices(start: usize, step: isize, count: usize) -> impl Iterator<Item = usize> {
    (0..count).map(move |k| (start as isize + step * k as isize) as usize)
}

#[pymethods]
impl Array {
    /// Finds or creates the array `name` of `length` elements of typecode `typecode` in
    /// `segment_name` (a new one is zeroed).
    #[new]
    fn new(segment_name: &str, name: &str, typecode: char, length: usize) -> PyResult<Self> {
        let seg = segment(segment_name)?;
        macro_rules! make {
            ($t:ty) => {
                py_err(seg.array::<$t>(name, length))?
            };
        }
        let a: Slot<Arrays> = slot_of!(typecode, make);
        let len = each!(&a, h => h.len());
        Ok(Array {
            a,
            len,
            _segment: segment_name.to_string(),
            _name: name.to_string(),
            _typecode: typecode,
        })
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        match self.key(key)? {
            Key::One(i) => each!(&self.a, h => Ok(py_err(h.get(i))?.to_py(py))),
            Key::Range { start, step, count } => each!(&self.a, h => {
                let all = h.snapshot();
                let items: Vec<PyObject> = indices(start, step, count)
                    .map(|i| all.get(i).copied().map(|v| v.to_py(py)))
                    .collect::<Option<_>>()
                    .ok_or_else(|| to_py(shmkit::Error::IndexOutOfBounds { index: start, len: all.len() }))?;
                Ok(PyList::new_bound(py, items).into_py(py))
            }, h => {
                // A slice of a 'c' array is bytes, as with ctypes.
                let all = h.snapshot();
                let b: Vec<u8> = indices(start, step, count)
                    .filter_map(|i| all.get(i).map(|c| c.0))
                    .collect();
                Ok(PyBytes::new_bound(py, &b).into_py(py))
            }),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        match self.key(key)? {
            Key::One(i) => each!(&self.a, h => {
                let v = Elem::from_py(value)?;
                py_err(writer(py, h)?.set(i, v))
            }),
            Key::Range { start, step, count } => each!(&self.a, h => {
                let vals = value
                    .iter()?
                    .map(|o| Elem::from_py(&o?))
                    .collect::<PyResult<Vec<_>>>()?;
                if vals.len() != count {
                    return Err(PyValueError::new_err("Can only assign sequence of same size"));
                }
                if count == 0 {
                    return Ok(());
                }
                let last = start as isize + step * (count as isize - 1);
                let (lo, hi) = (start.min(last as usize), start.max(last as usize));
                // One write under the writer lock: no other writer interleaves.
                py_err(writer(py, h)?.update_range(lo..hi + 1, |s| {
                    for (k, i) in indices(start, step, count).enumerate() {
                        s[i - lo] = vals[k];
                    }
                }))
            }),
        }
    }

    /// A copy of the whole array, as a list.
    fn snapshot(&self, py: Python<'_>) -> PyObject {
        each!(&self.a, h => {
            let items: Vec<PyObject> = h.snapshot().into_iter().map(|v| v.to_py(py)).collect();
            PyList::new_bound(py, items).into_py(py)
        })
    }

    /// For `'c'` arrays: the contents as one `bytes` (every element).
    fn raw_bytes(&self, py: Python<'_>) -> PyResult<PyObject> {
        each!(&self.a, _h => Err(PyTypeError::new_err("raw_bytes is for 'c' arrays")), h => {
            let b: Vec<u8> = h.snapshot().into_iter().map(|c| c.0).collect();
            Ok(PyBytes::new_bound(py, &b).into_py(py))
        })
    }

    /// For `'c'` arrays: writes `data` from the start in one write (the rest is zeroed when
    /// `fill` is true).
    #[pyo3(signature = (data, fill = false))]
    fn write_bytes(&self, py: Python<'_>, data: &[u8], fill: bool) -> PyResult<()> {
        let len = self.len;
        each!(&self.a, _h => Err(PyTypeError::new_err("write_bytes is for 'c' arrays")), h => {
            if data.len() > len {
                return Err(PyValueError::new_err("byte string too long"));
            }
            py_err(writer(py, h)?.update_range(0..len, |s| {
                for (i, c) in s.iter_mut().enumerate() {
                    if let Some(&b) = data.get(i) {
                        c.0 = b;
                    } else if fill {
                        c.0 = 0;
                    }
                }
            }))
        })
    }
}

/// The hand-made methods of `Value`.
const VALUE_DEFS: &[Def] = &[
    Def::GetSet(
        c"value",
        value_get,
        Some(value_set),
        c"The value (settable). One atomic load or store: never torn, no lock.",
    ),
    Def::Fast(
        c"fetch_add",
        value_fetch_add,
        c"fetch_add(n=1)\n--\n\nAdds n and returns the previous value (one atomic \
        operation; integers wrap).",
    ),
    Def::Fast(
        c"fetch_sub",
        value_fetch_sub,
        c"fetch_sub(n=1)\n--\n\nSubtracts n and returns the previous value (one atomic \
        operation; integers wrap).",
    ),
    Def::NoArgs(
        c"get_lock",
        value_get_lock,
        c"get_lock()\n--\n\nThe lock given (or made) at creation; AttributeError for \
        lock=False.",
    ),
];

/// Gives the Python subclass `cls` of `Value` descriptors of its own for the hand-made methods
/// (`fast::install_on_subclass`); returns whether `cls` is one.
pub(crate) fn specialize(cls: &Bound<'_, pyo3::types::PyType>) -> PyResult<bool> {
    fast::install_on_subclass::<Value>(cls, VALUE_DEFS)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Value>()?;
    m.add_class::<Array>()?;
    // SAFETY: GIL held (module init). The reference is kept for ever (never decref'd), so the
    // pointer stays valid; a NULL (no memory) only disables the shortcut.
    let one = unsafe { ffi::PyLong_FromLong(1) };
    if one.is_null() {
        // SAFETY: as above; the MemoryError is dropped (the shortcut is optional).
        unsafe { ffi::PyErr_Clear() };
    }
    SMALL_ONE.store(one, std::sync::atomic::Ordering::Relaxed);
    fast::install::<Value>(m.py(), VALUE_DEFS)
}
