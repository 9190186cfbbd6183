"""The functions the queue, pipe and collection tests run in child processes, in a module of
their own (as targets.py for the others): under spawn and forkserver a child imports its
target's module, and importing a test module imports pytest. Only the standard library and
shmkit here."""

import time


def sleep_then_put(q):
    time.sleep(0.3)
    q.put("late")


def get_forever(q):
    while True:
        q.get()


def put_forever(q):
    i = 0
    while True:
        q.put(i)
        i += 1


def worker(q, done):
    while True:
        item = q.get(timeout=30)
        if item is None:
            q.task_done()
            return
        done.add(item)
        q.task_done()


def echo_large(q_in, q_out):
    q_out.put(q_in.get(timeout=30)[::-1])


def f(q):
    q.put([42, None, "hello"])


def producer(q, who, n):
    for i in range(n):
        q.put((who, i))


def send_then_hang(conn):
    conn.send("last words")
    time.sleep(60)


def echo(conn):
    while True:
        try:
            data = conn.recv_bytes()
        except EOFError:
            return
        conn.send_bytes(data[::-1])


def child(conn):
    conn.send("Hi daddy!")
    assert conn.recv() == "Hi child!"
    conn.send([42, None, "hello"])
    conn.close()


def hammer(d, l):
    i = 0
    while True:
        d["k%d" % (i % 50)] = ("v", i)
        l.append(i)
        if len(l) > 500:
            l.pop()
        i += 1


def set_ns(ns):
    ns.x = 10
    ns.y = "hello"
    del ns.z


def writer(d, l, i):
    d[i] = i * i
    d["job-%d" % i] = {"worker": i}
    l.append(i)
