"""Queue, SimpleQueue, JoinableQueue: the tutorial examples, multiprocessing's exceptions,
large objects, and processes killed while putting or getting."""

import os
import queue
import signal
import time

import multiprocessing

import pytest

import ipc_targets
import shmkit



def test_three_processes_put_into_a_queue(ctx):
    q = shmkit.Queue()
    ps = [ctx.Process(target=ipc_targets.producer, args=(q, w, 20)) for w in range(3)]
    for p in ps:
        p.start()
    got = [q.get(timeout=30) for _ in range(60)]
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    assert sorted(got) == sorted((w, i) for w in range(3) for i in range(20))
    # Each producer's items arrive in its order.
    for w in range(3):
        assert [i for (x, i) in got if x == w] == list(range(20))
    assert q.empty()



def test_the_tutorial_example(ctx):
    q = shmkit.Queue()
    p = ctx.Process(target=ipc_targets.f, args=(q,))
    p.start()
    assert q.get(timeout=30) == [42, None, "hello"]
    p.join(30)
    assert p.exitcode == 0


def test_empty_and_full_are_multiprocessing_s_exceptions():
    q = shmkit.Queue(3)
    with pytest.raises(queue.Empty):
        q.get_nowait()
    t0 = time.monotonic()
    with pytest.raises(queue.Empty):
        q.get(timeout=0.1)
    assert time.monotonic() - t0 < 1.0
    for i in range(3):
        q.put_nowait(i)
    assert q.full() and q.qsize() == 3
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.05)
    with pytest.raises(queue.Full):
        q.put(3, block=False)
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    q.close()
    with pytest.raises(ValueError):
        q.put(1)
    q.join_thread()
    q.cancel_join_thread()


def test_simple_queue():
    q = shmkit.SimpleQueue()
    assert q.empty()
    q.put("x")
    assert not q.empty()
    assert q.get() == "x"



def test_objects_larger_than_a_slot_go_through_a_blob(ctx):
    q_in, q_out = shmkit.Queue(max_msg=256), shmkit.Queue(max_msg=256)
    before = set(os.listdir("/dev/shm"))
    big = bytes(range(256)) * 10000  # 2.5 MB: three blob pieces
    p = ctx.Process(target=ipc_targets.echo_large, args=(q_in, q_out))
    p.start()
    q_in.put(big)
    assert q_out.get(timeout=30) == big[::-1]
    p.join(30)
    assert p.exitcode == 0
    # The consumers removed the blobs (both ways).
    mine = ("shmkit-py-%d-" % os.getpid(), "shmkit-py-%d-" % p.pid)
    assert {n for n in set(os.listdir("/dev/shm")) - before if n.startswith(mine)} == set()


def test_a_failed_put_removes_its_blob():
    q = shmkit.Queue(1, max_msg=64)
    q.put(1)
    before = set(os.listdir("/dev/shm"))
    with pytest.raises(queue.Full):
        q.put(b"x" * 1000, block=False)
    mine = "shmkit-py-%d-" % os.getpid()
    assert {n for n in set(os.listdir("/dev/shm")) - before if n.startswith(mine)} == set()



def test_joinable_queue_task_done_and_join(ctx):
    q = shmkit.JoinableQueue()
    done = shmkit.Counter()
    ps = [ctx.Process(target=ipc_targets.worker, args=(q, done)) for _ in range(2)]
    for p in ps:
        p.start()
    for i in range(1, 51):
        q.put(i)
    q.join()
    assert done.value == sum(range(1, 51))
    for _ in ps:
        q.put(None)
    q.join()
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    with pytest.raises(ValueError):
        q.task_done()



def _kill(p):
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    assert p.exitcode == -signal.SIGKILL


def test_a_killed_producer_loses_at_most_its_item():
    ctx = multiprocessing.get_context("fork")
    q = shmkit.Queue(capacity=64)
    p = ctx.Process(target=ipc_targets.put_forever, args=(q,))
    p.start()
    got = [q.get(timeout=30) for _ in range(2000)]
    _kill(p)
    while True:
        try:
            got.append(q.get(timeout=0.2))
        except queue.Empty:
            break
    # Every item put arrived once, in order, nothing torn; at most the one in flight is lost.
    assert got == list(range(len(got)))
    assert q.lost <= 1
    # The queue still works at full capacity.
    for i in range(q.capacity):
        q.put_nowait(i)
    assert [q.get_nowait() for _ in range(q.capacity)] == list(range(q.capacity))


def test_a_killed_consumer_loses_at_most_its_item():
    ctx = multiprocessing.get_context("fork")
    q = shmkit.Queue(capacity=8)
    p = ctx.Process(target=ipc_targets.get_forever, args=(q,))
    p.start()
    for i in range(3000):
        q.put(i, timeout=30)
    _kill(p)
    left = []
    while True:
        try:
            left.append(q.get(timeout=0.2))
        except queue.Empty:
            break
    # What is left is the tail of what was put, in order; at most one item was in the dead
    # consumer's hands.
    assert left == list(range(3000 - len(left), 3000))
    assert q.lost <= 1
    for i in range(q.capacity):
        q.put(i, timeout=5)
    assert [q.get(timeout=5) for _ in range(q.capacity)] == list(range(q.capacity))



def test_get_waits_and_does_not_hold_the_gil():
    ctx = multiprocessing.get_context("fork")
    import threading

    q = shmkit.Queue()
    ticks = []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    p = ctx.Process(target=ipc_targets.sleep_then_put, args=(q,))
    p.start()
    try:
        assert q.get(timeout=30) == "late"
    finally:
        stop.set()
        t.join()
        p.join(30)
    assert len(ticks) >= 5


def test_ctrl_c_interrupts_a_blocked_get_and_a_blocked_recv():
    import subprocess
    import sys

    code = (
        "import shmkit, sys\n"
        "q = shmkit.Queue(); a, b = shmkit.Pipe()\n"
        "for f in (q.get, a.recv):\n"
        "    try:\n"
        "        print('waiting', flush=True); f()\n"
        "    except KeyboardInterrupt:\n"
        "        print('interrupted', flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            assert p.stdout.readline().strip() == "waiting"
            time.sleep(0.2)
            p.send_signal(signal.SIGINT)
            assert p.stdout.readline().strip() == "interrupted"
        assert p.wait(30) == 0
    finally:
        p.kill()
        p.wait()
