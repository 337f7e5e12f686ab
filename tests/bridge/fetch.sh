#!/bin/bash
# fetch.sh - mqbridge's import_fetch with late pull answers pending (libnats 3.4.1's own fetch overflows its array there): runs bridge/tests/prog_fetch against its own nats-server.
#
# Usage: fetch.sh PROG_FETCH      (skipped, exit 77, without nats-server)
TEST=fetch
[ $# -eq 1 ] || { echo "usage: $0 PROG_FETCH" >&2; exit 2; }
PROG=$(realpath "$1")
# shellcheck source=../lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=nats.sh
. "$(dirname "${BASH_SOURCE[0]}")/nats.sh"
need_nats
need_tools curl "$PYTHON" timeout
test_scaffold mqbt pass
start_nats
timeout -s KILL 60 "$PROG" "nats://127.0.0.1:$NPORT" >"$TMP/out" 2>&1 ||
	fail "prog_fetch failed: $(cat "$TMP/out")"
sanitizer_clean "$TMP/out"
cat "$TMP/out" >&3
