"""The same small scripts against multiprocessing and shmkit give the same results."""

import ctypes
import multiprocessing
import threading

import pytest

import shmkit
from targets import _docs_child

MP = multiprocessing.get_context("fork")


def values_and_arrays(m):
    out = []
    v = m.Value("i", 7)
    v.value += 3
    out.append(v.value)
    b = m.Value("b", 127)
    b.value = 128  # ctypes truncates to the width
    out.append(b.value)
    d = m.Value(ctypes.c_double, 2.5)
    out.append(d.value)
    c = m.Value("c", b"x")
    out.append(c.value)
    a = m.Array("d", [1.5, 2.5, 3.5, 4.5])
    a[1:3] = [0.0, -1.0]
    out += [a[:], a[-1], len(a), list(a), a[::2], a[::-1]]
    s = m.Array("c", b"hello")
    out += [s.value, s[1:3], s[0]]
    s.value = b"hi"
    out += [s.value, s.raw]
    q = m.Array(ctypes.c_uint, 3)
    q[0] = 2**32 + 5
    out.append(q[:])
    with a.get_lock():
        out.append(sum(a))
    r = m.RawArray("h", [1, 2, 3])
    out.append(r[:])
    for bad in (lambda: a[10], lambda: a.__setitem__(slice(0, 2), [1.0])):
        try:
            bad()
        except (IndexError, ValueError) as e:
            out.append(type(e).__name__)
    return out


def locks_and_semaphores(m):
    out = []
    lock = m.Lock()
    out += [lock.acquire(), lock.acquire(False), lock.acquire(timeout=0.01)]
    lock.release()
    try:
        lock.release()
    except ValueError:
        out.append("ValueError")
    r = m.RLock()
    out += [r.acquire(), r.acquire(), r.acquire(block=False)]
    for _ in range(3):
        r.release()
    s = m.Semaphore(2)
    out += [s.acquire(), s.acquire(), s.acquire(False), s.get_value()]
    s.release()
    out.append(s.get_value())
    bs = m.BoundedSemaphore(1)
    try:
        bs.release()
    except ValueError:
        out.append("over-release")
    e = m.Event()
    out += [e.is_set(), e.wait(0.01)]
    e.set()
    out += [e.is_set(), e.wait()]
    return out


def _waiter(cond, box, i):
    with cond:
        cond.wait_for(lambda: box.value >= i, timeout=10)


def condition_and_barrier(m):
    out = []
    cond = m.Condition()
    box = m.Value("i", 0)
    with cond:
        out.append(cond.wait(0.01))
        out.append(cond.wait_for(lambda: True))
    ts = [threading.Thread(target=_waiter, args=(cond, box, 1)) for _ in range(2)]
    for t in ts:
        t.start()
    with cond:
        box.value = 1
        cond.notify_all()
    for t in ts:
        t.join(10)
    out.append([t.is_alive() for t in ts])
    try:
        cond.notify()
    except (RuntimeError, AssertionError):
        out.append("notify needs the lock")
    b = m.Barrier(3)
    got = []
    ts = [threading.Thread(target=lambda: got.append(b.wait(5))) for _ in range(2)]
    for t in ts:
        t.start()
    got.append(b.wait(5))
    for t in ts:
        t.join(10)
    out += [sorted(got), b.parties, b.n_waiting, b.broken]
    b.abort()
    out.append(b.broken)
    try:
        b.wait(1)
    except threading.BrokenBarrierError:
        out.append("broken")
    b.reset()
    out.append(b.broken)
    return out


@pytest.mark.parametrize("script", [values_and_arrays, locks_and_semaphores, condition_and_barrier])
def test_same_results_as_multiprocessing(script):
    assert script(shmkit) == script(MP)




def docs_example(m, ctx):
    num = m.Value("d", 0.0)
    arr = m.Array("i", range(10))
    p = ctx.Process(target=_docs_child, args=(num, arr))
    p.start()
    p.join()
    return num.value, arr[:]


def test_docs_example_same_result(ctx):
    assert docs_example(shmkit, ctx) == docs_example(ctx, ctx)
