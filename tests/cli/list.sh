#!/bin/bash
# list.sh - mqctl list: every libmq queue in /dev/shm with its figures and who
# serves it: a live broker ("mqbroker pid N"), none (a stopped and a killed
# broker: "no broker"), damaged (a scribbled header; world-writable), another
# layout version (older, newer: not opened), not readable (as another user);
# a file that is not a libmq queue is not listed. The table and --json (every
# key of every object, in order), the exit status (0 with damaged queues
# listed), an empty /dev/shm (in a mount namespace of its own, as root), and
# the usage errors.
# Usage: list.sh MQCTL MQBROKER
set -euo pipefail
TEST=list
. "$(dirname "$0")/common.sh"

# Usage errors: status 2, one line each.
expect 2 list extra
err_has "mqctl list: unexpected argument 'extra' (list takes none: it shows every queue in /dev/shm) (see 'mqctl list --help')"
expect 2 list -q "$Q"
err_has "mqctl list: option '-q' does not apply: list shows every queue in /dev/shm ('mqctl stats -q NAME' shows one)"
expect 2 list --queue="$Q"
err_has "mqctl list: option '--queue' does not apply"
expect 2 list --frobnicate
err_has "mqctl list: unknown option '--frobnicate' (see 'mqctl list --help')"
expect 2 list -x
err_has "mqctl list: unknown option '-x'"
for form in "list --help" "list -h" "help list"; do
	expect 0 $form
	out_has "Usage: mqctl list [--json]"
	out_has "--json"
	out_has "mqbroker pid N"
	out_has "Exit status: 0 ok;"
done
expect 0 --help
out_has "  list    "

# The queues: A served by a live broker (2 messages waiting), S whose broker
# stopped cleanly, K whose broker was killed.
A="$Q-a" S="$Q-s" K="$Q-k"
start_broker "$A" --capacity 16 --max-msg 64
APID=$BPID ALOG=$BLOG
expect 0 send -q "$A" one two
start_broker "$S" --capacity 32 --max-msg 128
stop_broker "$BPID"
start_broker "$K" --capacity 8 --max-msg 256
KPID=$BPID
kill_broker "$KPID"
# Damaged: a copy of S with its header scribbled (as check.sh does); another
# copy made world-writable. Other layout versions: copies of S that say 2
# and 4. Garbage: random bytes (no libmq magic: not listed).
D="$Q-d" W="$Q-w" OLD="$Q-old" NEW="$Q-new" G="$Q-g"
cp "/dev/shm$S" "/dev/shm$D"
printf '\377' | dd of="/dev/shm$D" bs=1 seek=20 conv=notrunc status=none
cp "/dev/shm$S" "/dev/shm$W"
chmod 0666 "/dev/shm$W"
cp "/dev/shm$S" "/dev/shm$OLD"
printf '\002\000\000\000' | dd of="/dev/shm$OLD" bs=1 seek=8 conv=notrunc status=none
cp "/dev/shm$S" "/dev/shm$NEW"
printf '\004\000\000\000' | dd of="/dev/shm$NEW" bs=1 seek=8 conv=notrunc status=none
head -c 40000 /dev/urandom >"/dev/shm$G"
chmod 0660 "/dev/shm$D" "/dev/shm$OLD" "/dev/shm$NEW" "/dev/shm$G"
sleep 0.2 # A's oldest message ages

# The table: a header, a row per queue; exit 0 although some are damaged.
expect 0 list
head -n 1 "$TMP/out" | grep -qE '^QUEUE +DEPTH +CAPACITY +MAX MSG +CLIENTS +OLDEST +STATUS$' ||
	fail "list header: $(head -n 1 "$TMP/out")"
# row NAME REGEX: the row of queue NAME matches REGEX (after the name).
row() {
	grep -qE "^$1 +$2\$" "$TMP/out" || fail "no row for $1 matching '$2': $(cat "$TMP/out")"
}
row "$A" "2 +16 +64 +0 +[0-9.]+ (ms|s) +mqbroker pid $APID"
row "$S" "0 +32 +128 +0 +- +no broker"
row "$K" "0 +8 +256 +0 +- +no broker"
row "$D" "- +- +- +- +- +damaged: corrupt header \(geometry checksum mismatch\)"
row "$W" "0 +32 +128 +0 +- +damaged: .*world-writable.*"
row "$OLD" "- +- +- +- +- +layout 2 \(older libmq\)"
row "$NEW" "- +- +- +- +- +layout 4 \(newer libmq\)"
! grep -qF -- "$G" "$TMP/out" || fail "a file without libmq's magic is listed: $(cat "$TMP/out")"
# Sorted by name: our rows in order.
grep -oE "^$Q-[a-z]+" "$TMP/out" >"$TMP/ours"
LC_ALL=C sort -c "$TMP/ours" || fail "list is not sorted by name: $(cat "$TMP/out")"
[ "$(grep -c '' "$TMP/ours")" -eq 7 ] || fail "want 7 rows of ours: $(cat "$TMP/out")"

# --json: one line, an array, every object with the same keys in order;
# ours field by field.
expect 0 list --json
[ "$(grep -c '' "$TMP/out")" -eq 1 ] || fail "list --json is not one line: $(cat "$TMP/out")"
size_of() { stat -c %s "/dev/shm$1"; }
"$PYTHON" - "$TMP/out" "$Q" "$(id -u)" "$APID" "$(size_of "$A")" "$(size_of "$S")" "$(size_of "$K")" <<'PYEOF' || fail "list --json: $(cat "$TMP/out")"
import json, sys
doc, q = sys.argv[1], sys.argv[2]
uid, apid, asize, ssize, ksize = (int(a) for a in sys.argv[3:8])
d = json.load(open(doc))
assert isinstance(d, list), d
keys = ["name", "layout", "size_bytes", "uid", "mode", "state", "status", "error", "depth",
        "capacity", "max_msg_size", "clients_attached", "oldest_age_s", "broker_alive",
        "broker_pid"]
for o in d:
    assert list(o) == keys, (list(o), keys)
names = [o["name"] for o in d]
assert names == sorted(names, key=lambda n: n.encode()), names
ours = {o["name"][len(q):]: o for o in d if o["name"].startswith(q + "-")}
assert sorted(ours) == ["-a", "-d", "-k", "-new", "-old", "-s", "-w"], sorted(ours)

def check(o, **want):
    for k, v in want.items():
        assert o[k] == v, (o["name"], k, o[k], v)

a = ours["-a"]
check(a, layout=3, size_bytes=asize, uid=uid, mode="0660", state="ok", status=f"mqbroker pid {apid}",
      error=None, depth=2, capacity=16, max_msg_size=64, clients_attached=0, broker_alive=True,
      broker_pid=apid)
assert 0.2 <= a["oldest_age_s"] < 30, a
for name, cap, size, fsize in (("-s", 32, 128, ssize), ("-k", 8, 256, ksize)):
    check(ours[name], layout=3, size_bytes=fsize, uid=uid,
          mode="0660", state="ok", status="no broker", error=None, depth=0, capacity=cap,
          max_msg_size=size, clients_attached=0, oldest_age_s=0, broker_alive=False, broker_pid=None)
dmg = ours["-d"]
check(dmg, layout=3, size_bytes=ssize, uid=uid, mode="0660", state="damaged",
      status="damaged: corrupt header (geometry checksum mismatch)",
      error="corrupt header (geometry checksum mismatch)", depth=None, capacity=None,
      max_msg_size=None, clients_attached=None, oldest_age_s=None, broker_alive=None,
      broker_pid=None)
w = ours["-w"]
check(w, layout=3, size_bytes=ssize, uid=uid, mode="0666", state="damaged", depth=0, capacity=32,
      max_msg_size=128, clients_attached=0, oldest_age_s=0, broker_alive=False, broker_pid=None)
assert w["status"] == "damaged: " + w["error"] and "world-writable" in w["error"], w
for name, version, age in (("-old", 2, "older"), ("-new", 4, "newer")):
    check(ours[name], layout=version, size_bytes=ssize, uid=uid, mode="0660", state="incompatible",
          status=f"layout {version} ({age} libmq)",
          error=f"layout version {version}, this libmq reads version 3", depth=None,
          capacity=None, max_msg_size=None, clients_attached=None, oldest_age_s=None,
          broker_alive=None, broker_pid=None)
PYEOF

# list never attaches: A's client table stays empty.
expect 0 stats -q "$A" --json --sample 0
json_expect "$TMP/out" clients=[] clients_attached=0

# Not readable: another user may read the file (mode 0644) but not open it
# for the mapping libmq needs; the 0660 queues are not even listed for them.
if [ "$(id -u)" -eq 0 ]; then
	R="$Q-r"
	cp "/dev/shm$S" "/dev/shm$R"
	chmod 0644 "/dev/shm$R"
	RC=0
	setpriv --reuid=65534 --regid=65534 --clear-groups "$MQCTL" list >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -eq 0 ] || fail "list as another user exited with $RC: $(cat "$TMP/err")"
	sanitizer_clean "$TMP/err"
	row "$R" "- +- +- +- +- +not readable: Permission denied"
	! grep -qF -- "$A " "$TMP/out" || fail "another user sees a 0660 queue: $(cat "$TMP/out")"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$MQCTL" list --json >"$TMP/out" 2>"$TMP/err" ||
		fail "list --json as another user failed: $(cat "$TMP/err")"
	json_pick() { # NAME: the object of NAME in the list in $TMP/out, into $TMP/one.json
		"$PYTHON" -c 'import json, sys; print(json.dumps([o for o in json.load(open(sys.argv[1])) if o["name"] == sys.argv[2]][0]))' \
			"$TMP/out" "$1" >"$TMP/one.json" || fail "no $1 in: $(cat "$TMP/out")"
	}
	json_pick "$R"
	json_expect "$TMP/one.json" 'state="unreadable"' 'status="not readable: Permission denied"' \
		mode='"0644"' depth=null capacity=null broker_alive=null broker_pid=null layout=3
	"$PYTHON" -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["error"] else 1)' "$TMP/one.json" ||
		fail "no error for the unreadable queue: $(cat "$TMP/one.json")"
else
	echo "note: $TEST: not root; the not-readable case is not tested" >&2
fi

# An empty /dev/shm (a tmpfs of our own, in a mount namespace): nothing, or
# [], status 0; a /dev/shm this user cannot read: status 1, one line.
if [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
	in_empty_shm() { # COMMAND...: run it with a fresh, empty /dev/shm
		unshare -m sh -c 'mount -t tmpfs -o size=1m mqct-list /dev/shm && exec "$@"' sh "$@"
	}
	RC=0
	in_empty_shm "$MQCTL" list >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -eq 0 ] && [ ! -s "$TMP/out" ] && [ ! -s "$TMP/err" ] ||
		fail "list with no queue: status $RC, stdout $(cat "$TMP/out"), stderr $(cat "$TMP/err")"
	RC=0
	in_empty_shm "$MQCTL" list --json >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -eq 0 ] || fail "list --json with no queue exited with $RC: $(cat "$TMP/err")"
	out_is "[]\n"
	RC=0
	in_empty_shm sh -c 'chmod 0700 /dev/shm && exec setpriv --reuid=65534 --regid=65534 --clear-groups "$0" list' \
		"$MQCTL" >"$TMP/out" 2>"$TMP/err" || RC=$?
	[ "$RC" -eq 1 ] || fail "list of an unreadable /dev/shm exited with $RC, want 1: $(cat "$TMP/err")"
	[ "$(cat "$TMP/err")" = "mqctl: cannot list the queues in /dev/shm: Permission denied" ] ||
		fail "list of an unreadable /dev/shm said: $(cat "$TMP/err")"
else
	echo "note: $TEST: no mount namespace (needs root); the empty /dev/shm is not tested" >&2
fi

BLOG=$ALOG
stop_broker "$APID"
