#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/fuzz_targets and runs each for N seconds.
#
#   bash fuzz/smoke.sh        # 30 s per target
#   bash fuzz/smoke.sh 300    # 5 minutes per target
#
# Needs a nightly toolchain (cargo-fuzz uses sanitizer flags that stable rejects); without one it
# says so and exits 0, so CI on a stable-only machine skips fuzzing instead of failing. Installs
# cargo-fuzz when it is missing. Exits non-zero when a target crashes, hangs (an input running
# longer than the per-input timeout) or does not build; libFuzzer writes the input that did it to
# fuzz/artifacts/<target>/. Keep such inputs as regression tests: copy them into
# tests/fuzz-regressions/<target>/ (replayed by `cargo test --test fuzz_regressions`).
set -euo pipefail

secs="${1:-30}"
case "$secs" in
'' | *[!0-9]*)
	echo "usage: $0 [seconds per target, default 30]" >&2
	exit 2
	;;
esac
# An input that runs longer than this is reported as a hang (every wait in shmkit is bounded).
per_input_timeout=10

cd "$(dirname "$0")/.." # the repository root

say() { printf '[fuzz-smoke] %s\n' "$*"; }

if ! cargo +nightly --version >/dev/null 2>&1; then
	say "SKIPPED: no nightly toolchain (cargo +nightly is unavailable); cargo-fuzz needs nightly."
	exit 0
fi
say "toolchain: $(cargo +nightly --version)"

if ! cargo fuzz --version >/dev/null 2>&1; then
	say "cargo-fuzz is missing: installing it (cargo install cargo-fuzz --locked)"
	cargo install cargo-fuzz --locked
fi
say "$(cargo fuzz --version)"

targets=()
for f in fuzz/fuzz_targets/*.rs; do
	targets+=("$(basename "$f" .rs)")
done
if [ "${#targets[@]}" -eq 0 ]; then
	say "no fuzz targets in fuzz/fuzz_targets"
	exit 1
fi

say "building ${#targets[@]} target(s): ${targets[*]}"
start=$SECONDS
cargo +nightly fuzz build
say "built in $((SECONDS - start)) s"

# A target killed mid-input (crash, hang) leaves its scratch segment file behind: remove those
# whose process is gone (names are shmkit-fuzz-<pid>-<n>, see fuzz/common/).
cleanup_scratch() {
	local f pid
	for f in /dev/shm/shmkit-fuzz-* "${TMPDIR:-/tmp}"/shmkit-fuzz-*; do
		[ -e "$f" ] || continue
		pid="${f##*/shmkit-fuzz-}"
		pid="${pid%%-*}"
		kill -0 "$pid" 2>/dev/null || rm -f -- "$f"
	done
}

failed=()
for t in "${targets[@]}"; do
	corpus="fuzz/corpus/$t"
	mkdir -p "$corpus"
	dirs=("$corpus")
	# Seeds and saved regressions are read as extra input (so known crashes are re-checked
	# first); new inputs go to the (git-ignored) corpus only.
	[ -d "fuzz/seeds/$t" ] && dirs+=("fuzz/seeds/$t")
	[ -d "tests/fuzz-regressions/$t" ] && dirs+=("tests/fuzz-regressions/$t")
	say "running $t for $secs s (inputs: ${dirs[*]})"
	start=$SECONDS
	# The outer timeout is a last resort in case libFuzzer itself stops answering.
	if timeout --kill-after=10 $((secs + per_input_timeout + 120)) \
		cargo +nightly fuzz run "$t" "${dirs[@]}" -- \
		-max_total_time="$secs" -timeout="$per_input_timeout" -print_final_stats=1; then
		say "OK: $t ran $((SECONDS - start)) s without a crash or hang"
	else
		say "FAILED: $t (exit $?); the input is in fuzz/artifacts/$t/:"
		ls -1 "fuzz/artifacts/$t/" 2>/dev/null | sed 's/^/    /' || true
		say "reproduce: cargo +nightly fuzz run $t fuzz/artifacts/$t/<file>;" \
			"keep it: cp it to tests/fuzz-regressions/$t/"
		failed+=("$t")
	fi
	cleanup_scratch
done

if [ "${#failed[@]}" -ne 0 ]; then
	say "FAILED targets: ${failed[*]}"
	exit 1
fi
say "all ${#targets[@]} target(s) passed ($secs s each)"
