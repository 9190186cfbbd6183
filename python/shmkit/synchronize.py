"""The synchronization primitives of multiprocessing, on shmkit's robust futex locks."""

from . import _native, _segment

__all__ = ["Event"]


class Event(_native.Event, _segment.SharedObject):
    """multiprocessing's ``Event()``: ``is_set()``, ``set()``, ``clear()``,
    ``wait(timeout=None) -> bool``. ``wait`` releases the GIL and Ctrl-C interrupts it."""

    def __new__(cls, *, name=None, segment=None, ctx=None):
        return _segment.create(lambda s, n: _native.Event.__new__(cls, s, n), name, segment)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Event.__new__(cls, segment, name)


_segment.register_opener("event", lambda s, n, t, l: Event._attach(s, n, ()))
