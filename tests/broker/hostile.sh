#!/bin/bash
# hostile.sh - peers that truncate, squat on or scribble the segment (issue 12, findings 1-5): nobody crashes, nothing hangs past its timeout or ignores SIGTERM, the damage is reported as damage (EPROTO, "damaged", exit 6, /healthz 503), never as full, empty or healthy.
# Usage: hostile.sh MQBROKER MQLOAD MQCTL MQPOKE
set -euo pipefail
TEST=hostile
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
MQCTL=$(realpath "$3")
MQPOKE=$(realpath "$4")

# exits_within SECONDS WANT COMMAND...: COMMAND ends within SECONDS with status
# WANT (SIGBUS would be 135, a hang 124); its stderr goes to $TMP/err.
exits_within() {
	local secs=$1 want=$2 rc=0
	shift 2
	timeout -s KILL "$secs" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc within ${secs}s, want $want: $(cat "$TMP/err")"
}

# healthz_code: the broker's /healthz status code.
healthz_code() { curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BPORT/healthz" || true; }
healthz_is() { [ "$(healthz_code)" = "$1" ]; }

# --- 1. truncation under a broker, a producer and a consumer -------------------
for size in 100 33664; do
	start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0
	run_bg PROD "$MQLOAD" produce "$Q" --id 1 --confirm "$TMP/confirmed" --seconds 30 --timeout 1000
	run_bg CONS "$MQLOAD" consume "$Q" --log "$TMP/consumed" --seconds 30 --timeout 1000
	wait_until 10 test -s "$TMP/confirmed" || fail "the producer did not start"
	sleep 0.3
	truncate -s "$size" "/dev/shm$Q"
	for who in PROD CONS; do
		pid=${!who}
		wait_until 5 exited "$pid" || fail "truncated to $size: the $who still runs after 5 s"
		wait_exit "$pid" 1
		[ "$RC" -eq 1 ] || fail "truncated to $size: the $who exited $RC, want 1 (an error, not a signal)"
	done
	exited "$BPID" && fail "truncated to $size: the broker died"
	wait_until 5 healthz_is 503 || fail "truncated to $size: /healthz says $(healthz_code), want 503"
	status=$(curl -s --max-time 2 "http://127.0.0.1:$BPORT/status")
	echo "$status" | grep -q '"state":"damaged"' || fail "truncated to $size: /status: $status"
	echo "$status" | grep -q '"error":"[^"]*shrank' || fail "truncated to $size: /status gives no error: $status"
	exits_within 5 6 "$MQCTL" stats -q "$Q"
	grep -q "$Q" "$TMP/err" || fail "mqctl stats on a truncated queue: $(cat "$TMP/err")"
	exits_within 5 6 "$MQCTL" check -q "$Q"
	stop_broker "$BPID" TERM "$TMP/b.log"
	rm -f "/dev/shm$Q" "$TMP/confirmed" "$TMP/consumed"
done

# --- 2. a queue squatted by another user ---------------------------------------
if [ "$(id -u)" -eq 0 ]; then
	# nobody plants a sound queue file first (a copy of one root's broker made,
	# mode 0660); root's broker must refuse to adopt it, naming the file, its
	# owner and the fix, and change nothing.
	start_broker "$TMP/b.log" -n "$Q-model" -l 127.0.0.1:0 -c 8 -m 64
	stop_broker "$BPID" TERM "$TMP/b.log"
	cp "/dev/shm$Q-model" "$TMP/model"
	setpriv --reuid=nobody --regid=nogroup --clear-groups sh -c "umask 007; cat >'/dev/shm$Q'" <"$TMP/model"
	[ "$(stat -c '%U %a' "/dev/shm$Q")" = "nobody 660" ] || fail "the squat did not happen: $(stat -c '%U %a' "/dev/shm$Q")"
	expect_exit 6 "$TMP/squat.log" -n "$Q" -l 127.0.0.1:0
	grep -q "/dev/shm$Q.*owned by.*nobody\|owned by.*nobody.*/dev/shm$Q\|$Q.*uid 65534\|owner.*65534" "$TMP/squat.log" ||
		fail "the refusal does not name the owner: $(cat "$TMP/squat.log")"
	[ "$(stat -c '%U %a' "/dev/shm$Q")" = "nobody 660" ] || fail "the squatted file changed: $(stat -c '%U %a' "/dev/shm$Q")"
	# --trust-owner nobody: root adopts the (service) user's queue as asked.
	start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 --trust-owner nobody
	expect_log "$TMP/b.log" "adopted $Q: 0 messages queued"
	stop_broker "$BPID" TERM "$TMP/b.log"
	exits_within 5 7 "$MQCTL" check -q "$Q" # sound, and no broker serves it: stale
	grep -q "nobody\|uid 65534" "$TMP/out" || fail "mqctl check does not name the owner: $(cat "$TMP/out")"
	# world-writable: mqctl check calls it damaged, clients refuse it
	chmod 0666 "/dev/shm$Q"
	exits_within 5 6 "$MQCTL" check -q "$Q"
	grep -q "world-writable" "$TMP/out" || fail "mqctl check on a 0666 queue: $(cat "$TMP/out")"
	exits_within 5 1 "$MQCTL" send -q "$Q" x
	grep -q "world-writable" "$TMP/err" || fail "mqctl send on a 0666 queue: $(cat "$TMP/err")"
	rm -f "/dev/shm$Q"
else
	echo "note: $TEST: not root, the squat part is skipped" >&2
fi

# --- 3. a scribbled lock word ---------------------------------------------------
start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 -c 8 -m 64
"$MQPOKE" "$Q" send.lock 1 >/dev/null # "pid 1" in the word: nobody's token
exits_within 5 6 "$MQCTL" check -q "$Q"
grep -q "send lock is held by" "$TMP/out" || fail "mqctl check on a scribbled lock: $(cat "$TMP/out")"
t0=$(date +%s%N)
exits_within 5 0 "$MQCTL" send -q "$Q" --timeout 1500 "through"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1000 ] || fail "mqctl send took ${ms} ms to take over a scribbled lock"
[ "$("$MQPOKE" "$Q" send.lock)" = 0 ] || fail "the lock word was not given back"
exits_within 5 0 "$MQCTL" recv -q "$Q" --timeout 0
[ "$(cat "$TMP/out")" = through ] || fail "recv after the take-over: $(cat "$TMP/out")"
exits_within 5 0 "$MQCTL" check -q "$Q"

# --- 4. a scribbled index under a running producer ------------------------------
run_bg PROD "$MQLOAD" produce "$Q" --id 2 --confirm "$TMP/confirmed" --seconds 30 --timeout 1000 --size 32
wait_until 10 test -s "$TMP/confirmed" || fail "the producer did not start"
head0=$("$MQPOKE" "$Q" head)
"$MQPOKE" "$Q" head 2^62 >/dev/null
wait_until 3 exited "$PROD" || fail "with head at 2^62 the producer still runs after 3 s (timeout 1000 ms)"
wait_exit "$PROD" 1
[ "$RC" -eq 1 ] || fail "with head at 2^62 the producer exited $RC, want 1"
exits_within 5 6 "$MQCTL" send -q "$Q" --timeout -1 "x"
grep -q "corrupt indices\|damaged" "$TMP/err" || fail "mqctl send on a damaged queue: $(cat "$TMP/err")"
exits_within 5 6 "$MQCTL" check -q "$Q"
wait_until 5 healthz_is 503 || fail "head at 2^62: /healthz says $(healthz_code)"
"$MQPOKE" "$Q" head "$head0" >/dev/null # restored: the queue works again
wait_until 5 healthz_is 200 || fail "head restored: /healthz says $(healthz_code)"
exits_within 5 0 "$MQCTL" check -q "$Q"

# tail at 2^62: a blocked producer is not left asleep in the kernel
while "$MQCTL" send -q "$Q" --timeout 0 fill 2>/dev/null; do :; done # full
tail0=$("$MQPOKE" "$Q" tail)
run_bg SEND "$MQCTL" send -q "$Q" --timeout 3000 "late"
sleep 0.3
"$MQPOKE" "$Q" tail 2^62 >/dev/null
wait_until 3 exited "$SEND" || fail "with tail at 2^62 a blocked mqctl send still waits after 3 s"
wait_exit "$SEND" 1
[ "$RC" -eq 6 ] || fail "with tail at 2^62 mqctl send exited $RC, want 6 (damaged)"
"$MQPOKE" "$Q" tail "$tail0" >/dev/null

# --- 5. SIGTERM always stops a waiting mqctl --------------------------------------
# a blocked send (queue full, timeout -1), spinning or asleep: gone within 1 s
for delay in 0.01 0.05 0.3; do
	run_bg SEND "$MQCTL" send -q "$Q" --timeout -1 "waits"
	sleep "$delay"
	kill -TERM "$SEND"
	wait_until 1 exited "$SEND" || fail "mqctl send (blocked) outlived SIGTERM by 1 s (sent after ${delay}s)"
	wait_exit "$SEND" 1
	[ "$RC" -eq 143 ] || fail "mqctl send stopped by SIGTERM exited $RC, want 143"
done
stop_broker "$BPID" TERM "$TMP/b.log"
echo "PASS: $TEST"
