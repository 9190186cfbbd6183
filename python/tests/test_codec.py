"""The native pickling of small plain objects (python/src/codec.rs) used by Queue, Pipe and
dict: every object comes back equal and of the same type, what travels is still a pickle
(recv_bytes users read it with pickle.loads; a pickle sent with send_bytes is read by recv),
and everything the native path does not handle goes through the pickle module unchanged."""

import enum
import math
import pickle
import queue

import pytest

import shmkit


class Color(enum.IntEnum):
    RED = 3


class Text(str):
    pass


CASES = [
    None, True, False,
    0, 1, 255, 256, 65535, 65536, -1, -256, 2**31 - 1, 2**31, -2**31, -2**31 - 1,
    2**63 - 1, -2**63, 2**63, -2**63 - 1, 2**100, -2**100,
    0.0, -0.0, 1.5, -2.25e300, float("inf"), float("-inf"), float("nan"),
    "", "job", "é" * 300, "\U0001f600", "\ud800 lone surrogate",
    b"", b"\x00\xff", b"x" * 70000,
    (), (1,), (1, "a"), ("job", 17, 3.5), (1, 2, 3, 4, 5), ((1, (2, (3, ()))), b""),
    tuple(range(300)), (((((((((((1,),),),),),),),),),),),
    [1, 2], {"a": (1, 2)}, {1, 2}, bytearray(b"ab"), 1j, Color.RED, Text("sub"),
    ("mixed", [1], Color.RED), True and (True, False, None),
]


def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_queue_and_pipe_round_trip():
    q = shmkit.Queue()
    a, b = shmkit.Pipe()
    for obj in CASES:
        q.put(obj)
        assert same(q.get(timeout=5), obj), obj
        a.send(obj)
        assert same(b.recv(), obj), obj


def test_dict_value_round_trip():
    d = shmkit.dict(capacity=8, value_max=1 << 17)
    for obj in CASES:
        d["k"] = obj
        assert same(d["k"], obj), obj
        assert same(d.get("k"), obj), obj


def test_pipe_messages_are_pickles():
    a, b = shmkit.Pipe()
    for obj in CASES:
        a.send(obj)
        assert same(pickle.loads(b.recv_bytes()), obj), obj
        for protocol in (2, 3, 4, pickle.HIGHEST_PROTOCOL):
            a.send_bytes(pickle.dumps(obj, protocol))
            assert same(b.recv(), obj), (obj, protocol)


def outcome(fn, data):
    try:
        return ("value", fn(data))
    except Exception as e:
        return ("error", type(e))


def test_malformed_pickles_behave_as_pickle_loads():
    a, b = shmkit.Pipe()

    def recv(data):
        a.send_bytes(data)
        return b.recv()

    for bad in (b"", b"\x80\x05K", b"\x80\x05K\x01K\x02.", b"\x80\x05\x85.", b"\x80\x05t.",
                b"\x80\x05(K\x01.", b"\x80\x05\x8c\x05ab.", b"\x80\x05\x8a\x09" + bytes(9) + b".",
                b"\x80\x05\x8c\x01\xff.", b"\x80\x05N\x94h\x00\x86."):
        assert outcome(recv, bad) == outcome(pickle.loads, bad), bad


# Opcodes the native reader knows, with their argument lengths (None: a length prefix of
# 1, 4 or 8 bytes), and none that imports or calls anything: pickle.loads of any sequence of
# these is safe to run on random bytes (not LONG_BINPUT: pickle grows its memo to twice a
# random 32-bit index, gigabytes; the native reader leaves that opcode to pickle).
_OPS = [
    (b"\x80", 1), (b"\x95", 8), (b"\x94", 0), (b"q", 1), (b".", 0), (b"N", 0),
    (b"\x88", 0), (b"\x89", 0), (b"K", 1), (b"M", 2), (b"J", 4), (b"\x8a", None),
    (b"G", 8), (b"\x8c", None), (b"X", None), (b"C", None), (b"B", None), (b")", 0),
    (b"\x85", 0), (b"\x86", 0), (b"\x87", 0), (b"(", 0), (b"t", 0),
]


def _hostile(rng):
    out = bytearray(b"\x80\x05" if rng.random() < 0.8 else b"")
    for _ in range(rng.randrange(1, 12)):
        op, n = rng.choice(_OPS)
        out += op
        if n is None:
            size = rng.choice([0, 1, 2, 3, 200, 255])
            if op in (b"X", b"B"):
                out += size.to_bytes(4, "little")
            else:
                out.append(size)
            out += bytes(rng.choice([rng.randrange(256), 0x61]) for _ in range(min(size, rng.randrange(0, 8))))
        else:
            out += bytes(rng.choice([0, 1, 5, 8, 0x7F, 0x80, 0xFF, rng.randrange(256)]) for _ in range(n))
    if rng.random() < 0.7:
        out += b"."
    return bytes(out)


def test_hostile_pickles_behave_as_pickle_loads():
    # Random sequences of the natively read opcodes with hostile arguments: whatever the native
    # reader accepts, pickle.loads gives the same object; whatever it refuses goes to
    # pickle.loads (its error). A divergence found this way (memo writes on an empty stack,
    # a frame longer than the data, protocol 6+) is a regression.
    import random

    rng = random.Random(13)
    a, b = shmkit.Pipe()

    def recv(data):
        a.send_bytes(data)
        return b.recv()

    for bad in (b"\x80\x05\x94K\x01.", b"\x80\x05q\x00K\x01.", b"\x80\x06K\x01.",
                b"\x80\x05N(\x94)t\x86.", b"\x80\x05N(q\x01)t\x86.",
                b"\x80\x05\x95\xff\x00\x00\x00\x00\x00\x00\x00K\x01."):
        assert outcome(recv, bad) == outcome(pickle.loads, bad), bad
    for _ in range(3000):
        data = _hostile(rng)
        mine, theirs = outcome(recv, data), outcome(pickle.loads, data)
        if mine[0] == "value" and theirs[0] == "value":
            assert same(mine[1], theirs[1]), data
        else:
            assert mine == theirs, data


def test_unpicklable_object_raises_as_pickle_does():
    a, b = shmkit.Pipe()
    q = shmkit.Queue()
    for put in (a.send, q.put):
        with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
            put(lambda: 1)
        with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
            put(("fine", lambda: 1))
    q.put("after")
    assert q.get(timeout=5) == "after"


@pytest.mark.parametrize(
    "key", ["s", "\ud800", 7, -7, 2**80, True, 1.5, float("inf"), b"b", None, (1, "a"), Color.RED],
    ids=repr,
)
def test_dict_keys_as_encode_key(key):
    d = shmkit.dict()
    d[key] = "v"
    assert d[key] == "v"
    assert [shmkit.collections.encode_key(k) for k in d.keys()] == [shmkit.collections.encode_key(key)]
    del d[key]
    assert key not in d
    with pytest.raises(KeyError):
        del d[key]
    with pytest.raises(KeyError):
        d[key]


def test_dict_numeric_keys_are_one_key():
    d = shmkit.dict()
    d[1] = "one"
    assert d[1.0] == "one" and d[True] == "one"
    d[2.0] = "two"
    assert d[2] == "two"
    assert len(d) == 2


def test_dict_unsupported_key_and_missing():
    d = shmkit.dict()
    with pytest.raises(TypeError):
        d[[1]] = 1

    class Default(shmkit.dict):
        def __missing__(self, key):
            return ("missing", key)

    assert Default()["x"] == ("missing", "x")


def test_closed_handles_raise_as_multiprocessing():
    q = shmkit.Queue()
    q.close()
    with pytest.raises(ValueError):
        q.put(1)
    with pytest.raises(ValueError):
        q.get(False)
    a, b = shmkit.Pipe(duplex=False)
    with pytest.raises(OSError):
        a.send(1)
    with pytest.raises(OSError):
        b.recv()
    b.close()
    with pytest.raises(OSError):
        b.send(1)


def test_get_timeout_includes_the_spin():
    q = shmkit.Queue()
    with pytest.raises(queue.Empty):
        q.get(timeout=0)
    with pytest.raises(queue.Empty):
        q.get(False)
    a, b = shmkit.Pipe()
    assert b.poll(0) is False
