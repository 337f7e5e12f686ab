#!/bin/bash
# faults.sh - mqbridge's bad inputs and bad days: every bad option exits 2 naming what is wrong; an unknown queue exits 1; an unreachable NATS is retried with back-off (no spinning) until SIGTERM; an oversized import is terminated and counted while the rest goes on; an export message over the server's max_payload is kept, not dropped; a full local queue makes the import wait; nats-server killed -9 and restarted under load: the bridges reconnect, 0 lost, 0 duplicates, the stream holds each message once.
#
# Usage: faults.sh MQBROKER MQLOAD MQBRIDGE
# Skipped (exit 77) when nats-server or mqbridge is missing.
TEST=faults
# shellcheck source=setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"

QA="$Q-a" QB="$Q-b" QS="$Q-small" SUBJ="f.$$" STREAM="MQBF$$"

# cpu_ticks PID: user + system clock ticks PID has used.
cpu_ticks() {
	local stat
	stat=$(cat "/proc/$1/stat")
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	echo $((${12} + ${13}))
}

N="--nats nats://127.0.0.1:$NPORT"

# ---- bad input: exit 2, what is wrong, nothing started -----------------------
bridge_rc 0 "--export QUEUE=SUBJECT" --help
for opt in --nats --stream --listen --export --import --config --creds --user --password \
	--tls-ca --window --batch --ack-wait; do
	grep -qF -- "$opt" "$TMP/out" || fail "--help does not mention $opt"
done
# shellcheck disable=SC2086
{
	bridge_rc 2 "--nats URL is required" --export /a=b
	bridge_rc 2 "nothing to carry" $N
	bridge_rc 2 "an export subject has no wildcards" $N --export "$QA=a.*"
	bridge_rc 2 "an export subject has no wildcards" $N --export "$QA=a.>"
	bridge_rc 2 "bad queue name 'qa': a queue name starts with '/'" $N --export qa=a.b
	bridge_rc 2 "a queue name has no '/' after the first" $N --import a.b=/x/y
	bridge_rc 2 "--export wants QUEUE=SUBJECT, got '/qa' (no '=')" $N --export /qa
	bridge_rc 2 "--import wants SUBJECT=QUEUE, got 'a.b' (no '=')" $N --import a.b
	bridge_rc 2 "the subject has an empty token" $N --import a..b=/qb
	bridge_rc 2 "the subject is empty" $N --export /qa=
	bridge_rc 2 "'>' is only the last token" $N --import 'a.>.b=/qb'
	bridge_rc 2 "a wildcard ('*', '>') is a whole token" $N --import 'a.b*=/qb'
	bridge_rc 2 "messages would loop" $N --export /qa=a.b --import a.b=/qb
	bridge_rc 2 "queue /qa is already exported" $N --export /qa=a.b --export /qa=a.c
	bridge_rc 2 "the URL's scheme is nats:// or tls://" --nats http://h:1 --export /qa=a
	bridge_rc 2 "--stream 'a.b': a stream name" $N --stream a.b --export /qa=a
	bridge_rc 2 "--listen 'nowhere': want ADDR:PORT" $N --listen nowhere --export /qa=a
	bridge_rc 2 "--creds $TMP/none: cannot read it" $N --creds "$TMP/none" --export /qa=a
	bridge_rc 2 "--tls-ca $TMP/none: cannot read it" $N --tls-ca "$TMP/none" --export /qa=a
	bridge_rc 2 "--user and --password go together" $N --user u --export /qa=a
	: >"$TMP/creds"
	bridge_rc 2 "--creds and --user/--password" $N --creds "$TMP/creds" --user u --password p \
		--export /qa=a
	bridge_rc 2 "--window '0': want 1..65536" $N --window 0 --export /qa=a
	bridge_rc 2 "--ack-wait '0': want 1..3600 seconds" $N --ack-wait 0 --import a=/qa
	bridge_rc 2 "unknown option 'bogus'" $N --bogus 1 --export /qa=a
	bridge_rc 2 "option --export needs a value" $N --export
	bridge_rc 2 "--config $TMP/none: cannot open it" --config "$TMP/none"
	printf 'nats nats://127.0.0.1:1\nexport /qa\n' >"$TMP/bad.conf"
	bridge_rc 2 "(in $TMP/bad.conf, line 2)" --config "$TMP/bad.conf"
	printf '# a comment\nnats = nats://127.0.0.1:1\nbogus 1\n' >"$TMP/bad.conf"
	bridge_rc 2 "unknown option 'bogus'" --config "$TMP/bad.conf"
	# A queue that does not exist: exit 1, before any waiting for NATS.
	bridge_rc 1 "/mqbt-none-$$: not found" $N --export "/mqbt-none-$$=a"
}
echo "bad input: each refused with its message" >&3

# ---- NATS unreachable: retried with back-off, no spinning, SIGTERM exits 0 ----
start_broker "$TMP/broker.log" --listen 127.0.0.1:0 --queue "$QA:1024:512" \
	--queue "$QB:1024:512" --queue "$QS:64:64" --queue "$Q-big:4:2097152"
run_bg UPID "$BRIDGE" --nats "nats://127.0.0.1:$NPORT" --listen 127.0.0.1:0 --export "$QA=$SUBJ" \
	2>"$TMP/unreach.log"
wait_until 10 grep -q "cannot connect" "$TMP/unreach.log" ||
	fail "no 'cannot connect' line: $(cat "$TMP/unreach.log")"
T0=$(cpu_ticks "$UPID")
sleep 3
T1=$(cpu_ticks "$UPID")
[ $((T1 - T0)) -le 10 ] || fail "mqbridge used $((T1 - T0)) ticks of CPU in 3 s waiting for NATS (spinning?)"
TRIES=$(grep -c "cannot connect" "$TMP/unreach.log")
[ "$TRIES" -le 8 ] || fail "$TRIES connection attempts in ~3 s: no back-off: $(cat "$TMP/unreach.log")"
kill -TERM "$UPID"
wait_exit "$UPID" 5
[ "$RC" -eq 0 ] || fail "mqbridge waiting for NATS exited with $RC on SIGTERM, want 0"
expect_log "$TMP/unreach.log" "stopping on Terminated before connecting"
echo "NATS unreachable: $TRIES attempts in ~3 s, $((T1 - T0)) CPU ticks, SIGTERM exits 0" >&3

# ---- credentials refused, JetStream missing: exit 1 with the reason ----------
APORT=$(free_port)
nats-server -a 127.0.0.1 -p "$APORT" --user alice --pass secret >"$TMP/nats-auth.log" 2>&1 &
AUTH_NATS=$!
PIDS+=("$AUTH_NATS")
wait_until 20 grep -q "Server is ready" "$TMP/nats-auth.log" ||
	fail "nats-server --user did not come up: $(cat "$TMP/nats-auth.log")"
bridge_rc 1 "the server refused our credentials" --nats "nats://127.0.0.1:$APORT" \
	--user alice --password wrong --export "$QA=$SUBJ"
expect_log "$TMP/err" "check --user and --password"
bridge_rc 1 "check whether the server wants --user/--password or --creds" \
	--nats "nats://127.0.0.1:$APORT" --export "$QA=$SUBJ"
# The right ones get in; that server has no JetStream (no -js): exit 1, saying so.
bridge_rc 1 "is JetStream enabled on the server (nats-server -js)?" \
	--nats "nats://127.0.0.1:$APORT" --user alice --password secret --export "$QA=$SUBJ"
kill -TERM "$AUTH_NATS"
wait_exit "$AUTH_NATS" 10
echo "bad credentials and no JetStream: exit 1, each with its reason" >&3

# ---- oversized import: terminated, counted, the others go on -----------------
start_nats
cat >"$TMP/bridge.conf" <<EOF
# routes for both directions, from a config file
nats nats://127.0.0.1:$NPORT
stream = $STREAM
export $QA=$SUBJ
EOF
start_bridge BPID_B "$TMP/bridge-b.log" --import "$SUBJ=$QS" --import "$SUBJ.x=$QB"
run_bg BPID_A "$BRIDGE" --listen 127.0.0.1:0 --config "$TMP/bridge.conf" 2>>"$TMP/bridge-a.log"
wait_until 20 grep -q '^mqbridge: running ' "$TMP/bridge-a.log" ||
	fail "mqbridge --config did not start: $(cat "$TMP/bridge-a.log")"
mqload_ok send "$QA" 5 --size 40
mqload_ok send "$QA" 3 --size 200 --start 5
mqload_ok send "$QA" 5 --size 40 --start 8
mqload_ok recv "$QS" 10 --timeout 10000 --any-order --log "$TMP/small.log"
wait_until 10 grep -q "terminated" "$TMP/bridge-b.log" || fail "no oversized line: $(cat "$TMP/bridge-b.log")"
expect_log "$TMP/bridge-b.log" "is 200 bytes, more than the queue's maximum of 64: terminated"
[ "$(grep -c 'more than the queue' "$TMP/bridge-b.log")" -eq 3 ] ||
	fail "want 3 oversized lines: $(cat "$TMP/bridge-b.log")"
[ "$(awk '{print $2}' "$TMP/small.log" | sort -n | tr '\n' ' ')" = "0 1 2 3 4 8 9 10 11 12 " ] ||
	fail "queue $QS got $(awk '{print $2}' "$TMP/small.log" | tr '\n' ' ') (want 0-4 and 8-12)"
echo "oversized import: 3 terminated, the 10 others delivered" >&3
kill -TERM "$BPID_B"
wait_exit "$BPID_B" 10
[ "$RC" -eq 0 ] || fail "bridge B exited with $RC on SIGTERM"
expect_log "$TMP/bridge-b.log" "3 oversized terminated"

# ---- a message larger than the server's max_payload: kept, never dropped ----
# (The queue takes 2 MiB, nats-server at most 1 MiB: said at start; a 1.5 MiB
# message stays in the queue, the route retries it, backing off.)
start_bridge BPID_D "$TMP/bridge-d.log" --export "$Q-big=$SUBJ.x"
expect_log "$TMP/bridge-d.log" "a larger message would stop this route until max_payload is raised"
mqload_ok send "$Q-big" 1 --size 1500000
wait_until 20 grep -q "cannot publish message .*(1500000 bytes)" "$TMP/bridge-d.log" ||
	fail "no 'cannot publish' line for the 1.5 MB message: $(cat "$TMP/bridge-d.log")"
kill -TERM "$BPID_D"
wait_exit "$BPID_D" 15
[ "$RC" -eq 0 ] || fail "bridge D exited with $RC on SIGTERM"
"$MQLOAD" stats "$Q-big" 2>&1 | grep -qx "depth 1" ||
	fail "the 1.5 MB message is not back in $Q-big: $("$MQLOAD" stats "$Q-big" 2>&1)"
echo "message over max_payload: logged, kept in the queue" >&3

# ---- the local queue full: import waits, JetStream keeps the messages --------
# Queue $QS holds 64; 300 messages come while nobody receives from it.
start_bridge BPID_C "$TMP/bridge-c.log" --import "$SUBJ=$QS"
expect_log "$TMP/bridge-c.log" "resuming durable consumer"
mqload_ok send "$QA" 300 --size 40 --id 2
wait_until 20 grep -q "the queue is full; waiting" "$TMP/bridge-c.log" ||
	fail "bridge C did not wait for room in $QS: $(cat "$TMP/bridge-c.log")"
sleep 2
mqload_ok recv "$QS" 300 --timeout 10000 --log "$TMP/full.log"
[ "$(awk '$1 == 2 {print $2}' "$TMP/full.log" | sort -n | uniq | wc -l)" -eq 300 ] ||
	fail "queue $QS got $(wc -l <"$TMP/full.log") messages of producer 2, want 300 once each"
kill -TERM "$BPID_C"
wait_exit "$BPID_C" 10
[ "$RC" -eq 0 ] || fail "bridge C exited with $RC on SIGTERM"
echo "queue full: the import waited, all 300 arrived once and in order" >&3

# ---- nats-server killed -9 and restarted under load ---------------------------
BEFORE=$(stream_msgs "$STREAM")
start_bridge BPID_B "$TMP/bridge-b2.log" --import "$SUBJ=$QB"
# The 313 messages above are in the stream too: a new consumer starts at the
# beginning, so B's queue gets them first (producers 0 and 2).
run_bg CPID "$MQLOAD" consume "$QB" --log "$TMP/recv.log" --count "$TMP/recv.count" \
	--seconds 110 --any-order 2>"$TMP/consume.err"
run_bg PPID_ "$MQLOAD" produce "$QA" --id 1 --confirm "$TMP/sent" --rate 2000 --seconds 5 \
	2>"$TMP/produce.err"
sleep 1
kill -KILL "$NATS"
wait_exit "$NATS" 5
sleep 2
start_nats
wait_exit "$PPID_" 30
[ "$RC" -eq 0 ] || fail "mqload produce exited with $RC: $(cat "$TMP/produce.err")"
SENT=$(cat "$TMP/sent")
WANT=$((BEFORE + SENT))
echo "nats-server killed -9 and restarted while $SENT messages were sent" >&3
wait_until 60 at_least "$WANT" stream_msgs "$STREAM" ||
	fail "the stream holds $(stream_msgs "$STREAM") messages, want $WANT: $(cat "$TMP/bridge-a.log")"
wait_until 60 at_least "$WANT" file_number "$TMP/recv.count" ||
	fail "queue B received $(cat "$TMP/recv.count") of $WANT in 60 s: $(cat "$TMP/bridge-b2.log")"
sleep 1
[ "$(stream_msgs "$STREAM")" -eq "$WANT" ] || fail "the stream holds $(stream_msgs "$STREAM") messages, want exactly $WANT"
for pid in "$BPID_A" "$BPID_B"; do
	kill -TERM "$pid"
	wait_exit "$pid" 15
	[ "$RC" -eq 0 ] || fail "mqbridge pid $pid exited with $RC on SIGTERM"
done
kill -TERM "$CPID"
wait_exit "$CPID" 10
[ "$RC" -eq 0 ] || fail "mqload consume exited with $RC: $(cat "$TMP/consume.err")"
expect_log "$TMP/bridge-a.log" "NATS: disconnected"
expect_log "$TMP/bridge-a.log" "NATS: reconnected"
expect_log "$TMP/bridge-b2.log" "NATS: reconnected"
"$PYTHON" - "$TMP/recv.log" "$SENT" <<'EOF' || fail "queue B's messages do not check out (above)"
import sys
from collections import Counter
seen = Counter(tuple(map(int, l.split()[:2])) for l in open(sys.argv[1]))
n = int(sys.argv[2])
want = {(1, s) for s in range(n)} | {(0, s) for s in range(13)} | {(2, s) for s in range(300)}
lost = want - set(seen)
extra = set(seen) - want
dups = sum(c - 1 for c in seen.values())
# The bridges were not killed: what nats-server delivers again after its
# restart (a consumer state older than the acks) is skipped, not sent twice.
print(f"queue B: received {sum(seen.values())}, lost {len(lost)}, foreign {len(extra)}, "
      f"duplicates {dups}", file=sys.stderr)
sys.exit(1 if lost or extra or dups else 0)
EOF
grep '^mqbridge: \(export\|import\) .*stopped' "$TMP/bridge-a.log" "$TMP/bridge-b2.log" >&3
for log in "$TMP"/bridge-*.log; do
	sanitizer_clean "$log"
done
