#!/bin/bash
# dashboard_test.sh - end-to-end browser test of the dashboard (web/): Debian's headless chromium, driven by playwright-core (dashboard.test.mjs), against a real mqbroker serving three queues, one of them garbage.
#
# Usage: dashboard_test.sh MQBROKER MQLOAD OUTDIR [MQCTL]
#   Messages are sent and received with MQCTL when it is given (or $MQCTL is
#   set), else with MQLOAD. Screenshots and the broker's log go to OUTDIR:
#   dashboard.png (all queues), dashboard-queue.png (one queue),
#   dashboard-narrow.png and dashboard-queue-narrow.png (390 px wide),
#   dashboard-missing.png (a URL naming no queue), dashboard-unreachable.png.
# Environment:
#   MQ_SKIP_BROWSER=1  skip the test (exit 77); nothing else skips it: a
#                      missing chromium, node or playwright-core is a failure
#   CHROMIUM=PATH      the browser (default /usr/bin/chromium)
# Needs: chromium, nodejs (>= 18) with npm, util-linux (setpriv, flock). When
# tests/web/node_modules is missing, runs `npm ci` there (the npm registry must
# be reachable once).
set -euo pipefail
TEST=web_dashboard

if [ "${MQ_SKIP_BROWSER:-}" = 1 ]; then
	echo "SKIP: $TEST: MQ_SKIP_BROWSER=1"
	exit 77
fi
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
	echo "usage: $0 MQBROKER MQLOAD OUTDIR [MQCTL]" >&2
	exit 2
fi

fail() {
	echo "FAIL: $TEST: $*" >&2
	exit 1
}

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BROKER=$(realpath "$1")
MQLOAD=$(realpath "$2")
OUT=$3
MQCTL=${4:-${MQCTL:-}}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
SKIP_HINT="(MQ_SKIP_BROWSER=1 skips this test)"
NODE_HINT="playwright-core needs node >= 18 and npm: as root, apt-get install -y nodejs npm (Debian's), unless a nodejs that includes npm (NodeSource's) is installed"

[ -x "$BROKER" ] || fail "$BROKER is not an executable"
[ -x "$MQLOAD" ] || fail "$MQLOAD is not an executable"
if [ -n "$MQCTL" ]; then
	MQCTL=$(realpath "$MQCTL")
	[ -x "$MQCTL" ] || fail "$MQCTL is not an executable"
fi
[ -x "$CHROMIUM" ] ||
	fail "no browser at $CHROMIUM: install Debian's, as root: apt-get install -y chromium (or set CHROMIUM=PATH) $SKIP_HINT"
command -v node >/dev/null || fail "node is not installed; $NODE_HINT $SKIP_HINT"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old; $NODE_HINT $SKIP_HINT"
for tool in setpriv flock; do
	command -v "$tool" >/dev/null || fail "needs '$tool' (Debian: apt-get install util-linux)"
done

# playwright-core, pinned by tests/web/package-lock.json; installed once per
# clone, and again when the lock pins another version (a lock file keeps two
# test runs from installing at the same time).
installed_ok() {
	# shellcheck disable=SC2016 # $ is JavaScript's here
	node -e '
		const fs = require("fs"), d = process.argv[1];
		const want = JSON.parse(fs.readFileSync(d + "/package-lock.json")).packages["node_modules/playwright-core"].version;
		const have = JSON.parse(fs.readFileSync(d + "/node_modules/playwright-core/package.json")).version;
		process.exit(want === have ? 0 : 1);' "$HERE" 2>/dev/null
}
if ! installed_ok; then
	command -v npm >/dev/null || fail "tests/web/node_modules is missing or stale and npm is not installed; $NODE_HINT $SKIP_HINT"
	echo "$TEST: installing playwright-core: npm ci in $HERE"
	(
		flock 9
		installed_ok || { cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error; }
	) 9>"/tmp/mqweb-npm-ci.lock" ||
		fail "'npm ci' in $HERE failed (is the npm registry reachable?); or run it by hand there"
	installed_ok || fail "'npm ci' in $HERE did not install the playwright-core that package-lock.json pins"
fi

# Three queues, named for this run: two the broker creates (the second with
# a space, a non-ASCII letter and a "%" in its name, which the page's URLs
# must encode), and one whose file is garbage before the broker starts, so
# that the broker reports it damaged while it serves the other two.
QA="/dash-$$-a"
QB="/dash-$$-b ü%"
QC="/dash-$$-c"
TMP=$(mktemp -d /tmp/mqweb.XXXXXX)
mkdir -p "$OUT"
rm -f "$OUT"/dashboard*.png "$OUT/broker.log"
NODE_PID=

cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	{
		if [ -n "$NODE_PID" ]; then
			kill -KILL "$NODE_PID" || true
			wait "$NODE_PID" || true
		fi
		# The broker dies with node (PR_SET_PDEATHSIG); this is in case it has not yet.
		if [ -s "$TMP/broker.pid" ]; then
			pid=$(cat "$TMP/broker.pid")
			if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mqbroker ]; then
				kill -KILL "$pid" || true
			fi
		fi
		# The browser quits once node is gone, but may still be writing to its
		# profile for a moment: wait for it (found by our unique profile path), then remove.
		for _ in $(seq 1 50); do
			pgrep -f -- "--user-data-dir=$TMP/profile" >/dev/null || break
			sleep 0.1
		done
		for pid in $(pgrep -f -- "--user-data-dir=$TMP/profile"); do
			kill -KILL "$pid" || true
		done
	} 2>/dev/null
	rm -f "/dev/shm$QA" "/dev/shm$QB" "/dev/shm$QC"
	rm -rf "$TMP" 2>/dev/null || { sleep 0.5; rm -rf "$TMP"; }
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "FAIL: $TEST: interrupted" >&2; exit 130' INT TERM

# Left over by a killed run with our pid, they are ours to remove.
rm -f "/dev/shm$QA" "/dev/shm$QB" "/dev/shm$QC"
{ head -c 100000 /dev/urandom >"/dev/shm$QC" && chmod 0660 "/dev/shm$QC"; } || fail "cannot write /dev/shm$QC"

sender=(--mqload "$MQLOAD") # mqload always: its "hold" makes the clients that stay attached
[ -z "$MQCTL" ] || sender+=(--mqctl "$MQCTL")

# node runs under setpriv --pdeathsig too: if this script is killed (a ctest
# timeout), node goes, and with it the broker and the browser.
setpriv --pdeathsig KILL node "$HERE/dashboard.test.mjs" \
	--broker "$BROKER" --web-root "$REPO/web" --queue "$QA" --queue "$QB" --garbage "$QC" --out "$OUT" \
	--profile "$TMP/profile" --pidfile "$TMP/broker.pid" --chromium "$CHROMIUM" "${sender[@]}" &
NODE_PID=$!
rc=0
wait "$NODE_PID" || rc=$?
NODE_PID=

if [ -f "$OUT/broker.log" ] &&
	grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer' "$OUT/broker.log"; then
	cat "$OUT/broker.log" >&2
	fail "sanitizer report in the broker's log (above)"
fi
[ "$rc" -eq 0 ] || fail "dashboard.test.mjs exited $rc (screenshots and broker.log in $OUT)"
