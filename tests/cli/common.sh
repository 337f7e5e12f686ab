# common.sh - helpers sourced by the mqctl tests (tests/cli/*.sh); not a test.
#
# A test script sets TEST (its short name), then sources this file with the
# arguments it was given: MQCTL MQBROKER [MANPAGE]. This sets MQCTL, BROKER and
# MANPAGE, makes a scratch directory $TMP, and installs a trap that, however
# the script ends, kills every process started through run_bg (by pid) and
# removes the queues "/mqct-$TEST-$$" and "/mqct-$TEST-$$-*" and $TMP.
# Queue names: "$Q" is the script's queue; use "$Q-x" for more.

if [ $# -lt 2 ]; then
	echo "usage: $0 MQCTL MQBROKER [MANPAGE]" >&2
	exit 2
fi
MQCTL=$(realpath "$1")
BROKER=$(realpath "$2")
MANPAGE=${3:-}
[ -x "$MQCTL" ] || { echo "FAIL: $TEST: $MQCTL is not an executable" >&2; exit 1; }
[ -x "$BROKER" ] || { echo "FAIL: $TEST: $BROKER is not an executable" >&2; exit 1; }
# PYTHON, need_tools, test_scaffold, fail, forget, exited, wait_until,
# wait_exit, sanitizer_clean:
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
need_tools curl "$PYTHON" setpriv timeout cmp od
test_scaffold mqct pass

# run_bg VAR COMMAND...: start COMMAND in the background (remembered for the
# trap) with PR_SET_PDEATHSIG, so even a SIGKILLed test leaves nothing behind;
# its pid goes to VAR. Redirections apply to the whole call.
run_bg() {
	local var=$1
	shift
	setpriv --pdeathsig KILL "$@" &
	PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# start_broker NAME ARGS...: run mqbroker -n NAME -l 127.0.0.1:0 ARGS in the
# background, wait until it serves. Sets BPID, BPORT and BLOG (its stderr).
start_broker() {
	local name=$1
	shift
	BLOG="$TMP/broker.$RANDOM.log"
	: >"$BLOG"
	run_bg BPID "$BROKER" -n "$name" -l 127.0.0.1:0 "$@" 2>"$BLOG"
	if ! wait_until 20 grep -q '^mqbroker: serving .* on http://.*(pid ' "$BLOG"; then
		fail "mqbroker -n $name $* did not say it serves within 20 s: $(cat "$BLOG")"
	fi
	BPORT=$(sed -n 's|^mqbroker: serving .* on http://.*:\([0-9][0-9]*\)/ (pid .*|\1|p' "$BLOG" | tail -n 1)
	[ -n "$BPORT" ] || fail "no port in the broker's log: $(cat "$BLOG")"
}

# kill_broker PID: SIGKILL the broker (leaving its segment stale) and reap it.
kill_broker() {
	kill -KILL "$1"
	wait_exit "$1" 10
	sanitizer_clean "$BLOG"
}

# stop_broker PID: SIGTERM the broker; it must exit 0 (the segment stays).
stop_broker() {
	kill -TERM "$1"
	wait_exit "$1" 10
	[ "$RC" -eq 0 ] || fail "mqbroker pid $1 exited with $RC on SIGTERM: $(cat "$BLOG")"
	sanitizer_clean "$BLOG"
}

# mqctl ARGS...: run mqctl ARGS (stdin from /dev/null unless IN names a file),
# at most 30 s. Status in RC, stdout in $TMP/out, stderr in $TMP/err.
mqctl() {
	RC=0
	timeout -s KILL 30 "$MQCTL" "$@" <"${IN:-/dev/null}" >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -ne 137 ] || fail "mqctl $* ran for more than 30 s"
	sanitizer_clean "$TMP/err"
}

# expect WANT ARGS...: mqctl ARGS must exit with status WANT; a failing status
# needs exactly one line on stderr (no error message is more than one line).
expect() {
	local want=$1
	shift
	mqctl "$@"
	[ "$RC" -eq "$want" ] ||
		fail "mqctl $* exited with $RC, want $want; stderr: $(cat "$TMP/err"); stdout: $(head -c 2000 "$TMP/out")"
	if [ "$want" -ne 0 ] && [ "$want" -lt 128 ] && [ "$(grep -c '' "$TMP/err")" -ne 1 ]; then
		fail "mqctl $* (status $RC): want one line on stderr, got: $(cat "$TMP/err")"
	fi
}

# err_has TEXT / out_has TEXT / out_lacks TEXT: stderr or stdout of the last mqctl (fixed strings).
err_has() {
	grep -qF -- "$1" "$TMP/err" || fail "expected \"$1\" on stderr, got: $(cat "$TMP/err")"
}
out_has() {
	grep -qF -- "$1" "$TMP/out" || fail "expected \"$1\" on stdout, got: $(head -c 4000 "$TMP/out")"
}
out_lacks() {
	! grep -qF -- "$1" "$TMP/out" || fail "did not expect \"$1\" on stdout: $(head -c 4000 "$TMP/out")"
}

# out_is TEXT: stdout is exactly TEXT (printf %b escapes, e.g. 'a\nb\n').
out_is() {
	printf '%b' "$1" >"$TMP/want"
	cmp -s "$TMP/want" "$TMP/out" ||
		fail "stdout is $(od -An -c "$TMP/out" | head -c 600), want $(od -An -c "$TMP/want" | head -c 600)"
}

# json_expect FILE KEY=JSON...: the JSON object in FILE has exactly these
# values at KEY (a dotted path like rates.enqueue_per_s.1s or clients.0.pid;
# JSON values).
json_expect() {
	local file=$1
	shift
	"$PYTHON" - "$file" "$TMP/why" "$@" <<'EOF' || fail "$(cat "$TMP/why") (document: $(head -c 4000 "$file"))"
import json, sys
why = open(sys.argv[2], "w")
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"not JSON: {e}", file=why)
    sys.exit(1)
bad = []
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    cur = d
    for part in k.split("."):
        if isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            cur = cur.get(part, "<missing>") if isinstance(cur, dict) else "<missing>"
    got = json.dumps(cur)
    if got != json.dumps(json.loads(v)):
        bad.append(f"{k} is {got}, want {v}")
print("; ".join(bad), file=why)
sys.exit(1 if bad else 0)
EOF
}

# depth_is N [QUEUE]: the queue ($Q) holds N messages (mqctl stats --json).
depth_is() {
	expect 0 stats -q "${2:-$Q}" --json --sample 0
	json_expect "$TMP/out" "depth=$1"
}

# stats_true PYEXPR [QUEUE]: PYEXPR is true of d, the mqctl stats --json
# document of QUEUE ($Q) now. Returns 1 if not, with the document in WHY.
stats_true() {
	"$MQCTL" stats -q "${2:-$Q}" --json --sample 0 >"$TMP/stats.json" 2>"$TMP/stats.err" ||
		{ WHY=$(cat "$TMP/stats.err"); return 1; }
	sanitizer_clean "$TMP/stats.err"
	"$PYTHON" -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' \
		"$TMP/stats.json" "$1" || { WHY=$(cat "$TMP/stats.json"); return 1; }
}

# stats_wait SECONDS PYEXPR [QUEUE]: poll stats_true until it holds.
stats_wait() {
	local secs=$1
	shift
	wait_until "$secs" stats_true "$@" || fail "after $secs s, not true: $1; stats: $WHY"
}
