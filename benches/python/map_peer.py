"""Peer for benches/map.rs: multiprocessing's Manager().dict().

Arguments: value size (8: int keys and values, as 8-byte ones; 256: 32-byte keys and 256-byte
values), entries to fill (half of the Rust maps' capacity), and the operation measured (`get` or
`set`). A writer process sets random present keys as fast as it can (the Rust cases have a writer
process too). Protocol on stdin/stdout: prints "ready", then for each line holding a number N does
N operations on random present keys and prints the nanoseconds they took; "quit" stops.
"""

import multiprocessing as mp
import random
import sys
import time


def key(size, k):
    return k if size == 8 else k.to_bytes(8, "little") + b"\x5a" * 24


def value(size, x):
    return x if size == 8 else x.to_bytes(8, "little") * 32


def writer(d, stop, size, keys):
    v = value(size, 3)
    i = 0
    while not stop.value:
        d[keys[i % len(keys)]] = v
        i += 1


def main():
    size = int(sys.argv[1])
    filled = int(sys.argv[2])
    op = sys.argv[3]
    rnd = random.Random(7)
    keys = [key(size, rnd.randrange(filled)) for _ in range(1 << 14)]
    with mp.Manager() as manager:
        d = manager.dict()
        d.update({key(size, k): value(size, k) for k in range(filled)})
        stop = mp.Value("b", 0, lock=False)
        w = mp.Process(target=writer, args=(d, stop, size, keys), daemon=True)
        w.start()
        v = value(size, 5)
        print("ready", flush=True)
        for line in sys.stdin:
            line = line.strip()
            if line == "quit" or not line:
                break
            n = int(line)
            t = time.perf_counter_ns()
            if op == "get":
                for i in range(n):
                    d[keys[i % len(keys)]]
            else:
                for i in range(n):
                    d[keys[i % len(keys)]] = v
            print(time.perf_counter_ns() - t, flush=True)
        stop.value = 1
        w.join(5)


if __name__ == "__main__":
    main()
