#!/usr/bin/env python3
"""The Python baselines of shmkit's `ring` bench (benches/ring.rs).

Modes (the first argument):

    spsc-queue     one producer process puts ints into a `multiprocessing.Queue()`, one consumer
                   process gets them (and checks their order); id `spsc-throughput/python-mp-queue`
    mpmc-queue     two producer processes and two consumer processes share one `Queue()`; each
                   consumer checks that every producer's items reach it in order;
                   id `mpmc-throughput/python-mp-queue`
    pipe-pingpong  this process sends an int through `multiprocessing.Pipe()` (duplex, the
                   default), a child process sends it back: one round trip; id
                   `pingpong-latency/python-mp-pipe`

The queue is unbounded, as `Queue()` is usually made, and items go through `put`/`get` and
`send`/`recv` (pickled), the way users write it.

For the queue modes only the transfer is timed: the workers are started first, wait for their
share of the round, meet at a spinning start barrier (a shared arrival count), then each reads
CLOCK_MONOTONIC (`time.monotonic_ns`) before and after its loop; a round takes last end minus
first start. The ping-pong is timed by the pinging process around its loop.

Protocol (stdin/stdout, one line each): prints "ready"; then "run N" runs one round of N items
(queues: N items in total, split over the producers and over the consumers) or N round trips
(pipe) and prints the nanoseconds; "lat N" (pipe only) prints N round-trip times in
nanoseconds, space-separated; EOF or "quit" stops every process.
"""

import multiprocessing as mp
import sys
import time

PRODUCER_TAG = 1 << 40  # producer p sends p * PRODUCER_TAG + k


def shares(total, parts):
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def barrier(arrived, rounds, workers):
    with arrived.get_lock():
        arrived.value += 1
    raw = arrived.get_obj()  # read without the lock while spinning
    while raw.value < rounds * workers:
        pass


def producer(q, index, arrived, workers, conn):
    rounds = 0
    k = 0
    base = index * PRODUCER_TAG
    while True:
        try:
            n = conn.recv()
        except EOFError:  # the parent is gone
            return
        if n is None:
            return
        rounds += 1
        barrier(arrived, rounds, workers)
        t0 = time.monotonic_ns()
        for _ in range(n):
            q.put(base + k)
            k += 1
        t1 = time.monotonic_ns()
        conn.send((t0, t1))


def consumer(q, producers, arrived, workers, conn):
    rounds = 0
    last = [-1] * producers
    while True:
        try:
            n = conn.recv()
        except EOFError:
            return
        if n is None:
            return
        rounds += 1
        barrier(arrived, rounds, workers)
        t0 = time.monotonic_ns()
        for _ in range(n):
            v = q.get()
            p, k = divmod(v, PRODUCER_TAG)
            if k <= last[p]:
                conn.send(("error", f"producer {p}: item {k} after {last[p]}"))
                return
            last[p] = k
        t1 = time.monotonic_ns()
        conn.send((t0, t1))


class QueuePool:
    def __init__(self, producers, consumers):
        self.producers = producers
        self.consumers = consumers
        workers = producers + consumers
        self.q = mp.Queue()
        self.arrived = mp.Value("Q", 0)
        self.conns = []
        self.procs = []
        for i in range(workers):
            parent_end, child_end = mp.Pipe()
            if i < producers:
                args = (self.q, i, self.arrived, workers, child_end)
                target = producer
            else:
                args = (self.q, producers, self.arrived, workers, child_end)
                target = consumer
            p = mp.Process(target=target, args=args, daemon=True)
            p.start()
            child_end.close()
            self.conns.append(parent_end)
            self.procs.append(p)

    def run(self, total):
        counts = shares(total, self.producers) + shares(total, self.consumers)
        for conn, n in zip(self.conns, counts):
            conn.send(n)
        spans = [conn.recv() for conn in self.conns]
        for s in spans:
            if s[0] == "error":
                sys.exit(f"ring.py: {s[1]}")
        return max(e for _, e in spans) - min(s for s, _ in spans)

    def close(self):
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join()


def ponger(conn):
    while True:
        try:
            v = conn.recv()
        except EOFError:
            return
        if v is None:
            return
        conn.send(v)


class PipePingPong:
    def __init__(self):
        self.conn, child_end = mp.Pipe()
        self.proc = mp.Process(target=ponger, args=(child_end,), daemon=True)
        self.proc.start()
        child_end.close()
        self.k = 0

    def trip(self):
        self.k += 1
        self.conn.send(self.k)
        if self.conn.recv() != self.k:
            sys.exit("ring.py: the pipe answered out of order")

    def run(self, n):
        t0 = time.monotonic_ns()
        for _ in range(n):
            self.trip()
        return time.monotonic_ns() - t0

    def lat(self, n):
        out = []
        for _ in range(n):
            t0 = time.monotonic_ns()
            self.trip()
            out.append(time.monotonic_ns() - t0)
        return out

    def close(self):
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(timeout=2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("spsc-queue", "mpmc-queue", "pipe-pingpong"):
        sys.exit(__doc__)
    mode = sys.argv[1]
    if mode == "spsc-queue":
        pool = QueuePool(1, 1)
    elif mode == "mpmc-queue":
        pool = QueuePool(2, 2)
    else:
        pool = PipePingPong()
    try:
        print("ready", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] == "quit":
                break
            n = int(words[1])
            if words[0] == "run":
                print(pool.run(n), flush=True)
            elif words[0] == "lat" and mode == "pipe-pingpong":
                print(" ".join(map(str, pool.lat(n))), flush=True)
            else:
                sys.exit(f"ring.py: unknown command {line!r}")
    finally:
        pool.close()


if __name__ == "__main__":
    main()
