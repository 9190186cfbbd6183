"""dict, list and Namespace: ten processes writing, the dict and list protocols, keys,
limits, a writer killed mid-way."""

import multiprocessing
import os
import pickle
import signal
import time

import pytest

import ipc_targets
import shmkit



def test_ten_processes_write_into_a_dict_and_a_list(ctx):
    d, l = shmkit.dict(), shmkit.list()
    ps = [ctx.Process(target=ipc_targets.writer, args=(d, l, i)) for i in range(10)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    print(d, l)
    assert {i: d[i] for i in range(10)} == {i: i * i for i in range(10)}
    assert d["job-7"] == {"worker": 7}
    assert len(d) == 20
    assert sorted(l) == list(range(10))


def test_the_mutable_mapping_protocol():
    d = shmkit.dict({"a": 1}, b=2)
    d["c"] = [3]
    assert d["a"] == 1 and d["b"] == 2 and d["c"] == [3]
    assert "a" in d and "z" not in d and [] not in d
    assert len(d) == 3
    assert sorted(d) == ["a", "b", "c"] and sorted(d.keys()) == ["a", "b", "c"]
    assert sorted(d.values(), key=str) == sorted([1, 2, [3]], key=str)
    assert sorted(d.items(), key=str) == sorted([("a", 1), ("b", 2), ("c", [3])], key=str)
    assert d.get("z") is None and d.get("z", 5) == 5
    assert d.setdefault("a", 9) == 1 and d.setdefault("e", 9) == 9 and d["e"] == 9
    assert d.pop("e") == 9 and d.pop("e", None) is None
    with pytest.raises(KeyError):
        d.pop("e")
    with pytest.raises(KeyError):
        d["e"]
    del d["c"]
    with pytest.raises(KeyError):
        del d["c"]
    d.update({"x": 1}, y=2)
    d.update([("z", 3)])
    c = d.copy()
    assert type(c) is dict and c == {"a": 1, "b": 2, "x": 1, "y": 2, "z": 3}
    assert d == c
    k, v = d.popitem()
    assert c[k] == v and k not in d
    d.clear()
    assert len(d) == 0 and d.copy() == {}


def test_keys_equal_in_python_are_one_key():
    d = shmkit.dict()
    d[1] = "int"
    assert d[1.0] == "int" and d[True] == "int"
    d[(1, "a", b"b", None, 2.5)] = "tuple"
    assert d[(1.0, "a", b"b", None, 2.5)] == "tuple"
    assert (1, "a", b"b", None, 2.5) in d.keys()
    d[-0.0] = "zero"
    assert d[0] == "zero"
    with pytest.raises(TypeError):
        d[[1]] = 1
    with pytest.raises(TypeError):
        d[{"a": 1}]
    # The encoding is canonical: another process finds the key from its own objects.
    assert shmkit.collections.encode_key("job-17") == b"sjob-17"


def test_limits_give_clear_errors():
    d = shmkit.dict(capacity=2, key_max=8, value_max=64)
    d["a"], d["b"] = 1, 2
    with pytest.raises(shmkit.Error, match="full"):
        d["c"] = 3
    d["a"] = 5  # replacing needs no new entry
    with pytest.raises((ValueError, shmkit.Error)):
        d["a"] = "x" * 100
    with pytest.raises((ValueError, shmkit.Error)):
        d["a-long-key"] = 1
    assert d.copy() == {"a": 5, "b": 2}
    l = shmkit.list(capacity=2, value_max=64)
    l.extend([1, 2])
    with pytest.raises(shmkit.Error, match="full"):
        l.append(3)
    with pytest.raises((ValueError, shmkit.Error)):
        l[0] = "x" * 100
    assert l[:] == [1, 2]


def test_the_list_protocol():
    l = shmkit.list(range(5))
    assert len(l) == 5 and l[0] == 0 and l[-1] == 4
    assert l[1:4] == [1, 2, 3] and l[::2] == [0, 2, 4] and l[::-1] == [4, 3, 2, 1, 0]
    l[1] = "one"
    l[-1] = "four"
    assert list(l) == [0, "one", 2, 3, "four"]
    with pytest.raises(IndexError):
        l[5]
    with pytest.raises(IndexError):
        l[-6] = 1
    assert l.pop() == "four" and len(l) == 4
    with pytest.raises(ValueError):
        l.pop(0)
    assert 2 in l and l.index(2) == 2 and l.count(3) == 1
    assert l.copy() == [0, "one", 2, 3] and l == [0, "one", 2, 3]
    l.clear()
    with pytest.raises(IndexError):
        l.pop()



def test_namespace(ctx):
    ns = shmkit.Namespace(z=1)
    ns._local = "not shared"
    p = ctx.Process(target=ipc_targets.set_ns, args=(ns,))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert (ns.x, ns.y) == (10, "hello")
    with pytest.raises(AttributeError):
        ns.z
    assert repr(ns) == "Namespace(x=10, y='hello')"
    ns2 = pickle.loads(pickle.dumps(ns))
    assert ns2.x == 10
    with pytest.raises(AttributeError):
        ns2._local



def test_a_writer_killed_mid_way_leaves_them_consistent():
    ctx = multiprocessing.get_context("fork")
    d, l = shmkit.dict(capacity=64), shmkit.list(capacity=1024)
    p = ctx.Process(target=ipc_targets.hammer, args=(d, l))
    p.start()
    deadline = time.monotonic() + 30
    while len(d) < 50 and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)  # let it run on, so that the kill lands in the middle of something
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    items = d.copy()
    assert set(items) == {"k%d" % i for i in range(50)}
    assert all(v[0] == "v" for v in items.values())
    # Every slot is usable again: fill the dict to capacity, then empty it.
    for i in range(14):
        d["new%d" % i] = i
    assert len(d) == 64
    for k in list(d):
        del d[k]
    assert len(d) == 0
    l.append("after")
    # Visible once the dead appender's index (if it held one) is declared a hole.
    deadline = time.monotonic() + 10
    while "after" not in list(l) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(l)[-1] == "after"
