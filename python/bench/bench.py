"""shmkit against multiprocessing and the PyPI packages that do one piece of the same job.

Every peer runs in the same run, on the same machine, with the fork start method; each
measurement is repeated ``--repeats`` times and the table shows the median time per operation
(lower is better) and the speed-up over multiprocessing. Not run by CI (it takes minutes).

Setup (a venv of its own, so that the peers never enter the test environment)::

    python3 -m venv /tmp/shmkit-bench && . /tmp/shmkit-bench/bin/activate
    pip install maturin atomics atomics2 atomicshm faster-fifo UltraDict shared-memory-dict
    maturin develop --release -m python/Cargo.toml
    python python/bench/bench.py            # --repeats 5 --scale 1.0

A peer that is not installed is reported as such and skipped.

Rows named ``floor:`` are not peers: they run shmkit's loop with one object per process, so
that nothing is shared. They bound what any implementation of the shared row can reach on
this machine in the same run (two processes sharing one lock or one counter cannot be faster
than two processes sharing nothing).
"""

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

import shmkit

CTX = mp.get_context("fork")


# -- harness ----------------------------------------------------------------------------------


def _timed(fn, args, go, out):
    go.wait()
    t0 = time.perf_counter()
    fn(*args)
    out.put((t0, time.perf_counter()))


def two_processes(work_a, args_a, work_b, args_b, ops):
    """Runs ``work_a`` and ``work_b`` in two forked processes, started together; returns
    nanoseconds per operation (``ops`` operations in all, first start to last end)."""
    go, out = CTX.Event(), CTX.SimpleQueue()
    ps = [
        CTX.Process(target=_timed, args=(work_a, args_a, go, out)),
        CTX.Process(target=_timed, args=(work_b, args_b, go, out)),
    ]
    for p in ps:
        p.start()
    time.sleep(0.2)
    go.set()
    spans = [out.get() for _ in ps]
    for p in ps:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError("a bench process failed (exit code %s)" % p.exitcode)
    return (max(e for _, e in spans) - min(s for s, _ in spans)) * 1e9 / ops


def one_process(work, args, ops):
    t0 = time.perf_counter()
    work(*args)
    return (time.perf_counter() - t0) * 1e9 / ops


# -- Value increment under its lock (two processes) --------------------------------------------


def _locked_incr(v, n):
    for _ in range(n):
        with v.get_lock():
            v.value += 1


def counting(work, make, n, apart=False):
    """``work(v, n)`` in two processes, each adding ``n`` to a counter ``make()`` made: one
    counter for both, or (``apart``, the ``floor:`` rows) one each, so that nothing is shared and
    nothing waits. Checks every increment arrived; nanoseconds per increment."""
    a = make()
    b = make() if apart else a
    ns = two_processes(work, (a, n), work, (b, n), 2 * n)
    got = (a.value, b.value) if apart else (a.value,)
    assert got == ((n, n) if apart else (2 * n,)), (got, n)
    return ns


def value_locked(make, n, apart=False):
    return counting(_locked_incr, make, n, apart)


# -- atomic fetch_add (two processes) ------------------------------------------------------------


def _fetch_add(v, n):
    for _ in range(n):
        v.fetch_add(1)


def _atomics_inc(module, shm_name, n):
    import importlib
    from multiprocessing import shared_memory

    atomics = importlib.import_module(module)  # atomics or its fork atomics2: one API
    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        with atomics.atomicview(buffer=shm.buf[:8], atype=atomics.INT) as a:
            for _ in range(n):
                a.fetch_inc()
    finally:
        shm.close()


def _atomicshm_inc(module, shm_name, n):
    import atomicshm
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        with atomicshm.AtomicView(shm.buf) as view:
            cell = view.cell_u64(0)
            for _ in range(n):
                cell.fetch_add(1)
    finally:
        shm.close()


def atomic_shmkit(n, apart=False):
    return counting(_fetch_add, lambda: shmkit.Value("q", 0, lock=False), n, apart)


def atomic_peer(module, n):
    import importlib
    from multiprocessing import shared_memory

    importlib.import_module(module)  # skipped when missing
    work = _atomicshm_inc if module == "atomicshm" else _atomics_inc
    shm = shared_memory.SharedMemory(create=True, size=8)
    try:
        shm.buf[:8] = bytes(8)
        args = (module, shm.name, n)
        ns = two_processes(work, args, work, args, 2 * n)
        assert int.from_bytes(bytes(shm.buf[:8]), sys.byteorder) == 2 * n
        return ns
    finally:
        shm.close()
        shm.unlink()


# -- Queue put + get of a small object (two processes) --------------------------------------------

ITEM = ("job", 17, 3.5)


def _put_n(q, n):
    for _ in range(n):
        q.put(ITEM)


def _get_n(q, n):
    for _ in range(n):
        q.get()


def queue_pair(make, n):
    q = make()
    return two_processes(_put_n, (q, n), _get_n, (q, n), n)


def faster_fifo_queue():
    import faster_fifo
    import faster_fifo_reduction  # noqa: F401  (pickling support)

    return faster_fifo.Queue(max_size_bytes=1 << 20)


# -- Pipe round trip ------------------------------------------------------------------------------


def _echo(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def _ping(conn, n):
    for _ in range(n):
        conn.send(ITEM)
        conn.recv()


def pipe_round_trip(make, n):
    a, b = make()
    return two_processes(_ping, (a, n), _echo, (b, n), n)


# -- dict get and set from a child ----------------------------------------------------------------


def _dict_ops(d, n):
    for i in range(n):
        d["job-17"] = i
        d["job-17"]


def dict_child(make, n):
    d, cleanup = make()
    d["job-17"] = 0
    try:
        go, out = CTX.Event(), CTX.SimpleQueue()
        p = CTX.Process(target=_timed, args=(_dict_ops, (d, n), go, out))
        p.start()
        time.sleep(0.2)
        go.set()
        s, e = out.get()
        p.join()
        assert d["job-17"] == n - 1
        return (e - s) * 1e9 / (2 * n)
    finally:
        cleanup()


def manager_dict():
    m = CTX.Manager()
    return m.dict(), m.shutdown


def ultradict():
    from UltraDict import UltraDict

    d = UltraDict(shared_lock=True)
    return d, d.unlink


def shared_memory_dict():
    from shared_memory_dict import SharedMemoryDict

    d = SharedMemoryDict(name="shmkit-bench-smd-%d" % os.getpid(), size=4096)
    return d, d.shm.unlink


def shmkit_dict():
    return shmkit.dict(), lambda: None


# -- Lock acquire + release ---------------------------------------------------------------------


def _acq_rel(lock, n):
    for _ in range(n):
        lock.acquire()
        lock.release()


def lock_uncontended(make, n):
    return one_process(_acq_rel, (make(), n), n)


def lock_contended(make, n):
    lock = make()
    return two_processes(_acq_rel, (lock, n), _acq_rel, (lock, n), 2 * n)


# -- the table ----------------------------------------------------------------------------------


def benches(scale):
    def k(n):
        return max(int(n * scale), 10)

    return [
        ("Value += 1 under get_lock(), 2 processes", [
            ("multiprocessing.Value", lambda: value_locked(lambda: CTX.Value("q", 0), k(20000))),
            ("shmkit.Value", lambda: value_locked(lambda: shmkit.Value("q", 0), k(20000))),
            ("floor: shmkit.Value, one per process", lambda: value_locked(lambda: shmkit.Value("q", 0), k(20000), apart=True)),
        ]),
        ("atomic fetch_add, 2 processes", [
            ("multiprocessing.Value (lock)", lambda: value_locked(lambda: CTX.Value("q", 0), k(20000))),
            ("atomics (PyPI)", lambda: atomic_peer("atomics", k(200000))),
            ("atomics2 (PyPI)", lambda: atomic_peer("atomics2", k(200000))),
            ("atomicshm (PyPI)", lambda: atomic_peer("atomicshm", k(200000))),
            ("shmkit.Value.fetch_add", lambda: atomic_shmkit(k(200000))),
            ("floor: shmkit fetch_add, one Value per process", lambda: atomic_shmkit(k(200000), apart=True)),
        ]),
        ("Queue put + get of a small tuple, 2 processes", [
            ("multiprocessing.Queue", lambda: queue_pair(CTX.Queue, k(20000))),
            ("faster-fifo (PyPI)", lambda: queue_pair(faster_fifo_queue, k(50000))),
            ("shmkit.Queue", lambda: queue_pair(shmkit.Queue, k(50000))),
        ]),
        ("Pipe round trip (send + recv both ways)", [
            ("multiprocessing.Pipe", lambda: pipe_round_trip(CTX.Pipe, k(10000))),
            ("shmkit.Pipe", lambda: pipe_round_trip(shmkit.Pipe, k(20000))),
        ]),
        ("dict get or set from a child process", [
            ("Manager().dict()", lambda: dict_child(manager_dict, k(2000))),
            ("UltraDict (PyPI)", lambda: dict_child(ultradict, k(20000))),
            ("shared-memory-dict (PyPI)", lambda: dict_child(shared_memory_dict, k(20000))),
            ("shmkit.dict", lambda: dict_child(shmkit_dict, k(50000))),
        ]),
        ("Lock acquire + release, uncontended", [
            ("multiprocessing.Lock", lambda: lock_uncontended(CTX.Lock, k(200000))),
            ("shmkit.Lock", lambda: lock_uncontended(shmkit.Lock, k(200000))),
        ]),
        ("Lock acquire + release, 2 processes", [
            ("multiprocessing.Lock", lambda: lock_contended(CTX.Lock, k(50000))),
            ("shmkit.Lock", lambda: lock_contended(shmkit.Lock, k(50000))),
        ]),
    ]


def fmt_ns(ns):
    return "%.0f ns" % ns if ns < 10000 else "%.1f µs" % (ns / 1000)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every operation count")
    ap.add_argument("--only", default="", help="comma-separated words: runs the operations whose title contains one of them")
    args = ap.parse_args()
    print("| operation | implementation | median per op | vs multiprocessing |")
    print("| --- | --- | ---: | ---: |")
    for title, peers in benches(args.scale):
        if args.only and not any(w.lower() in title.lower() for w in args.only.split(",")):
            continue
        base = None
        for name, run in peers:
            try:
                runs = [run() for _ in range(args.repeats)]
            except ImportError as e:
                print("| %s | %s | not installed (%s) | |" % (title, name, e.name))
                continue
            med = statistics.median(runs)
            if base is None:
                base = med
            print("| %s | %s | %s | %.1f× |" % (title, name, fmt_ns(med), base / med))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
