#!/bin/bash
# roundtrip.sh - mqbridge end to end: queue A -> export -> JetStream -> import -> queue B, 20,000 checksummed messages, the exporting bridge killed -9 and restarted mid-stream, then the importing one: 0 lost, the stream holds each message once, B's duplicates within a fetch batch and counted.
#
# Usage: roundtrip.sh MQBROKER MQLOAD MQBRIDGE
# Skipped (exit 77) when nats-server or mqbridge is missing. Starts its own
# nats-server -js on free loopback ports with a temporary store, and one
# mqbroker serving the two queues (it reaps the killed bridge's leases).
TEST=roundtrip
N=20000
# shellcheck source=setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"

QA="$Q-a" QB="$Q-b" SUBJ="t.$$" STREAM="MQBT$$"

start_nats

start_broker "$TMP/broker.log" --listen 127.0.0.1:0 --queue "$QA:1024:512" --queue "$QB:1024:512"

# --ack-wait 3: what the killed bridge B fetched and did not ack comes again
# 3 s later, not 30.
start_bridge BPID_B "$TMP/bridge-b.log" --import "$SUBJ=$QB" --ack-wait 3
start_bridge BPID_A "$TMP/bridge-a.log" --export "$QA=$SUBJ"
expect_log "$TMP/bridge-b.log" "stream $STREAM: created"
expect_log "$TMP/bridge-a.log" "stream $STREAM: using it as it is"

# Each bridge is in its queue's client list with the role "bridge" (the
# broker's /status/queues/NAME, NAME without its slash).
bridge_clients() {
	curl -sS --max-time 5 "http://127.0.0.1:$BPORT/status/queues/${1#/}" |
		"$PYTHON" -c 'import json, sys
print(sum(c["role"] == "bridge" and c["alive"] for c in json.load(sys.stdin)["clients"]))'
}
for q in "$QA" "$QB"; do
	[ "$(bridge_clients "$q")" = 1 ] ||
		fail "queue $q: want one live client with role bridge, /status says: $(curl -sS "http://127.0.0.1:$BPORT/status/queues/${q#/}")"
done

# Host B's consumer, host A's producer; 20,000 messages of 200 bytes.
run_bg CPID "$MQLOAD" consume "$QB" --log "$TMP/recv.log" --count "$TMP/recv.count" \
	--seconds 110 --any-order 2>"$TMP/consume.err"
run_bg SPID "$MQLOAD" send "$QA" "$N" --size 200 --timeout 20000 2>"$TMP/send.err"

# Kill the exporting bridge with publishes in flight, once the stream holds
# a quarter of the messages, and start it again.
wait_until 30 at_least $((N / 4)) stream_msgs "$STREAM" ||
	fail "the stream holds $(stream_msgs "$STREAM") messages after 30 s (want >= $((N / 4))): $(cat "$TMP/bridge-a.log")"
kill -KILL "$BPID_A"
wait_exit "$BPID_A" 5
AT=$(stream_msgs "$STREAM")
[ "$AT" -lt "$N" ] || fail "bridge A was killed after the stream had all $N messages: not mid-stream"
echo "killed bridge A (kill -9) with $AT messages in the stream" >&3
start_bridge BPID_A "$TMP/bridge-a.log" --export "$QA=$SUBJ"

# Kill the importing bridge too, once queue B has half the messages: the
# durable consumer resumes where its acks stood; what was sent but not acked
# comes again (at least once: at most a fetch batch or two of duplicates).
wait_until 30 at_least $((N / 2)) file_number "$TMP/recv.count" ||
	fail "queue B received $(cat "$TMP/recv.count") messages after 30 s (want >= $((N / 2))): $(cat "$TMP/bridge-b.log")"
kill -KILL "$BPID_B"
wait_exit "$BPID_B" 5
echo "killed bridge B (kill -9) with $(cat "$TMP/recv.count") messages received" >&3
start_bridge BPID_B "$TMP/bridge-b.log" --import "$SUBJ=$QB"
expect_log "$TMP/bridge-b.log" "resuming durable consumer"

wait_exit "$SPID" 60
[ "$RC" -eq 0 ] || fail "mqload send exited with status $RC: $(cat "$TMP/send.err")"
wait_until 60 at_least "$N" stream_msgs "$STREAM" ||
	fail "the stream holds $(stream_msgs "$STREAM") messages, want exactly $N: $(cat "$TMP/bridge-a.log")"
# distinct_received: how many different messages queue B's consumer logged.
distinct_received() {
	sort -u "$TMP/recv.log" 2>/dev/null | wc -l
}
wait_until 60 at_least "$N" distinct_received ||
	fail "queue B received $(distinct_received) of $N messages in 60 s: $(cat "$TMP/bridge-b.log")"

# Stop everything cleanly (SIGTERM: exit 0) and check the receiver's log.
stop_bridges "$BPID_A" "$BPID_B"
kill -TERM "$CPID"
wait_exit "$CPID" 10
[ "$RC" -eq 0 ] || fail "mqload consume exited with status $RC: $(cat "$TMP/consume.err")"
DUPS=$("$PYTHON" - "$TMP/recv.log" "$N" <<'EOF'
import sys
from collections import Counter
seen = Counter(tuple(map(int, l.split()[:2])) for l in open(sys.argv[1]))
n = int(sys.argv[2])
want = {(0, s) for s in range(n)}
lost = want - set(seen)
extra = set(seen) - want
dups = sum(c - 1 for c in seen.values())
# Bridge B was killed once: what it had sent but not yet acked comes again,
# at most a fetch batch (64) and the acks in flight.
print(f"received {sum(seen.values())}, distinct {len(seen)}, lost {len(lost)}, "
      f"duplicates {dups} (bridge B killed once: at most 128 allowed), foreign {len(extra)}",
      file=sys.stderr)
print(dups)
sys.exit(1 if lost or extra or dups > 128 else 0)
EOF
) || fail "queue B's messages do not check out (above)"
[ "$(stream_msgs "$STREAM")" = "$N" ] || fail "the stream holds $(stream_msgs "$STREAM") messages at the end, want $N"
expect_log "$TMP/bridge-a.log" "mqbridge: stopping on Terminated"
grep '^mqbridge: export .*stopped' "$TMP/bridge-a.log" >&3
grep '^mqbridge: import .*stopped' "$TMP/bridge-b.log" >&3
# The restarted bridge B counts what JetStream delivered to it a second time.
[ "$DUPS" -eq 0 ] || grep -q "stopped: [0-9]* imported ([1-9][0-9]* delivered before" "$TMP/bridge-b.log" ||
	fail "queue B got $DUPS duplicates, but bridge B counted no redelivery: $(cat "$TMP/bridge-b.log")"
for log in "$TMP"/bridge-*.log; do
	sanitizer_clean "$log"
done
