"""``Value`` and ``Array`` with multiprocessing's signatures, in shared memory.

A ``Value`` is one atomic word (the core's ``AtomicValue``): ``.value`` is read and written
atomically without a lock, and the integer and float typecodes have atomic read-modify-write
operations (``fetch_add``, ``fetch_sub``, ``swap``, ``compare_exchange``). An ``Array`` is the
core's ``SeqArray``: an element read is never torn, and each write (an element or a slice) is
one update under the array's writer lock, so writers never interleave. ``get_lock()`` returns the object's lock (an ``RLock``
by default, as multiprocessing), for compound updates such as ``v.value += 1``.
"""

import ctypes

from . import _native, _segment
from .synchronize import RLock

__all__ = ["Value", "Array", "RawValue", "RawArray"]

TYPECODES = "bBhHiIlLqQfdc"


def typecode_of(typecode_or_type):
    """The array-module typecode of ``typecode_or_type`` (a typecode or a ctypes type)."""
    if isinstance(typecode_or_type, str):
        code = typecode_or_type
    else:
        code = getattr(typecode_or_type, "_type_", None)
        if not isinstance(code, str) or code not in TYPECODES:
            raise TypeError(
                "expected a typecode (%s) or a ctypes number or c_char type, got %r"
                % (" ".join(TYPECODES), typecode_or_type)
            )
    if len(code) != 1 or code not in TYPECODES:
        raise ValueError("typecode %r is not one of %s" % (code, " ".join(TYPECODES)))
    return code


def _zero(code):
    return b"\0" if code == "c" else 0


def _lock_of(lock, segment):
    if lock is True:
        return RLock(segment=segment)
    if lock is False or lock is None:
        return None
    if not (hasattr(lock, "acquire") and hasattr(lock, "release")):
        raise AttributeError("%r has no method 'acquire'" % (lock,))
    return lock


class _Locked:
    """``get_lock()``/``get_obj()`` and the ``acquire``/``release``/``with`` shortcuts of
    multiprocessing's synchronized wrappers."""

    def get_lock(self):
        """The lock given (or made) at creation; ``AttributeError`` for ``lock=False``."""
        if self._lock is None:
            raise AttributeError("%s was created with lock=False and has no lock" % (self,))
        return self._lock

    def get_obj(self):
        """The object itself (multiprocessing returns the raw ctypes object here)."""
        return self

    def acquire(self, *args, **kwargs):
        return self.get_lock().acquire(*args, **kwargs)

    def release(self):
        return self.get_lock().release()

    def __enter__(self):
        return self.get_lock().__enter__()

    def __exit__(self, *args):
        return self.get_lock().__exit__(*args)


class Value(_native.Value, _Locked, _segment.SharedObject):
    """A shared number (or character), like ``multiprocessing.Value``.

    ``Value(typecode_or_type, *args, lock=True, name=None, segment=None)``: ``typecode_or_type``
    is one of ``b B h H i I l L q Q f d c`` or a ctypes type (``ctypes.c_int`` ...); ``args[0]``
    is the initial value (0, or ``b"\\0"`` for ``'c'``). ``lock=True`` makes an ``RLock``
    (``get_lock()``), ``lock=False`` none, and an existing lock is used as given.

    ``.value`` is one atomic load or store (no lock needed, never torn). ``v.value += 1`` is a
    load and a store: do it under ``get_lock()``, or use ``fetch_add(1)``, which is one atomic
    operation. ``fetch_add(n=1)``, ``fetch_sub(n=1)``, ``swap(v)`` and
    ``compare_exchange(current, new) -> (ok, value)`` work for every numeric typecode (integers
    wrap at their width, as ctypes does).
    """

    def __new__(cls, typecode_or_type, *args, lock=True, name=None, segment=None):
        code = typecode_of(typecode_or_type)
        if len(args) > 1:
            raise TypeError("Value() takes one initial value, got %d" % len(args))
        init = args[0] if args else _zero(code)

        def make(seg, obj):
            return _native.Value.__new__(cls, seg, obj, code, init)

        self = _segment.create(make, name, segment)
        self._set_lock(_lock_of(lock, segment))  # get_lock() and _lock are native
        return self

    @classmethod
    def _attach(cls, segment, name, state):
        code, lock = state
        self = _native.Value.__new__(cls, segment, name, code, _zero(code))
        self._set_lock(lock)
        return self

    def _state(self):
        return (self._typecode, self._lock)

    def __repr__(self):
        return "<shmkit.Value %r %r at %s>" % (self._typecode, self.value, self.ref)


_native._specialize(Value)  # as for Lock in synchronize.py


class Array(_native.Array, _Locked, _segment.SharedObject):
    """A shared fixed-length array, like ``multiprocessing.Array``.

    ``Array(typecode_or_type, size_or_initializer, lock=True, name=None, segment=None)``:
    an int makes a zeroed array of that length, a sequence (or bytes, for ``'c'``) an array
    holding it. Indexing, slicing (get and set; a slice assignment is one update under the
    writer lock), ``len``, iteration (over one copy), ``get_lock()``, ``get_obj()``; ``'c'`` arrays
    also have ``.value`` (bytes up to the first NUL) and ``.raw`` (every byte).
    """

    def __new__(cls, typecode_or_type, size_or_initializer, *, lock=True, name=None, segment=None):
        code = typecode_of(typecode_or_type)
        if isinstance(size_or_initializer, int):
            size, init = size_or_initializer, None
        else:
            init = list(size_or_initializer)
            size = len(init)
        if size < 0:
            raise ValueError("array size must be >= 0")

        def make(seg, obj):
            return _native.Array.__new__(cls, seg, obj, code, size)

        self = _segment.create(make, name, segment)
        if init:
            self[:] = init
        self._lock = _lock_of(lock, segment)
        return self

    @classmethod
    def _attach(cls, segment, name, state):
        code, length, lock = state
        self = _native.Array.__new__(cls, segment, name, code, length)
        self._lock = lock
        return self

    def _state(self):
        return (self._typecode, len(self), self._lock)

    def __iter__(self):
        return iter(self[:])

    def __reversed__(self):
        return reversed(self[:])

    def __contains__(self, item):
        return item in self[:]

    def tolist(self):
        """A copy of the array as a list (read block by block, each block untorn)."""
        return self.snapshot()

    @property
    def value(self):
        """``'c'`` arrays: the bytes up to the first NUL (settable)."""
        return self.raw_bytes().split(b"\0", 1)[0]

    @value.setter
    def value(self, data):
        if len(data) < len(self):
            data = bytes(data) + b"\0"
        self.write_bytes(bytes(data))

    @property
    def raw(self):
        """``'c'`` arrays: every byte (settable)."""
        return self.raw_bytes()

    @raw.setter
    def raw(self, data):
        self.write_bytes(bytes(data))

    def __repr__(self):
        return "<shmkit.Array %r len %d at %s>" % (self._typecode, len(self), self.ref)


def RawValue(typecode_or_type, *args, name=None, segment=None):
    """``Value(..., lock=False)``."""
    return Value(typecode_or_type, *args, lock=False, name=name, segment=segment)


def RawArray(typecode_or_type, size_or_initializer, *, name=None, segment=None):
    """``Array(..., lock=False)``."""
    return Array(typecode_or_type, size_or_initializer, lock=False, name=name, segment=segment)


def _open_value(seg, name, type_name, length):
    code = _CODE_OF_TYPE.get(type_name)
    if code is None:
        raise TypeError("value %s/%s has element type %s" % (seg, name, type_name))
    # The directory does not record which lock a value was made with: opened by reference,
    # a value comes without one (lock=False); pickle it to keep its lock.
    return Value._attach(seg, name, (code, None))


def _open_array(seg, name, type_name, length):
    code = _CODE_OF_TYPE.get(type_name)
    if code is None:
        raise TypeError("array %s/%s has element type %s" % (seg, name, type_name))
    return Array._attach(seg, name, (code, length, None))


_CODE_OF_TYPE = {
    "i8": "b", "u8": "B", "i16": "h", "u16": "H", "i32": "i", "u32": "I",
    "i64": "q", "u64": "Q", "f32": "f", "f64": "d", "_native::values::Char": "c",
}

_segment.register_opener("value", _open_value)
_segment.register_opener("seq_array", _open_array)
