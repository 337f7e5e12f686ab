#!/bin/bash
# client_death.sh - clients SIGKILLed while attached, holding the send or receive lock, or blocked in mq_recv: the broker detects, logs and counts each; nothing wedges or is lost.
set -euo pipefail
TEST=client_death
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

LOG="$TMP/broker.log"
HOLDS=0
HOLD=
lock_deadlines=$("$MQLOAD" info)
lock_deadlines=${lock_deadlines#lock_deadlines }

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

# --- 2. a client dies holding the send lock (in the middle of mq_send) ------------
hold --lock send
H2=$HOLD
# While it holds the lock, a send waits for it and times out (not under TSan,
# whose lock waits ignore the deadline: see "mqload info").
if [ "$lock_deadlines" = yes ]; then
	mqload_fails 3 "(errno ETIMEDOUT)" send "$Q" 1 --timeout 300 --id 9
fi
sigkill "$H2"
mqload_ok send "$Q" 1 --id 5 --timeout 5000 # not wedged: the lock is repaired
status_expect lock_repairs_total=1 depth=3 enqueued_total=3
death_logged "$H2" 0 0
status_expect recoveries_total=2 clients_attached=0

# --- 3. a client dies holding the receive lock (in the middle of mq_recv) ---------
hold --lock recv
H3=$HOLD
if [ "$lock_deadlines" = yes ]; then
	mqload_fails 3 "(errno ETIMEDOUT)" recv "$Q" 1 --timeout 300
fi
sigkill "$H3"
mqload_ok recv "$Q" 3 --timeout 5000 --log "$TMP/recv3.log"
[ "$(cat "$TMP/recv3.log")" = "$(printf '0 0\n0 1\n5 0')" ] ||
	fail "after the dead receiver the queue gave $(tr '\n' ',' <"$TMP/recv3.log"), want 0 0,0 1,5 0"
status_expect lock_repairs_total=2 depth=0 dequeued_total=3
death_logged "$H3" 0 0
status_expect recoveries_total=3

# --- 4. a consumer dies blocked in mq_recv; the message sent next is not lost -----
run_bg R "$MQLOAD" recv "$Q" 1 --timeout 30000 --log "$TMP/dead.log" 2>/dev/null
status_wait 10 blocked_recvs_total=1 clients_attached=1
sigkill "$R"
death_logged "$R" 0 0
mqload_ok send "$Q" 1 --id 6
mqload_ok recv "$Q" 1 --timeout 5000 --log "$TMP/after.log"
[ "$(cat "$TMP/after.log")" = "6 0" ] || fail "the message after the dead consumer: $(cat "$TMP/after.log")"
[ ! -s "$TMP/dead.log" ] || fail "the killed consumer logged a message: $(cat "$TMP/dead.log")"
status_expect recoveries_total=4 lock_repairs_total=2 enqueued_total=4 dequeued_total=4 depth=0 \
	producers=0 consumers=0 clients_attached=0
for pid in "$H1" "$H2" "$H3" "$R"; do
	client_is "$pid" '{"alive": false}'
done
http GET /metrics
grep -qxF "mq_client_recoveries_total{queue=\"$Q\"} 4" "$TMP/body" ||
	fail "/metrics: $(grep recoveries "$TMP/body")"

# --- 5. a client that dies while no broker runs is found by the next one ----------
stop_broker "$BPID" TERM "$LOG"
hold --send 1
H5=$HOLD
sigkill "$H5"
start_broker "$LOG" -n "$Q" -l 127.0.0.1:0
death_logged "$H5" 1 0
status_expect recoveries_total=5 depth=1 clients_attached=0
client_is "$H5" '{"alive": false, "sent_total": 1}'
stop_broker "$BPID" TERM "$LOG"
echo PASS
