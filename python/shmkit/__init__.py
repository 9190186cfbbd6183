"""shmkit: multiprocessing's shared state in shared memory, on a Rust core that survives
killed processes.

The names and signatures follow :mod:`multiprocessing` (``Value``, ``Array``, ``Lock``,
``RLock``, ``Semaphore``, ``BoundedSemaphore``, ``Event``, ``Condition``, ``Barrier``):
``import shmkit`` and write ``shmkit.Value('i', 0)`` where the program had
``multiprocessing.Value('i', 0)``; keep ``multiprocessing`` for processes and pools. Every
object pickles as a reference to its place in shared memory, so it can be passed to
``Process(args=...)`` under every start method, to a ``Pool``, or through a queue. Beyond
multiprocessing: atomic operations on values (``fetch_add``, ``compare_exchange`` ...),
wait-free :class:`Counter` and :class:`ShardedCounter`, locks that report a dead holder
(:class:`OwnerDied`) instead of hanging, and :func:`open` by reference (``obj.ref``) from an
unrelated process. A program that exits normally leaves nothing in ``/dev/shm``.
"""

from . import _native
from ._segment import cleanup, open
from .counters import Counter, ShardedCounter
from .errors import (
    AlreadyExists,
    BrokenBarrierError,
    Error,
    NotFound,
    NotRecoverable,
    OutOfSpace,
    OwnerDied,
    SemaphoreOverRelease,
    Timeout,
    TypeMismatch,
    WouldDeadlock,
)
from .sharedctypes import Array, RawArray, RawValue, Value
from .synchronize import (
    Barrier,
    BoundedSemaphore,
    Condition,
    Event,
    Lock,
    RLock,
    Semaphore,
)
from .queues import JoinableQueue, Queue, SimpleQueue
from .connection import Connection, Pipe
from .collections import Namespace, dict, list

__all__ = [
    # multiprocessing's names
    "Value",
    "Array",
    "RawValue",
    "RawArray",
    "Lock",
    "RLock",
    "Semaphore",
    "BoundedSemaphore",
    "Event",
    "Condition",
    "Barrier",
    "Queue",
    "SimpleQueue",
    "JoinableQueue",
    "Pipe",
    "Connection",
    "dict",
    "list",
    "Namespace",
    # shmkit's extras
    "Counter",
    "ShardedCounter",
    "open",
    "cleanup",
    # exceptions
    "Error",
    "OwnerDied",
    "NotRecoverable",
    "WouldDeadlock",
    "Timeout",
    "BrokenBarrierError",
    "SemaphoreOverRelease",
    "NotFound",
    "TypeMismatch",
    "OutOfSpace",
    "AlreadyExists",
]
