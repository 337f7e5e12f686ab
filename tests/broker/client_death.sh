#!/bin/bash
# client_death.sh - clients SIGKILLed while attached: idle, holding leases, holding reservations, blocked in mq_recv, or at random inside their calls (holding a queue lock); the broker (or the next locker) detects, repairs and counts each; nothing wedges, leaks or is lost.
set -euo pipefail
TEST=client_death
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

LOG="$TMP/broker.log"
HOLDS=0
HOLD=

# hold ARGS...: start "mqload hold $Q ARGS"; its pid goes to HOLD once it is ready.
hold() {
	HOLDS=$((HOLDS + 1))
	local ready="$TMP/hold.$HOLDS.ready"
	run_bg HOLD "$MQLOAD" hold "$Q" --ready "$ready" --seconds 50 "$@" >/dev/null
	wait_until 10 test -s "$ready" || fail "mqload hold $* did not get ready"
	[ "$(cat "$ready")" = "$HOLD" ] || fail "mqload hold wrote pid $(cat "$ready"), started as $HOLD"
}

# sigkill PID: kill -9 PID, a child, and reap it.
sigkill() {
	kill -KILL "$1"
	wait_exit "$1" 5
	[ "$RC" -eq 137 ] || fail "pid $1 exited $RC, want 137 (SIGKILL)"
}

# death_logged PID SENT RECEIVED: within 4 s the broker logs PID's death with its counts.
death_logged() {
	local line="client pid $1 of $Q died attached; cleaned up ($2 sent, $3 received)"
	wait_until 4 grep -qF "$line" "$LOG" || fail "no \"$line\" within 4 s: $(cat "$LOG")"
	[ "$(grep -cF "client pid $1 of $Q died" "$LOG")" -eq 1 ] || fail "pid $1's death logged more than once"
}

# client_is PID JSON: /status lists client PID with these fields, e.g. '{"alive": false}'.
client_is() {
	http GET /status
	"$PYTHON" - "$TMP/body" "$1" "$2" <<'EOF' || fail "client $1 in /status: $(cat "$TMP/body")"
import json, sys
q = json.load(open(sys.argv[1]))["queues"][0]
pid, want = int(sys.argv[2]), json.loads(sys.argv[3])
mine = [c for c in q["clients"] if c["pid"] == pid]
assert len(mine) == 1, f"{len(mine)} entries for pid {pid}"
got = {k: mine[0].get(k) for k in want}
assert got == want, f"pid {pid}: {got}, want {want}"
EOF
}

# queue_check KEY=VALUE...: the queue's own figures (mq_stats through "mqload
# stats", an observer: leases and redeliveries included) have these values.
# Returns 1 with the difference in WHY.
queue_check() {
	"$MQLOAD" stats "$Q" >"$TMP/stats" 2>&1 || { WHY=" mqload stats: $(cat "$TMP/stats")"; return 1; }
	local kv got
	WHY=
	for kv; do
		got=$(awk -v k="${kv%%=*}" '$1 == k { print $2 }' "$TMP/stats")
		[ "$got" = "${kv#*=}" ] || WHY+=" ${kv%%=*} is ${got:-<missing>}, want ${kv#*=};"
	done
	[ -z "$WHY" ]
}

# queue_expect KEY=VALUE...: as queue_check, failing the test on a mismatch.
queue_expect() {
	queue_check "$@" || fail "mq_stats:$WHY"
}

# queue_get KEY: one figure of "mqload stats".
queue_get() {
	"$MQLOAD" stats "$Q" | awk -v k="$1" '$1 == k { print $2 }'
}

# sound_and_free N: mq_inspect finds the segment sound, every chunk accounted
# for and N of them free (none held by the dead: no leaked capacity).
sound_and_free() {
	"$MQLOAD" inspect "$Q" >"$TMP/inspect" 2>&1 || fail "mqload inspect: $(cat "$TMP/inspect")"
	local want
	for want in "sound 1" "chunks_free $1" "chunks_orphaned 0" "chunks_writing 0" "chunks_leased 0" \
		"chunks_taking 0" "send_lock_pid 0" "recv_lock_pid 0"; do
		grep -qxF "$want" "$TMP/inspect" || fail "mq_inspect: want \"$want\": $(cat "$TMP/inspect")"
	done
}

start_broker "$LOG" -n "$Q" -c 16 -m 128 -l 127.0.0.1:0 --verbose

# --- 1. a producer dies attached, idle ------------------------------------------
hold --send 2 --size 100
H1=$HOLD
wait_until 4 grep -qF "client pid $H1 attached to $Q" "$LOG" || fail "--verbose did not log pid $H1 attaching"
status_expect producers=1 clients_attached=1 recoveries_total=0
client_is "$H1" '{"alive": true, "role": "producer", "sent_total": 2}'
sigkill "$H1"
death_logged "$H1" 2 0
status_expect recoveries_total=1 lock_repairs_total=0 producers=0 clients_attached=0 depth=2 \
	enqueued_total=2
client_is "$H1" '{"alive": false, "role": "producer", "sent_total": 2, "bytes_sent_total": 200}'

# --- 2. a consumer dies holding leases: the messages are delivered again ----------
hold --recv 2 --lease
H2=$HOLD
queue_expect depth=0 in_flight=2 acked_total=0
client_is "$H2" '{"alive": true, "role": "consumer"}'
# Leased, the two are nobody else's.
mqload_fails 3 "mq_recv on $Q: queue empty (errno EAGAIN)" recv "$Q" 1 --timeout 0
sigkill "$H2"
death_logged "$H2" 0 0
queue_expect depth=2 in_flight=0 redelivered_total=0 acked_total=0
mqload_ok recv "$Q" 2 --lease --timeout 1000 --log "$TMP/lease.log"
[ "$(sort "$TMP/lease.log")" = "$(printf '0 0 2\n0 1 2')" ] ||
	fail "after the dead lease holder the queue gave $(tr '\n' ',' <"$TMP/lease.log"), want 0 0 and 0 1, each on its 2nd delivery"
queue_expect depth=0 in_flight=0 redelivered_total=2 acked_total=2 dequeued_total=2
status_expect recoveries_total=2 lock_repairs_total=0 dequeued_total=2

# --- 3. a consumer that detaches holding a lease gives it back at once -------------
mqload_ok send "$Q" 1 --id 7
hold --recv 1 --peek
H3=$HOLD
queue_expect depth=0 in_flight=1
kill -TERM "$H3"
wait_exit "$H3" 10
[ "$RC" -eq 0 ] || fail "mqload hold --peek pid $H3 exited $RC on SIGTERM"
queue_expect depth=1 in_flight=0 # no reap needed: mq_detach gave it back
mqload_ok recv "$Q" 1 --peek --timeout 0 --log "$TMP/peek.log"
[ "$(cat "$TMP/peek.log")" = "7 0 2" ] || fail "after the detached holder: $(cat "$TMP/peek.log"), want 7 0 2"
status_expect recoveries_total=2 depth=0 enqueued_total=3 dequeued_total=3

# --- 4. a producer dies holding reservations: the room comes back, nothing is sent -
# Each reservation holds a whole message (producer 8), written and never committed.
hold --reserved 3 --id 8 --size 100
H4=$HOLD
queue_expect depth=0 in_flight=0
mqload_ok send "$Q" 13 --id 9 --timeout 0 # 16 minus the 3 reserved
mqload_fails 3 "mq_send on $Q: queue full (16 messages) (errno EAGAIN)" send "$Q" 1 --id 9 --start 13 --timeout 0
sigkill "$H4"
death_logged "$H4" 0 0
mqload_ok send "$Q" 3 --id 9 --start 13 --timeout 0
mqload_ok recv "$Q" 16 --timeout 0 --log "$TMP/reserved.log"
[ "$(cat "$TMP/reserved.log")" = "$(for i in $(seq 0 15); do echo "9 $i"; done)" ] ||
	fail "after the dead reserver the queue gave $(tr '\n' ',' <"$TMP/reserved.log"), want 9 0..9 15"
mqload_fails 3 "mq_recv on $Q: queue empty (errno EAGAIN)" recv "$Q" 1 --timeout 0 # nothing of producer 8
status_expect recoveries_total=3 lock_repairs_total=0 enqueued_total=19 dequeued_total=19 depth=0
sound_and_free 16

# --- 5. a consumer dies blocked in mq_recv; the message sent next is not lost -----
run_bg R "$MQLOAD" recv "$Q" 1 --timeout 30000 --log "$TMP/dead.log" 2>/dev/null
status_wait 10 blocked_recvs_total=1 clients_attached=1
sigkill "$R"
death_logged "$R" 0 0
mqload_ok send "$Q" 1 --id 6
mqload_ok recv "$Q" 1 --timeout 5000 --log "$TMP/after.log"
[ "$(cat "$TMP/after.log")" = "6 0" ] || fail "the message after the dead consumer: $(cat "$TMP/after.log")"
[ ! -s "$TMP/dead.log" ] || fail "the killed consumer logged a message: $(cat "$TMP/dead.log")"
status_expect recoveries_total=4 lock_repairs_total=0 enqueued_total=20 dequeued_total=20 depth=0 \
	producers=0 consumers=0 clients_attached=0
for pid in "$H1" "$H2" "$H4" "$R"; do
	client_is "$pid" '{"alive": false}'
done
http GET /metrics
grep -qxF "mq_client_recoveries_total{queue=\"$Q\"} 4" "$TMP/body" ||
	fail "/metrics: $(grep recoveries "$TMP/body")"

# --- 6. clients killed at random inside their calls, holding a queue lock ---------
# A process cannot be stopped at a chosen instruction from outside, so kill
# clients sending and receiving in a tight loop (mqload churn: mq_send and
# mq_recv, leases with mq_ack, mq_reserve/mq_commit, batches) at random moments
# until some died holding the send or receive lock: whoever takes that lock
# next must take it over from the dead holder, finish or undo its operation
# and count a lock repair. At most 200 kills; about one in five lands in a lock.
modes=("" "--lease" "--peek" "--reserve" "--batch 4")
kills=0
repairs=0
killed=()
while [ "$kills" -lt 200 ] && [ "$repairs" -lt 3 ]; do
	ready="$TMP/churn.$kills.ready"
	# shellcheck disable=SC2086 # the mode is zero, one or two words
	run_bg C "$MQLOAD" churn "$Q" --id $((100 + kills)) --ready "$ready" --seconds 50 ${modes[kills % 5]}
	wait_until 10 test -s "$ready" || fail "mqload churn ${modes[kills % 5]} did not get going"
	sleep "0.00$((RANDOM % 10))"
	sigkill "$C"
	killed+=("$C")
	kills=$((kills + 1))
	repairs=$(queue_get lock_repairs_total)
done
# The last one's lock (if it held one) is taken over by the broker's sweep.
wait_until 4 queue_check recoveries_total=$((4 + kills)) ||
	fail "$kills clients killed: mq_stats:$WHY (every death is found and counted once)"
repairs=$(queue_get lock_repairs_total)
[ "$repairs" -ge 1 ] ||
	fail "$kills clients killed at random inside their calls, none found holding a lock: lock_repairs_total is 0"
for pid in "${killed[@]}"; do
	[ "$(grep -cF "client pid $pid of $Q died" "$LOG")" -le 1 ] || fail "pid $pid's death logged more than once"
done
# Not wedged, and what the dead left is whole: every message verifies, none twice.
# (The killed churners may have left the queue full of what they sent: the
# consumer runs while the last message goes in.)
run_bg CONS "$MQLOAD" consume "$Q" --lease --log "$TMP/churn.log" --idle-exit 1500 --seconds 30
mqload_ok send "$Q" 1 --id 1000 --timeout 10000
wait_exit "$CONS" 40
[ "$RC" -eq 0 ] || fail "the consumer after the kills exited $RC"
[ "$(grep -c '^1000 ' "$TMP/churn.log")" -eq 1 ] || fail "the message sent after the kills: $(cat "$TMP/churn.log")"
[ -z "$(cut -d' ' -f1,2 "$TMP/churn.log" | sort | uniq -d)" ] ||
	fail "a message left by the killed clients was delivered twice: $(cut -d' ' -f1,2 "$TMP/churn.log" | sort | uniq -d | head -3)"
queue_expect depth=0 in_flight=0 lock_repairs_total="$repairs"
sound_and_free 16
echo "client_death: $kills clients killed inside their calls, $repairs lock repairs, $(wc -l <"$TMP/churn.log") messages left behind, all whole" >&3

# --- 7. a client that dies while no broker runs is found by the next one ----------
recoveries=$(queue_get recoveries_total)
depth=$(queue_get depth)
stop_broker "$BPID" TERM "$LOG"
hold --send 1
H7=$HOLD
sigkill "$H7"
start_broker "$LOG" -n "$Q" -l 127.0.0.1:0
death_logged "$H7" 1 0
status_expect recoveries_total=$((recoveries + 1)) depth=$((depth + 1)) clients_attached=0
client_is "$H7" '{"alive": false, "sent_total": 1}'
stop_broker "$BPID" TERM "$LOG"
echo PASS
