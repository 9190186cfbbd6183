#!/usr/bin/env bash
# Miri over the unit tests of heap-placed primitives: the unsafe code (word copies, the seqlock
# regions and their fat pointers, ring slots) checked for undefined behaviour, on the algorithms'
# own single-process tests.
#
#   bash .ci/miri.sh
#
# Two threaded tests run with fewer rounds (`cfg!(miri)`), so the data-race detector and the
# weak-memory emulation see the seqlock and SPSC protocols between threads. Left out, because
# Miri cannot run them: file-backed mappings (every `in_a_segment` test and the segment layer),
# `kill(pid, 0)` liveness checks (the blocking ring paths), and stress tests that take minutes
# under the interpreter (the map's and list's scribbling, threaded and million-cycle tests;
# the list's grace-period test, whose deadline the interpreter's speed overruns). Under Miri, `sync::asym` falls back to fences (no membarrier). Needs the
# nightly toolchain's `miri` component; installs it when missing, and says so and exits 0 when it
# cannot (as the fuzz smoke does without nightly).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[miri] %s\n' "$*"; }

if ! cargo +nightly miri --version >/dev/null 2>&1; then
	if ! rustup +nightly component add miri rust-src >/dev/null 2>&1; then
		say "SKIPPED: the nightly miri component is not available here."
		exit 0
	fi
fi

# Identity checks read /proc (pid start times): isolation off.
export MIRIFLAGS="-Zmiri-disable-isolation"
cargo +nightly miri test --lib -- \
	words:: \
	seqlock::latch:: seqlock::value:: seqlock::writer:: \
	seqlock::array::tests::dead_writer seqlock::array::tests::ops_against \
	ring::spsc::tests::fifo ring::spsc::tests::hostile ring::spsc::tests::batches_wrap \
	ring::spsc::tests::close_drains ring::spsc::tests::claims ring::spsc::tests::batches_between \
	ring::mpmc::tests::fifo ring::mpmc::tests::hostile ring::mpmc::tests::close_drains \
	ring::mpmc_bytes::tests::corrupted ring::mpmc_bytes::tests::messages_of_every_length \
	ring::bytes::tests::close_drains ring::bytes::tests::corrupted ring::bytes::tests::empty_max \
	ring::bytes::tests::recv_slice ring::bytes::tests::full_then ring::bytes::tests::dims \
	ring::bytes::tests::layout ring::bytes::tests::one_handle \
	ring::pipe::tests::both_directions ring::pipe::tests::close_drains \
	ring::pipe::tests::slice_receive ring::pipe::tests::layout ring::pipe::tests::one_connection \
	ring::spsc::tests::a_producer_killed ring::spsc::tests::ends_are_owned \
	ring::bytes::tests::ends_are_owned ring::pipe::tests::connections_are_owned \
	ring::mpmc_bytes::tests::geometry ring::tests \
	counter::tests::counter_ops value::tests::ints_wrap \
	lock::mutex::tests::layout lock::mutex::tests::lock_try_timeout \
	lock::raw::tests::try_lock_gives_up \
	lock::semaphore::tests::committed lock::semaphore::tests::a_committed \
	lock::barrier::tests::a_late lock::barrier::tests::arrived_at \
	map::geometry::tests::hash_spreads map::tests::basic_operations \
	map::tests::death_at_every_point_is_repaired map::list_tests::push_get_set_pop_clear \
	map::list_tests::dead_pushers_leave_holes map::list_tests::dead_popper_is_repaired \
	--skip in_a_segment
