#!/usr/bin/env bash
# The Python package: a fresh venv, maturin and pytest from PyPI, the extension built in
# release mode, the pytest suite. Needs only python3 (3.10+); installs python3-venv with apt-get
# where `python3 -m venv` does not work (Debian's python3 without ensurepip). Measured cold
# (empty target dir) on the 2-core reference machine: see .ci/run's step header.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(mktemp -d /tmp/shmkit-ci-venv.XXXXXX)
trap 'rm -rf "$venv"' EXIT
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    echo "python3 -m venv failed; installing python3-venv"
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv" && mkdir -p "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q maturin pytest
# Release without the workspace's debug info (Cargo.toml's profile.release has debug = 1 for
# the benches): the same code, a faster build and link.
CARGO_PROFILE_RELEASE_DEBUG=0 VIRTUAL_ENV="$venv" "$venv/bin/maturin" develop --release -q -m python/Cargo.toml
"$venv/bin/python" -m pytest -q python/tests
