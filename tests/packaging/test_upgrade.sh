#!/bin/bash
# test_upgrade.sh - the upgrade from the 0.1 packages (libmq1, layout 1 queues)
# to these, as root on a Debian 12 machine: build the 0.1 packages from this
# repository's history (commit OLD, the last of 0.1.0), install them, run the
# 0.1 broker as the unit runs it (user mqbroker, group mq, the options of
# /etc/default/mqbroker) with messages queued and a 0.1 client attached, then
# install the new packages over them and restart the broker as the upgrade
# does. Checked: the new broker neither fails nor touches the queue while the
# 0.1 client still uses it (it waits, and says so), moves the messages into a
# layout 2 queue within seconds of that client's end, serves them in order and
# byte for byte, and the queue keeps its owner, group and mode.
# Usage: tests/packaging/test_upgrade.sh BUILD_DIR [OLD]
#   BUILD_DIR: where the new packages are (BUILD_DIR/debs, built the plain
#   way if missing, as test_packages.sh builds them) and the old ones are
#   built (BUILD_DIR/old, with 0.1's build-debs.sh); OLD: default 22a3410.
# Exit 77 (skipped) when not root, or when the clone lacks commit OLD (a
# shallow clone): it cannot build the 0.1 packages then.
set -euo pipefail
TEST=upgrade
src=$(realpath "$(dirname "$0")/../..")
build=${1:?usage: test_upgrade.sh BUILD_DIR [OLD]}
old=${2:-22a3410}
ALL=(libmq1 libmq2 libmq-dev mqbroker)

# shellcheck source=scratch.sh
source "$src/tests/packaging/scratch.sh"
if [ "$(id -u)" -eq 0 ] && ! git -C "$src" cat-file -e "$old^{commit}" 2>/dev/null; then
	echo "SKIP: $TEST: commit $old (libmq 0.1.0) is not in this clone (shallow?): cannot build the 0.1 packages" >&2
	exit 77
fi
scratch_machine "${ALL[@]}"

mkdir -p "$build"
build=$(realpath "$build")
ls "$build"/debs/mqbroker_*.deb >/dev/null 2>&1 ||
	plain_debs "$src" "$build" "the packages (cmake && cmake --build && cpack -G DEB)"
rm -rf "$build/old" "$build/old-src"
mkdir -p "$build/old-src"
git -C "$src" archive "$old" | tar -x -C "$build/old-src"
build_debs "$build/old-src" "$build/old" "the 0.1 packages (commit $old)"
deb() { ls "$1"/debs/"$2"_*.deb; }
oldv=$(dpkg-deb -f "$(deb "$build/old" mqbroker)" Version)
newv=$(dpkg-deb -f "$(deb "$build" mqbroker)" Version)
dpkg --compare-versions "$newv" gt "$oldv" || {
	echo "FAIL: $TEST: the new mqbroker package ($newv) is not newer than 0.1's ($oldv)" >&2
	exit 1
}

# The broker tests' helpers (start_broker, http, status_expect, the cleanup
# trap); BROKER becomes the installed broker below.
# shellcheck source=../broker/common.sh
source "$src/tests/broker/common.sh" /bin/true /bin/true

had_group=0 had_user=0
getent group mq >/dev/null && had_group=1
getent passwd mqbroker >/dev/null && had_user=1
uninstall() {
	local p known=() # apt-get refuses the whole purge for a package it does not know
	for p in "${ALL[@]}"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' && known+=("$p")
	done
	[ "${#known[@]}" -eq 0 ] || apt-get purge -y -q "${known[@]}" >/dev/null 2>&1 || true
	[ "$had_user" = 1 ] || deluser --quiet --system mqbroker >/dev/null 2>&1 || true
	[ "$had_group" = 1 ] || delgroup --quiet --system mq >/dev/null 2>&1 || true
}
CLEANUPS+=(uninstall)
export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y -q --no-install-recommends "$@" >"$TMP/apt.log" 2>&1 ||
		fail "apt-get install $* failed: $(cat "$TMP/apt.log")"
}

# --- 0.1: installed, its broker serving a queue with messages --------------------
apt_install "$(deb "$build/old" libmq1)" "$(deb "$build/old" mqbroker)"
[ "$(dpkg-query -W -f='${Version}' mqbroker)" = "$oldv" ] || fail "mqbroker $oldv is not installed"
BROKER=/usr/sbin/mqbroker
AS_USER=(--reuid mqbroker --regid mq --init-groups)
# shellcheck disable=SC1091
MQBROKER_OPTS=$(. /etc/default/mqbroker && echo "$MQBROKER_OPTS")
# shellcheck disable=SC2086 # MQBROKER_OPTS are words, as in the unit
start_broker "$TMP/old-broker.log" $MQBROKER_OPTS -n "$Q" -l 127.0.0.1:0
old_pid=$BPID
perm=$(stat -c '%U %G %a' "/dev/shm$Q")
[ "$perm" = "mqbroker mq 660" ] || fail "the 0.1 service's queue is $perm, want mqbroker mq 660"
# Four messages: text, an empty one, 3000 random bytes, text.
head -c 3000 /dev/urandom >"$TMP/blob"
/usr/bin/mqctl send -q "$Q" first "" >"$TMP/send.log" 2>&1 || fail "0.1 mqctl send: $(cat "$TMP/send.log")"
/usr/bin/mqctl send -q "$Q" --whole -f "$TMP/blob" >"$TMP/send.log" 2>&1 || fail "0.1 mqctl send --whole: $(cat "$TMP/send.log")"
/usr/bin/mqctl send -q "$Q" last >"$TMP/send.log" 2>&1 || fail "0.1 mqctl send: $(cat "$TMP/send.log")"
hexof() { od -An -tx1 -v | tr -d ' \n'; echo; }
{ printf first | hexof; printf '' | hexof; hexof <"$TMP/blob"; printf last | hexof; } >"$TMP/want.hex"
# A 0.1 program still attached (through libmq.so.1, as a program built
# against 0.1 would be) until the test lets it go.
cat >"$TMP/client01.py" <<'EOF'
import ctypes, sys, time
lib = ctypes.CDLL("libmq.so.1")
lib.libmq_attach.restype = ctypes.c_void_p
q = lib.libmq_attach(sys.argv[1].encode())
if not q:
    sys.exit("libmq_attach (mq_attach) failed")
print("attached", flush=True)
time.sleep(600)
EOF
run_bg client_pid "$PYTHON" "$TMP/client01.py" "$Q" >"$TMP/client01.out" 2>&1
wait_until 10 grep -q attached "$TMP/client01.out" || fail "the 0.1 client did not attach: $(cat "$TMP/client01.out")"

# --- the upgrade: new packages over the old ones, the broker restarted -------------
apt_install "$(deb "$build" libmq2)" "$(deb "$build" libmq-dev)" "$(deb "$build" mqbroker)"
[ "$(dpkg-query -W -f='${Version}' mqbroker)" = "$newv" ] || fail "mqbroker $newv is not installed after the upgrade"
stop_broker "$old_pid" TERM "$TMP/old-broker.log"
# says_waiting LOG: the broker said why it waits (the queue is in use by a
# libmq 1 process) and that it waits.
says_waiting() {
	grep -q 'still in use by 1 libmq 1 process' "$1" && grep -q 'waiting' "$1"
}
# A broker waiting for the 0.1 client stops cleanly on SIGTERM (as systemd
# stops it), leaving the queue as it was.
: >"$TMP/waiting.log"
# shellcheck disable=SC2086
run_bg wpid "$BROKER" $MQBROKER_OPTS -n "$Q" -l 127.0.0.1:0 2>"$TMP/waiting.log"
wait_until 10 says_waiting "$TMP/waiting.log" ||
	fail "the new broker did not say it waits for the 0.1 client: $(cat "$TMP/waiting.log")"
kill -TERM "$wpid"
wait_exit "$wpid" 5
[ "$RC" -eq 0 ] && grep -q "^mqbroker: stopping on Terminated while waiting for the layout 1 queue" "$TMP/waiting.log" ||
	fail "a waiting broker on SIGTERM: status $RC, log: $(cat "$TMP/waiting.log") (want 0 and 'stopping on Terminated while waiting')"
[ "$(stat -c '%U %G %a' "/dev/shm$Q")" = "$perm" ] || fail "the queue changed under a waiting broker"
log=$TMP/new-broker.log
: >"$log"
# shellcheck disable=SC2086
run_bg BPID "$BROKER" $MQBROKER_OPTS -n "$Q" -l 127.0.0.1:0 2>"$log"
wait_until 10 says_waiting "$log" ||
	fail "the new broker did not say it waits for the 0.1 client: $(cat "$log")"
sleep 2
! exited "$BPID" || { wait_exit "$BPID" 1; fail "the new broker exited ($RC) while the 0.1 client was attached: $(cat "$log")"; }
! grep -q '^mqbroker: serving' "$log" || fail "the new broker served the queue while a 0.1 client used it: $(cat "$log")"
[ "$(stat -c '%U %G %a' "/dev/shm$Q")" = "$perm" ] || fail "the queue changed while a 0.1 client used it"
t0=$SECONDS
kill -TERM "$client_pid"
wait_exit "$client_pid" 10
wait_until 10 grep -q '^mqbroker: serving ' "$log" || fail "the new broker did not serve within 10 s of the 0.1 client's end: $(cat "$log")"
echo "note: $TEST: served $((SECONDS - t0)) s after the 0.1 client ended" >&3
expect_log "$log" "moved 4 messages of layout 1 queue"
BPORT=$(sed -n 's|^mqbroker: serving .* on http://.*:\([0-9][0-9]*\)/ (pid .*|\1|p' "$log" | tail -n 1)
[ "$(stat -c '%U %G %a' "/dev/shm$Q")" = "$perm" ] || fail "the moved queue is $(stat -c '%U %G %a' "/dev/shm$Q"), want $perm"
http GET /healthz
[ "$CODE" = 200 ] || fail "/healthz after the move: $CODE $(cat "$TMP/body")"
status_expect depth=4
member=(setpriv --reuid nobody --regid nogroup --groups "$(getent group mq | cut -d: -f3)")
"${member[@]}" /usr/bin/mqctl recv -q "$Q" -n 4 --timeout 2000 -o hex >"$TMP/got.hex" 2>"$TMP/recv.err" ||
	fail "mqctl recv after the upgrade: $(cat "$TMP/recv.err")"
cmp -s "$TMP/got.hex" "$TMP/want.hex" ||
	fail "the messages after the upgrade differ: got $(head -c 200 "$TMP/got.hex")..., want $(head -c 200 "$TMP/want.hex")..."
"${member[@]}" /usr/bin/mqctl send -q "$Q" "after the upgrade" || fail "mqctl send after the upgrade"
status_expect depth=1
stop_broker "$BPID" TERM "$log"
echo "PASS: $TEST ($oldv -> $newv: 4 messages moved, in order, byte for byte)"
