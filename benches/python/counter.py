#!/usr/bin/env python3
"""The Python baseline of shmkit's `counter` bench (benches/counter.rs, id `python-mp-value-lock`).

Two worker processes increment one `multiprocessing.Value('Q', 0)`, each increment under the
value's own lock, the way users share a counter today:

    with v.get_lock():
        v.value += 1

Only the increment phase is timed: the workers are started first, wait for their share of the work,
meet at a spinning start barrier (a shared arrival count; `multiprocessing.Barrier` would let one
worker sleep and start ~0.1 ms late), then each reads CLOCK_MONOTONIC (`time.monotonic_ns`) before
and after its loop. The result is last end minus first start, in nanoseconds. The final value is
checked to be exactly the number of increments (the script exits non-zero otherwise).

Usage:
    python3 counter.py N          one run of N increments in total (split over the 2 workers);
                                  prints the nanoseconds
    python3 counter.py --serve    persistent workers for the Rust bench: prints "ready", then for
                                  each line N read from stdin runs one round of N increments and
                                  prints "<nanoseconds> <final value>"; stops at EOF or "quit"
"""

import multiprocessing as mp
import sys
import time

WORKERS = 2


def worker(v, arrived, conn):
    rounds = 0
    while True:
        try:
            n = conn.recv()
        except EOFError:  # the parent is gone
            return
        if n is None:
            return
        # Start barrier: round r opens when all workers have arrived r times.
        rounds += 1
        with arrived.get_lock():
            arrived.value += 1
        raw = arrived.get_obj()  # read without taking the lock while spinning
        while raw.value < rounds * WORKERS:
            pass
        t0 = time.monotonic_ns()
        for _ in range(n):
            with v.get_lock():
                v.value += 1
        t1 = time.monotonic_ns()
        conn.send((t0, t1))


class Pool:
    def __init__(self):
        self.value = mp.Value("Q", 0)
        self.arrived = mp.Value("Q", 0)
        self.conns = []
        self.procs = []
        for _ in range(WORKERS):
            parent_end, child_end = mp.Pipe()
            p = mp.Process(target=worker, args=(self.value, self.arrived, child_end), daemon=True)
            p.start()
            child_end.close()
            self.conns.append(parent_end)
            self.procs.append(p)

    def run(self, total):
        """One round of `total` increments; returns (nanoseconds, final value)."""
        with self.value.get_lock():
            self.value.value = 0
        shares = [total // WORKERS + (1 if i < total % WORKERS else 0) for i in range(WORKERS)]
        for conn, n in zip(self.conns, shares):
            conn.send(n)
        spans = [conn.recv() for conn in self.conns]
        start = min(s for s, _ in spans)
        end = max(e for _, e in spans)
        with self.value.get_lock():
            final = self.value.value
        if final != total:
            sys.exit(f"counter.py: lost updates: {final} != {total}")
        return end - start, final

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


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    pool = Pool()
    try:
        if sys.argv[1] == "--serve":
            print("ready", flush=True)
            for line in sys.stdin:
                line = line.strip()
                if line in ("", "quit"):
                    break
                ns, final = pool.run(int(line))
                print(ns, final, flush=True)
        else:
            ns, _ = pool.run(int(sys.argv[1]))
            print(ns)
    finally:
        pool.close()


if __name__ == "__main__":
    main()
