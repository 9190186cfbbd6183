"""Python's multiprocessing.Lock, the baseline of benches/lock.rs.

Usage: mp_lock.py uncontended|contended ITERS
Prints the measured time in nanoseconds on the last line (interpreter and process start-up are
not included): for `uncontended`, ITERS acquire/increment/release rounds in one process; for
`contended`, two processes each doing ITERS rounds on a shared counter, timed from a shared start
event until the later one finished its loop.
"""
import multiprocessing as mp
import sys
import time


def worker(lock, value, iters, ready, go, ends, i):
    ready.release()
    while not go.value:  # spin: an Event's wake-up takes milliseconds
        pass
    for _ in range(iters):
        lock.acquire()
        value.value += 1
        lock.release()
    ends[i] = time.perf_counter_ns()  # CLOCK_MONOTONIC: comparable across processes


def main():
    mode, iters = sys.argv[1], int(sys.argv[2])
    lock = mp.Lock()
    value = mp.Value("Q", 0, lock=False)
    if mode == "uncontended":
        t = time.perf_counter_ns()
        for _ in range(iters):
            lock.acquire()
            value.value += 1
            lock.release()
        print(time.perf_counter_ns() - t)
        return
    ready = mp.Semaphore(0)
    go = mp.Value("i", 0, lock=False)
    ends = mp.Array("Q", 2, lock=False)
    procs = [
        mp.Process(target=worker, args=(lock, value, iters, ready, go, ends, i)) for i in range(2)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t = time.perf_counter_ns()
    go.value = 1
    for p in procs:
        p.join()
    elapsed = max(ends) - t
    assert value.value == 2 * iters, value.value
    print(elapsed)


if __name__ == "__main__":
    main()
