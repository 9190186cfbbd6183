"""Killed processes: a lock holder (the next acquirer gets OwnerDied and holds the lock), a
barrier party (the others get BrokenBarrierError instead of hanging); Ctrl-C in blocked calls;
the GIL is released while blocked."""

import os
import signal
import threading
import time

import pytest

import shmkit
from targets import barrier_party, hold_forever, interrupted




def start_holder(ctx, lock):
    ready = shmkit.Event()
    p = ctx.Process(target=hold_forever, args=(lock, ready))
    p.start()
    assert ready.wait(30), "the child never took the lock"
    assert lock.acquire(timeout=0.05) is False, "a live holder keeps the lock"
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    assert p.exitcode == -signal.SIGKILL
    return p


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_killed_lock_holder_hands_over_with_owner_died(ctx, kind):
    lock = getattr(shmkit, kind)()
    start_holder(ctx, lock)
    t = time.monotonic()
    with pytest.raises(shmkit.OwnerDied):
        lock.acquire()
    assert time.monotonic() - t < 5
    assert lock._is_owned(), "OwnerDied is raised with the lock held"
    # Not repaired: released, the next acquirer is told again.
    lock.release()
    with pytest.raises(shmkit.OwnerDied):
        lock.acquire(timeout=5)
    lock.mark_consistent()
    lock.release()
    assert lock.acquire(timeout=5) is True
    lock.release()


def test_with_block_that_raises_owner_died_leaves_the_lock_free(ctx):
    lock = shmkit.Lock()
    start_holder(ctx, lock)
    with pytest.raises(shmkit.OwnerDied):
        with lock:
            pytest.fail("the body does not run")
    assert not lock._is_owned()
    # Free (still marked): another acquirer takes it at once and is told.
    with pytest.raises(shmkit.OwnerDied):
        lock.acquire(block=False)
    lock.mark_consistent()
    lock.release()
    with lock:
        pass




def test_killed_barrier_party_breaks_the_barrier(ctx):
    barrier = shmkit.Barrier(3)
    done = shmkit.Value("i", 0)
    victim = ctx.Process(target=barrier_party, args=(barrier, done, True))
    other = ctx.Process(target=barrier_party, args=(barrier, done, False))
    victim.start()
    other.start()
    try:
        barrier.wait(timeout=30)  # round 1: every party takes part once
        deadline = time.monotonic() + 30
        while done.value < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(victim.pid, signal.SIGKILL)
        t = time.monotonic()
        with pytest.raises(threading.BrokenBarrierError):
            barrier.wait(timeout=30)  # round 2: the victim never comes
        assert time.monotonic() - t < 10, "detected by the liveness check, not the timeout"
        other.join(30)
        assert other.exitcode == 7
        assert barrier.broken
    finally:
        for p in (victim, other):
            if p.is_alive():
                p.kill()
            p.join(30)


# --- Ctrl-C and the GIL ---



@pytest.mark.parametrize("what", ["lock", "event", "condition", "barrier", "semaphore"])
def test_ctrl_c_interrupts_a_blocked_call(what):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    obj = {
        "lock": shmkit.Lock,
        "event": shmkit.Event,
        "condition": shmkit.Condition,
        "barrier": lambda: shmkit.Barrier(2),
        "semaphore": lambda: shmkit.Semaphore(0),
    }[what]()
    if what == "lock":
        obj.acquire()
    started = shmkit.Event()
    p = ctx.Process(target=interrupted, args=(what, obj, started))
    p.start()
    try:
        assert started.wait(30)
        time.sleep(0.2)  # let it block
        os.kill(p.pid, signal.SIGINT)
        p.join(10)
        assert p.exitcode == 42
    finally:
        if p.is_alive():
            p.kill()
        p.join(10)
        if what == "lock":
            obj.release()
    if what == "barrier":
        assert obj.broken, "an interrupted wait breaks the barrier, as threading's does"


def test_the_gil_is_released_while_blocked():
    lock = shmkit.Lock()
    lock.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=2)))
    t.start()
    # This thread keeps running Python code while the other waits in acquire.
    n, deadline = 0, time.monotonic() + 0.3
    while time.monotonic() < deadline:
        n += 1
    assert n > 10_000
    lock.release()  # multiprocessing's Lock may be released by another thread
    t.join(10)
    assert got == [True]
