"""Peer for benches/seqlock.rs: multiprocessing.Array with its lock.

A writer process rewrites the whole array continuously (`arr[:] = ...`, which takes the array's
lock), or once every PACE_NS nanoseconds (second argument: 0 = continuous, a number = paced by
spinning on the clock, `sleep:NS` = a write, then a sleep of NS); this process reads snapshots
(`arr[:]`, which takes the lock too), next to READERS − 1 reader processes reading continuously
(third argument, default 1). Protocol on stdin/stdout:
prints "ready", then for each line holding a number N takes N snapshots and prints the
nanoseconds they took; "quit" stops.
"""

import multiprocessing as mp
import sys
import time


def writer(arr, stop, pace):
    n = len(arr)
    k = 0
    sleep = pace.startswith("sleep:")
    pace_ns = int(pace.removeprefix("sleep:"))
    due = time.perf_counter_ns()
    while not stop.value:
        k += 1
        if sleep:
            time.sleep(pace_ns / 1e9)
        elif pace_ns:
            due += pace_ns
            now = time.perf_counter_ns()
            while now < due:
                now = time.perf_counter_ns()
            if now > due + pace_ns:
                due = now
        arr[:] = [k] * n


def reader(arr, stop):
    while not stop.value:
        snap = arr[:]
        assert snap[0] == snap[-1]


def main():
    words = int(sys.argv[1])
    pace = sys.argv[2] if len(sys.argv) > 2 else "0"
    readers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    arr = mp.Array("Q", words)  # lock=True: an RLock around every access
    stop = mp.Value("b", 0, lock=False)
    procs = [mp.Process(target=writer, args=(arr, stop, pace), daemon=True)]
    procs += [
        mp.Process(target=reader, args=(arr, stop), daemon=True) for _ in range(readers - 1)
    ]
    for p in procs:
        p.start()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            line = line.strip()
            if line == "quit" or not line:
                break
            n = int(line)
            t = time.perf_counter_ns()
            for _ in range(n):
                snap = arr[:]
            ns = time.perf_counter_ns() - t
            assert snap[0] == snap[-1]
            print(ns, flush=True)
    finally:
        stop.value = 1
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()


if __name__ == "__main__":
    main()
