#!/bin/bash
# run-all.sh - build and run the whole test suite: the -Werror build under ctest,
# the Debian packages end to end, the same suite under ASan+UBSan and under
# TSan, and a bounded fuzz run.
# Usage: tests/run-all.sh [--quick]   (--quick: only the plain build and ctest)
# Environment: FUZZ_SECONDS (default 60), BUILD_ROOT (default ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=${BUILD_ROOT:-build}
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-60}

step() { printf '\n=== %s\n' "$*"; }

# /metrics must pass promtool here (packaging/install-deps.sh installs it);
# a missing promtool fails the test instead of skipping that check.
export MQ_REQUIRE_PROMTOOL=1

step "plain build (-Werror) and ctest"
cmake -S . -B "$root/plain" -DMQ_WERROR=ON
cmake --build "$root/plain" -j"$jobs"
ctest --test-dir "$root/plain" --output-on-failure
[ "${1:-}" = "--quick" ] && exit 0

# root_test WHAT COMMAND...: a test that installs packages; exit 77 means it
# was skipped (not root, or what it needs is missing; it says why).
root_test() {
	local what=$1 rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "note: $what was skipped (the reason is above)" >&2
	elif [ "$rc" -ne 0 ]; then
		exit "$rc"
	fi
}

step "Debian packages: build, lintian, install, use, remove, purge"
# As root only (it installs the packages system-wide and removes them again);
# tests/packaging/test_packages.sh says what it checks.
root_test "the package test" tests/packaging/test_packages.sh "$root/deb"

step "Debian packages: upgrade from 0.1 (layout 1 queue with messages, a 0.1 client attached)"
root_test "the upgrade test" tests/packaging/test_upgrade.sh "$root/deb"

step "ASan+UBSan build and ctest"
cmake -S . -B "$root/asan" -DMQ_WERROR=ON -DMQ_SANITIZE=address,undefined -DCMAKE_BUILD_TYPE=Debug
cmake --build "$root/asan" -j"$jobs"
MQ_TEST_SCALE=4 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir "$root/asan" --output-on-failure

step "TSan build and ctest"
cmake -S . -B "$root/tsan" -DMQ_WERROR=ON -DMQ_SANITIZE=thread -DCMAKE_BUILD_TYPE=Debug
cmake --build "$root/tsan" -j"$jobs"
# TSan needs its fixed memory layout: run without address-space randomization.
MQ_TEST_SCALE=4 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	setarch "$(uname -m)" -R ctest --test-dir "$root/tsan" --output-on-failure

step "libFuzzer: attach to arbitrary segment files for ${fuzz_seconds}s"
CC=clang cmake -S . -B "$root/fuzz" -DMQ_WERROR=ON -DMQ_FUZZ=ON -DMQ_BUILD_TESTS=ON
cmake --build "$root/fuzz" -j"$jobs" --target fuzz_attach
libmq/tests/fuzz/run_fuzz.sh "$root/fuzz/libmq/tests/fuzz_attach" "$fuzz_seconds"

step "all test runs passed"
