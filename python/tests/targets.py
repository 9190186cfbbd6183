"""The functions child processes run, in a module of their own: under spawn and forkserver
a child imports the module its target lives in, and importing a test module would import
pytest (about 0.5 s a child on a loaded machine). Only the standard library and shmkit here."""

import os
import signal
import time

import shmkit


def _bump(counter, n):
    for _ in range(n):
        counter.add(1)


def increment_ten(counter):
    for _ in range(10):
        with counter.get_lock():
            counter.value += 1


def add_one(variable):
    with variable.get_lock():
        variable.value += 1


def add_one_unlocked(variable):
    variable.value += 1


def f(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]


def pool_task(variable, lock, n):
    for _ in range(n):
        with lock:
            variable.value += 1
    return n


def hold_forever(lock, ready):
    lock.acquire()
    ready.set()
    time.sleep(600)


def barrier_party(barrier, rounds_done, hang_after_first):
    barrier.wait(timeout=30)
    rounds_done.fetch_add(1)
    if hang_after_first:
        time.sleep(600)
    try:
        barrier.wait(timeout=30)
    except shmkit.BrokenBarrierError:
        os._exit(7)
    os._exit(0)


def interrupted(what, obj, started):
    try:
        started.set()
        if what == "lock":
            obj.acquire()
        elif what == "event":
            obj.wait()
        elif what == "condition":
            with obj:
                obj.wait()
        elif what == "barrier":
            obj.wait()
        elif what == "semaphore":
            obj.acquire()
    except KeyboardInterrupt:
        os._exit(42)
    os._exit(1)


def _fetch_add_many(c, n):
    for _ in range(n):
        c.fetch_add(1)


def _notify_after(cond, box):
    with cond:
        box.value = 1
        cond.notify_all()


def _take_and_die(sem, ready):
    sem.acquire()
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def _docs_child(n, a):
    n.value = 3.1415927
    for i in range(len(a)):
        a[i] = -a[i]
