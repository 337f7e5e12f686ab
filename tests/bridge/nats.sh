# nats.sh - helpers sourced by the mqbridge tests (tests/bridge/*.sh); not a test.
# shellcheck shell=bash
#
# Sourced after test_scaffold (../lib.sh), whose trap kills what start_nats
# starts (start_bridge needs run_bg, from ../broker/common.sh). Sets NPORT (clients) and MPORT (monitoring): free loopback ports.

# need_nats: exit 77 (skipped) with a note when nats-server is not installed.
need_nats() {
	if ! command -v nats-server >/dev/null; then
		echo "SKIP: $TEST: nats-server is not installed (Debian: apt-get install nats-server)"
		exit 77
	fi
}

# free_port: a loopback TCP port nobody listens on now.
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
NPORT=$(free_port)
MPORT=$(free_port)

# start_nats: nats-server -js on NPORT (monitoring on MPORT) with its store in
# $TMP/js (kept across restarts), log in $TMP/nats.log; waits until it is up.
# Sets NATS (its pid). It dies with the test script (PR_SET_PDEATHSIG), even
# a SIGKILLed one, whose trap cannot run.
start_nats() {
	mkdir -p "$TMP/js"
	setpriv --pdeathsig KILL nats-server -js -a 127.0.0.1 -p "$NPORT" -m "$MPORT" -sd "$TMP/js" >>"$TMP/nats.log" 2>&1 &
	NATS=$!
	PIDS+=("$NATS") # the trap kills it
	wait_until 20 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$MPORT/healthz" ||
		fail "nats-server did not come up on port $NPORT within 20 s: $(cat "$TMP/nats.log")"
}

# stream_msgs NAME: the messages stream NAME holds (nats-server's /jsz), or
# nothing if it cannot be read.
stream_msgs() {
	curl -sS --max-time 5 "http://127.0.0.1:$MPORT/jsz?streams=true" 2>/dev/null |
		"$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
for a in d.get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == sys.argv[1]:
            print(s["state"]["messages"])' "$1"
}

# at_least WANT COMMAND...: COMMAND prints a number >= WANT (for wait_until).
at_least() {
	local want=$1 got
	shift
	got=$("$@") || return 1
	[ -n "$got" ] && [ "$got" -ge "$want" ]
}

# file_number FILE: the number FILE holds (mqload's --count), or nothing.
file_number() {
	cat "$1" 2>/dev/null
}

# running_lines LOG: how many "running" lines mqbridge wrote to LOG.
running_lines() {
	grep -c '^mqbridge: running ' "$1" 2>/dev/null
}

# start_bridge VAR LOG ARGS...: run $BRIDGE --nats (ours) --stream $STREAM ARGS
# (pid in VAR, stderr appended to LOG) and wait until it runs all its routes
# (a new "running" line in LOG). Its HTTP endpoints listen on a free port
# (--listen 127.0.0.1:0, before ARGS: a --listen in ARGS wins), never on
# the default 8081, which another program may hold.
start_bridge() {
	local var=$1 log=$2 before
	shift 2
	before=$(running_lines "$log")
	run_bg "$var" "$BRIDGE" --nats "nats://127.0.0.1:$NPORT" --stream "$STREAM" \
		--listen 127.0.0.1:0 "$@" 2>>"$log"
	wait_until 20 at_least $((${before:-0} + 1)) running_lines "$log" ||
		fail "mqbridge $* did not start within 20 s: $(cat "$log")"
}

# stop_bridges PID...: SIGTERM each mqbridge; each must exit 0 within 15 s.
stop_bridges() {
	local pid
	for pid in "$@"; do
		kill -TERM "$pid"
		wait_exit "$pid" 15
		[ "$RC" -eq 0 ] || fail "mqbridge pid $pid exited with status $RC on SIGTERM"
	done
}

# bridge_rc WANT TEXT ARGS...: mqbridge ARGS (HTTP on a free port: a --listen
# in ARGS wins, the last one counts) exits at once with WANT, saying TEXT on
# stderr or stdout, with no sanitizer report.
bridge_rc() {
	local want=$1 text=$2 rc=0
	shift 2
	timeout -s KILL 20 "$BRIDGE" --listen 127.0.0.1:0 "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "mqbridge $* exited with $rc, want $want: $(cat "$TMP/err")"
	grep -qF -- "$text" "$TMP/err" "$TMP/out" ||
		fail "mqbridge $*: expected \"$text\", got: $(cat "$TMP/err" "$TMP/out")"
	sanitizer_clean "$TMP/err"
}
