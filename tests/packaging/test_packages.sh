#!/bin/bash
# test_packages.sh - the Debian packages end to end, as root on a Debian 12
# machine: build them the plain way (`cmake`, `cmake --build`, `cpack -G DEB`
# in a default build directory, whose prefix is /usr/local) and check that
# they install under /usr all the same, that the paths written into them (the
# unit's ExecStart, libmq.pc) are the packaged ones, and that
# packaging/build-debs.sh (hardening flags) packages the same files; check
# their metadata and lintian (no errors; only the warnings explained below),
# install them with apt-get, then use them as a user would: examples built with
# pkg-config and with find_package(libmq), a test program as C, C++ and against
# the static library, the installed mqbroker serving a queue to members of the
# group mq, curl /status, mqctl, the man pages, `systemd-analyze verify` on the
# unit. Then remove (only the configuration stays) and purge (nothing stays).
# When mqbridge was built (libnats), the mqbridge package too: its metadata,
# lintian, its files, and its unit under systemd against a nats-server of the
# test's own (tests/packaging/bridge_package.sh); skipped, with a note, when
# it was not.
# Usage: tests/packaging/test_packages.sh BUILD_DIR
#   BUILD_DIR: the plain build (its .debs in BUILD_DIR/debs, which
#   test_upgrade.sh reuses); build-debs.sh builds in BUILD_DIR/build-debs.
# Exit 77 (skipped) when not root: it installs packages system-wide.
set -euo pipefail
TEST=packages
src=$(realpath "$(dirname "$0")/../..")
build=${1:?usage: test_packages.sh BUILD_DIR}
PACKAGES=(libmq2 libmq-dev mqbroker)

# shellcheck source=scratch.sh
source "$src/tests/packaging/scratch.sh"
scratch_machine "${PACKAGES[@]}" mqbridge
plain_debs "$src" "$build" "the packages (cmake && cmake --build && cpack -G DEB)"
build=$(realpath "$build")
build_debs "$src" "$build/build-debs" "the packages with packaging/build-debs.sh"
# mqbridge: built only when pkg-config finds libnats; then it is packaged.
BRIDGE=0
if [ -x "$build/bridge/mqbridge" ]; then
	BRIDGE=1
	PACKAGES+=(mqbridge)
else
	echo "note: $TEST: mqbridge was not built (no libnats: apt-get install libnats-dev); its package is not tested" >&2
	! ls "$build"/debs/mqbridge_*.deb >/dev/null 2>&1 || {
		echo "FAIL: $TEST: a mqbridge package without mqbridge built: $(ls "$build"/debs)" >&2
		exit 1
	}
fi
# The broker tests' helpers (start_broker, http, status_expect, the cleanup
# trap); they check for a broker binary now, the installed one is used below.
set -- "$build/broker/mqbroker" "$build/broker/mqbroker"
# shellcheck source=../broker/common.sh
source "$src/tests/broker/common.sh"
# shellcheck source=bridge_package.sh
source "$src/tests/packaging/bridge_package.sh"

deb() { ls "$build"/debs/"$1"_*.deb; }
version=$(dpkg-deb -f "$(deb mqbroker)" Version)
arch=$(dpkg --print-architecture)
for p in "${PACKAGES[@]}"; do
	[ "$(deb "$p")" = "$build/debs/${p}_${version}_$arch.deb" ] || fail "no single $p .deb: $(ls "$build/debs")"
	[ "$(dpkg-deb -f "$(deb "$p")" Source)" = mqbroker ] || fail "$p: Source is not mqbroker"
done

# --- metadata: names, dependencies (shlibdeps), shlibs, ownership, paths -------
depends() { dpkg-deb -f "$(deb "$1")" Depends; }
depends libmq2 | grep -qE '^libc6 \(>= [0-9.]+\)$' || fail "libmq2 Depends: $(depends libmq2)"
[ "$(depends libmq-dev)" = "libmq2 (= $version)" ] || fail "libmq-dev Depends: $(depends libmq-dev)"
for d in adduser 'libc6 (>=' 'libcjson1 (>=' 'libmicrohttpd12 (>='; do
	depends mqbroker | grep -qF "$d" || fail "mqbroker Depends lacks $d: $(depends mqbroker)"
done
shlibs=$(dpkg-deb --ctrl-tarfile "$(deb libmq2)" | tar -xO ./shlibs)
[ "$shlibs" = "libmq 2 libmq2 (>= $version)" ] || fail "libmq2 shlibs: $shlibs"
dpkg-deb --ctrl-tarfile "$(deb libmq2)" | tar -xO ./triggers | grep -qx 'activate-noawait ldconfig' ||
	fail "libmq2 does not activate the ldconfig trigger"
scripts=$(dpkg-deb --ctrl-tarfile "$(deb libmq2)" | tar -t | grep -E 'post|pre' || true)
[ -z "$scripts" ] || fail "libmq2 has maintainer scripts (the ldconfig trigger replaces them): $scripts"
[ "$(dpkg-deb --ctrl-tarfile "$(deb mqbroker)" | tar -xO ./conffiles)" = /etc/default/mqbroker ] ||
	fail "mqbroker conffiles: $(dpkg-deb --ctrl-tarfile "$(deb mqbroker)" | tar -xO ./conffiles)"
for p in "${PACKAGES[@]}"; do
	others=$(dpkg-deb -c "$(deb "$p")" | awk '$2 != "root/root"')
	[ -z "$others" ] || fail "$p has files not owned by root/root: $others"
	outside=$(dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | grep -vE '^\./(usr/|etc/default/|lib/systemd/system/)' |
		grep -vxE '\./|\./(etc|etc/default|lib|lib/systemd|lib/systemd/system)/' || true)
	[ -z "$outside" ] || fail "$p installs outside /usr, /etc/default, /lib/systemd/system: $outside"
	# (/usr/local is under /usr, and is where the configured prefix points)
	local_=$(dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | grep -E '^\./usr/local(/|$)' || true)
	[ -z "$local_" ] || fail "$p installs under /usr/local (the build directory's prefix): $local_"
	# The same files, links and modes as build-debs.sh's package.
	wrapped=$(ls "$build/build-debs/debs/${p}_"*.deb) || fail "build-debs.sh made no $p package"
	diff <(dpkg-deb -c "$(deb "$p")" | awk '{print $1, $2, $6, $7, $8}') \
		<(dpkg-deb -c "$wrapped" | awk '{print $1, $2, $6, $7, $8}') >"$TMP/files.diff" ||
		fail "$p: cpack -G DEB and build-debs.sh package other files: $(cat "$TMP/files.diff")"
	# (the versions in Depends follow the symbols the build flags use)
	fields() { dpkg-deb -f "$1" Package Version Depends | sed 's/ ([^)]*)//g'; }
	[ "$(fields "$(deb "$p")")" = "$(fields "$wrapped")" ] ||
		fail "$p: cpack -G DEB and build-debs.sh give other control fields: $(fields "$(deb "$p")") / $(fields "$wrapped")"
done
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
# (grep -q reads a captured listing: in a pipe, under pipefail, its early exit
# would kill the writer with SIGPIPE and fail a check that matched.)
has() { grep -qx "./$2" <<<"$(dpkg-deb -c "$(deb "$1")" | awk '{print $6}')" || fail "$1 lacks /$2"; }
has libmq2 "usr/lib/$multiarch/libmq.so.2"
has libmq2 "usr/lib/$multiarch/libmq.so.2.0.0"
for f in usr/include/libmq.h "usr/lib/$multiarch/libmq.so" "usr/lib/$multiarch/libmq.a" \
	"usr/lib/$multiarch/pkgconfig/libmq.pc" "usr/lib/$multiarch/cmake/libmq/libmqConfig.cmake" \
	usr/share/man/man3/libmq.3.gz usr/share/doc/libmq-dev/examples/producer.c \
	usr/share/doc/libmq-dev/examples/consumer.c usr/share/doc/libmq-dev/examples/CMakeLists.txt; do
	has libmq-dev "$f"
done
for f in usr/sbin/mqbroker usr/bin/mqctl lib/systemd/system/mqbroker.service etc/default/mqbroker \
	usr/share/man/man8/mqbroker.8.gz usr/share/man/man1/mqctl.1.gz; do
	has mqbroker "$f"
done
# The paths written into packaged files are the packaged ones: the unit runs a
# binary of the package with the package's defaults file, libmq.pc says /usr.
packaged() { dpkg-deb --fsys-tarfile "$(deb "$1")" | tar -xO "./$2"; }
unit=$(packaged mqbroker lib/systemd/system/mqbroker.service)
exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' <<<"$unit")
[[ "$exec_start" == /* ]] || fail "the unit has no ExecStart=/PATH: $(grep ExecStart <<<"$unit")"
dpkg-deb -c "$(deb mqbroker)" | awk -v f=".$exec_start" '$6 == f && $1 ~ /^-..x/ {ok = 1} END {exit !ok}' ||
	fail "the unit's ExecStart=$exec_start is not an executable of the mqbroker package"
env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' <<<"$unit")
[ "$env_file" = /etc/default/mqbroker ] || fail "the unit's EnvironmentFile is $env_file"
has mqbroker "${env_file#/}"
grep -qF "runs $exec_start " <(packaged mqbroker etc/default/mqbroker) ||
	fail "/etc/default/mqbroker does not name $exec_start: $(packaged mqbroker etc/default/mqbroker)"
[ "$(packaged libmq-dev "usr/lib/$multiarch/pkgconfig/libmq.pc" | sed -n 's/^prefix=//p')" = /usr ] ||
	fail "libmq.pc: $(packaged libmq-dev "usr/lib/$multiarch/pkgconfig/libmq.pc")"
# ... and no file of any package names the build directory's prefix.
for p in "${PACKAGES[@]}"; do
	dpkg-deb -x "$(deb "$p")" "$TMP/unpacked-$p"
	named=$(grep -rlF /usr/local "$TMP/unpacked-$p" || true)
	[ -z "$named" ] || fail "$p: files name /usr/local (the build directory's prefix): $named"
done
[ "$BRIDGE" = 0 ] || bridge_metadata

# --- lintian: no errors; each warning allowed here is explained --------------
#   initial-upload-closes-no-bugs: a first Debian revision is expected to close
#     an ITP bug; these packages are not uploaded to the Debian archive.
command -v lintian >/dev/null || fail "needs lintian (apt-get install lintian)"
for debs in "$build/debs" "$build/build-debs/debs"; do
	lintian --fail-on error --info "$debs"/*.deb >>"$TMP/lintian.txt" 2>&1 ||
		fail "lintian reports errors in $debs: $(grep -E '^E:' "$TMP/lintian.txt" || cat "$TMP/lintian.txt")"
done
unexplained=$(grep -E '^W:' "$TMP/lintian.txt" |
	grep -vE '^W: [a-z0-9-]+: initial-upload-closes-no-bugs' || true)
[ -z "$unexplained" ] || fail "lintian warnings not explained in test_packages.sh: $unexplained"
grep -E '^[EWIP]:' "$TMP/lintian.txt" >&3 || true

# --- install --------------------------------------------------------------------
had_group=0 had_user=0 had_bridge_user=0
getent group mq >/dev/null && had_group=1
getent passwd mqbroker >/dev/null && had_user=1
getent passwd mqbridge >/dev/null && had_bridge_user=1
uninstall() {
	apt-get purge -y -q "${PACKAGES[@]}" >/dev/null 2>&1 || true
	[ "$had_user" = 1 ] || deluser --quiet --system mqbroker >/dev/null 2>&1 || true
	[ "$had_bridge_user" = 1 ] || deluser --quiet --system mqbridge >/dev/null 2>&1 || true
	[ "$had_group" = 1 ] || delgroup --quiet --system mq >/dev/null 2>&1 || true
}
CLEANUPS+=(uninstall)
export DEBIAN_FRONTEND=noninteractive
debs=()
for p in "${PACKAGES[@]}"; do debs+=("$(deb "$p")"); done
apt-get install -y -q --no-install-recommends "${debs[@]}" \
	>"$TMP/apt-install.log" 2>&1 || fail "apt-get install of the packages failed: $(cat "$TMP/apt-install.log")"
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" | grep -q ' installed$' || fail "$p is not installed after apt-get"
	dpkg -L "$p" | while read -r f; do [ -d "$f" ] || echo "$f"; done >"$TMP/files-$p"
done
BROKER=/usr/sbin/mqbroker
[ -x $BROKER ] && [ -x /usr/bin/mqctl ] || fail "no /usr/sbin/mqbroker or /usr/bin/mqctl after install"
grep -qE 'SONAME +libmq\.so\.2$' <<<"$(objdump -p "/usr/lib/$multiarch/libmq.so.2")" ||
	fail "libmq.so.2 has another SONAME"
# Captured, not piped: under pipefail, grep -q's early exit killed ldconfig
# -p with SIGPIPE now and then, and a cache that had the entry failed.
grep -qF "libmq.so.2 (" <<<"$(ldconfig -p)" || fail "libmq.so.2 is not in the ldconfig cache (trigger)"

# The group mq and the service user mqbroker (a system user in mq, no login).
getent group mq >/dev/null || fail "no group mq after install"
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd mqbroker) || fail "no user mqbroker after install"
[ "$uid" -lt 1000 ] || fail "mqbroker is not a system user (uid $uid)"
[ "$gid" = "$(getent group mq | cut -d: -f3)" ] || fail "mqbroker's primary group is not mq"
[ "$shell" = /usr/sbin/nologin ] && [ "$home" = /nonexistent ] || fail "mqbroker has shell $shell, home $home"
[ "$BRIDGE" = 0 ] || bridge_installed

# The unit: systemd's own check (exits non-zero on errors; its warnings about
# this unit fail the test too).
command -v systemd-analyze >/dev/null || fail "needs systemd-analyze (apt-get install systemd)"
systemd-analyze verify /lib/systemd/system/mqbroker.service >"$TMP/verify.txt" 2>&1 ||
	fail "systemd-analyze verify mqbroker.service: $(cat "$TMP/verify.txt")"
! grep -i 'mqbroker' "$TMP/verify.txt" || fail "systemd-analyze verify warns about the unit: $(cat "$TMP/verify.txt")"
grep -qx 'MQBROKER_OPTS=""' /etc/default/mqbroker || fail "/etc/default/mqbroker sets no MQBROKER_OPTS"
grep -qF 'ExecStart=/usr/sbin/mqbroker $MQBROKER_OPTS' /lib/systemd/system/mqbroker.service &&
	grep -qx 'EnvironmentFile=-/etc/default/mqbroker' /lib/systemd/system/mqbroker.service ||
	fail "the unit does not run mqbroker with the options of /etc/default/mqbroker"

# Man pages where man(1) finds them, and the examples beside the docs.
if command -v man >/dev/null; then
	for page in 8:mqbroker 1:mqctl 3:libmq; do
		where=$(man -w "${page%%:*}" "${page#*:}" 2>&1) || fail "man -w ${page/:/ }: $where"
		[ "$where" = "/usr/share/man/man${page%%:*}/${page#*:}.${page%%:*}.gz" ] || fail "man -w ${page/:/ }: $where"
	done
fi
for f in producer.c consumer.c lease_consumer.c epoll_consumer.c uv_consumer.c CMakeLists.txt; do
	cmp -s "$src/libmq/examples/$f" "/usr/share/doc/libmq-dev/examples/$f" ||
		fail "/usr/share/doc/libmq-dev/examples/$f differs from libmq/examples/$f (or is missing)"
done

# --- build against the installed package ---------------------------------------
cd "$TMP"
flags=$(pkg-config --cflags --libs libmq) || fail "pkg-config libmq failed"
[ "$(pkg-config --modversion libmq)" = "${version%-*}" ] || fail "pkg-config --modversion libmq: $(pkg-config --modversion libmq)"
# shellcheck disable=SC2086 # the flags are words
{
	cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/libmq-dev/examples/producer.c $flags -o producer &&
		cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/libmq-dev/examples/consumer.c $flags -o consumer &&
		cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/libmq-dev/examples/lease_consumer.c $flags -o lease_consumer &&
		cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/libmq-dev/examples/epoll_consumer.c $flags -o epoll_consumer &&
		cc -std=c11 -Wall -Wextra -Werror /usr/share/doc/libmq-dev/examples/uv_consumer.c \
			$(pkg-config --cflags --libs libmq libuv) -o uv_consumer
} 2>"$TMP/cc.err" || fail "the examples do not build with pkg-config (flags '$flags'): $(cat "$TMP/cc.err")"
# shellcheck disable=SC2086
{
	cc -std=c11 -Wall -Wextra -Werror -pedantic -x c "$src/tests/packaging/api_test.c" $flags -o api_c_pc &&
		c++ -std=c++17 -Wall -Wextra -Werror -pedantic -x c++ "$src/tests/packaging/api_test.c" $flags -o api_cxx_pc
} 2>"$TMP/cc.err" || fail "api_test.c does not build as C11 and C++17 with pkg-config: $(cat "$TMP/cc.err")"
cp -r /usr/share/doc/libmq-dev/examples "$TMP/examples"
{ cmake -S "$TMP/examples" -B "$TMP/examples/build" && cmake --build "$TMP/examples/build"; } >"$TMP/cmake-ex.log" 2>&1 ||
	fail "the examples do not build with find_package(libmq): $(cat "$TMP/cmake-ex.log")"
[ -x "$TMP/examples/build/epoll_consumer" ] && [ -x "$TMP/examples/build/uv_consumer" ] ||
	fail "find_package(libmq) build of the examples lacks epoll_consumer or uv_consumer: $(cat "$TMP/cmake-ex.log")"
{ cmake -S "$src/tests/packaging/cmake-project" -B "$TMP/user" && cmake --build "$TMP/user"; } >"$TMP/cmake-user.log" 2>&1 ||
	fail "the find_package(libmq) test project does not build: $(cat "$TMP/cmake-user.log")"
grep -q "^libmq_DIR:PATH=/usr/lib/$multiarch/cmake/libmq$" "$TMP/user/CMakeCache.txt" ||
	fail "find_package(libmq) found $(grep libmq_DIR "$TMP/user/CMakeCache.txt")"
for prog in api_c_pc api_cxx_pc user/api_c user/api_cxx user/api_static; do
	"$TMP/$prog" >"$TMP/api.out" 2>&1 || fail "$prog failed: $(cat "$TMP/api.out")"
	grep -q 'all checks passed' "$TMP/api.out" || fail "$prog: $(cat "$TMP/api.out")"
done
# (/lib is /usr/lib on a merged-/usr system; the loader's cache may say either)
# (captured, as ldconfig -p above: grep -q's early exit killed ldd with SIGPIPE)
grep -qE "libmq\.so\.2 => (/usr)?/lib/$multiarch/libmq\.so\.2 " <<<"$(ldd "$TMP/user/api_c")" ||
	fail "api_c does not load the packaged libmq.so.2: $(ldd "$TMP/user/api_c")"
! grep -qF libmq <<<"$(ldd "$TMP/user/api_static")" || fail "api_static (libmq::static) still loads libmq.so"
grep -q '(C++)' <("$TMP/user/api_cxx") || fail "api_cxx was not compiled as C++"

# --- the installed broker, started by hand as the unit starts it ----------------
# (user mqbroker, group mq, the options of /etc/default/mqbroker) on the test's
# own queue and port, so that it never touches a queue in use.
# shellcheck disable=SC1091
MQBROKER_OPTS=$(. /etc/default/mqbroker && echo "$MQBROKER_OPTS")
AS_USER=(--reuid mqbroker --regid mq --init-groups)
# shellcheck disable=SC2086 # MQBROKER_OPTS are words, as in the unit
start_broker "$TMP/broker.log" $MQBROKER_OPTS -n "$Q" -l 127.0.0.1:0
[ "$(stat -c '%U %G %a' "/dev/shm$Q")" = "mqbroker mq 660" ] ||
	fail "the service's queue is $(stat -c '%U %G %a' "/dev/shm$Q"), want mqbroker mq 660"
http GET /
[ "$CODE" = 200 ] && cmp -s "$TMP/body" "$src/web/index.html" ||
	fail "GET / is not web/index.html, built in (status $CODE)"

# A user in the group mq produces and consumes; one outside it is refused.
member=(setpriv --reuid nobody --regid nogroup --groups "$(getent group mq | cut -d: -f3)")
stranger=(setpriv --reuid nobody --regid nogroup --clear-groups)
MQ_QUEUE=$Q "${member[@]}" "$TMP/producer" hello "wide world" 2>"$TMP/prod.err" ||
	fail "producer (pkg-config build, user nobody in mq) failed: $(cat "$TMP/prod.err")"
MQ_QUEUE=$Q "${member[@]}" "$TMP/examples/build/producer" third 2>"$TMP/prod.err" ||
	fail "producer (find_package build) failed: $(cat "$TMP/prod.err")"
MQ_QUEUE=$Q "${member[@]}" /usr/bin/mqctl stats --json >"$TMP/stats.json" 2>&1 || fail "mqctl stats: $(cat "$TMP/stats.json")"
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["depth"] == 3, d' "$TMP/stats.json" ||
	fail "mqctl stats --json: $(cat "$TMP/stats.json")"
MQ_QUEUE=$Q timeout 20 "${member[@]}" "$TMP/consumer" >"$TMP/cons.out" 2>"$TMP/cons.err" ||
	fail "consumer failed: $(cat "$TMP/cons.err")"
[ "$(cat "$TMP/cons.out")" = "$(printf 'hello\nwide world\nthird')" ] || fail "consumer printed: $(cat "$TMP/cons.out")"
RC=0
MQ_QUEUE=$Q "${stranger[@]}" "$TMP/producer" nope 2>"$TMP/stranger.err" || RC=$?
[ "$RC" = 1 ] && grep -qi 'permission denied' "$TMP/stranger.err" && grep -qF "$Q" "$TMP/stranger.err" ||
	fail "a user outside mq: status $RC, '$(cat "$TMP/stranger.err")' (want 1 and permission denied on $Q)"
status_expect name="\"$Q\"" enqueued_total=3 dequeued_total=3 depth=0
MQ_QUEUE=$Q "${member[@]}" "$TMP/examples/build/producer" "stays queued" || fail "producer (last message) failed"
stop_broker "$BPID" TERM "$TMP/broker.log"

# --- the service under systemd ------------------------------------------------
# mqbroker.service as installed, under real systemd: the machine's own when
# systemd is PID 1 (the postinst started it with the defaults), else a private
# systemd on an overlay of / (private_systemd.sh) with the test's options in
# its /etc/default/mqbroker. Checked: the options are read, the hardening is in
# force and still lets the queue be shared through /dev/shm, Restart=on-failure
# brings the broker back with the messages, a stop leaves the queue usable.
# shellcheck source=private_systemd.sh
source "$src/tests/packaging/private_systemd.sh"
if [ -d /run/systemd/system ]; then
	SQ=/messagequeue SPORT=8080
	sd() { "$@"; }
	systemctl is-active --quiet mqbroker || fail "mqbroker.service is not active after install: $(systemctl status mqbroker 2>&1 | tail -n 20)"
else
	SQ=$Q-svc
	SPORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	CLEANUPS=(psd_stop "${CLEANUPS[@]}" "rm -f /dev/shm$SQ")
	if psd_start "$TMP/psd" "MQBROKER_OPTS=\"--name $SQ --capacity 64 --listen 127.0.0.1:$SPORT\""; then
		sd() { psd "$@"; }
		sd systemctl start mqbroker.service || fail "systemctl start mqbroker: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	else
		echo "note: $TEST: the unit was not run under systemd (no systemd here and no private one: $PSD_WHY)" >&3
		SQ=
	fi
fi
if [ -n "$SQ" ]; then
	sd systemctl is-active --quiet mqbroker || fail "mqbroker.service is not active: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	BPORT=$SPORT
	# serving: the port answers (Type=exec returns before the broker listens)
	serving() { curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$SPORT/healthz"; }
	wait_until 10 serving || fail "the service does not answer on 127.0.0.1:$SPORT: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	status_expect name="\"$SQ\""
	[ "$(stat -c '%U %G %a' "/dev/shm$SQ")" = "mqbroker mq 660" ] ||
		fail "the service's queue is $(stat -c '%U %G %a' "/dev/shm$SQ"), want mqbroker mq 660"
	main=$(sd systemctl show -P MainPID mqbroker)
	sd cat "/proc/$main/status" >"$TMP/svc-status"
	for want in 'NoNewPrivs:.1' 'Seccomp:.2' 'CapBnd:.0000000000000000' "Uid:.$(id -u mqbroker)[[:space:]].*" "Gid:.$(getent group mq | cut -d: -f3)[[:space:]].*"; do
		grep -qx "$want" "$TMP/svc-status" || fail "the service's process lacks $want: $(cat "$TMP/svc-status")"
	done
	sd awk '$5 == "/" && $6 ~ /^ro/ {f = 1} END {exit !f}' "/proc/$main/mountinfo" ||
		fail "ProtectSystem=strict: / is not read-only for the service"
	before=$(status_get 'd["queues"][0]["enqueued_total"]')
	MQ_QUEUE=$SQ "${member[@]}" "$TMP/producer" one two 2>"$TMP/prod.err" || fail "producer to the service's queue: $(cat "$TMP/prod.err")"
	status_expect enqueued_total=$((before + 2))
	# Restart=on-failure: SIGKILL the broker; systemd starts a new one, which
	# adopts the queue with its messages.
	sd systemctl kill --kill-who=main --signal=KILL mqbroker
	wait_until 15 eval '[ "$(sd systemctl show -P NRestarts mqbroker)" = 1 ] && m=$(sd systemctl show -P MainPID mqbroker) && [ "$m" != 0 ] && [ "$m" != "$main" ]' ||
		fail "mqbroker.service was not restarted after SIGKILL: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	wait_until 10 serving || fail "the restarted service does not answer: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	status_expect enqueued_total=$((before + 2))
	# A stopped service leaves the queue and its messages to the clients.
	sd systemctl stop mqbroker
	[ "$(sd systemctl is-active mqbroker)" = inactive ] || fail "mqbroker.service did not stop: $(sd systemctl status mqbroker 2>&1 | tail -n 20)"
	[ -e "/dev/shm$SQ" ] || fail "stopping the service removed its queue $SQ"
	if [ "$SQ" != /messagequeue ]; then
		MQ_QUEUE=$SQ timeout 20 "${member[@]}" "$TMP/consumer" >"$TMP/svc-cons.out" 2>&1 || fail "consumer after the stop: $(cat "$TMP/svc-cons.out")"
		[ "$(cat "$TMP/svc-cons.out")" = "$(printf 'one\ntwo')" ] || fail "consumer after the stop printed: $(cat "$TMP/svc-cons.out")"
		psd_stop
		rm -f "/dev/shm$SQ"
	else
		sd systemctl start mqbroker
	fi
fi

# --- mqbridge.service under systemd ---------------------------------------------
# The same two ways: the machine's systemd (the postinst started the unit), or
# a private one on a fresh overlay.
if [ "$BRIDGE" = 1 ]; then
	if [ -d /run/systemd/system ]; then
		sd() { "$@"; }
		bridge_service 0
	else
		CLEANUPS=(psd_stop "${CLEANUPS[@]}") # (also after a start that failed half way)
		if psd_start "$TMP/psd-bridge" "$(cat /etc/default/mqbroker)"; then
			sd() { psd "$@"; }
			bridge_service 1
			psd_stop
		else
			echo "note: $TEST: mqbridge.service was not run under systemd (no systemd here and no private one: $PSD_WHY)" >&3
		fi
	fi
fi

# --- remove: the programs go, the configuration and the queue stay -------------
echo "# keep me" >>/etc/default/mqbroker
[ "$BRIDGE" = 0 ] || echo "# keep me" >>/etc/default/mqbridge
apt-get remove -y -q "${PACKAGES[@]}" >"$TMP/apt-remove.log" 2>&1 || fail "apt-get remove failed: $(cat "$TMP/apt-remove.log")"
[ "$(dpkg-query -W -f='${db:Status-Abbrev}' mqbroker 2>/dev/null)" = "rc " ] ||
	fail "mqbroker after remove: '$(dpkg-query -W -f='${db:Status-Abbrev}' mqbroker 2>&1)' (want rc: config files)"
for p in libmq2 libmq-dev; do
	! dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^[ir]' || fail "$p still known to dpkg after remove"
done
left=$(cat "$TMP"/files-* | grep -vxE '/etc/default/(mqbroker|mqbridge)' | while read -r f; do [ ! -e "$f" ] && [ ! -L "$f" ] || echo "$f"; done)
[ -z "$left" ] || fail "files left after apt-get remove: $left"
grep -qx '# keep me' /etc/default/mqbroker || fail "/etc/default/mqbroker lost the administrator's change on remove"
[ -e "/dev/shm$Q" ] || fail "remove deleted the queue $Q and its message (only purge may)"
! pgrep -u mqbroker >/dev/null || fail "processes of mqbroker still run after remove: $(pgrep -a -u mqbroker)"
[ "$BRIDGE" = 0 ] || bridge_removed remove

# --- purge: the configuration and the service's queues go too ------------------
purge=(mqbroker)
[ "$BRIDGE" = 0 ] || purge+=(mqbridge)
apt-get purge -y -q "${purge[@]}" >"$TMP/apt-purge.log" 2>&1 || fail "apt-get purge failed: $(cat "$TMP/apt-purge.log")"
! dpkg-query -W -f='${db:Status-Abbrev}' mqbroker 2>/dev/null | grep -q '^[ir]' || fail "mqbroker still known to dpkg after purge"
[ ! -e /etc/default/mqbroker ] || fail "/etc/default/mqbroker left after purge"
[ ! -e "/dev/shm$Q" ] || fail "the service's queue $Q left after purge"
[ ! -e /etc/systemd/system/mqbroker.service ] && [ ! -e /etc/systemd/system/multi-user.target.wants/mqbroker.service ] ||
	fail "systemd links of mqbroker.service left after purge"
# The user and the group stay (files elsewhere may belong to them), as Debian does.
getent passwd mqbroker >/dev/null && getent group mq >/dev/null || fail "purge removed the user mqbroker or the group mq"
[ "$BRIDGE" = 0 ] || bridge_removed purge
echo "PASS: $TEST (packages $version; lintian: $(grep -cE '^W:' "$TMP/lintian.txt") explained warnings, 0 errors)"
