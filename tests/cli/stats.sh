#!/bin/bash
# stats.sh - mqctl stats (the table; --json with the DESIGN.md keys and exact
# values after a known send/recv, the same as the broker's /status; measured
# rates with --sample; the oldest message's age and time in queue, over the
# sample or the queue's life; live clients; no broker) and mqctl watch's plain
# lines when stdout is not a terminal (--count, --interval, SIGINT/SIGTERM).
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
	lock_repairs_total=0 "broker_pid=$BPID" rates_sample_s=0 \
	time_in_queue_s.count=1 'time_in_queue_window="lifetime"'

# The same shape as the broker's /status element for the queue: every key of
# it, the same values (rates and the clock aside), the keys in its order.
curl -sS --max-time 5 "http://127.0.0.1:$BPORT/status" >"$TMP/status.json" || fail "curl /status failed"
"$PYTHON" - "$TMP/stats.json" "$TMP/status.json" <<'EOF' || fail "stats --json differs from /status: $(cat "$TMP/stats.json") vs $(cat "$TMP/status.json")"
import json, sys
mine = json.load(open(sys.argv[1]))
theirs = json.load(open(sys.argv[2]))["queues"][0]
assert list(mine)[:len(theirs)] == list(theirs), (list(mine), list(theirs))
assert set(mine) - set(theirs) == {"rates_sample_s", "time_in_queue_window"}, set(mine) - set(theirs)
# Measured at another moment or over another window: the oldest message's
# age, time in queue (the broker's last 60 s, mqctl's sample or lifetime).
for k, v in theirs.items():
    if k not in ("rates", "oldest_age_s", "time_in_queue_s"):
        assert mine[k] == v, (k, mine[k], v)
assert list(mine["time_in_queue_s"]) == list(theirs["time_in_queue_s"]) == \
    ["p50", "p90", "p99", "max", "count", "window_s"], (mine, theirs)
assert mine["oldest_age_s"] > 0 and theirs["oldest_age_s"] > 0
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
grep -qE '^  oldest       [0-9.]+ (us|ms|s) waiting$' "$TMP/out" || fail "no oldest line in the table: $(cat "$TMP/out")"
grep -qE '^  in queue     p50 [0-9.]+ (us|ms|s)  p90 [0-9.]+ (us|ms|s)  p99 [0-9.]+ (us|ms|s)  max [0-9.]+ (us|ms|s)  \(1 message measured since the queue was created; none during the sample\)$' "$TMP/out" ||
	fail "no lifetime time-in-queue line in the table: $(cat "$TMP/out")"
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
tail -n 1 "$TMP/out" | grep -qE "^[0-9:]{8} $R [0-9]+/4096 ([1-9][0-9]*|[1-9])\.[0-9] 0\.0 1 0 [0-9]+\.[0-9]{3} - - - -\$" ||
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
[ "$(head -n 1 "$TMP/out")" = "time queue depth/capacity enq/s deq/s producers consumers oldest_s p50_s p90_s p99_s max_s" ] ||
	fail "watch header: $(head -n 1 "$TMP/out")"
tail -n 2 "$TMP/out" | grep -vqE "^[0-9]{2}:[0-9]{2}:[0-9]{2} $Q 2/16 0\.0 0\.0 0 0 [0-9]+\.[0-9]{3} - - - -\$" &&
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
# The oldest waiting message's age and time in queue, on a queue of its own
# (its histogram holds only what is taken here). Times are checked against
# what the script measured around the commands: a percentile is read from a
# histogram bucket (within 25 %).
BPID_MAIN=$BPID BLOG_MAIN=$BLOG
start_broker "$Q-tiq" --capacity 16 --max-msg 64
T="$Q-tiq" TPORT=$BPORT
BPID=$BPID_MAIN BLOG=$BLOG_MAIN
expect 0 stats -q "$T" --json --sample 0
json_expect "$TMP/out" depth=0 oldest_age_s=0 time_in_queue_s.count=0 time_in_queue_s.p50=null \
	time_in_queue_s.p90=null time_in_queue_s.p99=null time_in_queue_s.max=null \
	'time_in_queue_window="lifetime"'
expect 0 stats -q "$T" --sample 0
out_has "  oldest       no message waiting"
out_has "  in queue     no message measured since the queue was created"
now_ns() { date +%s%N; }
# tiq_check FILE LO_NS HI_NS WANT_WINDOW: in the stats --json document FILE,
# one message taken, that waited between LO_NS and HI_NS nanoseconds.
tiq_check() {
	"$PYTHON" - "$@" <<'PYEOF' || fail "time in queue (waited $(($2 / 1000000))..$(($3 / 1000000)) ms): $(cat "$1")"
import json, sys
d = json.load(open(sys.argv[1]))
lo, hi, want = int(sys.argv[2]) / 1e9, int(sys.argv[3]) / 1e9, sys.argv[4]
t = d["time_in_queue_s"]
assert d["time_in_queue_window"] == want, d["time_in_queue_window"]
assert t["count"] == 1, t
# The max since the queue was created is exact; a window's is its bucket's
# upper bound, but no more than the lifetime max.
if want == "lifetime":
    assert lo <= t["max"] <= hi, (lo, t["max"], hi)
else:
    assert lo <= t["max"] <= 1.25 * hi, (lo, t["max"], hi)
for p in ("p50", "p90", "p99"):
    assert 0.75 * lo <= t[p] <= t["max"], (p, t[p], lo)
PYEOF
}
# A message nobody takes grows old ...
t_send=$(now_ns)
expect 0 send -q "$T" aging
t_sent=$(now_ns)
sleep 1.5
expect 0 stats -q "$T" --json --sample 0
"$PYTHON" - "$TMP/out" $(($(now_ns) - t_send)) <<'PYEOF' || fail "oldest_age_s after 1.5 s: $(cat "$TMP/out")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["depth"] == 1 and 1.5 <= d["oldest_age_s"] <= int(sys.argv[2]) / 1e9, d["oldest_age_s"]
PYEOF
expect 0 stats -q "$T" --sample 0
grep -qE '^  oldest       [0-9]+\.[0-9]{2} s waiting$' "$TMP/out" || fail "oldest in the table: $(cat "$TMP/out")"
# ... until taken: then the age is 0, and its wait is in the histogram.
t_recv=$(now_ns)
expect 0 recv -q "$T" --format line
t_recvd=$(now_ns)
out_is "aging\n"
expect 0 stats -q "$T" --json --sample 0
cp "$TMP/out" "$TMP/tiq1.json"
json_expect "$TMP/tiq1.json" depth=0 oldest_age_s=0
tiq_check "$TMP/tiq1.json" $((t_recv - t_sent)) $((t_recvd - t_send)) lifetime
"$PYTHON" - "$TMP/tiq1.json" <<'PYEOF' || fail "lifetime window_s is not the queue's age: $(cat "$TMP/tiq1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["time_in_queue_s"]["window_s"] >= 1.5, d["time_in_queue_s"]
PYEOF
expect 0 stats -q "$T" --sample 0
grep -qE '^  in queue     p50 [0-9.]+ s  p90 [0-9.]+ s  p99 [0-9.]+ s  max [0-9.]+ s  \(1 message measured since the queue was created; none during the sample\)$' "$TMP/out" ||
	fail "lifetime time in queue in the table: $(cat "$TMP/out")"
# The broker's /status (its last 60 s: the same one message) agrees exactly.
status_tiq_count() {
	curl -sS --max-time 5 "http://127.0.0.1:$TPORT/status" >"$TMP/status.json" &&
		"$PYTHON" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["queues"][0]["time_in_queue_s"]["count"] == 1 else 1)' "$TMP/status.json"
}
wait_until 10 status_tiq_count || fail "the broker's /status never counted the message: $(cat "$TMP/status.json")"
"$PYTHON" - "$TMP/tiq1.json" "$TMP/status.json" <<'PYEOF' || fail "stats and /status disagree on time in queue: $(cat "$TMP/tiq1.json") vs $(cat "$TMP/status.json")"
import json, sys
mine = json.load(open(sys.argv[1]))["time_in_queue_s"]
theirs = json.load(open(sys.argv[2]))["queues"][0]["time_in_queue_s"]
for k in ("p50", "p90", "p99", "max", "count"):
    assert mine[k] == theirs[k], (k, mine[k], theirs[k])
PYEOF
# Taken during the sample: the window is the sample (JSON, then the table).
t_send=$(now_ns)
expect 0 send -q "$T" windowed
t_sent=$(now_ns)
sleep 1
run_bg SPID "$MQCTL" stats -q "$T" --json --sample 2000 >"$TMP/win.json" 2>"$TMP/win.err"
sleep 0.5
t_recv=$(now_ns)
expect 0 recv -q "$T" --format line
t_recvd=$(now_ns)
wait_exit "$SPID" 10
[ "$RC" -eq 0 ] || fail "stats --sample 2000 exited with $RC: $(cat "$TMP/win.err")"
json_expect "$TMP/win.json" rates_sample_s=2 time_in_queue_s.window_s=2 rates.dequeue_per_s.1s=0.5
tiq_check "$TMP/win.json" $((t_recv - t_sent)) $((t_recvd - t_send)) sample
expect 0 send -q "$T" table
sleep 1
run_bg SPID "$MQCTL" stats -q "$T" --sample 1500 >"$TMP/win.txt" 2>"$TMP/win.err"
sleep 0.5
expect 0 recv -q "$T" --format line
wait_exit "$SPID" 10
[ "$RC" -eq 0 ] || fail "stats --sample 1500 exited with $RC: $(cat "$TMP/win.err")"
grep -qE '^  in queue     p50 [0-9.]+ s  p90 [0-9.]+ s  p99 [0-9.]+ s  max [0-9.]+ s  \(1 message measured during the 1\.5 s sample\)$' "$TMP/win.txt" ||
	fail "time in queue over the sample in the table: $(cat "$TMP/win.txt")"
grep -qxF "  oldest       no message waiting" "$TMP/win.txt" || fail "oldest after draining: $(cat "$TMP/win.txt")"

# No broker needed: stats read the segment of a killed broker too.
kill_broker "$BPID"
expect 0 stats -q "$Q" --sample 0
out_has "  broker       none running (pid $BPID recorded; it did not stop cleanly)"
expect 0 stats -q "$Q" --json --sample 0
json_expect "$TMP/out" "broker_pid=$BPID"
