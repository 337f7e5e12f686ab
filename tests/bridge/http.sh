#!/bin/bash
# http.sh - mqbridge's HTTP endpoints: a bad --listen exits 2, a port in use 1; with an export and an import bridge over a real nats-server, /status counts every message once per route (nothing left in flight, latencies measured), /metrics says the same and passes promtool, /healthz turns 503 when nats-server stops and 200 again (a reconnect counted) when it is back; unknown paths 404, other methods 405.
#
# Usage: http.sh MQBROKER MQLOAD MQBRIDGE
# Skipped (exit 77) when nats-server or mqbridge is missing.
TEST=bhttp
N=500
# shellcheck source=setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"

QA="$Q-a" QB="$Q-b" SUBJ="h.$$" STREAM="MQBH$$"
NATS_URL="nats://127.0.0.1:$NPORT"

# bridge_port LOG: the port the bridge logging to LOG said it listens on.
bridge_port() {
	sed -n 's|^mqbridge: http: listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$1" |
		tail -n 1
}

# get PORT METHOD PATH: request PATH of the bridge on PORT; sets CODE, and
# files $TMP/body and $TMP/headers.
get() {
	local method=(-X "$2")
	[ "$2" != HEAD ] || method=(--head)
	CODE=$(curl -sS --max-time 5 "${method[@]}" -o "$TMP/body" -D "$TMP/headers" \
		-w '%{http_code}' "http://127.0.0.1:$1$3") ||
		fail "curl ${method[*]} $3 on port $1 failed (is the bridge up?)"
}

# check PORT PYEXPR: PYEXPR, evaluated on the bridge's /status document d
# (r: its first route), is true. WHY says what it saw otherwise.
check() {
	get "$1" GET /status
	[ "$CODE" = 200 ] || { WHY="GET /status answered $CODE"; return 1; }
	"$PYTHON" - "$TMP/body" "$2" <<'EOF' && return 0
import json, sys
d = json.load(open(sys.argv[1]))
r = d["routes"][0]
sys.exit(0 if eval(sys.argv[2]) else 1)
EOF
	WHY="not $2 in $(cat "$TMP/body")"
	return 1
}

# expect PORT PYEXPR / wait_for SECONDS PORT PYEXPR: as check, failing the test.
expect() {
	check "$@" || fail "/status on port $1: $WHY"
}
wait_for() {
	local secs=$1
	shift
	wait_until "$secs" check "$@" || fail "/status on port $1 after $secs s: $WHY"
}

# health PORT: /healthz's status code.
health() {
	get "$1" GET /healthz
	echo "$CODE"
}
health_is() {
	[ "$(health "$1")" = "$2" ]
}

start_nats
start_broker "$TMP/broker.log" --listen 127.0.0.1:0 --queue "$QA:1024:512" --queue "$QB:1024:512"

# ---- --listen: bad ones exit 2 naming what is wrong; a port in use exits 1 ----
bridge_rc 2 "--listen 'nowhere': want ADDR:PORT" --nats "$NATS_URL" --listen nowhere \
	--export "$QA=$SUBJ"
bridge_rc 2 "--listen '127.0.0.1:70000': port 70000 out of range" --nats "$NATS_URL" \
	--listen 127.0.0.1:70000 --export "$QA=$SUBJ"
bridge_rc 2 "'1.2.3' is not an IPv4 address" --nats "$NATS_URL" --listen 1.2.3:80 \
	--export "$QA=$SUBJ"
bridge_rc 2 "'::zz' is not an IPv6 address" --nats "$NATS_URL" --listen '[::zz]:80' \
	--export "$QA=$SUBJ"
# The broker's port is taken: exit 1 at once, before any waiting for NATS.
bridge_rc 1 "mqbridge: http: cannot listen on 127.0.0.1:$BPORT: address in use — is another mqbridge running?" \
	--nats "$NATS_URL" --listen "127.0.0.1:$BPORT" --export "$QA=$SUBJ"
echo "--listen: bad addresses exit 2, a port in use 1" >&3

# ---- N messages through an export and an import bridge ------------------------
start_bridge BPID_B "$TMP/bridge-b.log" --import "$SUBJ=$QB"
start_bridge BPID_A "$TMP/bridge-a.log" --export "$QA=$SUBJ"
PA=$(bridge_port "$TMP/bridge-a.log")
PB=$(bridge_port "$TMP/bridge-b.log")
{ [ -n "$PA" ] && [ -n "$PB" ]; } ||
	fail "no 'http: listening on' line: $(cat "$TMP/bridge-a.log" "$TMP/bridge-b.log")"
[ "$(health "$PA")" = 200 ] || fail "/healthz of the export bridge: $CODE $(cat "$TMP/body")"
[ "$(cat "$TMP/body")" = '{"status":"ok"}' ] || fail "/healthz says $(cat "$TMP/body")"
expect "$PA" "r['forwarded_total'] == 0 and r['latency_s']['p50'] is None and d['nats']['state'] == 'connected'"

mqload_ok send "$QA" "$N" --size 100
mqload_ok recv "$QB" "$N" --timeout 20000 --any-order
wait_for 10 "$PA" "r['forwarded_total'] == $N and r['in_flight'] == 0"
wait_for 10 "$PB" "r['forwarded_total'] == $N and r['in_flight'] == 0"
for port in "$PA" "$PB"; do
	expect "$port" "r['state'] == 'running' and r['errors_total'] == 0 and r['last_error'] is None"
	expect "$port" "r['latency_s']['count'] == $N and 0 < r['latency_s']['p50'] <= r['latency_s']['p99'] < 10"
	expect "$port" "d['nats'] == dict(d['nats'], state='connected', url='$NATS_URL', connected_url='$NATS_URL', reconnects_total=0, disconnects_total=0)"
	expect "$port" "d['bridge']['stream'] == '$STREAM' and d['bridge']['uptime_s'] > 0 and d['bridge']['version']"
done
expect "$PA" "r == dict(r, route='$QA=$SUBJ', direction='export', queue='$QA', subject='$SUBJ', duplicates_total=0, republished_total=0) and d['bridge']['pid'] == $BPID_A"
expect "$PB" "r == dict(r, route='$SUBJ=$QB', direction='import', queue='$QB', subject='$SUBJ', redelivered_total=0, skipped_total=0, terminated_total=0) and d['bridge']['pid'] == $BPID_B"
echo "$N messages: /status counts them once per route, none in flight, latencies measured" >&3

# ---- /metrics: the same numbers, in a format promtool accepts ----------------
# metric PORT NAME LABELS: the value of sample NAME{LABELS} (NAME alone if
# LABELS is empty) on PORT's /metrics.
metric() {
	local want=$2
	[ -z "$3" ] || want="$2{$3}"
	get "$1" GET /metrics
	awk -v want="$want" '$1 == want {print $2}' "$TMP/body"
}
labels_a="route=\"$QA=$SUBJ\",direction=\"export\",queue=\"$QA\",subject=\"$SUBJ\""
labels_b="route=\"$SUBJ=$QB\",direction=\"import\",queue=\"$QB\",subject=\"$SUBJ\""
[ "$(metric "$PA" mq_bridge_messages_forwarded_total "$labels_a")" = "$N" ] ||
	fail "mq_bridge_messages_forwarded_total{$labels_a} is not $N: $(cat "$TMP/body")"
[ "$(metric "$PB" mq_bridge_messages_forwarded_total "$labels_b")" = "$N" ] ||
	fail "mq_bridge_messages_forwarded_total{$labels_b} is not $N: $(cat "$TMP/body")"
[ "$(metric "$PB" mq_bridge_ack_latency_seconds_count "$labels_b")" = "$N" ] ||
	fail "mq_bridge_ack_latency_seconds_count{$labels_b} is not $N: $(cat "$TMP/body")"
[ "$(metric "$PA" mq_bridge_messages_in_flight "$labels_a")" = 0 ] ||
	fail "mq_bridge_messages_in_flight{$labels_a} is not 0: $(cat "$TMP/body")"
[ "$(metric "$PA" mq_bridge_nats_connected "")" = 1 ] || fail "mq_bridge_nats_connected is not 1"
[ "$(metric "$PA" mq_bridge_nats_reconnects_total "")" = 0 ] || fail "mq_bridge_nats_reconnects_total is not 0"
for port in "$PA" "$PB"; do
	get "$port" GET /metrics
	grep -qi '^Content-Type: text/plain; version=0.0.4' "$TMP/headers" ||
		fail "/metrics Content-Type: $(cat "$TMP/headers")"
	grep -v '^#' "$TMP/body" | grep -v '^mq_bridge_' && fail "/metrics has samples without the mq_bridge_ prefix"
	grep -q '^# TYPE mq_bridge_ack_latency_seconds histogram$' "$TMP/body" ||
		fail "/metrics has no latency histogram: $(cat "$TMP/body")"
	if command -v promtool >/dev/null; then
		promtool check metrics <"$TMP/body" >"$TMP/promtool.out" 2>&1 ||
			fail "promtool check metrics: $(cat "$TMP/promtool.out")"
	else
		echo "promtool is not installed: the /metrics format is not linted" >&3
	fi
done
echo "/metrics: the counters match, promtool accepts it" >&3

# ---- 404, 405 ----------------------------------------------------------------
get "$PA" GET /nope
[ "$CODE" = 404 ] || fail "GET /nope answered $CODE"
grep -q '"error":"not found"' "$TMP/body" || fail "GET /nope: $(cat "$TMP/body")"
get "$PA" GET /
[ "$CODE" = 404 ] || fail "GET / answered $CODE"
get "$PA" POST /status
[ "$CODE" = 405 ] || fail "POST /status answered $CODE"
grep -qi '^Allow: GET, HEAD' "$TMP/headers" || fail "POST /status: no Allow header: $(cat "$TMP/headers")"
get "$PA" DELETE /nope
[ "$CODE" = 404 ] || fail "DELETE /nope answered $CODE"
get "$PA" HEAD /metrics
[ "$CODE" = 200 ] || fail "HEAD /metrics answered $CODE"
echo "unknown paths 404, other methods 405 (Allow: GET, HEAD), HEAD 200" >&3

# ---- nats-server stopped and started again -----------------------------------
kill -TERM "$NATS"
wait_exit "$NATS" 10
for port in "$PA" "$PB"; do
	wait_until 10 health_is "$port" 503 || fail "/healthz on port $port is $CODE with NATS down"
	grep -q '"reasons":\[.*NATS is' "$TMP/body" || fail "/healthz with NATS down says $(cat "$TMP/body")"
	wait_for 10 "$port" "d['nats']['state'] == 'reconnecting' and d['nats']['disconnects_total'] >= 1"
done
wait_for 10 "$PA" "r['state'] == 'waiting_for_nats'"
wait_for 10 "$PB" "r['state'] == 'waiting_for_nats'"
[ "$(metric "$PA" mq_bridge_nats_connected "")" = 0 ] || fail "mq_bridge_nats_connected is not 0 with NATS down"
echo "nats-server stopped: /healthz 503, state reconnecting" >&3
start_nats
for port in "$PA" "$PB"; do
	wait_until 20 health_is "$port" 200 || fail "/healthz on port $port is $CODE after NATS came back: $(cat "$TMP/body")"
	expect "$port" "d['nats']['state'] == 'connected' and d['nats']['reconnects_total'] >= 1 and r['state'] == 'running'"
done
[ "$(metric "$PA" mq_bridge_nats_reconnects_total "")" -ge 1 ] || fail "mq_bridge_nats_reconnects_total is not >= 1"
# Still carrying messages.
mqload_ok send "$QA" 10 --size 100 --start "$N"
mqload_ok recv "$QB" 10 --timeout 20000 --any-order
wait_for 10 "$PA" "r['forwarded_total'] == $N + 10 and r['in_flight'] == 0"
echo "nats-server back: /healthz 200, reconnects counted, messages flow" >&3

for pid in "$BPID_A" "$BPID_B"; do
	kill -TERM "$pid"
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ] || fail "mqbridge pid $pid exited with $RC on SIGTERM"
done
for log in "$TMP"/bridge-*.log; do
	sanitizer_clean "$log"
done
