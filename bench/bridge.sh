#!/bin/bash
# bridge.sh - mqbridge's benchmark: starts its own nats-server -js and mqbroker, runs mqbridgebench, cleans up.
#
# Usage: bench/bridge.sh [--smoke] BUILD_DIR [MQBRIDGEBENCH OPTION]...
#
# BUILD_DIR holds bench/mqbridgebench, bridge/mqbridge and broker/mqbroker
# (built with libnats). Starts nats-server -js on a free loopback port
# (-p -1) with file storage in a temporary directory, and one mqbroker
# serving four queues named /mqbb-PID-*: t64 (262144 x 64 B, or --n64) and
# t4k (65536 x 4 KiB, or --n4k) for the throughput runs, a and b (1024 x
# 4 KiB) for the latency runs ("host A" and "host B": one /dev/shm). The
# Markdown report goes to stdout, progress to stderr. Options after BUILD_DIR
# go to mqbridgebench (--reps, --n64, --n4k, --lat-msgs, --gap-ms, --window,
# --compare, --tput-only, --lat-only; see mqbridgebench --help). --smoke: one
# repetition with tiny counts, for ctest; exits 77 (skipped) without
# nats-server or mqbridge.
# Exit status: mqbridgebench's (0 the runs checked out, 1 one failed, 2 usage).
set -u
SMOKE=()
if [ "${1:-}" = --smoke ]; then
	SMOKE=(--smoke)
	shift
fi
if [ $# -lt 1 ] || [ "$1" = --help ]; then
	sed -n '3,17s/^# \{0,1\}//p' "$0"
	[ $# -ge 1 ]
	exit $?
fi
BUILD=$(realpath "$1")
shift
BENCH=$BUILD/bench/mqbridgebench BRIDGE=$BUILD/bridge/mqbridge BROKER=$BUILD/broker/mqbroker
skip() {
	echo "SKIP: mqbridgebench: $*"
	exit 77
}
command -v nats-server >/dev/null || skip "nats-server is not installed (Debian: apt-get install nats-server)"
for exe in "$BENCH" "$BRIDGE" "$BROKER"; do
	[ -x "$exe" ] || skip "no $exe (mqbridge and mqbridgebench are built only with libnats: apt-get install libnats-dev)"
done

# The throughput queues hold a whole run (--n64, --n4k: 200000 and 50000 by default).
CAP64=262144 CAP4K=65536
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
	case ${args[i]} in
	--n64) [ "${args[i + 1]}" -le "$CAP64" ] 2>/dev/null || CAP64=${args[i + 1]} ;;
	--n4k) [ "${args[i + 1]}" -le "$CAP4K" ] 2>/dev/null || CAP4K=${args[i + 1]} ;;
	esac
done

TMP=$(mktemp -d /tmp/mqbridgebench.XXXXXX)
Q=/mqbb-$$
NATS_PID='' BROKER_PID=''
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in $BROKER_PID $NATS_PID; do
		kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	rm -f "/dev/shm$Q"-*
	rm -rf "$TMP"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS FILE PATTERN: until FILE has a line matching PATTERN.
wait_for() {
	local deadline=$((SECONDS + $1))
	until grep -q "$3" "$2" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

nats-server -js -a 127.0.0.1 -p -1 -sd "$TMP/js" 2>"$TMP/nats.log" &
NATS_PID=$!
wait_for 20 "$TMP/nats.log" 'Server is ready' || {
	cat "$TMP/nats.log" >&2
	echo "mqbridgebench: nats-server did not start" >&2
	exit 1
}
PORT=$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/nats.log")

setpriv --pdeathsig KILL "$BROKER" --listen 127.0.0.1:0 \
	--queue "$Q-t64:$CAP64:64" --queue "$Q-t4k:$CAP4K:4096" \
	--queue "$Q-a:1024:4096" --queue "$Q-b:1024:4096" 2>"$TMP/broker.log" &
BROKER_PID=$!
wait_for 20 "$TMP/broker.log" ' on http://.*(pid ' || {
	cat "$TMP/broker.log" >&2
	echo "mqbridgebench: mqbroker did not start" >&2
	exit 1
}
echo "mqbridgebench: $(nats-server --version), store $TMP/js (file storage); mqbroker pid $BROKER_PID; queues $Q-*" >&2

"$BENCH" --nats "nats://127.0.0.1:$PORT" --bridge "$BRIDGE" \
	--nats-pid "$NATS_PID" --q64 "$Q-t64" --q4k "$Q-t4k" --qa "$Q-a" --qb "$Q-b" "${SMOKE[@]}" "$@"
