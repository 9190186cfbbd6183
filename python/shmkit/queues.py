"""``Queue``, ``SimpleQueue`` and ``JoinableQueue``: multiprocessing's queues in shared memory.

Objects are pickled (``pickle.HIGHEST_PROTOCOL``) and the bytes go through the core's bounded
many-producer many-consumer queue (``MpmcBytes``): no feeder thread, no pipe, no lock.

* **Capacity.** ``maxsize`` > 0 is exact (puts wait or raise :class:`queue.Full` at
  ``maxsize`` items). ``maxsize`` <= 0 ("unbounded" in multiprocessing) gives
  :data:`DEFAULT_CAPACITY` slots (pass ``capacity=`` for more); puts wait when they are all
  taken. Each slot holds a message of up to ``max_msg`` bytes (default :data:`DEFAULT_MAX_MSG`);
  memory is about ``capacity x max_msg`` bytes of address space, pages touched on use.
* **Large objects.** A pickle longer than a slot is written to a segment of its own (a *blob*,
  ``shmkit-py-<pid>-<random>``) and only its name goes through the queue; the consumer that
  gets it reads and removes the blob. Any size works; a blob costs a segment creation. A large
  item never got (left in a queue at exit, or whose consumer was killed) leaves its blob in
  ``/dev/shm`` until :func:`shmkit.cleanup` runs after its producer has exited.
* **Death.** A producer killed in ``put`` loses at most the item it was putting; a consumer
  killed in ``get`` loses at most the item it was getting (the core reaps slots claimed by dead
  processes; ``lost`` counts them). Nobody hangs on a dead peer.
* ``close()`` only marks this handle closed (as in multiprocessing, other processes keep
  using the queue); ``join_thread()`` and ``cancel_join_thread()`` do nothing (there is no
  feeder thread: a ``put`` has completed when it returns).
"""

import os
import pickle
import queue as _queue
import secrets

from . import _native, _segment

__all__ = ["Queue", "SimpleQueue", "JoinableQueue", "DEFAULT_CAPACITY", "DEFAULT_MAX_MSG"]

#: Slots of a queue made with ``maxsize`` <= 0.
DEFAULT_CAPACITY = 1024
#: Bytes per slot; a longer pickle travels as a blob (see the module's doc).
DEFAULT_MAX_MSG = 8192

_INLINE = b"\x00"
_BLOB = b"\x01"

# Bound once: the hot paths look these up as module globals, not attribute chains.
_dumps = pickle.dumps
_loads = pickle.loads
_HIGHEST = pickle.HIGHEST_PROTOCOL
_put = _native.ByteQueue.put


def _decode_blob(msg):
    """The object of a blob message (``0x01`` + ``name:length``): read and removed."""
    blob, _, length = msg[1:].decode().rpartition(":")
    return _loads(_native.blob_take(blob, int(length)))


def _capacity_for(maxsize, capacity):
    if capacity is not None:
        return max(int(capacity), 2)
    if maxsize <= 0:
        return DEFAULT_CAPACITY
    return max(maxsize, 2)


class _Base(_native.ByteQueue, _segment.SharedObject):
    def __new__(cls, maxsize=0, *, capacity=None, max_msg=DEFAULT_MAX_MSG, name=None, segment=None, ctx=None):
        maxsize = int(maxsize)
        cap = _capacity_for(maxsize, capacity)
        limit = maxsize if maxsize > 0 else 0

        def make(seg, obj):
            return _native.ByteQueue.__new__(cls, seg, obj, cap, max_msg, limit)

        self = _segment.create(make, name, segment)
        self._setup(maxsize, cap, max_msg)
        return self

    def __init__(self, *args, **kwargs):
        pass

    def _setup(self, maxsize, cap, max_msg):
        self._maxsize = maxsize
        self._dims = (cap, max_msg)
        self._max_msg = self.max_msg  # the slot's size, read once (a pickle fits if shorter)
        self._closed = False

    def _state(self):
        return (self._maxsize,) + self._dims

    @classmethod
    def _attach(cls, segment, name, state):
        maxsize, cap, max_msg = state[:3]
        self = _native.ByteQueue.__new__(cls, segment, name, cap, max_msg, maxsize if maxsize > 0 else 0)
        self._setup(maxsize, cap, max_msg)
        return self

    # -- encoding ---------------------------------------------------------------------------

    def _encode(self, obj):
        data = _dumps(obj, _HIGHEST)
        if len(data) < self._max_msg:
            return _INLINE + data, None
        return self._encode_blob(data)

    def _encode_blob(self, data):
        blob = "%s%d-%s" % (_segment.PREFIX, os.getpid(), secrets.token_hex(8))
        _native.blob_write(blob, data)
        return _BLOB + ("%s:%d" % (blob, len(data))).encode(), blob

    @staticmethod
    def _decode(msg):
        if msg[:1] == _BLOB:
            return _decode_blob(msg)
        return pickle.loads(msg[1:])

    def _check_open(self):
        if self._closed:
            raise ValueError("Queue %r is closed" % (self,))

    # -- multiprocessing's API ----------------------------------------------------------------

    # put(obj, block=True, timeout=None) and get(block=True, timeout=None) are the native
    # class's, one call each (ByteQueue.put_obj and get_obj: the closed check, the pickle, the
    # send or receive, queue.Full or queue.Empty); a pickle longer than a slot comes back here
    # (_put_blob) to travel as a blob. Each concrete class below gets descriptors of its own for
    # them (_native._specialize), so that CPython specializes their calls.
    put = _native.ByteQueue.put_obj
    get = _native.ByteQueue.get_obj

    def _put_blob(self, data, block, timeout):
        msg, blob = self._encode_blob(data)
        try:
            ok = _put(self, msg, block, timeout)
        except BaseException:
            _native.unlink_segment(blob)
            raise
        if not ok:
            _native.unlink_segment(blob)
            raise _queue.Full

    def put_nowait(self, obj):
        """``put(obj, False)``."""
        return self.put(obj, False)

    def get_nowait(self):
        """``get(False)``."""
        return self.get(False)

    def empty(self):
        """Whether the queue looks empty (approximate, as in multiprocessing)."""
        return self.qsize() == 0

    def close(self):
        """Marks this handle closed (puts and gets on it raise ``ValueError``); the queue
        itself stays usable by other processes and handles."""
        self._closed = True
        self._close_handle()

    def join_thread(self):
        """Does nothing: there is no feeder thread (``put`` completes before it returns)."""

    def cancel_join_thread(self):
        """Does nothing: there is no feeder thread."""


class Queue(_Base):
    """A process-shared FIFO queue of picklable objects (``multiprocessing.Queue``).

    ``Queue(maxsize=0, *, capacity=None, max_msg=8192, name=None, segment=None)``: see the
    module's doc for ``maxsize`` <= 0, ``capacity``, ``max_msg`` and large objects.
    """


class SimpleQueue(_Base):
    """``multiprocessing.SimpleQueue``: ``put``, ``get``, ``empty``, ``close``."""

    def __new__(cls, *, capacity=None, max_msg=DEFAULT_MAX_MSG, name=None, segment=None, ctx=None):
        return _Base.__new__(cls, 0, capacity=capacity, max_msg=max_msg, name=name, segment=segment)


class JoinableQueue(_Base):
    """``multiprocessing.JoinableQueue``: a :class:`Queue` that counts unfinished tasks.

    Every ``put`` adds one; ``task_done()`` removes one (``ValueError`` if called more often than
    ``put``); ``join()`` waits until none is left. The count is a shared counter, the wake-up a
    shared event.
    """

    def _setup(self, maxsize, cap, max_msg):
        _Base._setup(self, maxsize, cap, max_msg)
        from .counters import Counter
        from .synchronize import Event

        # Companion objects in the queue's segment, named after it.
        self._unfinished = Counter(name=self._name + ".unfinished", segment=self._segment)
        self._all_done = Event(name=self._name + ".done", segment=self._segment)

    def put(self, obj, block=True, timeout=None):
        # Counted before the item is visible, as multiprocessing does, so that a join
        # never sees the item without its count.
        self._unfinished.add(1)
        self._all_done.clear()
        try:
            _Base.put(self, obj, block, timeout)
        except BaseException:
            self._task_done()
            raise

    def task_done(self):
        """Marks one item got earlier as processed."""
        self._task_done()

    def _task_done(self):
        while True:
            n = self._unfinished.value
            if n == 0:
                raise ValueError("task_done() called too many times")
            ok, _ = self._unfinished.compare_exchange(n, n - 1)
            if ok:
                if n == 1:
                    self._all_done.set()
                return

    def join(self):
        """Waits until every item put has been marked done with ``task_done()``. Releases the
        GIL while it waits; Ctrl-C interrupts it."""
        import time

        while self._unfinished.value != 0:
            if self._all_done.wait(0.05) and self._unfinished.value != 0:
                # A put cleared the event after the last task_done set it: look again soon.
                time.sleep(0.001)


# Descriptors of their own for put and get (JoinableQueue keeps its own put): see
# ``_native._specialize``.
_native._specialize(Queue)
_native._specialize(SimpleQueue)
_native._specialize(JoinableQueue)

