"""``dict()``, ``list()`` and ``Namespace()``: ``Manager().dict()`` etc. without a server.

On the core's shared hash map (``ByteMap``) and list (``ByteList``): reads take no lock and
never block; writers of different keys rarely meet (64 striped locks); a process killed in the
middle of any operation leaves the collection consistent (the operation happened or not).

* **Keys** of a :class:`dict` are ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None`` and
  tuples of them, encoded canonically, so that keys equal in Python are one key: ``1``, ``1.0``
  and ``True`` are the same key (as in a dict), and ``d["job-17"]`` finds what another process
  stored under ``"job-17"``. Iteration gives keys back decoded: an integral float or a bool
  comes back as an ``int``. Other key types raise :class:`TypeError`.
* **Values** are pickled (``pickle.HIGHEST_PROTOCOL``): any picklable object; what you get is
  a copy (mutating it does not change the shared value: assign it back, as with a Manager).
* **Fixed dimensions**, chosen at creation: ``capacity`` entries (default 1024 for a dict and a
  list, 256 for a Namespace), encoded keys up to ``key_max`` bytes (default 128), pickled
  values up to ``value_max`` bytes (default 1024). A full dict or list raises
  :class:`shmkit.Error` naming its limit; a too long key or value raises :class:`ValueError`.
  Memory is about ``capacity x (key_max + 2 x value_max)`` bytes.
* **Order**: a dict iterates in slot order, not insertion order.
* A :class:`list` supports ``append``, ``extend``, ``l[i]``, ``l[i] = v``, slicing reads,
  ``len``, ``iter``, ``pop()`` (the last element only) and ``clear()``; no insertion or
  deletion in the middle. An element whose appender was killed mid-append is a *hole*: it
  counts in ``len``, reads as ``None`` through ``l[i]`` and is skipped by iteration.
"""

import pickle
import struct

from collections.abc import MutableMapping

from . import _native, _segment

__all__ = ["dict", "list", "Namespace", "encode_key", "decode_key"]

_builtin_dict = dict
_builtin_list = list

#: Defaults of a dict and a list.
DEFAULT_CAPACITY = 1024
DEFAULT_KEY_MAX = 128
DEFAULT_VALUE_MAX = 1024


# -- keys ---------------------------------------------------------------------------------------


def encode_key(key):
    """The canonical bytes of a dict key (see the module's doc)."""
    if isinstance(key, str):
        return b"s" + key.encode("utf-8", "surrogatepass")
    if isinstance(key, bool) or isinstance(key, int):
        return b"i" + str(int(key)).encode()
    if isinstance(key, float):
        if key.is_integer():
            return b"i" + str(int(key)).encode()
        return b"f" + struct.pack(">d", 0.0 if key == 0 else key)
    if isinstance(key, (bytes, bytearray)):
        return b"b" + bytes(key)
    if key is None:
        return b"N"
    if isinstance(key, tuple):
        parts = [encode_key(k) for k in key]
        return b"t" + b"".join(struct.pack(">I", len(p)) + p for p in parts)
    raise TypeError(
        "shmkit.dict keys are str, bytes, int, float, bool, None or tuples of them, not %s"
        % type(key).__name__
    )


def decode_key(data):
    """The key whose canonical bytes are ``data``."""
    tag, body = data[:1], data[1:]
    if tag == b"s":
        return body.decode("utf-8", "surrogatepass")
    if tag == b"i":
        return int(body)
    if tag == b"f":
        return struct.unpack(">d", body)[0]
    if tag == b"b":
        return bytes(body)
    if tag == b"N":
        return None
    if tag == b"t":
        out, i = [], 0
        while i < len(body):
            (n,) = struct.unpack(">I", body[i : i + 4])
            out.append(decode_key(body[i + 4 : i + 4 + n]))
            i += 4 + n
        return tuple(out)
    raise ValueError("not an encoded shmkit.dict key: %r" % (data,))


def _dumps(v):
    return pickle.dumps(v, pickle.HIGHEST_PROTOCOL)


_MISSING = object()


# -- dict ---------------------------------------------------------------------------------------


class dict(_native.ByteDict, _segment.SharedObject, MutableMapping):
    """A dict shared between processes (``Manager().dict()`` without a server).

    ``dict(mapping_or_iterable=(), *, capacity=1024, key_max=128, value_max=1024, name=None,
    segment=None, **kwargs)``; see the module's doc for keys, values and limits.
    """

    def __new__(cls, *args, capacity=DEFAULT_CAPACITY, key_max=DEFAULT_KEY_MAX,
                value_max=DEFAULT_VALUE_MAX, name=None, segment=None, **kwargs):
        return _segment.create(
            lambda s, n: _native.ByteDict.__new__(cls, s, n, capacity, key_max, value_max), name, segment
        )

    def __init__(self, *args, capacity=None, key_max=None, value_max=None, name=None, segment=None, **kwargs):
        if args or kwargs:
            self.update(*args, **kwargs)

    def _state(self):
        return self.dims

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.ByteDict.__new__(cls, segment, name, *state)

    def __reduce__(self):
        return _segment.SharedObject.__reduce__(self)

    # d[key], d[key] = value and del d[key] are the native class's (no Python frame): they
    # encode the key as encode_key() does and pickle the value natively for small plain
    # objects; a missing key calls __missing__ (override it as in a dict subclass).

    def __missing__(self, key):
        raise KeyError(key)

    def __contains__(self, key):
        try:
            k = encode_key(key)
        except TypeError:
            return False
        return _native.ByteDict.contains(self, k)

    def __len__(self):
        return _native.ByteDict.len(self)

    def __iter__(self):
        return iter([decode_key(k) for k, _ in _native.ByteDict.items(self)])

    def get(self, key, default=None):
        """``d[key]`` if present, else ``default``."""
        v = _native.ByteDict.get(self, encode_key(key))
        return default if v is None else pickle.loads(v)

    def items(self):
        """The ``(key, value)`` pairs (a list: a copy read entry by entry)."""
        return [(decode_key(k), pickle.loads(v)) for k, v in _native.ByteDict.items(self)]

    def keys(self):
        """The keys (a list)."""
        return [decode_key(k) for k, _ in _native.ByteDict.items(self)]

    def values(self):
        """The values (a list)."""
        return [pickle.loads(v) for _, v in _native.ByteDict.items(self)]

    def pop(self, key, default=_MISSING):
        """Removes ``key`` and returns its value (``default``, or ``KeyError``, if absent)."""
        v = _native.ByteDict.remove(self, encode_key(key))
        if v is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return pickle.loads(v)

    def popitem(self):
        """Removes and returns some ``(key, value)`` pair; ``KeyError`` if empty."""
        for k, _ in _native.ByteDict.items(self):
            v = _native.ByteDict.remove(self, k)
            if v is not None:
                return decode_key(k), pickle.loads(v)
        raise KeyError("popitem(): dictionary is empty")

    def setdefault(self, key, default=None):
        """``d[key]``, first setting it to ``default`` if absent (atomically)."""
        return pickle.loads(_native.ByteDict.setdefault(self, encode_key(key), _dumps(default)))

    def clear(self):
        """Removes every entry."""
        _native.ByteDict.clear(self)

    def copy(self):
        """A plain ``dict`` with the current entries."""
        return _builtin_dict(self.items())

    def __eq__(self, other):
        if isinstance(other, MutableMapping) or isinstance(other, _builtin_dict):
            return self.copy() == _builtin_dict(other.items())
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "<shmkit.dict %s %r>" % (self.ref, self.copy())


# -- list ---------------------------------------------------------------------------------------


class list(_native.ByteSeq, _segment.SharedObject):
    """A list shared between processes (``Manager().list()`` without a server).

    ``list(iterable=(), *, capacity=1024, value_max=1024, name=None, segment=None)``; see the
    module's doc for what it supports.
    """

    def __new__(cls, iterable=(), *, capacity=DEFAULT_CAPACITY, value_max=DEFAULT_VALUE_MAX,
                name=None, segment=None):
        return _segment.create(
            lambda s, n: _native.ByteSeq.__new__(cls, s, n, capacity, value_max), name, segment
        )

    def __init__(self, iterable=(), *, capacity=None, value_max=None, name=None, segment=None):
        self.extend(iterable)

    def _state(self):
        return self.dims

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.ByteSeq.__new__(cls, segment, name, *state)

    def _index(self, i):
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("list index out of range")
        return i

    def __len__(self):
        return _native.ByteSeq.len(self)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        v = _native.ByteSeq.get(self, self._index(i))
        return None if v is None else pickle.loads(v)

    def __setitem__(self, i, value):
        if isinstance(i, slice):
            raise TypeError("shmkit.list does not support slice assignment")
        _native.ByteSeq.set(self, self._index(i), _dumps(value))

    def __iter__(self):
        return iter([pickle.loads(v) for v in _native.ByteSeq.items(self)])

    def __contains__(self, value):
        return any(v == value for v in self)

    def append(self, value):
        """Appends ``value`` (lock-free between appenders)."""
        _native.ByteSeq.append(self, _dumps(value))

    def extend(self, iterable):
        """Appends every item of ``iterable``."""
        for v in iterable:
            self.append(v)

    def pop(self, index=-1):
        """Removes and returns the last element (only the last: ``index`` must be -1 or
        ``len - 1``)."""
        if index != -1 and index != len(self) - 1:
            raise ValueError("shmkit.list.pop() removes the last element only")
        v = _native.ByteSeq.pop(self)
        if v is None:
            raise IndexError("pop from empty list")
        return pickle.loads(v)

    def clear(self):
        """Removes every element."""
        _native.ByteSeq.clear(self)

    def index(self, value):
        """The first index of ``value``; ``ValueError`` if absent."""
        for i in range(len(self)):
            if self[i] == value:
                return i
        raise ValueError("%r is not in list" % (value,))

    def count(self, value):
        """How many elements equal ``value``."""
        return sum(1 for v in self if v == value)

    def copy(self):
        """A plain ``list`` with the current elements."""
        return _builtin_list(self)

    def __eq__(self, other):
        if isinstance(other, (list, _builtin_list)):
            return self.copy() == _builtin_list(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "<shmkit.list %s %r>" % (self.ref, self.copy())


# -- Namespace ----------------------------------------------------------------------------------


class Namespace(_segment.SharedObject):
    """``Manager().Namespace()`` without a server: attributes shared between processes.

    ``Namespace(*, capacity=256, value_max=1024, name=None, segment=None, **attrs)``.
    Attributes whose name starts with ``_`` stay local to the object (as with a Manager's
    Namespace); the others are pickled into a shared map keyed by name (``ref`` is the
    object's reference, as on every shmkit object).
    """

    def __init__(self, *, capacity=256, value_max=DEFAULT_VALUE_MAX, name=None, segment=None, **attrs):
        m = _segment.create(
            lambda s, n: _native.ByteDict(s, n, capacity, DEFAULT_KEY_MAX, value_max), name, segment
        )
        object.__setattr__(self, "_m", m)
        for k, v in attrs.items():
            setattr(self, k, v)

    @property
    def _segment(self):
        return self._m._segment

    @property
    def _name(self):
        return self._m._name

    def _state(self):
        return self._m.dims

    @classmethod
    def _attach(cls, segment, name, state):
        self = object.__new__(cls)
        object.__setattr__(self, "_m", _native.ByteDict(segment, name, *state))
        return self

    def __getattr__(self, attr):
        if attr.startswith("_"):
            raise AttributeError(attr)
        v = self._m.get(attr.encode())
        if v is None:
            raise AttributeError(attr)
        return pickle.loads(v)

    def __setattr__(self, attr, value):
        if attr.startswith("_"):
            object.__setattr__(self, attr, value)
        else:
            self._m.set(attr.encode(), _dumps(value))

    def __delattr__(self, attr):
        if attr.startswith("_"):
            object.__delattr__(self, attr)
        elif self._m.remove(attr.encode()) is None:
            raise AttributeError(attr)

    def __repr__(self):
        items = sorted((k.decode(), pickle.loads(v)) for k, v in self._m.items())
        return "Namespace(%s)" % ", ".join("%s=%r" % kv for kv in items)
