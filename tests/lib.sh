# lib.sh - process helpers shared by the shell tests (tests/broker, tests/cli); not a test.
# shellcheck shell=bash
#
# Sourced by each suite's common.sh, which calls test_scaffold.

# Only the standard library of Python 3 is used; the system's interpreter is
# preferred (a version manager's shim can cost half a second a call).
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3 || echo python3)

# need_tools TOOL...: stop at once, naming the Debian packages, if one is missing.
need_tools() {
	local tool
	for tool; do
		command -v "$tool" >/dev/null || {
			echo "FAIL: $TEST: needs '$tool' (Debian: apt-get install curl python3 util-linux coreutils diffutils)" >&2
			exit 1
		}
	done
}

# fail MESSAGE: report and stop (the trap cleans up).
fail() {
	echo "FAIL: $TEST: $*" >&3
	exit 1
}

# forget PID: drop PID from the processes the trap kills (it has been waited for).
forget() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# exited PID: whether PID (a child of this shell) has ended (gone, or a zombie).
exited() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	stat=${stat##*) }
	[ "${stat%% *}" = Z ]
}

# wait_until SECONDS COMMAND...: poll COMMAND every 50 ms until it succeeds
# (return 0) or SECONDS pass (return 1).
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# wait_exit PID SECONDS: wait for PID to end; its exit status goes to RC.
# Fails if it is still running after SECONDS. (stderr is silenced meanwhile:
# bash would announce a child killed by a signal, which the tests do on purpose.)
wait_exit() {
	{
		wait_until "$2" exited "$1" || fail "pid $1 still running after $2 s"
		RC=0
		wait "$1" || RC=$?
	} 2>/dev/null
	forget "$1"
}

# sanitizer_clean LOG: fail if LOG holds an ASan/UBSan/TSan report.
sanitizer_clean() {
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$1"; then
		cat "$1" >&2
		fail "sanitizer report in $1 (above)"
	fi
}

# test_scaffold PREFIX [pass]: what every shell test starts with. Sets Q (the
# test's queue, /PREFIX-TEST-PID; "$Q-x" variants are cleaned up too), TMP (a
# scratch directory), PIDS (the processes the trap kills), CLEANUPS (commands
# the trap runs after killing them) and file descriptor 3 (the test's own
# stderr, for messages written while 2 is redirected). The EXIT trap kills
# PIDS, runs CLEANUPS, removes the queues and TMP, and with "pass" says
# "PASS: TEST" when the script succeeded. TEST must be set.
test_scaffold() {
	Q="/$1-$TEST-$$"
	SAY_PASS=${2:-}
	exec 3>&2
	TMP=$(mktemp -d "/tmp/$1-$TEST.XXXXXX")
	PIDS=()
	CLEANUPS=()
	trap test_cleanup EXIT
	trap 'echo "FAIL: $TEST: interrupted" >&3; exit 130' INT TERM
}

test_cleanup() {
	local rc=$? pid c
	trap - EXIT INT TERM
	{
		for pid in "${PIDS[@]}"; do
			kill -KILL "$pid" || true
		done
		for pid in "${PIDS[@]}"; do
			wait "$pid" || true
		done
		for c in "${CLEANUPS[@]}"; do
			eval "$c" || true
		done
	} 2>/dev/null
	rm -f "/dev/shm$Q" "/dev/shm$Q"-*
	rm -rf "$TMP"
	[ "$rc" -ne 0 ] || [ "$SAY_PASS" != pass ] || echo "PASS: $TEST"
	exit "$rc"
}
