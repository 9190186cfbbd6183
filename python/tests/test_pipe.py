"""Pipe and Connection: the tutorial examples, multiprocessing's API and errors, large
messages, a peer that closes or dies."""

import multiprocessing
import os
import signal
import time

import pytest

import ipc_targets
import shmkit



def test_hi_daddy_hi_child(ctx):
    parent_conn, child_conn = shmkit.Pipe()
    p = ctx.Process(target=ipc_targets.child, args=(child_conn,))
    p.start()
    child_conn.close()  # the parent's copy: not used here, so only let go
    assert parent_conn.recv() == "Hi daddy!"
    parent_conn.send("Hi child!")
    assert parent_conn.recv() == [42, None, "hello"]
    p.join(30)
    assert p.exitcode == 0
    with pytest.raises(EOFError):
        parent_conn.recv()
    assert parent_conn.poll()



def test_bytes_api_and_large_messages():
    ctx = multiprocessing.get_context("fork")
    a, b = shmkit.Pipe()
    p = ctx.Process(target=ipc_targets.echo, args=(b,))
    p.start()
    a.send_bytes(b"0123456789", 2, 3)
    assert a.recv_bytes() == b"432"
    big = os.urandom(3 << 20)  # many records, more than a direction's capacity
    a.send_bytes(big)
    assert a.recv_bytes() == big[::-1]
    a.send_bytes(b"")
    assert a.recv_bytes() == b""
    a.send_bytes(bytearray(b"abcdef"))
    buf = bytearray(10)
    assert a.recv_bytes_into(buf, 2) == 6
    assert buf == b"\0\0fedcba\0\0"
    a.send_bytes(b"toolong")
    with pytest.raises(multiprocessing.BufferTooShort) as e:
        a.recv_bytes_into(bytearray(3))
    assert e.value.args[0] == b"gnoloot"
    with pytest.raises(ValueError):
        a.send_bytes(b"abc", 2, 5)
    a.send_bytes(b"x" * 100)
    with pytest.raises(OSError):
        a.recv_bytes(maxlength=10)
    assert a.closed
    p.join(30)
    assert p.exitcode == 0


def test_poll_and_flags():
    a, b = shmkit.Pipe()
    assert not a.poll()
    t0 = time.monotonic()
    assert not a.poll(0.1)
    assert time.monotonic() - t0 < 1.0
    b.send(1)
    assert a.poll(None) and a.recv() == 1
    assert a.readable and a.writable and not a.closed
    with pytest.raises(OSError):
        a.fileno()
    r, w = shmkit.Pipe(duplex=False)
    assert r.readable and not r.writable and w.writable and not w.readable
    w.send("one way")
    assert r.recv() == "one way"
    with pytest.raises(OSError):
        r.send(1)
    with pytest.raises(OSError):
        w.recv()
    a.close()
    with pytest.raises(OSError):
        a.send(1)
    with pytest.raises(BrokenPipeError):
        b.send(1)



def test_a_killed_peer_reads_as_eof():
    ctx = multiprocessing.get_context("fork")
    a, b = shmkit.Pipe()
    p = ctx.Process(target=ipc_targets.send_then_hang, args=(b,))
    p.start()
    assert a.recv() == "last words"
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    t0 = time.monotonic()
    with pytest.raises(EOFError):
        a.recv()
    assert time.monotonic() - t0 < 5.0
    assert a.poll()
    with pytest.raises(BrokenPipeError):
        for _ in range(100000):  # until the dead reader's direction is full
            a.send_bytes(b"x" * 1000)


def test_connections_pickle_as_references():
    import pickle

    a, b = shmkit.Pipe()
    data = pickle.dumps(b)
    assert len(data) < 300
    a.close()
    with pytest.raises(OSError):
        pickle.dumps(a)


def test_a_second_thread_waits_for_the_end_without_the_gil():
    # Thread A blocks in recv() (the end's state held, the GIL released); the main thread's
    # poll() on the same end must wait for A without holding the GIL, or A could never
    # return. Run in a subprocess: the old code deadlocked.
    import subprocess
    import sys

    code = (
        "import multiprocessing as mp, threading, time, shmkit\n"
        "def late(c):\n"
        "    time.sleep(0.3); c.send('x')\n"
        "if __name__ == '__main__':\n"
        "    a, b = shmkit.Pipe()\n"
        "    p = mp.get_context('fork').Process(target=late, args=(b,)); p.start()\n"
        "    got = []\n"
        "    t = threading.Thread(target=lambda: got.append(a.recv())); t.start()\n"
        "    time.sleep(0.1)\n"
        "    a.poll(0)\n"
        "    t.join(); p.join(); print(got)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['x']"
