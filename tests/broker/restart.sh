#!/bin/bash
# restart.sh - kill -9 the broker under load: clients keep going, a new broker adopts the queue, totals continue, every confirmed message arrives exactly once.
set -euo pipefail
TEST=restart
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

NPROD=2
NCONS=2
RATE=3000 # messages a second per producer: enough to matter, logs stay small

# count FILE: the number mqload keeps in FILE (0 until it exists).
count() {
	local n=0
	[ ! -s "$1" ] || n=$(cat "$1")
	echo "${n:-0}"
}

# counts: every producer's and consumer's count, space-separated.
counts() {
	local i out=()
	for i in $(seq 1 $NPROD); do out+=("$(count "$TMP/p$i.count")"); done
	for i in $(seq 1 $NCONS); do out+=("$(count "$TMP/c$i.count")"); done
	echo "${out[*]}"
}

# all_past BASELINE... : every count is at least 300 above its baseline.
all_past() {
	local now i=0 n
	read -r -a now <<<"$(counts)"
	for n in "$@"; do
		[ "${now[$i]}" -ge $((n + 300)) ] || return 1
		i=$((i + 1))
	done
}

# stalled WHAT: fail, naming any client that has ended (and its status).
stalled() {
	local pid why=""
	for pid in "${PROD[@]}" "${CONS[@]}"; do
		if exited "$pid"; then
			wait_exit "$pid" 1
			why+=" mqload pid $pid exited $RC;"
		fi
	done
	fail "$1:$why counts $(counts) (mqload exits 4 on a corrupt, duplicated or out-of-order message)"
}

start_broker "$TMP/b1.log" -n "$Q" -c 64 -m 256 -l 127.0.0.1:0
B1=$BPID
PORT=$BPORT

PROD=()
CONS=()
for i in $(seq 1 $NPROD); do
	run_bg pid "$MQLOAD" produce "$Q" --id "$i" --confirm "$TMP/p$i.count" --rate "$RATE" \
		--size $((24 + 40 * i)) --seconds 50
	PROD+=("$pid")
done
for i in $(seq 1 $NCONS); do
	run_bg pid "$MQLOAD" consume "$Q" --log "$TMP/c$i.log" --count "$TMP/c$i.count" --seconds 50
	CONS+=("$pid")
done
zeros=$(printf '0 %.0s' $(seq 1 $((NPROD + NCONS))))
# shellcheck disable=SC2086 # one argument per count
wait_until 15 all_past $zeros || stalled "load did not start"
status_wait 5 producers=$NPROD consumers=$NCONS clients_attached=$((NPROD + NCONS)) recoveries_total=0
before=$(status_get 'd["queues"][0]["enqueued_total"]')
[ "$before" -gt 0 ] || fail "enqueued_total is $before under load"

# --- kill -9 the broker; the clients do not need it ---------------------------
kill -KILL "$B1"
wait_exit "$B1" 5
[ "$RC" -eq 137 ] || fail "the first broker exited $RC, want 137 (SIGKILL)"
[ -e "/dev/shm$Q" ] || fail "the queue vanished with its broker"
if curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
	fail "something still answers on port $PORT after the broker was killed"
fi
at_kill=$(counts)
# shellcheck disable=SC2086
wait_until 15 all_past $at_kill || stalled "clients stalled without a broker (counts were $at_kill)"

# --- a new broker on the same port adopts the queue and its totals --------------
start_broker "$TMP/b2.log" -n "$Q" -l "127.0.0.1:$PORT"
B2=$BPID
expect_log "$TMP/b2.log" "adopted $Q: "
expect_log "$TMP/b2.log" "$((NPROD + NCONS)) clients attached (previous broker pid $B1 is gone)"
expect_log "$TMP/b2.log" "serving $Q on http://127.0.0.1:$PORT/ (pid $B2)"
status_expect capacity=64 max_msg_size=256 producers=$NPROD consumers=$NCONS \
	clients_attached=$((NPROD + NCONS)) recoveries_total=0 broker_pid="$B2"
after=$(status_get 'd["queues"][0]["enqueued_total"]')
[ "$after" -gt "$before" ] || fail "enqueued_total went from $before to $after across the restart"
[ "$(status_get 'd["broker"]["pid"]')" = "$B2" ] || fail "/status broker.pid is not the new broker's $B2"
at_restart=$(counts)
# shellcheck disable=SC2086
wait_until 15 all_past $at_restart || stalled "clients stalled after the restart (counts were $at_restart)"

# --- stop the producers, then the consumers, drain what is left -----------------
for pid in "${PROD[@]}"; do kill -TERM "$pid"; done
for pid in "${PROD[@]}"; do
	wait_exit "$pid" 10
	[ "$RC" -eq 0 ] || fail "producer pid $pid exited $RC"
done
for pid in "${CONS[@]}"; do kill -TERM "$pid"; done
for pid in "${CONS[@]}"; do
	wait_exit "$pid" 10
	[ "$RC" -eq 0 ] || fail "consumer pid $pid exited $RC (4: a corrupt, duplicated or out-of-order message)"
done
mqload_ok consume "$Q" --log "$TMP/drain.log" --idle-exit 300 --seconds 30

# --- exactly once: the logs hold each confirmed (producer, seq) once, nothing else --
total=0
: >"$TMP/expected"
for i in $(seq 1 $NPROD); do
	n=$(count "$TMP/p$i.count")
	[ "$n" -gt 0 ] || fail "producer $i confirmed nothing"
	total=$((total + n))
	seq 0 $((n - 1)) | sed "s/^/$i /" >>"$TMP/expected"
done
for i in $(seq 1 $NCONS); do
	[ "$(wc -l <"$TMP/c$i.log")" -eq "$(count "$TMP/c$i.count")" ] ||
		fail "consumer $i logged $(wc -l <"$TMP/c$i.log") messages but counted $(count "$TMP/c$i.count")"
done
cat "$TMP"/c*.log "$TMP/drain.log" | LC_ALL=C sort >"$TMP/got"
LC_ALL=C sort -o "$TMP/expected" "$TMP/expected"
dups=$(LC_ALL=C uniq -d "$TMP/got" | head -n 5)
[ -z "$dups" ] || fail "messages received twice (producer seq): $(echo "$dups" | tr '\n' ',')"
missing=$(LC_ALL=C comm -23 "$TMP/expected" "$TMP/got" | head -n 5)
[ -z "$missing" ] || fail "confirmed messages never received (producer seq): $(echo "$missing" | tr '\n' ',') ..."
extra=$(LC_ALL=C comm -13 "$TMP/expected" "$TMP/got" | head -n 5)
[ -z "$extra" ] || fail "received messages no mq_send confirmed (producer seq): $(echo "$extra" | tr '\n' ',')"
[ "$(wc -l <"$TMP/got")" -eq "$total" ] || fail "received $(wc -l <"$TMP/got") messages, $total confirmed"
# The segment's totals agree: every enqueue was a confirmed send, all were taken.
status_expect enqueued_total="$total" dequeued_total="$total" depth=0 recoveries_total=0 \
	producers=0 consumers=0 clients_attached=0
[ "$total" -gt "$after" ] || fail "only $total messages in all, $after at the restart"
stop_broker "$B2" TERM "$TMP/b2.log"
sanitizer_clean "$TMP/b1.log"
echo "PASS ($total messages from $NPROD producers to $NCONS consumers across a kill -9 of the broker)"
