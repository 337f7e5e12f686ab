#!/bin/bash
# watch_many.sh - mqctl watch over several queues, stdout not a terminal: two
# -q (every line names its queue, a line per queue per interval, each with its
# own figures; a name given twice is watched once), none (every queue a live
# broker serves, not one whose broker is gone; $MQ_QUEUE when set; the
# default queue when no broker serves any, in an empty /dev/shm of its own),
# time in queue over each interval, and the errors (a bad or missing second
# queue, an argument).
# Usage: watch_many.sh MQCTL MQBROKER
set -euo pipefail
TEST=watch_many
. "$(dirname "$0")/common.sh"

A="$Q-a" B="$Q-b" S="$Q-s"
start_broker "$A" --capacity 16 --max-msg 64
APID=$BPID ALOG=$BLOG
start_broker "$B" --capacity 32 --max-msg 64
BPID_B=$BPID BLOG_B=$BLOG
start_broker "$S" --capacity 8 --max-msg 64
stop_broker "$BPID" # S: no broker serves it
expect 0 send -q "$A" a1 a2 a3
expect 0 send -q "$B" b1

HEADER="time queue depth/capacity enq/s deq/s producers consumers oldest_s p50_s p90_s p99_s max_s"
# lines_ok NAME DEPTH CAPACITY N: N lines of queue NAME in $TMP/out, each
# with that depth and capacity, nothing measured in time in queue.
lines_ok() {
	local got
	got=$(grep -cE "^[0-9]{2}:[0-9]{2}:[0-9]{2} $1 $2/$3 0\.0 0\.0 0 0 [0-9]+\.[0-9]{3} - - - -\$" "$TMP/out" || true)
	[ "$got" -eq "$4" ] || fail "want $4 lines '$1 $2/$3 ...', got $got: $(cat "$TMP/out")"
}

# Two -q: the header, then every interval a line per queue, in the order
# given; a repeated name is watched once.
expect 0 watch -q "$B" -q "$A" --queue "$B" --interval 100 --count 3
[ "$(head -n 1 "$TMP/out")" = "$HEADER" ] || fail "header: $(head -n 1 "$TMP/out")"
[ "$(grep -c '' "$TMP/out")" -eq 7 ] || fail "want a header and 3 x 2 lines: $(cat "$TMP/out")"
tail -n +2 "$TMP/out" | cut -d' ' -f2 | tr '\n' ' ' >"$TMP/names"
[ "$(cat "$TMP/names")" = "$B $A $B $A $B $A " ] || fail "queue order: $(cat "$TMP/out")"
lines_ok "$A" 3 16 3
lines_ok "$B" 1 32 3
# The oldest message's age: A's waiting messages grow old, line by line.
grep -E "^[0-9:]{8} $A " "$TMP/out" | cut -d' ' -f9 >"$TMP/ages"
LC_ALL=C sort -n -c "$TMP/ages" || fail "A's oldest_s does not grow: $(cat "$TMP/out")"

# Time in queue over each interval: a message of A taken during the second
# interval shows on A's line of that interval only; B's stay "-".
run_bg WPID "$MQCTL" watch -q "$A" -q "$B" --interval 1000 --count 3 >"$TMP/watch.out" 2>"$TMP/watch.err"
sleep 1.4
expect 0 recv -q "$A" --format line
out_is "a1\n"
wait_exit "$WPID" 15
[ "$RC" -eq 0 ] || fail "watch exited with $RC: $(cat "$TMP/watch.err")"
grep -E "^[0-9:]{8} $A " "$TMP/watch.out" | cut -d' ' -f10 >"$TMP/p50"
[ "$(sed -n 1p "$TMP/p50")" = - ] && [ "$(sed -n 3p "$TMP/p50")" = - ] ||
	fail "A's time in queue outside the interval it was taken in: $(cat "$TMP/watch.out")"
sed -n 2p "$TMP/p50" | grep -qE '^[0-9]+\.[0-9]{6}$' ||
	fail "A's time in queue in the interval it was taken in: $(cat "$TMP/watch.out")"
# a1 waited at least the 1.4 s slept (and the watch's start), and far less than a minute.
"$PYTHON" -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 1.4 * 0.75 <= v <= 60 else 1)' "$(sed -n 2p "$TMP/p50")" ||
	fail "A's p50 $(sed -n 2p "$TMP/p50") s for a message that waited about 1.5 s: $(cat "$TMP/watch.out")"
grep -E "^[0-9:]{8} $A " "$TMP/watch.out" | sed -n 2p | grep -qE ' [0-9]+\.[0-9]{3}( [0-9]+\.[0-9]{6}){4}$' ||
	fail "A's p90, p99, max in that interval: $(cat "$TMP/watch.out")"
[ "$(grep -cE "^[0-9:]{8} $B .* - - - -\$" "$TMP/watch.out")" -eq 3 ] ||
	fail "B's time in queue is not '-' on every line: $(cat "$TMP/watch.out")"

# No -q, no $MQ_QUEUE: every queue a live broker serves (others' too, maybe),
# not S, whose broker is gone.
MQ_QUEUE='' expect 0 watch --interval 100 --count 1
[ "$(head -n 1 "$TMP/out")" = "$HEADER" ] || fail "header: $(head -n 1 "$TMP/out")"
lines_ok "$A" 2 16 1
lines_ok "$B" 1 32 1
! grep -qE "^[0-9:]{8} $S " "$TMP/out" || fail "watch shows $S, which no broker serves: $(cat "$TMP/out")"
# $MQ_QUEUE, when set, is the one queue.
MQ_QUEUE="$S" expect 0 watch --interval 100 --count 2
[ "$(grep -c '' "$TMP/out")" -eq 3 ] || fail "MQ_QUEUE=$S: want a header and 2 lines: $(cat "$TMP/out")"
lines_ok "$S" 0 8 2
# A queue whose broker stops is no longer found.
BPID=$BPID_B BLOG=$BLOG_B
stop_broker "$BPID_B"
MQ_QUEUE='' expect 0 watch --interval 100 --count 1
lines_ok "$A" 2 16 1
! grep -qE "^[0-9:]{8} $B " "$TMP/out" || fail "watch shows $B after its broker stopped: $(cat "$TMP/out")"

# No broker serves any queue (an empty /dev/shm of its own): the default
# queue, as with one queue; missing, so exit 3.
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
	RC=0
	env -u MQ_QUEUE unshare -m sh -c 'mount -t tmpfs -o size=1m mqct-watch /dev/shm && exec "$0" watch -c 1' \
		"$MQCTL" >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -eq 3 ] || fail "watch with no served queue exited with $RC, want 3: $(cat "$TMP/err")"
	[ "$(cat "$TMP/err")" = "mqctl: queue /messagequeue not found — is mqbroker running? (mqbroker -n /messagequeue creates it)" ] ||
		fail "watch with no served queue said: $(cat "$TMP/err")"
	[ ! -s "$TMP/out" ] || fail "watch with no served queue printed: $(cat "$TMP/out")"
else
	echo "note: $TEST: no mount namespace (needs root); the fallback to the default queue is not tested" >&2
fi

# Errors: one line, nothing on stdout, whichever -q is at fault.
expect 2 watch -q "$A" -q bad -c 1
err_has "mqctl watch: bad queue name 'bad' from -q"
expect 2 watch -q "$A" -q "/two/slashes" -c 1
err_has "bad queue name '/two/slashes' from -q"
expect 2 watch -q "$A" extra
err_has "mqctl watch: unexpected argument 'extra'"
expect 2 watch -q "$A" -q
err_has "option '-q' needs a value"
expect 3 watch -q "$A" -q "$Q-missing" -c 1
err_has "mqctl: queue $Q-missing not found"
[ ! -s "$TMP/out" ] || fail "watch printed although a queue is missing: $(cat "$TMP/out")"

BPID=$APID BLOG=$ALOG
stop_broker "$APID"
