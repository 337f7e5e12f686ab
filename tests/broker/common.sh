# common.sh - helpers sourced by the broker integration tests (tests/broker/*.sh); not a test.
# shellcheck shell=bash
#
# A test script sets TEST (its short name), then sources this file with the
# arguments it was given: MQBROKER MQLOAD. This sets BROKER and MQLOAD, makes a
# scratch directory $TMP, and installs a trap that, however the script ends,
# kills every process started through these helpers (by pid), removes the
# queues named "/mqbt-$TEST-$$" and "/mqbt-$TEST-$$-*" and the scratch directory.
# Queue names: "$Q" is the script's queue; "$Q-x" variants are cleaned up too.

if [ $# -lt 2 ]; then
	echo "usage: $0 MQBROKER MQLOAD" >&2
	exit 2
fi
BROKER=$(realpath "$1")
MQLOAD=$(realpath "$2")
[ -x "$BROKER" ] || { echo "FAIL: $TEST: $BROKER is not an executable" >&2; exit 1; }
[ -x "$MQLOAD" ] || { echo "FAIL: $TEST: $MQLOAD is not an executable" >&2; exit 1; }
AS_USER=() # setpriv options the broker runs with (e.g. --reuid 65534 ...)

# PYTHON, need_tools, test_scaffold, fail, forget, exited, wait_until,
# wait_exit, sanitizer_clean:
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need_tools curl "$PYTHON" setpriv timeout
test_scaffold mqbt

# run_bg VAR COMMAND...: start COMMAND in the background (remembered for the
# trap); its pid goes to VAR. Brokers get PR_SET_PDEATHSIG through setpriv,
# so even a SIGKILLed test script leaves none behind (mqload sets its own).
run_bg() {
	local var=$1
	shift
	if [ "$1" = "$BROKER" ]; then
		setpriv --pdeathsig KILL "${AS_USER[@]}" "$@" &
	else
		"$@" &
	fi
	PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# start_broker LOG ARGS...: run mqbroker ARGS in the background with stderr to
# LOG and wait until it serves. Sets BPID and BPORT (the port it listens on).
start_broker() {
	local log=$1
	shift
	: >"$log"
	run_bg BPID "$BROKER" "$@" 2>"$log"
	if ! wait_until 20 grep -q ' on http://.*(pid ' "$log"; then
		if exited "$BPID"; then
			wait_exit "$BPID" 1
			fail "mqbroker $* exited with status $RC before serving: $(cat "$log")"
		fi
		fail "mqbroker $* did not say it serves within 20 s: $(cat "$log")"
	fi
	BPORT=$(sed -n 's|^mqbroker: serving .* on http://.*:\([0-9][0-9]*\)/ (pid .*|\1|p' "$log" | tail -n 1)
	if [ -z "$BPORT" ] || [ "$BPORT" -eq 0 ]; then
		fail "no port in the broker's log: $(cat "$log")"
	fi
	grep -q "(pid $BPID)" "$log" || fail "the broker's log names another pid than $BPID: $(cat "$log")"
}

# stop_broker PID SIGNAL LOG: stop a broker with SIGNAL (TERM or INT); it must
# exit 0 within 10 s, say so in LOG, and leave no sanitizer report.
stop_broker() {
	kill "-$2" "$1"
	wait_exit "$1" 10
	[ "$RC" -eq 0 ] || fail "mqbroker pid $1 exited with status $RC on SIG$2 (want 0): $(cat "$3")"
	grep -q '^mqbroker: stopping on ' "$3" || fail "mqbroker pid $1 did not log its stop: $(cat "$3")"
	sanitizer_clean "$3"
}

# run_broker_rc LOG ARGS...: run mqbroker ARGS, expected to exit at once, with
# stderr to LOG; its exit status goes to RC. Fails if it starts serving instead.
run_broker_rc() {
	local log=$1 pid
	shift
	: >"$log"
	run_bg pid "$BROKER" "$@" 2>"$log" >"$log.out"
	if ! wait_until 20 exited_or_serving "$pid" "$log" || ! exited "$pid"; then
		kill -KILL "$pid"
		wait_exit "$pid" 5
		fail "mqbroker $* kept running (want it to exit at once): $(cat "$log")"
	fi
	wait_exit "$pid" 1
}
exited_or_serving() {
	exited "$1" || grep -q '^mqbroker: serving ' "$2"
}

# expect_exit WANT LOG ARGS...: mqbroker ARGS must exit with status WANT at once.
expect_exit() {
	local want=$1 log=$2
	shift 2
	run_broker_rc "$log" "$@"
	[ "$RC" -eq "$want" ] || fail "mqbroker $* exited with status $RC, want $want: $(cat "$log")"
	sanitizer_clean "$log"
}

# expect_log LOG TEXT: LOG holds TEXT (a fixed string).
expect_log() {
	grep -qF -- "$2" "$1" || fail "expected \"$2\" in $(basename "$1"), got: $(cat "$1")"
}

# http METHOD PATH [CURL ARGS...]: request PATH from the broker on $BPORT.
# Sets CODE (the status), and files $TMP/body and $TMP/headers.
http() {
	local method=(-X "$1") path=$2
	[ "$1" != HEAD ] || method=(--head)
	shift 2
	CODE=$(curl -sS --max-time 5 "${method[@]}" -o "$TMP/body" -D "$TMP/headers" \
		-w '%{http_code}' "$@" "http://127.0.0.1:$BPORT$path") ||
		fail "curl ${method[*]} $path on port $BPORT failed (is the broker up?)"
}

# status_check KEY=JSON...: the first queue of /status has exactly these
# values (VALUE is JSON: 6, "x", true). Returns 1 with the difference in WHY.
status_check() {
	http GET /status
	[ "$CODE" = 200 ] || { WHY="GET /status answered $CODE"; return 1; }
	WHY=$("$PYTHON" - "$TMP/body" "$@" <<'EOF'
import json, sys
q = json.load(open(sys.argv[1]))["queues"][0]
bad = []
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    got = json.dumps(q[k]) if k in q else "<missing>"
    if got != json.dumps(json.loads(v)):
        bad.append(f"{k} is {got}, want {v}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
	) || return 1
}

# status_expect KEY=JSON...: as status_check, failing the test on a mismatch.
status_expect() {
	status_check "$@" || fail "/status: $WHY (document: $(cat "$TMP/body"))"
}

# status_wait SECONDS KEY=JSON...: poll /status until it has these values.
status_wait() {
	local secs=$1
	shift
	wait_until "$secs" status_check "$@" ||
		fail "/status after $secs s: $WHY (document: $(cat "$TMP/body"))"
}

# status_get PYEXPR: evaluate PYEXPR on the /status document d (fetched now).
status_get() {
	http GET /status
	[ "$CODE" = 200 ] || fail "GET /status answered $CODE"
	"$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$TMP/body" "$1" || fail "cannot evaluate $1 on /status: $(cat "$TMP/body")"
}

# mqload ARGS...: run mqload in the foreground (at most 60 s); status in RC,
# its stderr in $TMP/mqload.err.
mqload() {
	RC=0
	timeout -s KILL 60 "$MQLOAD" "$@" 2>"$TMP/mqload.err" || RC=$?
	[ "$RC" -ne 137 ] || fail "mqload $* ran for more than 60 s"
}

# mqload_ok ARGS...: mqload ARGS must succeed.
mqload_ok() {
	mqload "$@"
	[ "$RC" -eq 0 ] || fail "mqload $* exited with status $RC: $(cat "$TMP/mqload.err")"
}

# mqload_fails WANT TEXT ARGS...: mqload ARGS must exit with status WANT and say TEXT.
mqload_fails() {
	local want=$1 text=$2
	shift 2
	mqload "$@"
	[ "$RC" -eq "$want" ] || fail "mqload $* exited with status $RC, want $want: $(cat "$TMP/mqload.err")"
	expect_log "$TMP/mqload.err" "$text"
}
