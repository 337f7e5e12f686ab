# setup.sh - the prologue of the mqbridge end-to-end tests; sourced, not a test.
# shellcheck shell=bash
#
# Usage, at the top of tests/bridge/NAME.sh, after TEST=...:
#   . "$(dirname "${BASH_SOURCE[0]}")/setup.sh" "$@"    (ARGS: MQBROKER MQLOAD MQBRIDGE)
# Stops with the usage (exit 2), or skipped (exit 77) when nats-server or
# mqbridge (built only with libnats) is missing; then sets BRIDGE, sources
# ../broker/common.sh (the scaffold, TMP, Q, the trap) and nats.sh, makes the
# trap say "PASS: $TEST", and with MQ_KEEP_LOGS=DIR copies the logs there at
# the end.
if [ $# -lt 3 ]; then
	echo "usage: $0 MQBROKER MQLOAD MQBRIDGE" >&2
	exit 2
fi
if ! command -v nats-server >/dev/null; then
	echo "SKIP: $TEST: nats-server is not installed (Debian: apt-get install nats-server)"
	exit 77
fi
if [ ! -x "$3" ]; then
	echo "SKIP: $TEST: no mqbridge at $3 (built only with libnats: apt-get install libnats-dev)"
	exit 77
fi
BRIDGE=$(realpath "$3")
# shellcheck source=../broker/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../broker/common.sh" "$1" "$2"
# shellcheck source=nats.sh
. "$(dirname "${BASH_SOURCE[0]}")/nats.sh"
# shellcheck disable=SC2034 # read by the scaffold's trap
SAY_PASS=pass
[ -z "${MQ_KEEP_LOGS:-}" ] || CLEANUPS+=("mkdir -p '$MQ_KEEP_LOGS' && cp '$TMP'/*.log '$MQ_KEEP_LOGS'")
