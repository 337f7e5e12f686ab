#!/bin/bash
# webroot_race.sh - the dashboard cannot be raced into serving another file (issue 12, finding 7): by default mqbroker serves the copy of web/ built into it (byte for byte); with --web-root, files are opened beneath it by openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a symbolic link swapped in and out of the directory (renameat2 RENAME_EXCHANGE in a loop) never leads to /etc/passwd.
set -euo pipefail
TEST=webroot_race
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
WEB=$(cd "$(dirname "$0")/../../web" && pwd)

# The built-in dashboard: every file of web/, identical; nothing else.
start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 -c 8 -m 64
for f in $(cd "$WEB" && ls); do
	http GET "/$f"
	[ "$CODE" = 200 ] || fail "GET /$f: $CODE"
	cmp -s "$TMP/body" "$WEB/$f" || fail "GET /$f is not web/$f"
done
http GET /
cmp -s "$TMP/body" "$WEB/index.html" || fail "GET / is not web/index.html"
for p in /etc/passwd /../../etc/passwd /%2e%2e/%2e%2e/etc/passwd /.hidden /nothing.js; do
	http GET "$p"
	[ "$CODE" = 404 ] || fail "GET $p: $CODE, want 404"
done
stop_broker "$BPID" TERM "$TMP/b.log"

# --web-root with a symbolic link swapped in and out.
ROOT="$TMP/root"
mkdir -p "$ROOT/real"
echo SAFE >"$ROOT/real/passwd"
ln -s /etc "$ROOT/evil"
echo "<html></html>" >"$ROOT/index.html"
start_broker "$TMP/b.log" -n "$Q" -l 127.0.0.1:0 --web-root "$ROOT"
http GET /evil/passwd
[ "$CODE" = 404 ] || fail "GET /evil/passwd through a symbolic link: $CODE, want 404"
"$PYTHON" "$(dirname "$0")/webroot_race.py" "$BPORT" "$ROOT" "${MQ_RACE_SECONDS:-5}" >"$TMP/race.out"
read -r _ requests _ safe _ missing _ leaked _ other _ swaps <"$TMP/race.out"
echo "$TEST: $(cat "$TMP/race.out")" >&2
[ "$swaps" -gt 1000 ] || fail "the swapper swapped only $swaps times"
[ "$requests" -gt 1000 ] || fail "only $requests requests"
[ "$safe" -gt 0 ] || fail "no request found the real file: $(cat "$TMP/race.out")"
[ "$leaked" -eq 0 ] || fail "$leaked of $requests requests got /etc/passwd"
[ "$other" -eq 0 ] || fail "$other requests got something unexpected"
stop_broker "$BPID" TERM "$TMP/b.log"
echo "PASS: $TEST ($(cat "$TMP/race.out"))"
