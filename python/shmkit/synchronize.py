"""multiprocessing's synchronization primitives on shmkit's robust futex locks.

Same names, signatures and exceptions as :mod:`multiprocessing.synchronize`. What differs, on
purpose:

* A ``Lock``/``RLock`` whose holder **died** holding it is not lost: the next ``acquire()``
  takes it and raises :class:`shmkit.OwnerDied` *while holding it*; repair the protected data
  and call ``mark_consistent()`` (until someone does, every acquirer is told again).
  ``with lock:`` releases the lock before that exception leaves ``__enter__``.
* A ``Semaphore``'s permits held by a process that died are given back.
* A ``Barrier`` party that dies (after having taken part once) breaks the barrier: the others
  get ``BrokenBarrierError`` instead of hanging. The ``action`` runs in the last party to
  arrive, right after the others are released (not before, as in threading).
* Objects pickle as references: they may be passed anywhere (a ``Pool``, a ``Queue``), not
  only to a ``Process`` at its start.
* Every blocking call releases the GIL and is interrupted by Ctrl-C (``KeyboardInterrupt``; an
  interrupted ``Barrier.wait`` breaks the barrier, as threading's does).
* ``Condition.notify(n)`` may wake more than ``n`` waiters (a spurious wake-up for the others):
  use ``wait_for`` or a loop, as the documentation of both modules advises anyway.
"""

import time

from . import _native, _segment

__all__ = ["Lock", "RLock", "Semaphore", "BoundedSemaphore", "Event", "Condition", "Barrier"]


def _make(native, cls, name, segment, *args):
    return _segment.create(lambda s, n: native.__new__(cls, s, n, *args), name, segment)


class Lock(_native.Lock, _segment.SharedObject):
    """A non-recursive lock, like ``multiprocessing.Lock()``, that knows its holder.

    ``acquire(block=True, timeout=None) -> bool``, ``release()``, ``with lock:``. Raises
    :class:`shmkit.OwnerDied` from ``acquire`` (with the lock held) when the previous holder
    died holding it; then repair and call ``mark_consistent()``. Acquiring a lock the same
    thread holds raises :class:`shmkit.WouldDeadlock` instead of hanging (returns ``False``
    with ``block=False`` or a timeout).
    """

    def __new__(cls, *, ctx=None, name=None, segment=None):
        return _make(_native.Lock, cls, name, segment)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Lock.__new__(cls, segment, name)


class RLock(_native.RLock, _segment.SharedObject):
    """A recursive lock, like ``multiprocessing.RLock()``: the holding thread may take it
    again; each ``acquire`` needs its ``release``. Robust like :class:`Lock`."""

    def __new__(cls, *, ctx=None, name=None, segment=None):
        return _make(_native.RLock, cls, name, segment)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.RLock.__new__(cls, segment, name)


# Descriptors of their own for the hot methods, so that CPython specializes their calls (see
# ``_native._specialize``); a subclass of these inherits them (correct, just not specialized).
_native._specialize(Lock)
_native._specialize(RLock)


class Semaphore(_native.Semaphore, _segment.SharedObject):
    """``multiprocessing.Semaphore(value=1)``: ``acquire(block=True, timeout=None)``,
    ``release()``, ``get_value()``, ``with``. Permits held by a dead process come back."""

    def __new__(cls, value=1, *, ctx=None, name=None, segment=None):
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        return _make(_native.Semaphore, cls, name, segment, value, 0)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Semaphore.__new__(cls, segment, name, 0, 0)


class BoundedSemaphore(_native.Semaphore, _segment.SharedObject):
    """``multiprocessing.BoundedSemaphore(value=1)``: a ``release()`` past ``value`` raises
    ``ValueError`` (:class:`shmkit.SemaphoreOverRelease`)."""

    def __new__(cls, value=1, *, ctx=None, name=None, segment=None):
        if value < 1:
            raise ValueError("bounded semaphore value must be >= 1")
        return _make(_native.Semaphore, cls, name, segment, value, value)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Semaphore.__new__(cls, segment, name, 0, 1)


class Event(_native.Event, _segment.SharedObject):
    """``multiprocessing.Event()``: ``is_set()``, ``set()``, ``clear()``,
    ``wait(timeout=None) -> bool``."""

    def __new__(cls, *, ctx=None, name=None, segment=None):
        return _make(_native.Event, cls, name, segment)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Event.__new__(cls, segment, name)


class _Condvar(_native.Condvar, _segment.SharedObject):
    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Condvar.__new__(cls, segment, name)


class Condition:
    """``multiprocessing.Condition(lock=None)`` (an ``RLock`` by default; a shmkit ``Lock``
    or ``RLock`` may be given). ``acquire``/``release``/``with``, ``wait(timeout=None) -> bool``,
    ``wait_for(predicate, timeout=None)``, ``notify(n=1)``, ``notify_all()``; waiting and
    notifying need the lock held (``RuntimeError`` otherwise, as threading)."""

    def __init__(self, lock=None, *, ctx=None, name=None, segment=None):
        if lock is None:
            lock = RLock(segment=segment)
        elif not isinstance(lock, (_native.Lock, _native.RLock)):
            raise TypeError("Condition needs a shmkit Lock or RLock, got %r" % (lock,))
        self._setup(lock, _make(_native.Condvar, _Condvar, name, segment))

    def _setup(self, lock, cv):
        self._lock = lock
        self._cv = cv
        self.acquire = lock.acquire
        self.release = lock.release

    def __reduce__(self):
        return (_rebuild_condition, (self._lock, self._cv))

    def __enter__(self):
        return self._lock.__enter__()

    def __exit__(self, *args):
        return self._lock.__exit__(*args)

    def _check_owned(self, what):
        if not self._lock._is_owned():
            raise RuntimeError("cannot %s on un-acquired lock" % what)

    def wait(self, timeout=None):
        """Releases the lock, waits for a notify (at most ``timeout``), retakes the lock;
        returns ``False`` if the time ran out."""
        self._check_owned("wait")
        since = self._cv.generation()
        depth = self._lock._release_save()
        try:
            return self._cv.wait_since(since, timeout)
        finally:
            self._lock._acquire_restore(depth)

    def wait_for(self, predicate, timeout=None):
        """Waits until ``predicate()`` is true (checked under the lock), at most ``timeout``;
        returns the last value of ``predicate()``."""
        result = predicate()
        if result:
            return result
        endtime = None if timeout is None else time.monotonic() + timeout
        waittime = timeout
        while not result:
            if endtime is not None:
                waittime = endtime - time.monotonic()
                if waittime <= 0:
                    break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n=1):
        """Wakes up to ``n`` waiters (see the module notes)."""
        self._check_owned("notify")
        self._cv.notify(n)

    def notify_all(self):
        """Wakes every waiter."""
        self._check_owned("notify")
        self._cv.notify_all()

    def __repr__(self):
        return "<shmkit.Condition %r %s>" % (self._lock, self._cv.ref)


def _rebuild_condition(lock, cv):
    c = Condition.__new__(Condition)
    c._setup(lock, cv)
    return c


class Barrier(_native.Barrier, _segment.SharedObject):
    """``multiprocessing.Barrier(parties, action=None, timeout=None)``: ``wait(timeout=None)``
    returns the arrival index (0 to parties-1); ``parties``, ``n_waiting``, ``broken``,
    ``abort()``, ``reset()``; ``BrokenBarrierError`` (also a ``threading.BrokenBarrierError``)
    when it breaks: a wait timed out, ``abort()``, Ctrl-C in a wait, or a party died."""

    def __new__(cls, parties, action=None, timeout=None, *, ctx=None, name=None, segment=None):
        self = _make(_native.Barrier, cls, name, segment, parties)
        self._action = action
        self._timeout = timeout
        return self

    @classmethod
    def _attach(cls, segment, name, state):
        parties, action, timeout = state
        self = _native.Barrier.__new__(cls, segment, name, parties)
        self._action = action
        self._timeout = timeout
        return self

    def _state(self):
        return (self.parties, self._action, self._timeout)

    def wait(self, timeout=None):
        """Arrives and waits for the other parties; returns the arrival index."""
        index = self._wait(self._timeout if timeout is None else timeout)
        if self._action is not None and index == self.parties - 1:
            self._action()
        return index


_segment.register_opener("mutex", lambda s, n, t, l: Lock._attach(s, n, ()))
_segment.register_opener("reentrant_mutex", lambda s, n, t, l: RLock._attach(s, n, ()))
_segment.register_opener("semaphore", lambda s, n, t, l: Semaphore._attach(s, n, ()))
_segment.register_opener("event", lambda s, n, t, l: Event._attach(s, n, ()))
_segment.register_opener("barrier", lambda s, n, t, l: Barrier._attach(s, n, (l, None, None)))
