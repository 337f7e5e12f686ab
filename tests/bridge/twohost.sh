#!/bin/bash
# twohost.sh - mqbridge between two hosts on one machine (mount namespaces, each with its own tmpfs on /dev/shm and the same queue name): A's producers -> A's queue -> bridge A exports -> JetStream -> bridge B imports -> B's queue -> B's consumers; 200,000 checksummed messages of random sizes while both bridges are killed -9 and restarted at random moments (24 times) and nats-server is killed -9 and restarted once: 0 lost, 0 corrupt, the stream holds each message once, B's duplicates counted and within the import contract's bound.
#
# Usage: twohost.sh MQBROKER MQLOAD MQBRIDGE
# Skipped (exit 77) when nats-server or mqbridge is missing, when not root,
# or when unshare/nsenter/mount cannot make the hosts (hosts.sh).
# The producers are paced so that the flow lasts ~70 s whatever the machine
# (and every kill falls in it): ~80 s in all, in a plain, an ASan+UBSan or a
# TSan build alike, so sanitizer builds move the same 200,000 messages.
# MQ_TEST_SEED=S replays a schedule (each run prints its seed).
# MQ_KEEP_LOGS=DIR keeps the logs.
TEST=twohost
# shellcheck source=setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"
# shellcheck source=hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/hosts.sh"
need_hosts

N=200000
PRODUCERS=2 CONSUMERS=2 # ids 1..PRODUCERS, N/PRODUCERS messages each
KILLS=24                # bridge kills (A and B together, at least 8 each)
BATCH=64                # bridge B's fetch batch (its default)
# The producers send at a fixed rate, so that the flow lasts about FLOW
# seconds, long enough for every kill to fall in it, on any machine.
FLOW=70
RATE=$((N / FLOW / PRODUCERS))
SEED=${MQ_TEST_SEED:-$$}
RANDOM=$SEED
QO="/orders-$TEST-$$" SUBJ="orders.$$" STREAM="MQBH$$"
CLEANUPS+=("rm -f '/dev/shm$QO'") # never made there; removed if it were
T0=$SECONDS

# ---- the hosts: the same queue name, two file systems -------------------------
host_start A 256m
host_start B 256m
hosts_private "$QO"
host_broker A "$TMP/broker-a.log" --listen 127.0.0.1:0 --queue "$QO:4096:1024"
host_has A "$QO" || fail "host A's broker did not make $QO in A's /dev/shm: $(cat "$TMP/broker-a.log")"
! host_has B "$QO" || fail "host B sees host A's $QO: the namespaces share /dev/shm"
host_broker B "$TMP/broker-b.log" --listen 127.0.0.1:0 --queue "$QO:4096:1024"
[ ! -e "/dev/shm$QO" ] || fail "the real /dev/shm has $QO: a host's broker made it there"
host_sh A "$MQLOAD" send "$QO" 1 --id 0 --size 24 || fail "cannot send to host A's $QO"
[ "$(host_sh B "$MQLOAD" stats "$QO" | sed -n 's/^depth //p')" = 0 ] ||
	fail "host B's $QO has A's message: not two queues"
host_sh A "$MQLOAD" recv "$QO" 1 --timeout 1000 || fail "cannot receive from host A's $QO"
echo "hosts A and B: each its own tmpfs on /dev/shm, each its own $QO, none in the real /dev/shm" >&3

# ---- the flow ------------------------------------------------------------------
start_nats
# --ack-wait 3: what a killed bridge B fetched and did not ack comes again 3 s later.
IMPORT=(--import "$SUBJ=$QO" --ack-wait 3 --batch "$BATCH")
EXPORT=(--export "$QO=$SUBJ")
host_bridge BB B "$TMP/bridge-b.log" "${IMPORT[@]}"
host_bridge BA A "$TMP/bridge-a.log" "${EXPORT[@]}"
for c in $(seq 1 "$CONSUMERS"); do
	host_bg "CPID_$c" B "$MQLOAD" consume "$QO" --log "$TMP/recv-$c.log" \
		--count "$TMP/recv-$c.count" --seconds 600 --any-order 2>"$TMP/consume-$c.err"
done
for p in $(seq 1 "$PRODUCERS"); do
	host_bg "SPID_$p" A "$MQLOAD" send "$QO" $((N / PRODUCERS)) --id "$p" --size 24 \
		--max-size 1024 --timeout 60000 --rate "$RATE" 2>"$TMP/send-$p.err"
done

# received_total: the messages B's consumers have taken so far.
received_total() {
	local c n total=0
	for c in $(seq 1 "$CONSUMERS"); do
		n=0
		{ read -r n <"$TMP/recv-$c.count"; } 2>/dev/null || true
		total=$((total + ${n:-0}))
	done
	echo "$total"
}

# stalled: why the flow may have stopped: the consumers' and bridges' last words.
stalled() {
	tail -n 3 "$TMP"/consume-*.err "$TMP"/send-*.err "$TMP/bridge-a.log" "$TMP/bridge-b.log"
}

# The schedule: KILLS bridge kills at random points of the flow (2%..92% of
# the messages received in B), each of bridge A or B at random (at least 8
# each), and nats-server's kill -9 and restart somewhere in 35%..65%.
while :; do
	SCHEDULE=() NA=0 NB=0
	for _ in $(seq 1 "$KILLS"); do
		at=$((N * 2 / 100 + (RANDOM * 32768 + RANDOM) % (N * 90 / 100)))
		if [ $((RANDOM % 2)) -eq 0 ]; then
			SCHEDULE+=("$at A") NA=$((NA + 1))
		else
			SCHEDULE+=("$at B") NB=$((NB + 1))
		fi
	done
	[ "$NA" -lt 8 ] || [ "$NB" -lt 8 ] || break
done
SCHEDULE+=("$((N * 35 / 100 + (RANDOM * 32768 + RANDOM) % (N * 30 / 100))) N")
mapfile -t SCHEDULE < <(printf '%s\n' "${SCHEDULE[@]}" | sort -n)
echo "seed $SEED (MQ_TEST_SEED replays it): $NA kills of bridge A, $NB of bridge B, nats-server once, among $N messages" >&3

# restart_pause: up to 0.4 s before a killed process is started again.
restart_pause() {
	sleep "0.$((RANDOM % 5))"
}

B_SINCE=$SECONDS # when bridge B (re)started
NATS_AT=-100     # when nats-server came back
for ev in "${SCHEDULE[@]}"; do
	at=${ev% *} who=${ev#* }
	wait_until 120 at_least "$at" received_total ||
		fail "B received $(received_total) messages after 120 s, want $at (next: kill $who): $(stalled)"
	case $who in
	A)
		kill -KILL "$BA"
		wait_exit "$BA" 5
		restart_pause
		host_bridge BA A "$TMP/bridge-a.log" "${EXPORT[@]}"
		;;
	B)
		# Not within 3 s after nats-server came back: what it delivers again
		# then (its consumer state behind our acks) is skipped by the bridge
		# run that acked it (import.c); a new run would not know them.
		[ $((SECONDS - NATS_AT)) -ge 3 ] || sleep 3
		kill -KILL "$BB"
		wait_exit "$BB" 5
		restart_pause
		host_bridge BB B "$TMP/bridge-b.log" "${IMPORT[@]}"
		B_SINCE=$SECONDS
		;;
	N)
		# Bridge B must have acked under the server's eyes for a while, so
		# the consumer state the server keeps is newer than B's last restart.
		[ $((SECONDS - B_SINCE)) -ge 3 ] || sleep 3
		kill -KILL "$NATS"
		wait_exit "$NATS" 5
		sleep 1
		start_nats
		NATS_AT=$SECONDS
		echo "nats-server killed -9 and restarted at $(received_total) messages received" >&3
		;;
	esac
done
AT=$(received_total)
echo "$KILLS bridge kills done at $AT of $N messages received ($((SECONDS - T0)) s)" >&3
[ "$AT" -lt "$N" ] || fail "the kills outlasted the flow (all $N messages were in B before the last)"

# ---- the end: everything arrives ---------------------------------------------
for p in $(seq 1 "$PRODUCERS"); do
	pid_var="SPID_$p"
	wait_exit "${!pid_var}" 120
	[ "$RC" -eq 0 ] || fail "producer $p (mqload send) exited with status $RC: $(cat "$TMP/send-$p.err")"
done
wait_until 60 at_least "$N" stream_msgs "$STREAM" ||
	fail "the stream holds $(stream_msgs "$STREAM") messages, want $N: $(tail -n 20 "$TMP/bridge-a.log")"
wait_until 60 at_least "$N" received_total ||
	fail "B received $(received_total) of $N messages in 60 s: $(stalled)"
# distinct_received: how many different messages B's consumers logged.
distinct_received() {
	cat "$TMP"/recv-*.log 2>/dev/null | sort -u | wc -l
}
wait_until 60 at_least "$N" distinct_received ||
	fail "B received $(distinct_received) different messages of $N in 60 s: $(tail -n 20 "$TMP/bridge-b.log")"
sleep 1 # a late duplicate would show here
stop_bridges "$BA" "$BB"
for c in $(seq 1 "$CONSUMERS"); do
	pid_var="CPID_$c"
	kill -TERM "${!pid_var}"
	wait_exit "${!pid_var}" 10
	# mqload exits 4 on a corrupt message (header, length, checksum, payload).
	[ "$RC" -eq 0 ] || fail "consumer $c (mqload consume) exited with status $RC: $(cat "$TMP/consume-$c.err")"
done
# Exactly N in the stream, and (below) all N different messages came out of
# it into B: the stream holds each message once.
[ "$(stream_msgs "$STREAM")" = "$N" ] ||
	fail "the stream holds $(stream_msgs "$STREAM") messages at the end, want exactly $N"

# The bound: each kill of bridge B can bring again what that run had put into
# B's queue and not yet had acked by the server: at most its fetch batch
# (BATCH, the messages between mq_send and the ack) and the acks still on the
# way (another batch at most: an ack is published without waiting, the
# connection's buffer flushed behind). Duplicates within one run (an ack lost,
# nats-server delivering again what it had acked before its restart) are
# skipped by import.c's memory of the sequences it sent: none here.
BOUND=$((NB * 2 * BATCH))
RESULT=$("$PYTHON" - "$N" "$PRODUCERS" "$BOUND" "$TMP"/recv-*.log <<'EOF'
import sys
from collections import Counter
n, producers, bound = map(int, sys.argv[1:4])
seen = Counter()
for f in sys.argv[4:]:
    seen.update(tuple(map(int, l.split()[:2])) for l in open(f))
per = n // producers
want = {(p, s) for p in range(1, producers + 1) for s in range(per)}
lost = want - set(seen)
extra = set(seen) - want
dups = sum(c - 1 for c in seen.values())
print(f"B received {sum(seen.values())}, distinct {len(seen)}, lost {len(lost)}, "
      f"foreign {len(extra)}, duplicates {dups} (bound {bound})", file=sys.stderr)
if lost:
    print(f"lost, the first: {sorted(lost)[:10]}", file=sys.stderr)
print(dups)
sys.exit(1 if lost or extra or dups > bound else 0)
EOF
) || fail "B's messages do not check out (above)"
# Bridge B lived through nats-server's restart (it is not killed within 3 s after).
expect_log "$TMP/bridge-b.log" "NATS: reconnected"
# What the last run of bridge B counted (killed runs write no stop line).
LAST_B=$(grep '^mqbridge: import .*stopped' "$TMP/bridge-b.log" | tail -n 1)
[ -n "$LAST_B" ] || fail "bridge B wrote no stop line: $(tail -n 20 "$TMP/bridge-b.log")"
echo "$LAST_B" >&3
for log in "$TMP"/bridge-*.log "$TMP"/broker-*.log "$TMP"/consume-*.err "$TMP"/send-*.err; do
	sanitizer_clean "$log"
done
for h in A B; do
	host_sh "$h" "$MQLOAD" inspect "$QO" >"$TMP/inspect-$h.out" 2>&1 ||
		fail "host $h's $QO is not sound: $(cat "$TMP/inspect-$h.out")"
done
[ ! -e "/dev/shm$QO" ] || fail "the real /dev/shm has $QO"
echo "twohost: $N messages, 0 lost, 0 corrupt, the stream holds $N; $KILLS bridge kills (A $NA, B $NB), nats-server restarted once; $RESULT duplicates in B (bound $BOUND); $((SECONDS - T0)) s" >&3
