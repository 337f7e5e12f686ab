#!/bin/bash
# fanin.sh - mqbridge fan-in: three hosts (mount namespaces, each with its own tmpfs on /dev/shm) export their queue of the same name to ONE subject while their producers run; a fourth host imports that subject into its queue: every message of each host arrives once and whole, and the stream holds them all (the three queues' messages share lease ids, their message ids differ by queue id: JetStream's dedup keeps them apart).
#
# Usage: fanin.sh MQBROKER MQLOAD MQBRIDGE
# Skipped (exit 77) when nats-server or mqbridge is missing, when not root,
# or when unshare/nsenter/mount cannot make the hosts (hosts.sh).
# MQ_KEEP_LOGS=DIR keeps the logs.
TEST=fanin
# shellcheck source=setup.sh
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"
# shellcheck source=hosts.sh
. "$(dirname "${BASH_SOURCE[0]}")/hosts.sh"
need_hosts

PER=20000 # messages per exporting host; host h's producer has id h
TOTAL=$((3 * PER))
QO="/orders-$TEST-$$" SUBJ="orders.$$" STREAM="MQBI$$"
CLEANUPS+=("rm -f '/dev/shm$QO'") # never made there; removed if it were
T0=$SECONDS

for h in 1 2 3 D; do
	host_start "$h" 64m
done
hosts_private "$QO"
for h in 1 2 3 D; do
	host_broker "$h" "$TMP/broker-$h.log" --listen 127.0.0.1:0 --queue "$QO:1024:1024"
done
for h in 1 2 3 D; do
	host_has "$h" "$QO" || fail "host $h's broker did not make $QO in its /dev/shm"
done
[ ! -e "/dev/shm$QO" ] || fail "the real /dev/shm has $QO: a host's broker made it there"

start_nats
host_bridge BD D "$TMP/bridge-d.log" --import "$SUBJ=$QO"
host_bg CPID D "$MQLOAD" consume "$QO" --log "$TMP/recv.log" --count "$TMP/recv.count" \
	--seconds 300 --any-order 2>"$TMP/consume.err"
for h in 1 2 3; do
	host_bridge "BPID_$h" "$h" "$TMP/bridge-$h.log" --export "$QO=$SUBJ"
	host_bg "SPID_$h" "$h" "$MQLOAD" send "$QO" "$PER" --id "$h" --size 24 --max-size 1024 \
		--timeout 30000 2>"$TMP/send-$h.err"
done
for h in 1 2 3; do
	pid_var="SPID_$h"
	wait_exit "${!pid_var}" 120
	[ "$RC" -eq 0 ] || fail "host $h's producer exited with status $RC: $(cat "$TMP/send-$h.err")"
done
wait_until 60 at_least "$TOTAL" stream_msgs "$STREAM" ||
	fail "the stream holds $(stream_msgs "$STREAM") messages, want $TOTAL: $(tail -n 5 "$TMP"/bridge-[123].log)"
wait_until 60 at_least "$TOTAL" file_number "$TMP/recv.count" ||
	fail "host D received $(file_number "$TMP/recv.count") of $TOTAL messages in 60 s: $(tail -n 20 "$TMP/bridge-d.log")"
sleep 1 # a late duplicate would show here
stop_bridges "$BPID_1" "$BPID_2" "$BPID_3" "$BD"
kill -TERM "$CPID"
wait_exit "$CPID" 10
# mqload exits 4 on a corrupt message (header, length, checksum, payload).
[ "$RC" -eq 0 ] || fail "host D's consumer exited with status $RC: $(cat "$TMP/consume.err")"
[ "$(stream_msgs "$STREAM")" = "$TOTAL" ] ||
	fail "the stream holds $(stream_msgs "$STREAM") messages at the end, want exactly $TOTAL"
"$PYTHON" - "$PER" "$TMP/recv.log" <<'EOF' || fail "host D's messages do not check out (above)"
import sys
from collections import Counter
per = int(sys.argv[1])
seen = Counter(tuple(map(int, l.split()[:2])) for l in open(sys.argv[2]))
bad = False
for h in (1, 2, 3):
    got = {s for (i, s) in seen if i == h}
    lost = per - len(got & set(range(per)))
    dups = sum(c - 1 for (i, _), c in seen.items() if i == h)
    print(f"host {h}: {len(got)} of {per} arrived, lost {lost}, duplicates {dups}",
          file=sys.stderr)
    bad |= lost > 0 or dups > 0
foreign = [k for k in seen if k[0] not in (1, 2, 3) or not 0 <= k[1] < per]
if foreign:
    print(f"foreign messages: {foreign[:10]}", file=sys.stderr)
sys.exit(1 if bad or foreign else 0)
EOF
for h in 1 2 3; do
	grep "^mqbridge: export .*stopped" "$TMP/bridge-$h.log" | sed "s/^/host $h: /" >&3
done
grep "^mqbridge: import .*stopped" "$TMP/bridge-d.log" | sed "s/^/host D: /" >&3
for log in "$TMP"/bridge-*.log "$TMP"/broker-*.log "$TMP"/consume.err "$TMP"/send-*.err; do
	sanitizer_clean "$log"
done
[ ! -e "/dev/shm$QO" ] || fail "the real /dev/shm has $QO"
echo "fanin: 3 hosts x $PER messages into one subject, all $TOTAL arrived in host D once, $((SECONDS - T0)) s" >&3
