"""The hand-made C methods (python/src/fast.rs) behave as the methods they replaced:
arguments by position and keyword, the same errors, docstrings, and a blocked acquire that
spins with the GIL held before it waits never starves the thread holding the lock."""

import threading
import time

import pytest

import shmkit


@pytest.mark.parametrize("kind", [shmkit.Lock, shmkit.RLock])
def test_acquire_arguments(kind):
    lock = kind()
    assert lock.acquire() is True
    lock.release()
    assert lock.acquire(False) is True
    lock.release()
    assert lock.acquire(True, 1.0) is True
    lock.release()
    assert lock.acquire(block=False) is True
    lock.release()
    assert lock.acquire(timeout=1) is True
    lock.release()
    assert lock.acquire(True, timeout=None) is True
    lock.release()
    assert lock.acquire(block=1, timeout=0.5) is True  # truth, as multiprocessing
    lock.release()
    with pytest.raises(TypeError, match="at most 2 arguments"):
        lock.acquire(True, None, 3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'blocking'"):
        lock.acquire(blocking=True)
    with pytest.raises(TypeError, match="multiple values for argument 'block'"):
        lock.acquire(True, block=True)
    with pytest.raises(TypeError):
        lock.acquire(timeout="soon")
    assert not lock._is_owned()


def test_a_held_lock_refuses_at_once_or_by_its_timeout():
    lock = shmkit.Lock()
    with lock:
        assert lock.acquire(False) is False
        t = time.monotonic()
        assert lock.acquire(timeout=0) is False
        assert lock.acquire(timeout=-1) is False
        assert lock.acquire(timeout=0.05) is False
        assert time.monotonic() - t < 5
        with pytest.raises(shmkit.WouldDeadlock):
            lock.acquire()
    with pytest.raises(ValueError, match="released too many times"):
        lock.release()


def test_rlock_release_and_exit_by_the_owner_only():
    r = shmkit.RLock()
    with r:
        with r:
            assert r._count() == 2
        assert r._count() == 1
    with pytest.raises(AssertionError):
        r.release()
    with pytest.raises(AssertionError):
        r.__exit__(None, None, None)


@pytest.mark.parametrize("kind", [shmkit.Lock, shmkit.RLock])
def test_exit_takes_any_arguments_and_returns_none(kind):
    lock = kind()
    assert lock.__enter__() is True
    assert lock.__exit__(ValueError, ValueError("x"), None) is None
    lock.__enter__()
    assert lock.__exit__() is None
    with pytest.raises(ZeroDivisionError):
        with lock:
            1 / 0
    assert not lock._is_owned()


def test_value_fast_methods():
    v = shmkit.Value("q", 10)
    assert v.fetch_add() == 10
    assert v.fetch_add(5) == 11
    assert v.fetch_add(n=2) == 16
    assert v.fetch_add(None) == 18  # None: the default step
    assert v.fetch_sub() == 19
    assert v.fetch_sub(n=8) == 18
    assert v.value == 10
    v.value = -3
    assert v.value == -3
    with pytest.raises(TypeError):
        v.fetch_add("1")
    with pytest.raises(TypeError):
        v.fetch_add(1, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'"):
        v.fetch_add(step=1)
    with pytest.raises(TypeError):
        v.value = "x"
    with pytest.raises(AttributeError):
        del v.value
    assert v.value == -3
    c = shmkit.Value("c", b"a")
    with pytest.raises(TypeError, match="numeric typecode"):
        c.fetch_add()
    d = shmkit.Value("d", 0.5)
    assert d.fetch_add() == 0.5 and d.value == 1.5


def test_get_lock_is_the_lock_given():
    lock = shmkit.Lock()
    v = shmkit.Value("i", 0, lock=lock)
    assert v.get_lock() is lock and v._lock is lock
    with v.get_lock():
        v.value += 1
    with v:  # the synchronized wrapper's shortcut
        v.value += 1
    assert v.value == 2
    raw = shmkit.Value("i", 0, lock=False)
    assert raw._lock is None
    with pytest.raises(AttributeError, match="lock=False"):
        raw.get_lock()


def test_docstrings_of_the_fast_methods():
    assert "OwnerDied" in shmkit.Lock.acquire.__doc__
    assert "block=True, timeout=None" in str(shmkit.RLock.acquire.__text_signature__)
    assert "atomic" in shmkit.Value.fetch_add.__doc__
    assert "atomic" in shmkit.Value.value.__doc__


@pytest.mark.parametrize("kind", [shmkit.Lock, shmkit.RLock])
def test_threads_contending_under_the_gil_spin(kind):
    # A waiter spins holding the GIL before it releases it: the holder (another thread,
    # which needs the GIL to release) must still get through, every time.
    lock = kind()
    v = shmkit.Value("q", 0, lock=lock)
    n = 3000

    def work():
        for _ in range(n):
            with v.get_lock():
                v.value += 1

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
        assert not t.is_alive()
    assert v.value == 3 * n


def test_a_lock_that_refers_to_its_value_is_collected():
    import gc
    import weakref

    class MyLock:
        def __init__(self):
            self.inner = shmkit.Lock()
            self.acquire, self.release = self.inner.acquire, self.inner.release

    lock = MyLock()
    v = shmkit.Value("i", 0, lock=lock)
    lock.value = v  # a cycle through the native Value's lock
    gone = weakref.ref(lock)
    del lock, v
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize(
    "cls, names",
    [
        (shmkit.Lock, ["acquire", "release", "__enter__", "__exit__"]),
        (shmkit.RLock, ["acquire", "release", "__enter__", "__exit__"]),
        (shmkit.Value, ["fetch_add", "fetch_sub", "get_lock", "value"]),
        (shmkit.Queue, ["put", "get"]),
        (shmkit.SimpleQueue, ["put", "get"]),
        (shmkit.JoinableQueue, ["get"]),
        (shmkit.connection.Connection, ["send", "recv"]),
    ],
)
def test_the_package_classes_own_their_fast_methods(cls, names):
    # CPython specializes a call of a C method only on an instance of exactly the class its
    # descriptor was made for: the package's (Python) classes carry descriptors of their own.
    for name in names:
        assert vars(cls)[name].__objclass__ is cls, name


def test_specialize_takes_only_the_fast_classes_and_keeps_subclasses_working():
    from shmkit import _native

    with pytest.raises(TypeError, match="subclass of Lock, RLock, Value, ByteQueue or PipeEndpoint"):
        _native._specialize(shmkit.Semaphore)
    with pytest.raises(TypeError):
        _native._specialize(int)

    class Mine(shmkit.Lock):  # inherits shmkit.Lock's descriptors (made for a base: allowed)
        def acquire(self, *a, **k):
            self.calls = getattr(self, "calls", 0) + 1
            return super().acquire(*a, **k)

    m = Mine()
    assert m.acquire() is True
    m.release()
    with m:
        assert m.acquire(False) is False
    assert m.calls == 2


@pytest.mark.parametrize("code", ["q", "l"])
def test_fetch_add_of_a_64_bit_value_outside_the_plain_int_path(code):
    # 'q'/'l' with an int that fits take a direct path; everything else the general one.
    v = shmkit.Value(code, 2**63 - 1)
    assert v.fetch_add(1) == 2**63 - 1  # wraps, as ctypes does
    assert v.value == -(2**63)
    assert v.fetch_sub(1) == -(2**63)
    assert v.value == 2**63 - 1
    v.value = 0
    assert v.fetch_add(2**64 - 1) == 0  # past i64: taken as u64, wraps to -1
    assert v.value == -1
    assert v.fetch_add(True) == -1  # a bool is not exactly an int: the general path
    assert v.fetch_sub(-(2**63)) == 0
    assert v.value == -(2**63)
    with pytest.raises(OverflowError):
        v.fetch_add(2**64)
    with pytest.raises(TypeError):
        v.fetch_add(1.5)
    assert v.value == -(2**63)  # failed calls changed nothing


def test_joinable_queue_keeps_its_own_put():
    # _specialize leaves a method the class defines itself: JoinableQueue.put counts the item.
    q = shmkit.JoinableQueue()
    assert "put" in vars(shmkit.JoinableQueue) and vars(shmkit.JoinableQueue)["put"].__module__ == "shmkit.queues"
    q.put(1)
    assert q._unfinished.value == 1
    assert q.get() == 1
    q.task_done()
    q.join()


def test_queue_put_and_get_arguments():
    import queue

    q = shmkit.Queue(maxsize=1)
    q.put(1)
    with pytest.raises(queue.Full):
        q.put(2, False)
    with pytest.raises(queue.Full):
        q.put(2, block=True, timeout=0.01)
    with pytest.raises(queue.Full):
        q.put(obj=2, timeout=0)
    assert q.get(True, 1.0) == 1
    with pytest.raises(queue.Empty):
        q.get(False)
    with pytest.raises(queue.Empty):
        q.get(block=True, timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get(timeout=None, block=0)  # truth, as multiprocessing
    q.put((1, "a"), timeout=None)
    assert q.get(timeout=1) == (1, "a")
    with pytest.raises(TypeError, match=r"put\(\) missing required argument 'obj' \(pos 1\)"):
        q.put()
    with pytest.raises(TypeError, match="at most 3 arguments"):
        q.put(1, True, None, 4)
    with pytest.raises(TypeError, match="unexpected keyword argument 'item'"):
        q.put(item=1)
    with pytest.raises(TypeError, match="multiple values for argument 'obj'"):
        q.put(1, obj=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'blocking'"):
        q.get(blocking=False)
    with pytest.raises(TypeError):
        q.get(True, "soon")
    assert q.qsize() == 0
    assert shmkit.Queue.put.__text_signature__ == "(obj, block=True, timeout=None)"
    assert "queue.Full" in shmkit.Queue.put.__doc__


def test_connection_send_and_recv_arguments():
    a, b = shmkit.Pipe()
    a.send(("job", 17, 3.5))
    assert b.recv() == ("job", 17, 3.5)
    with pytest.raises(TypeError, match=r"send\(\) missing required argument 'obj' \(pos 1\)"):
        a.send()
    with pytest.raises(TypeError):
        a.send(1, 2)
    a.send(obj=2)  # as multiprocessing's Connection.send(self, obj)
    assert b.recv() == 2
    with pytest.raises(TypeError, match="unexpected keyword argument 'item'"):
        a.send(item=1)
    with pytest.raises(TypeError):
        b.recv(1)
    r, w = shmkit.Pipe(duplex=False)
    with pytest.raises(OSError, match="read-only"):
        r.send(1)
    with pytest.raises(OSError, match="write-only"):
        w.recv()
    assert shmkit.connection.Connection.send.__text_signature__ == "(obj)"
