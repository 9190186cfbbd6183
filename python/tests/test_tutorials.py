"""The classic multiprocessing tutorial examples, unchanged except for where Value and Array
come from, under every start method.

The 99-process examples run under fork only by default: under spawn and forkserver each of the
99 children starts an interpreter and imports this module, 40-70 s per case on the 2-core
reference machine. SHMKIT_PY_FULL=1 runs them under every start method.
"""

import multiprocessing
import os

import pytest

import shmkit
from targets import add_one, add_one_unlocked, f, increment_ten, pool_task

METHODS_99 = ["fork", "spawn", "forkserver"] if os.environ.get("SHMKIT_PY_FULL") else ["fork"]


# --- a child increments a shared Value ten times under its lock (and ten processes add 1) ---



def test_child_increments_value_ten_times_under_its_lock(ctx):
    counter = shmkit.Value("i", 0)
    p = ctx.Process(target=increment_ten, args=(counter,))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert counter.value == 10




def test_ten_processes_add_one(ctx):
    variable = shmkit.Value("i", 0)
    processes = [ctx.Process(target=add_one, args=(variable,)) for _ in range(10)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(30)
        assert p.exitcode == 0
    assert variable.value == 10


# --- 99 processes add 1, with the lock (exactly 99) and without (at most 99) ---



def run_99(ctx, target, variable):
    processes = [ctx.Process(target=target, args=(variable,)) for _ in range(99)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
        assert p.exitcode == 0


@pytest.mark.parametrize("method", METHODS_99)
def test_99_processes_add_one_with_the_lock(method):
    ctx = multiprocessing.get_context(method)
    variable = shmkit.Value("i", 0)
    run_99(ctx, add_one, variable)
    assert variable.value == 99


@pytest.mark.parametrize("method", METHODS_99)
def test_99_processes_add_one_without_the_lock(method):
    ctx = multiprocessing.get_context(method)
    # A load then a store: updates may be lost (as with multiprocessing), never more than 99.
    variable = shmkit.Value("i", 0)
    run_99(ctx, add_one_unlocked, variable)
    assert 1 <= variable.value <= 99


# --- the multiprocessing documentation's "Sharing state" example ---



def test_docs_value_and_array(ctx):
    num = shmkit.Value("d", 0.0)
    arr = shmkit.Array("i", range(10))
    p = ctx.Process(target=f, args=(num, arr))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    assert num.value == 3.1415927
    assert arr[:] == [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]


# --- a Pool: shared objects as task arguments (multiprocessing refuses this for its own) ---



def test_pool_tasks_update_a_shared_value(ctx):
    variable = shmkit.Value("q", 0, lock=False)
    lock = shmkit.Lock()
    with ctx.Pool(2) as pool:
        done = pool.starmap(pool_task, [(variable, lock, 25)] * 8)
    assert sum(done) == 200
    assert variable.value == 200
