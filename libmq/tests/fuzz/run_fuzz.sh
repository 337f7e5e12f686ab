#!/bin/sh
# run_fuzz.sh - runs the fuzz_attach libFuzzer binary for a while on the seed corpus (CI).
#
# usage: libmq/tests/fuzz/run_fuzz.sh FUZZ_ATTACH_BINARY SECONDS
#
# Copies the seed corpus to a temporary directory, fuzzes for SECONDS with
# -timeout=10 -rss_limit_mb=2048, prints the number of executions, and exits
# non-zero if the fuzzer found a crash, a leak, a timeout or ran out of
# memory. A failing input is kept in FUZZ_ARTIFACT_DIR (default: the current
# directory) as crash-*, leak-*, timeout-* or oom-*; replay it with
# "FUZZ_ATTACH_BINARY FILE". The temporary directory and the segment files
# the fuzzer left in /dev/shm (/dev/shm/mqfuzz-<its pid>-*) are removed.
set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 FUZZ_ATTACH_BINARY SECONDS" >&2
	exit 2
fi
bin=$1
secs=$2
case $secs in
'' | *[!0-9]*)
	echo "run_fuzz: SECONDS must be a whole number, not '$secs'" >&2
	exit 2
	;;
esac
if [ ! -x "$bin" ]; then
	echo "run_fuzz: $bin is not an executable" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
artifacts=${FUZZ_ARTIFACT_DIR:-$PWD}
mkdir -p "$artifacts" || exit 2

work=$(mktemp -d "${TMPDIR:-/tmp}/mqfuzz.XXXXXX") || exit 2
pid=
cleanup()
{
	if [ -n "$pid" ]; then
		rm -f /dev/shm/mqfuzz-"$pid"-*
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$work/corpus"
cp "$here"/corpus/* "$work/corpus/" || exit 2

# In the background, so we know the fuzzer's pid: it names its segment files.
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$artifacts/" "$work/corpus" >"$work/log" 2>&1 &
pid=$!
wait "$pid"
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
if [ $rc -ne 0 ]; then
	echo "run_fuzz: the fuzzer failed (exit status $rc); its log ends:" >&2
	tail -n 60 "$work/log" >&2
	echo "run_fuzz: failing input (if any) in $artifacts/; executions: ${execs:-unknown}" >&2
	exit 1
fi
if [ -z "$execs" ]; then
	echo "run_fuzz: no execution count in the fuzzer's log:" >&2
	tail -n 20 "$work/log" >&2
	exit 1
fi
echo "run_fuzz: $execs executions in $secs s, no crash, leak or timeout"
