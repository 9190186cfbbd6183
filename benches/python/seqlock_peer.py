"""Peer for benches/seqlock.rs: multiprocessing.Array with its lock.

A writer process rewrites the whole array continuously (`arr[:] = ...`, which takes the array's
lock); this process reads snapshots (`arr[:]`, which takes the lock too). Protocol on stdin/stdout:
prints "ready", then for each line holding a number N takes N snapshots and prints the
nanoseconds they took; "quit" stops.
"""

import multiprocessing as mp
import sys
import time


def writer(arr, stop):
    n = len(arr)
    k = 0
    while not stop.value:
        k += 1
        arr[:] = [k] * n


def main():
    words = int(sys.argv[1])
    arr = mp.Array("Q", words)  # lock=True: an RLock around every access
    stop = mp.Value("b", 0, lock=False)
    p = mp.Process(target=writer, args=(arr, stop), daemon=True)
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
