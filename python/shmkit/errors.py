"""The exceptions of shmkit.

Every exception the package raises for a condition of its own derives from :class:`Error`;
where multiprocessing raises a built-in exception for the same condition, shmkit's class
derives from that one too, so code written for multiprocessing keeps catching it.
"""

import threading

__all__ = [
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


class Error(Exception):
    """Base class of shmkit's exceptions."""


class OwnerDied(Error):
    """The previous holder of the lock died holding it.

    Raised by ``acquire()`` of a ``Lock``/``RLock`` (and by ``Condition.wait`` when it retakes
    its lock). **The caller holds the lock** when it gets this exception: the data the lock
    protects may be half-updated. Repair it, call ``lock.mark_consistent()``, and carry on; or
    ``release()`` without it, and the next acquirer gets ``OwnerDied`` again (the lock stays
    marked until someone repairs it). ``with lock:`` never leaves the lock held when its
    ``__enter__`` raises this: it releases the lock (still marked) before the exception
    propagates.
    """


class NotRecoverable(Error):
    """The lock was declared beyond repair (``mark_not_recoverable``); it can never be taken."""


class WouldDeadlock(Error, RuntimeError):
    """The calling thread already holds this non-reentrant lock; waiting would never end."""


class Timeout(Error, TimeoutError):
    """A bounded wait ran out."""


class BrokenBarrierError(Error, threading.BrokenBarrierError):
    """The barrier is broken (a party timed out, aborted, was interrupted or died)."""


class SemaphoreOverRelease(Error, ValueError):
    """A bounded semaphore was released more often than acquired (multiprocessing's ValueError)."""


class NotFound(Error, LookupError):
    """No such segment, or no object of that name in it."""


class TypeMismatch(Error, TypeError):
    """An object exists under this name with another kind, element type or size."""


class OutOfSpace(Error, MemoryError):
    """The segment has no room (or no directory entry) left for the object.

    ``args[1]`` is the number of bytes needed (0 for a full directory). The default segments
    handle it by starting a new segment; it reaches user code only for a segment the user made.
    """


class AlreadyExists(Error, FileExistsError):
    """A segment of that name exists already."""
