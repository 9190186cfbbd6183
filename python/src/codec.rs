//! Pickles of the common small objects, written and read natively.
//!
//! Queues, pipes and shared dicts carry pickles (`pickle.HIGHEST_PROTOCOL`). For an object made
//! only of `None`, `bool`, `int` (64-bit), `float`, `str`, `bytes` and tuples of them (exact
//! types, not subclasses), [`dump`] writes the pickle itself, without the `pickle` module's
//! `Pickler` object, its memo and its frame (the opcodes are those `pickle.dumps` uses, so
//! `pickle.loads` reads the result and `recv_bytes` users see a pickle as before); anything else
//! goes through `pickle.dumps`. [`load`] reads the same opcodes back and hands every other
//! pickle (or a malformed one, so that its error is `pickle.loads`'s) to `pickle.loads`. Only
//! immutable objects are built natively, so dropping pickle's memo changes nothing a program
//! can observe but object identity of equal immutable values.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyString, PyTuple};

/// Nesting of tuples written or read natively (deeper objects go through `pickle`).
const DEPTH: u32 = 8;

// The pickle opcodes used (Lib/pickle.py).
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const MEMOIZE: u8 = 0x94;
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const STOP: u8 = b'.';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const BININT: u8 = b'J';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const SHORT_BINUNICODE: u8 = 0x8c;
const BINUNICODE: u8 = b'X';
const BINUNICODE8: u8 = 0x8d;
const SHORT_BINBYTES: u8 = b'C';
const BINBYTES: u8 = b'B';
const BINBYTES8: u8 = 0x8e;
const EMPTY_TUPLE: u8 = b')';
const TUPLE1: u8 = 0x85;
const MARK: u8 = b'(';
const TUPLE: u8 = b't';

/// `pickle.dumps` and `pickle.loads`.
fn pickle(py: Python<'_>) -> PyResult<&(Py<PyAny>, Py<PyAny>)> {
    static PICKLE: GILOnceCell<(Py<PyAny>, Py<PyAny>)> = GILOnceCell::new();
    PICKLE.get_or_try_init(py, || {
        let m = py.import_bound("pickle")?;
        Ok((m.getattr("dumps")?.unbind(), m.getattr("loads")?.unbind()))
    })
}

/// Appends the pickle of `obj` to `out`: natively for the common small objects, else with
/// `pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)` (whose errors propagate).
pub fn dump(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
    let start = out.len();
    out.extend_from_slice(&[PROTO, 5]);
    if write(obj, out, 0) {
        out.push(STOP);
        return Ok(());
    }
    out.truncate(start);
    let py = obj.py();
    let p = pickle(py)?.0.bind(py).call1((obj, 5))?;
    out.extend_from_slice(p.downcast::<PyBytes>()?.as_bytes());
    Ok(())
}

/// The object pickled in `data`: natively for what [`dump`] writes natively, else (and for
/// anything malformed) `pickle.loads(data)`.
pub fn load<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if let Some(v) = read(py, data) {
        return Ok(v);
    }
    pickle(py)?
        .1
        .bind(py)
        .call1((PyBytes::new_bound(py, data),))
}

/// Writes `obj`'s opcodes; `false` if it is not one of the natively written objects (`out`
/// then holds garbage after its original length).
fn write(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: u32) -> bool {
    if obj.is_none() {
        out.push(NONE);
    } else if obj.is_exact_instance_of::<PyString>() {
        // A str with lone surrogates does not encode: pickle writes it (surrogatepass).
        // `to_str` is CPython's UTF-8 view of the str (no bytes object made).
        let Ok(s) = obj.downcast::<PyString>() else {
            return false;
        };
        let Ok(b) = s.to_str() else { return false };
        sized(
            out,
            b.as_bytes(),
            [SHORT_BINUNICODE, BINUNICODE, BINUNICODE8],
        );
    } else if obj.is_exact_instance_of::<PyInt>() {
        let Ok(v) = obj.extract::<i64>() else {
            return false;
        };
        int(out, v);
    } else if obj.is_exact_instance_of::<PyFloat>() {
        let Ok(f) = obj.downcast::<PyFloat>() else {
            return false;
        };
        out.push(BINFLOAT);
        out.extend_from_slice(&f.value().to_be_bytes());
    } else if obj.is_exact_instance_of::<PyBool>() {
        out.push(if obj.is_truthy().unwrap_or(false) {
            NEWTRUE
        } else {
            NEWFALSE
        });
    } else if obj.is_exact_instance_of::<PyBytes>() {
        let Ok(b) = obj.downcast::<PyBytes>() else {
            return false;
        };
        sized(out, b.as_bytes(), [SHORT_BINBYTES, BINBYTES, BINBYTES8]);
    } else if obj.is_exact_instance_of::<PyTuple>() {
        let Ok(t) = obj.downcast::<PyTuple>() else {
            return false;
        };
        if depth >= DEPTH {
            return false;
        }
        let n = t.len();
        if n == 0 {
            out.push(EMPTY_TUPLE);
            return true;
        }
        if n > 3 {
            out.push(MARK);
        }
        for item in t.iter() {
            if !write(&item, out, depth + 1) {
                return false;
            }
        }
        out.push(if n > 3 { TUPLE } else { TUPLE1 + (n as u8 - 1) });
    } else {
        return false;
    }
    true
}

/// A str or bytes opcode (short, 4-byte or 8-byte length) and its bytes.
fn sized(out: &mut Vec<u8>, b: &[u8], ops: [u8; 3]) {
    if b.len() < 256 {
        out.extend_from_slice(&[ops[0], b.len() as u8]);
    } else if let Ok(n) = u32::try_from(b.len()) {
        out.push(ops[1]);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(ops[2]);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(b);
}

/// An int as `pickle` writes it at protocol 2 and above.
fn int(out: &mut Vec<u8>, v: i64) {
    if (0..=0xff).contains(&v) {
        out.extend_from_slice(&[BININT1, v as u8]);
    } else if (0..=0xffff).contains(&v) {
        out.push(BININT2);
        out.extend_from_slice(&(v as u16).to_le_bytes());
    } else if let Ok(v) = i32::try_from(v) {
        out.push(BININT);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        // LONG1: the shortest little-endian two's complement.
        let b = v.to_le_bytes();
        let mut n = 8;
        while n > 1
            && ((b[n - 1] == 0 && b[n - 2] < 0x80) || (b[n - 1] == 0xff && b[n - 2] >= 0x80))
        {
            n -= 1;
        }
        out.extend_from_slice(&[LONG1, n as u8]);
        out.extend_from_slice(&b[..n]);
    }
}

/// Reads a pickle made only of the natively handled opcodes; `None` for anything else.
fn read<'py>(py: Python<'py>, data: &[u8]) -> Option<Bound<'py, PyAny>> {
    let mut r = Reader { data, at: 0 };
    let mut stack = Stack::new(py);
    let mut marks = [0usize; DEPTH as usize];
    let mut nmarks = 0usize;
    loop {
        let op = r.take(1)?[0];
        let v: Bound<'py, PyAny> = match op {
            // What `pickle.loads` refuses goes to it (and its error): a protocol it may not
            // know, a frame longer than the data, a memo write with nothing to write (found
            // by python/tests/test_codec.py's hostile pickles).
            PROTO => {
                if r.take(1)?[0] > 5 {
                    return None;
                }
                continue;
            }
            FRAME => {
                let n = u64::from_le_bytes(r.array()?);
                if n > (r.data.len() - r.at) as u64 {
                    return None;
                }
                continue;
            }
            MEMOIZE | BINPUT => {
                r.take(usize::from(op == BINPUT))?;
                // Nothing above the last mark counts as nothing (pickle's stack fence).
                let fence = if nmarks > 0 { marks[nmarks - 1] } else { 0 };
                if stack.len() <= fence {
                    return None;
                }
                continue;
            }
            // An index up to 2^32 - 1: pickle grows its memo to twice that (or fails); not
            // written by `dump`, left to `pickle.loads`.
            LONG_BINPUT => return None,
            STOP => {
                return if stack.len() == 1 && nmarks == 0 {
                    stack.pop()
                } else {
                    None
                };
            }
            NONE => py.None().into_bound(py),
            NEWTRUE => PyBool::new_bound(py, true).to_owned().into_any(),
            NEWFALSE => PyBool::new_bound(py, false).to_owned().into_any(),
            BININT1 => r.take(1)?[0].into_py(py).into_bound(py),
            BININT2 => u16::from_le_bytes(r.array()?).into_py(py).into_bound(py),
            BININT => i32::from_le_bytes(r.array()?).into_py(py).into_bound(py),
            LONG1 => {
                let n = usize::from(r.take(1)?[0]);
                let b = r.take(n)?;
                if n > 8 {
                    return None;
                }
                let mut w = [if b.last().is_some_and(|&x| x >= 0x80) {
                    0xff
                } else {
                    0
                }; 8];
                w[..n].copy_from_slice(b);
                i64::from_le_bytes(w).into_py(py).into_bound(py)
            }
            BINFLOAT => PyFloat::new_bound(py, f64::from_be_bytes(r.array()?)).into_any(),
            SHORT_BINUNICODE | BINUNICODE | BINUNICODE8 => {
                let n = r.len(op, [SHORT_BINUNICODE, BINUNICODE, BINUNICODE8])?;
                utf8(py, r.take(n)?)?
            }
            SHORT_BINBYTES | BINBYTES | BINBYTES8 => {
                let n = r.len(op, [SHORT_BINBYTES, BINBYTES, BINBYTES8])?;
                PyBytes::new_bound(py, r.take(n)?).into_any()
            }
            EMPTY_TUPLE => PyTuple::empty_bound(py).into_any(),
            0x85..=0x87 => {
                let n = usize::from(op - TUPLE1) + 1;
                let from = stack.len().checked_sub(n)?;
                if nmarks > 0 && marks[nmarks - 1] > from {
                    return None;
                }
                stack.tuple_from(from)?
            }
            MARK => {
                if nmarks >= marks.len() {
                    return None;
                }
                marks[nmarks] = stack.len();
                nmarks += 1;
                continue;
            }
            TUPLE => {
                nmarks = nmarks.checked_sub(1)?;
                stack.tuple_from(marks[nmarks])?
            }
            _ => return None,
        };
        if stack.len() > 4096 {
            return None;
        }
        stack.push(v);
    }
}

/// A str from UTF-8 bytes, validated by CPython's decoder (one pass); `None` (no exception
/// left set) if they are not valid UTF-8, so that `pickle.loads` reports it.
fn utf8<'py>(py: Python<'py>, b: &[u8]) -> Option<Bound<'py, PyAny>> {
    let n = ffi::Py_ssize_t::try_from(b.len()).ok()?;
    // SAFETY: GIL held (`py`); `b` is valid for `n` bytes; the result is a new reference or
    // NULL with an exception set, which is cleared here.
    unsafe {
        let o = ffi::PyUnicode_DecodeUTF8(b.as_ptr().cast(), n, c"strict".as_ptr());
        if o.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(Bound::from_owned_ptr(py, o))
    }
}

/// The reader's value stack: its first [`INLINE`] items in place (no allocation for the
/// common small objects), all of them in a `Vec` past that. Holds one reference per item.
struct Stack<'py> {
    py: Python<'py>,
    /// Owned references in `inline[..n]` while `n <= INLINE`.
    inline: [*mut ffi::PyObject; INLINE],
    /// `n > INLINE`: every item is in `spill`.
    n: usize,
    spill: Vec<Bound<'py, PyAny>>,
}

/// Items a [`Stack`] holds without allocating.
const INLINE: usize = 16;

impl<'py> Stack<'py> {
    fn new(py: Python<'py>) -> Self {
        Stack {
            py,
            inline: [std::ptr::null_mut(); INLINE],
            n: 0,
            spill: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        if self.n > INLINE {
            self.spill.len()
        } else {
            self.n
        }
    }

    fn push(&mut self, v: Bound<'py, PyAny>) {
        if self.n < INLINE {
            self.inline[self.n] = v.into_ptr();
            self.n += 1;
            return;
        }
        if self.n == INLINE {
            // Moves to the heap once, for good.
            self.spill = Vec::with_capacity(4 * INLINE);
            for &p in &self.inline {
                // SAFETY: `inline[..INLINE]` holds owned references; each moves to `spill`
                // once (n goes past INLINE, so Drop no longer reads `inline`).
                let item = unsafe { Bound::from_owned_ptr(self.py, p) };
                self.spill.push(item);
            }
            self.n = INLINE + 1;
        }
        self.spill.push(v);
    }

    fn pop(&mut self) -> Option<Bound<'py, PyAny>> {
        if self.n > INLINE {
            return self.spill.pop();
        }
        self.n = self.n.checked_sub(1)?;
        // SAFETY: `inline[n]` held an owned reference, now out of the stack (n decreased).
        Some(unsafe { Bound::from_owned_ptr(self.py, self.inline[self.n]) })
    }

    /// Takes the items from `from` on off the stack and returns them as a tuple (`None` if
    /// `from` is past the top, or no memory).
    fn tuple_from(&mut self, from: usize) -> Option<Bound<'py, PyAny>> {
        let len = self.len();
        let k = len.checked_sub(from)?;
        let size = ffi::Py_ssize_t::try_from(k).ok()?;
        // SAFETY: GIL held; PyTuple_New gives a new reference (NULL on memory error, then
        // cleared); PyTuple_SetItem steals each item's reference into slot i < k. The inline
        // items `from..len` leave the stack (n = from) as their references move.
        unsafe {
            let t = ffi::PyTuple_New(size);
            if t.is_null() {
                ffi::PyErr_Clear();
                return None;
            }
            if self.n > INLINE {
                for (i, item) in self.spill.drain(from..).enumerate() {
                    ffi::PyTuple_SetItem(t, i as ffi::Py_ssize_t, item.into_ptr());
                }
            } else {
                for (i, &p) in self.inline[from..len].iter().enumerate() {
                    ffi::PyTuple_SetItem(t, i as ffi::Py_ssize_t, p);
                }
                self.n = from;
            }
            Some(Bound::from_owned_ptr(self.py, t))
        }
    }
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        if self.n <= INLINE {
            for &p in &self.inline[..self.n] {
                // SAFETY: `inline[..n]` holds owned references (GIL held: `py` lives).
                unsafe { ffi::Py_DECREF(p) };
            }
        }
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let b = self.data.get(self.at..end)?;
        self.at = end;
        Some(b)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// The length after a sized opcode `op` (one of `ops`: 1-, 4- or 8-byte length).
    fn len(&mut self, op: u8, ops: [u8; 3]) -> Option<usize> {
        if op == ops[0] {
            Some(usize::from(self.take(1)?[0]))
        } else if op == ops[1] {
            usize::try_from(u32::from_le_bytes(self.array()?)).ok()
        } else {
            usize::try_from(u64::from_le_bytes(self.array()?)).ok()
        }
    }
}

thread_local! {
    /// Reused encoding buffers (one per role, so that a key and a value can be held at once).
    static BUFS: [std::cell::Cell<Vec<u8>>; 2] = const { [std::cell::Cell::new(Vec::new()), std::cell::Cell::new(Vec::new())] };
}

/// Runs `f` with this thread's empty buffer number `which` (0 or 1), reusing its allocation.
/// The buffer is taken out while `f` runs: a nested use (Python code run by `f` calling back
/// in) gets a fresh one, never the same memory.
pub fn with_buf<R>(which: usize, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut b = BUFS.with(|bs| bs[which & 1].take());
    b.clear();
    let r = f(&mut b);
    if b.capacity() <= 1 << 20 {
        BUFS.with(|bs| bs[which & 1].set(b));
    }
    r
}
