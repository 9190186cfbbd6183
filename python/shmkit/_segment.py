"""Where objects live, how they cross processes, and who removes them.

This module is the one mechanism every shmkit object uses (see ``python/README.md``):

* **Placement.** An object is a named entry in a *segment* (a file in ``/dev/shm`` mapped by
  every process that uses it). A process that creates objects without naming a segment gets
  its own *default segment*, made on first use, named ``shmkit-py-<pid>-<random>``; when it
  fills up (space or directory entries) a fresh one is started. Object names in it are
  ``o1``, ``o2`` ... (one counter per process, so they never collide). A fork child starts its
  own default segment when it first creates an object (it never writes names into its
  parent's).
* **Pickling.** An object pickles as a *reference*: ``(class, segment name, object name,
  extra state)``, never as a copy of its contents. Unpickling opens the segment by name (once
  per process) and the object in it. So an object passes to ``multiprocessing.Process(args=...)``
  under fork (inherited as is), spawn and forkserver (pickled), through a ``Pool``'s task
  queue, a ``Queue``, or a file; ``shmkit.open(obj.ref)`` opens it from an unrelated process.
* **Removal.** The process that created a segment removes its name from ``/dev/shm`` when it
  exits normally (a ``multiprocessing.util.Finalize`` with a negative exit priority, which
  multiprocessing runs at interpreter exit in the main process, after joining the children,
  and at the end of every multiprocessing child). Removing the name does not unmap it: children
  that still have it mapped keep working, and the memory is freed when the last one exits. A
  process that never created a segment removes nothing. A process killed by a signal leaves
  its segments behind (``shmkit.cleanup()`` removes those of dead processes).
"""

import itertools
import os
import secrets
import threading
from multiprocessing import util as _mp_util

from . import _native, errors

__all__ = ["SharedObject", "create", "cleanup", "open"]

#: Size of a default segment. tmpfs allocates pages only when touched, so this is an upper
#: bound per segment, not memory used.
DEFAULT_SIZE = 64 << 20
#: Objects per default segment.
DEFAULT_DIR_CAPACITY = 1024
#: Prefix of the default segments' names.
PREFIX = "shmkit-py-"

_lock = threading.Lock()
_current = None  # name of this process's default segment (None: none yet)
_names = itertools.count(1)


def _after_fork_in_child():
    global _current, _lock, _names
    # The parent's default segment is the parent's to fill and remove.
    _current = None
    _lock = threading.Lock()
    _names = itertools.count(1)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _remove(pid, name):
    # Finalize already skips other processes; the pid check keeps that true for any caller.
    if os.getpid() == pid:
        _native.unlink_segment(name)


def new_segment(size=DEFAULT_SIZE, dir_capacity=DEFAULT_DIR_CAPACITY, name=None, keep=False):
    """Creates a segment (a unique default name unless ``name``) that this process removes at a
    normal exit unless ``keep``; returns its name."""
    if name is None:
        name = "%s%d-%s" % (PREFIX, os.getpid(), secrets.token_hex(6))
    _native.create_segment(name, size, dir_capacity)
    if not keep:
        _mp_util.Finalize(None, _remove, args=(os.getpid(), name), exitpriority=-100)
    return name


def _default_segment():
    global _current
    if _current is None:
        _current = new_segment()
    return _current


def create(factory, name=None, segment=None):
    """Creates (or finds) a native object with ``factory(segment_name, object_name)``.

    Without ``segment`` the object goes into this process's default segment, under a fresh
    name unless ``name`` is given; a full default segment is replaced by a new one (large enough
    for the object) and the creation retried there.
    """
    global _current
    if segment is not None:
        return factory(segment, name if name is not None else _fresh_name())
    with _lock:
        seg = _default_segment()
        obj = name if name is not None else _fresh_name()
    try:
        return factory(seg, obj)
    except errors.OutOfSpace as e:
        needed = e.args[1] if len(e.args) > 1 else 0
        with _lock:
            if _current == seg:
                _current = new_segment(size=max(DEFAULT_SIZE, 2 * needed + (1 << 20)))
            seg = _current
        return factory(seg, obj)


def _fresh_name():
    return "o%d" % next(_names)


def _rebuild(cls, segment, name, state):
    return cls._attach(segment, name, state)


class SharedObject:
    """Mixin of every shmkit object: the reference it pickles as.

    A subclass has ``_segment`` and ``_name`` (the native base class provides them), may
    override ``_state()`` (extra picklable data, e.g. a typecode or the object's lock) and
    implements ``_attach(segment, name, state)`` (a classmethod that opens the object again).
    """

    __slots__ = ()

    @property
    def ref(self):
        """``"<segment>/<object>"``: what :func:`shmkit.open` takes in another process."""
        return "%s/%s" % (self._segment, self._name)

    def _state(self):
        return ()

    def __reduce__(self):
        return (_rebuild, (type(self), self._segment, self._name, self._state()))

    def __repr__(self):
        return "<shmkit.%s %s>" % (type(self).__name__, self.ref)


_opener = {}  # kind name -> function(segment, name, type_name, length) -> object


def register_opener(kind, fn):
    """Lets :func:`open` build objects of the directory kind ``kind`` (``"counter"`` ...)."""
    _opener[kind] = fn


def open(ref):
    """Opens the object ``ref`` (``"<segment>/<object>"``, as ``obj.ref`` gives it) from any
    process of the same user, with the class that created it."""
    segment, sep, name = ref.rpartition("/")
    if not sep or not segment or not name:
        raise ValueError("a reference is '<segment>/<object>', got %r" % (ref,))
    kind, type_name, length = _native.describe(segment, name)
    fn = _opener.get(kind)
    if fn is None:
        raise errors.TypeMismatch("object %r is a %s, which shmkit's Python API cannot open" % (ref, kind))
    return fn(segment, name, type_name, length)


def cleanup():
    """Removes the default segments (``/dev/shm/shmkit-py-<pid>-*``) of processes that are no
    longer running, e.g. left by a process killed with SIGKILL. Returns the names removed."""
    removed = []
    try:
        entries = os.listdir("/dev/shm")
    except OSError:
        return removed
    for entry in entries:
        if not entry.startswith(PREFIX):
            continue
        try:
            # The core's liveness rule: the creator's pid *and* start time (pid reuse).
            if _native.segment_creator_alive(entry):
                continue
        except errors.Error:
            continue  # not ours, not a segment, or gone meanwhile: leave it
        _native.unlink_segment(entry)
        removed.append(entry)
    return removed
