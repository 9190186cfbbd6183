"""Peer for benches/seqlock.rs: multiprocessing.Array with its lock.

A writer process rewrites the whole array continuously (`arr[:] = ...`, which takes the array's
lock), or once every PACE_NS nanoseconds (second argument, 0 = continuous; paced by spinning on
the clock); this process reads snapshots (`arr[:]`, which takes the lock too). Protocol on
stdin/stdout:
prints "ready", then for each line holding a number N takes N snapshots and prints the
nanoseconds they took; "quit" stops.
"""

import multiprocessing as mp
import sys
import time


def writer(arr, stop, pace_ns):
    n = len(arr)
    k = 0
    due = time.perf_counter_ns()
    while not stop.value:
        k += 1
        if pace_ns:
            due += pace_ns
            now = time.perf_counter_ns()
            while now < due:
                now = time.perf_counter_ns()
            if now > due + pace_ns:
                due = now
        arr[:] = [k] * n


def main():
    words = int(sys.argv[1])
    pace_ns = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    arr = mp.Array("Q", words)  # lock=True: an RLock around every access
    stop = mp.Value("b", 0, lock=False)
    p = mp.Process(target=writer, args=(arr, stop, pace_ns), daemon=True)
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
        p.join(5)
        if p.is_alive():
            p.kill()


if __name__ == "__main__":
    main()
