# lib.sh - process helpers shared by the shell tests (tests/broker, tests/cli); not a test.
# shellcheck shell=bash
#
# Sourced by each suite's common.sh, which sets TEST, PIDS (the pids the
# cleanup trap kills) and file descriptor 3 (the test's own stderr).

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
