"""The same small scripts against multiprocessing and shmkit give the same results (queues,
pipes, dicts and lists)."""

import multiprocessing
import queue

import pytest

import shmkit


class _Mp:
    """multiprocessing's objects (a Manager for dict and list) behind shmkit's names."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.manager = None

    def __getattr__(self, name):
        if name in ("dict", "list"):
            if self.manager is None:
                self.manager = self.ctx.Manager()
            return getattr(self.manager, name)
        return getattr(self.ctx, name)


def _put_squares(q, start):
    for i in range(start, start + 5):
        q.put(i * i)


def _queue_script(mp):
    q = mp.Queue()
    ps = [multiprocessing.get_context("fork").Process(target=_put_squares, args=(q, s)) for s in (0, 5, 10)]
    for p in ps:
        p.start()
    out = sorted(q.get(timeout=30) for _ in range(15))
    for p in ps:
        p.join()
    errors = []
    q2 = mp.Queue(2)
    q2.put("a")
    q2.put("b")
    try:
        q2.put_nowait("c")
    except queue.Full:
        errors.append("Full")
    assert q2.get() == "a" and q2.get() == "b"
    try:
        q2.get(timeout=0.01)
    except queue.Empty:
        errors.append("Empty")
    jq = mp.JoinableQueue()
    jq.put(1)
    jq.get()
    jq.task_done()
    jq.join()
    try:
        jq.task_done()
    except ValueError:
        errors.append("ValueError")
    return out, errors


def _pipe_child(conn):
    conn.send({"a": [1, 2]})
    conn.send_bytes(b"raw")
    conn.close()


def _pipe_script(mp):
    a, b = mp.Pipe()
    p = multiprocessing.get_context("fork").Process(target=_pipe_child, args=(b,))
    p.start()
    b.close()
    out = [a.recv(), a.recv_bytes(), a.poll(5)]
    try:
        a.recv()
    except EOFError:
        out.append("EOF")
    p.join()
    r, w = mp.Pipe(duplex=False)
    out += [r.readable, r.writable, w.readable, w.writable]
    return out


def _dict_child(d, l, i):
    d["job-%d" % i] = i
    l.append(i)


def _dict_script(mp):
    d, l = mp.dict(), mp.list()
    ps = [multiprocessing.get_context("fork").Process(target=_dict_child, args=(d, l, i)) for i in range(4)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    d["x"] = 1
    out = [sorted(d.items()), sorted(l), len(d), "x" in d, d.get("nope", 0), d.pop("x"), len(d)]
    l2 = mp.list([1, 2, 3])
    l2[0] = 10
    out += [l2[:], l2[1:], len(l2), l2.pop(), list(l2)]
    return out


@pytest.mark.parametrize("script", [_queue_script, _pipe_script, _dict_script])
def test_same_results(script):
    ctx = multiprocessing.get_context("fork")
    m = _Mp(ctx)
    try:
        expected = script(m)
    finally:
        if m.manager is not None:
            m.manager.shutdown()
    assert script(shmkit) == expected
