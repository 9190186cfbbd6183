"""The common mechanism: placement, pickling as a reference, open by name, removal at exit."""

import pickle
import subprocess
import sys
import textwrap

import pytest

import shmkit
from conftest import run_script, shm_segments
from targets import _bump




def test_pickles_as_a_reference_not_a_copy():
    c = shmkit.Counter(5)
    data = pickle.dumps(c)
    assert len(data) < 200
    c2 = pickle.loads(data)
    c2.add(1)
    assert c.value == 6
    assert c2.ref == c.ref


def test_every_start_method_shares_the_object(ctx):
    c = shmkit.Counter()
    ps = [ctx.Process(target=_bump, args=(c, 100)) for _ in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(30)
        assert p.exitcode == 0
    assert c.value == 300


def test_pool_passes_objects_as_arguments(ctx):
    c = shmkit.ShardedCounter()
    with ctx.Pool(2) as pool:
        pool.starmap(_bump, [(c, 10)] * 8)
    assert c.value == 80


def test_open_by_reference_from_an_unrelated_process():
    c = shmkit.Counter(41)
    rc, out, err = run_script(
        "import shmkit; c = shmkit.open(%r); c.add(1); print(type(c).__name__)" % c.ref
    )
    assert rc == 0, err
    assert out.strip() == "Counter"
    assert c.value == 42


def test_open_errors():
    with pytest.raises(shmkit.NotFound):
        shmkit.open("shmkit-py-no-such-segment/o1")
    c = shmkit.Counter()
    with pytest.raises(shmkit.NotFound):
        shmkit.open(c.ref + "x")
    with pytest.raises(ValueError):
        shmkit.open("no-slash")


def test_a_full_default_segment_is_replaced():
    before = shmkit.Counter()
    seg = before._segment
    made = [shmkit.Counter() for _ in range(1100)]  # more than one directory holds
    assert made[-1]._segment != seg
    made[-1].add(3)
    assert pickle.loads(pickle.dumps(made[-1])).value == 3


SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os, shmkit, sys

    def say(name):
        os.write(1, (name + "\\n").encode())  # one write: lines of processes never interleave

    def child(c, e):
        c.add(1)
        own = shmkit.Counter()   # the child's own default segment
        own.add(1)
        say(own._segment)
        e.set()

    if __name__ == "__main__":
        mp.set_start_method(sys.argv[1])
        c, e = shmkit.Counter(), shmkit.Event()
        say(c._segment)
        ps = [mp.Process(target=child, args=(c, e)) for _ in range(2)]
        for p in ps: p.start()
        for p in ps: p.join()
        assert c.value == 2 and e.is_set()
    """
)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_normal_exit_leaves_nothing_in_dev_shm(tmp_path, method):
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    p = subprocess.run(
        [sys.executable, str(script), method], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    # The program's own segments and its children's (the machine's /dev/shm is shared with
    # other programs, so only these are checked).
    made = set(p.stdout.split())
    assert len(made) == 3 and all(m.startswith("shmkit-py-") for m in made), made
    assert made & shm_segments() == set()


def test_cleanup_removes_segments_of_killed_processes():
    rc, out, err = run_script(
        "import os, signal, shmkit; c = shmkit.Counter(); print(c._segment, flush=True);"
        " os.kill(os.getpid(), signal.SIGKILL)"
    )
    assert rc == -9
    seg = out.strip()
    assert seg in shm_segments()
    assert seg in shmkit.cleanup()
    assert seg not in shm_segments()
