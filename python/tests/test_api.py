"""shmkit's extras and edge cases: atomic operations, counters, open by name, errors,
conditions across processes, semaphore permits of dead processes."""

import ctypes
import os
import pickle
import signal
import threading

import pytest

import shmkit
from conftest import run_script
from targets import _fetch_add_many, _notify_after, _take_and_die


@pytest.mark.parametrize(
    "typecode,start,step,expected",
    [("b", 127, 1, -128), ("B", 255, 1, 0), ("i", 5, 3, 8), ("Q", 0, 2**64 - 1, 2**64 - 1),
     ("d", 0.5, 0.25, 0.75), ("f", 1.5, 1.0, 2.5)],
)
def test_atomic_operations(typecode, start, step, expected):
    v = shmkit.Value(typecode, start)
    assert v.fetch_add(step) == start
    assert v.value == expected
    assert v.fetch_sub(step) == expected
    assert v.value == start
    assert v.swap(start) == start
    ok, seen = v.compare_exchange(start, expected)
    assert ok and seen == start and v.value == expected
    ok, seen = v.compare_exchange(start, start)
    assert not ok and seen == expected


def test_ctypes_types_and_bad_typecodes():
    for t, code in [(ctypes.c_int, "i"), (ctypes.c_double, "d"), (ctypes.c_char, "c"),
                    (ctypes.c_uint8, "B"), (ctypes.c_int16, "h"), (ctypes.c_float, "f")]:
        assert shmkit.Value(t)._typecode == code
    with pytest.raises(ValueError):
        shmkit.Value("x")
    with pytest.raises(TypeError):
        shmkit.Value(ctypes.c_char_p)
    with pytest.raises(AttributeError):
        shmkit.Value("i", lock=False).get_lock()
    with pytest.raises(TypeError):
        shmkit.Value("c", b"").fetch_add(1)


def test_lock_argument_is_used_as_given():
    lock = shmkit.Lock()
    v = shmkit.Value("i", 0, lock=lock)
    a = shmkit.Array("i", 3, lock=lock)
    assert v.get_lock() is lock and a.get_lock() is lock
    v2 = pickle.loads(pickle.dumps(v))
    assert v2.get_lock().ref == lock.ref




def test_fetch_add_and_counters_across_processes(ctx):
    v, c, s = shmkit.Value("q", 0), shmkit.Counter(), shmkit.ShardedCounter()
    ps = [ctx.Process(target=_fetch_add_many, args=(o, 500)) for o in (v, v, c, c)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    assert v.value == 1000 and c.value == 1000
    s.add(3)
    s.sub(1)
    assert s.value == 2 and s.reset() == 2


@pytest.mark.parametrize(
    "make,check",
    [
        (lambda: shmkit.Value("d", 2.5), lambda o: o.value == 2.5),
        (lambda: shmkit.Array("h", [1, 2, 3]), lambda o: o[:] == [1, 2, 3]),
        (lambda: shmkit.Array("c", b"hey"), lambda o: o.value == b"hey"),
        (lambda: shmkit.Lock(), lambda o: o.acquire(timeout=1)),
        (lambda: shmkit.RLock(), lambda o: o.acquire(timeout=1)),
        (lambda: shmkit.Semaphore(2), lambda o: o.get_value() == 2),
        (lambda: shmkit.Barrier(4), lambda o: o.parties == 4),
        (lambda: shmkit.Counter(9), lambda o: o.value == 9),
    ],
)
def test_open_by_reference(make, check):
    obj = make()
    other = shmkit.open(obj.ref)
    assert type(other).__name__ == type(obj).__name__
    assert check(other)


def test_named_objects_are_found_again():
    a = shmkit.Value("i", 1, name="jobs")
    b = shmkit.Value("i", 99, name="jobs", segment=a._segment)
    assert b.value == 1  # found, not re-created
    with pytest.raises(shmkit.TypeMismatch):
        shmkit.Value("d", name="jobs", segment=a._segment)
    rc, out, err = run_script("import shmkit; print(shmkit.open(%r).value)" % a.ref)
    assert rc == 0, err
    assert out.strip() == "1"


def test_exception_classes():
    assert issubclass(shmkit.OwnerDied, shmkit.Error)
    assert issubclass(shmkit.BrokenBarrierError, threading.BrokenBarrierError)
    assert issubclass(shmkit.SemaphoreOverRelease, ValueError)
    assert issubclass(shmkit.Timeout, TimeoutError)
    lock = shmkit.Lock()
    lock.acquire()
    with pytest.raises(shmkit.WouldDeadlock):
        lock.acquire()
    assert lock.acquire(timeout=0.01) is False
    lock.release()




@pytest.mark.parametrize("lock_kind", ["Lock", "RLock"])
def test_condition_across_processes(ctx, lock_kind):
    cond = shmkit.Condition(getattr(shmkit, lock_kind)())
    box = shmkit.Value("i", 0, lock=False)
    with cond:
        p = ctx.Process(target=_notify_after, args=(cond, box))
        p.start()
        assert cond.wait_for(lambda: box.value == 1, timeout=30)
    p.join(30)
    assert p.exitcode == 0
    with pytest.raises(RuntimeError):
        cond.wait(0.01)




def test_semaphore_permits_of_a_dead_process_come_back(ctx):
    sem, ready = shmkit.Semaphore(1), shmkit.Event()
    p = ctx.Process(target=_take_and_die, args=(sem, ready))
    p.start()
    assert ready.wait(30)
    p.join(30)
    assert sem.acquire(timeout=10) is True


def test_large_arrays_get_a_segment_of_their_own():
    a = shmkit.Array("d", 10_000_000)  # 80 MB: more than a default segment
    a[-1] = 1.0
    assert a[-1] == 1.0 and len(a) == 10_000_000
    assert pickle.loads(pickle.dumps(a))[-1] == 1.0
