"""Wait-free counters (shmkit's extras): no lock, no system call, safe in any process."""

from . import _native, _segment

__all__ = ["Counter", "ShardedCounter"]


class Counter(_native.Counter, _segment.SharedObject):
    """A 64-bit counter shared between processes, updated with one atomic instruction.

    ``Counter(initial=0, *, name=None, segment=None)``. ``c.add(n)``, ``c.sub(n)``,
    ``c.fetch_add(n)``, ``c.fetch_sub(n)``, ``c.swap(v)``, ``c.compare_exchange(cur, new)``,
    ``c.reset()`` and the ``c.value`` property. Arithmetic wraps modulo 2**64.
    """

    def __new__(cls, initial=0, *, name=None, segment=None):
        def make(seg, obj):
            return _native.Counter.__new__(cls, seg, obj)

        self = _segment.create(make, name, segment)
        if initial:
            self.value = initial
        return self

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.Counter.__new__(cls, segment, name)


class ShardedCounter(_native.ShardedCounter, _segment.SharedObject):
    """A counter striped over cache lines: many processes ``add`` at once without contending.

    ``ShardedCounter(*, name=None, segment=None)``; ``add(n)``, ``sub(n)``, ``reset()`` and
    ``value`` (the sum of the stripes).
    """

    def __new__(cls, *, name=None, segment=None):
        def make(seg, obj):
            return _native.ShardedCounter.__new__(cls, seg, obj)

        return _segment.create(make, name, segment)

    @classmethod
    def _attach(cls, segment, name, state):
        return _native.ShardedCounter.__new__(cls, segment, name)


_segment.register_opener("counter", lambda s, n, t, l: Counter._attach(s, n, ()))
_segment.register_opener("sharded_counter", lambda s, n, t, l: ShardedCounter._attach(s, n, ()))
