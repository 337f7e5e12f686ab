#!/bin/bash
# stats.sh - mqctl stats (the table; --json with the DESIGN.md keys and exact
# values after a known send/recv, the same as the broker's /status; measured
# rates with --sample; live clients; no broker) and mqctl watch's plain lines
# when stdout is not a terminal (--count, --interval, SIGINT/SIGTERM).
# Usage: stats.sh MQCTL MQBROKER
set -euo pipefail
TEST=stats
. "$(dirname "$0")/common.sh"

start_broker "$Q" --capacity 16 --max-msg 64

# A known history: 3 messages of 5, 6 and 7 bytes in, one (5 bytes) out.
expect 0 send -q "$Q" aaaaa bbbbbb ccccccc
expect 0 recv -q "$Q" --format line
out_is "aaaaa\n"
expect 0 stats -q "$Q" --json --sample 0
cp "$TMP/out" "$TMP/stats.json"
[ "$(grep -c '' "$TMP/stats.json")" -eq 1 ] || fail "stats --json is not one line: $(cat "$TMP/stats.json")"
json_expect "$TMP/stats.json" "name=\"$Q\"" capacity=16 max_msg_size=64 depth=2 high_water=3 \
	enqueued_total=3 dequeued_total=1 bytes_enqueued_total=18 bytes_dequeued_total=5 \
	blocked_sends_total=0 blocked_recvs_total=0 recoveries_total=0 \
	rates.enqueue_per_s.1s=0 rates.enqueue_per_s.10s=0 rates.enqueue_per_s.60s=0 \
	rates.dequeue_per_s.1s=0 rates.dequeue_per_s.10s=0 rates.dequeue_per_s.60s=0 \
	producers=0 consumers=0 clients=[] clients_attached=0 full_total=0 empty_total=0 \
	lock_repairs_total=0 "broker_pid=$BPID" rates_sample_s=0

# The same shape as the broker's /status element for the queue: every key of
# it, the same values (rates and the clock aside), the keys in its order.
curl -sS --max-time 5 "http://127.0.0.1:$BPORT/status" >"$TMP/status.json" || fail "curl /status failed"
"$PYTHON" - "$TMP/stats.json" "$TMP/status.json" <<'EOF' || fail "stats --json differs from /status: $(cat "$TMP/stats.json") vs $(cat "$TMP/status.json")"
import json, sys
mine = json.load(open(sys.argv[1]))
theirs = json.load(open(sys.argv[2]))["queues"][0]
assert list(mine)[:len(theirs)] == list(theirs), (list(mine), list(theirs))
assert set(mine) - set(theirs) == {"rates_sample_s"}, set(mine) - set(theirs)
for k, v in theirs.items():
    if k != "rates":
        assert mine[k] == v, (k, mine[k], v)
assert set(mine["rates"]) == {"enqueue_per_s", "dequeue_per_s"}
for side in mine["rates"].values():
    assert set(side) == {"1s", "10s", "60s"}
EOF

# The table: every figure, readable.
expect 0 stats -q "$Q" --sample 0
out_has "queue $Q"
out_has "  depth        2 of 16 messages (12.5%), high water 3"
out_has "  max message  64 bytes"
out_has "  enqueued     3 messages, 18 bytes"
out_has "  dequeued     1 messages, 5 bytes"
out_has "  rates        not measured (--sample 0)"
out_has "  waits        0 blocked sends, 0 blocked receives; found full 0, found empty 0"
out_has "  leases       0 in flight; 1 acked, 0 nacked, 0 delivered again" # mqctl recv leases, then acks
out_has "  recoveries   0 dead clients cleaned up, 0 lock repairs"
out_has "  broker       pid $BPID, alive, heartbeat "
out_has "  clients      0 attached: 0 producing, 0 consuming"
out_lacks "PID"

# Rates are measured over --sample (default 1 s) while a producer runs (on a
# queue of its own, large enough not to fill up); the producer is listed as a
# live client; mqctl stats itself never is.
BPID_MAIN=$BPID BLOG_MAIN=$BLOG
start_broker "$Q-rates" --capacity 4096 --max-msg 64
BPID=$BPID_MAIN BLOG=$BLOG_MAIN
R="$Q-rates"
feed() { # one line every 50 ms, until killed
	while :; do echo tick; sleep 0.05; done
}
feed | "$MQCTL" send -q "$R" --timeout -1 2>"$TMP/feed.err" &
FEEDER=$!
PIDS+=("$FEEDER")
stats_wait 10 "d['producers'] == 1" "$R"
start=$(date +%s%N)
expect 0 stats -q "$R" --json
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -ge 1000 ] || fail "stats --json took $elapsed_ms ms; the default --sample is 1000"
json_expect "$TMP/out" rates_sample_s=1 producers=1 consumers=0 clients_attached=1 \
	'clients.0.role="producer"' clients.0.alive=true clients.0.received_total=0
"$PYTHON" - "$TMP/out" <<'EOF' || fail "rates over 1 s of a 20 msg/s producer: $(cat "$TMP/out")"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["rates"]["enqueue_per_s"]
assert 5 <= r["1s"] <= 30, r          # ~20/s, loose: a loaded machine
assert r["1s"] == r["10s"] == r["60s"], r
assert d["rates"]["dequeue_per_s"]["1s"] == 0
assert len(d["clients"]) == 1 and d["clients"][0]["sent_total"] >= 1
EOF
expect 0 stats -q "$R" -j --sample 300
json_expect "$TMP/out" rates_sample_s=0.3 producers=1
expect 0 stats -q "$R" -s 200
out_has "  clients      1 attached: 1 producing, 0 consuming"
grep -qE '^ +[0-9]+ +producer +yes +[0-9]+ +0 +0 +-$' "$TMP/out" || fail "no client row in the table: $(cat "$TMP/out")"
grep -qE '^  rates        [0-9.]+ enqueued/s, 0.0 dequeued/s \(over 0.2 s\)$' "$TMP/out" ||
	fail "no measured rates in the table: $(cat "$TMP/out")"
# The watch lines follow the producer's rate too.
expect 0 watch -q "$R" --interval 500 --count 2
tail -n 1 "$TMP/out" | grep -qE '^[0-9:]{8} [0-9]+/4096 ([1-9][0-9]*|[1-9])\.[0-9] 0\.0 1 0$' ||
	fail "watch does not show the producer's rate: $(cat "$TMP/out")"
kill "$FEEDER" 2>/dev/null || true
wait "$FEEDER" 2>/dev/null || true
forget "$FEEDER"
stats_wait 10 "d['clients_attached'] == 0" "$R"

# watch without a terminal: a header, then one plain line per interval.
expect 4 recv -q "$Q" -n 1000 -t 0
depth_is 0
expect 0 send -q "$Q" w1 w2
start=$(date +%s%N)
expect 0 watch -q "$Q" --interval 100 --count 2
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
[ "$elapsed_ms" -ge 200 ] || fail "watch --interval 100 --count 2 took $elapsed_ms ms (want >= 200)"
[ "$(grep -c '' "$TMP/out")" -eq 3 ] || fail "watch --count 2: want a header and 2 lines: $(cat "$TMP/out")"
[ "$(head -n 1 "$TMP/out")" = "time depth/capacity enq/s deq/s producers consumers" ] ||
	fail "watch header: $(head -n 1 "$TMP/out")"
tail -n 2 "$TMP/out" | grep -vqE '^[0-9]{2}:[0-9]{2}:[0-9]{2} 2/16 0\.0 0\.0 0 0$' &&
	fail "watch lines: $(cat "$TMP/out")"
expect 0 watch -q "$Q" -i 100 -c 1
[ "$(grep -c '' "$TMP/out")" -eq 2 ] || fail "watch -c 1: $(cat "$TMP/out")"
# Until a signal: SIGTERM and SIGINT end it with status 0.
lines_at_least() { # N FILE
	[ "$(grep -c '' "$2")" -ge "$1" ]
}
for sig in TERM INT; do
	run_bg WPID "$MQCTL" watch -q "$Q" --interval 100 >"$TMP/watch.out" 2>"$TMP/watch.err"
	wait_until 10 lines_at_least 3 "$TMP/watch.out" || fail "watch printed: $(cat "$TMP/watch.out")"
	kill "-$sig" "$WPID"
	wait_exit "$WPID" 10
	[ "$RC" -eq 0 ] || fail "watch exited with $RC on SIG$sig (want 0): $(cat "$TMP/watch.err")"
	sanitizer_clean "$TMP/watch.err"
done
# No broker needed: stats read the segment of a killed broker too.
kill_broker "$BPID"
expect 0 stats -q "$Q" --sample 0
out_has "  broker       none running (pid $BPID recorded; it did not stop cleanly)"
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" "broker_pid=$BPID"
