"""shmkit: multiprocessing's shared state in shared memory, on a Rust core that survives
killed processes.

The names and signatures follow :mod:`multiprocessing` (``Value``, ``Array``, ``Lock``,
``RLock``, ``Semaphore``, ``BoundedSemaphore``, ``Event``, ``Condition``, ``Barrier`` ...):
replace ``import multiprocessing as mp`` by ``import shmkit as mp`` for the shared objects and
keep ``multiprocessing`` for processes and pools. Every object pickles as a reference to its
place in shared memory, so it can be passed to ``Process(args=...)`` under every start method
and to a ``Pool``. Beyond multiprocessing: atomic operations on values, wait-free counters,
locks that report a dead holder (:class:`OwnerDied`) instead of hanging, and
:func:`open` by name from an unrelated process.
"""

from . import _native
from ._segment import cleanup, open
from .counters import Counter, ShardedCounter
from .synchronize import Event
from .queues import JoinableQueue, Queue, SimpleQueue
from .connection import Connection, Pipe
from .collections import Namespace, dict, list
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

__all__ = [
    "Counter",
    "ShardedCounter",
    "Event",
    "Queue",
    "SimpleQueue",
    "JoinableQueue",
    "Pipe",
    "Connection",
    "dict",
    "list",
    "Namespace",
    "open",
    "cleanup",
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
