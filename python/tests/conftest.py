"""Shared fixtures: the start methods, and a check that a test leaves nothing in /dev/shm."""

import multiprocessing
import os
import subprocess
import sys

import pytest

START_METHODS = ["fork", "spawn", "forkserver"]


@pytest.fixture(params=START_METHODS)
def ctx(request):
    """A multiprocessing context for each start method."""
    return multiprocessing.get_context(request.param)


def shm_segments():
    """The shmkit default segments in /dev/shm now."""
    return {n for n in os.listdir("/dev/shm") if n.startswith("shmkit-py-")}


def run_script(code, timeout=60):
    """Runs `code` in a fresh interpreter (its own process tree); returns (rc, stdout, stderr)."""
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )
    return p.returncode, p.stdout, p.stderr
