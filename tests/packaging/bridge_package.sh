# bridge_package.sh - the mqbridge package's part of test_packages.sh; sourced
# by it (its helpers: fail, deb, has, packaged, TMP, CLEANUPS, member, sd, ...),
# not a test. test_packages.sh calls the functions below at the matching
# steps, only when mqbridge was built (pkg-config found libnats): the plain
# build has bridge/mqbridge, and then the package must exist.
#   bridge_metadata   before install: Depends computed from the binary (every
#                     library it loads, adduser), Recommends/Suggests,
#                     conffiles, paths, the unit naming the package's files
#   bridge_installed  after install: the user mqbridge in the group mq,
#                     --help, the man page, systemd-analyze verify
#   bridge_service    the unit under systemd (the machine's, or a private one
#                     from private_systemd.sh): not configured, it is skipped,
#                     not failed; configured against a nats-server started
#                     here, it exports a message of a queue of group mq and
#                     removes nothing in /dev/shm; SIGKILL: restarted; a bad
#                     command line (exit status 2): failed, not restarted
#   bridge_removed    after remove / purge: the configuration kept / gone
# shellcheck shell=bash
# shellcheck disable=SC2154 # src, member, TEST: set by test_packages.sh

bridge_metadata() {
	local d so pkg path owner cache needed unit exec_start env_file scripts
	# Depends: dpkg-shlibdeps' answer for each library the binary loads (its
	# NEEDED entries: libnats, and whatever else it links), never a list.
	dpkg-deb -x "$(deb mqbridge)" "$TMP/unpacked-mqbridge"
	needed=$(objdump -p "$TMP/unpacked-mqbridge/usr/sbin/mqbridge" | awk '$1 == "NEEDED" {print $2}')
	grep -q '^libnats\.so' <<<"$needed" || fail "mqbridge does not load libnats: $needed"
	cache=$(ldconfig -p) # (captured: see has() on grep -q in pipes)
	for so in $needed; do
		path=$(awk -v so="$so" '$1 == so {print $NF; exit}' <<<"$cache")
		[ -n "$path" ] || fail "mqbridge loads $so, which is not in the ldconfig cache"
		# (merged /usr: dpkg may know the file under /usr, or behind links)
		owner=$(dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "/usr$path" 2>/dev/null ||
			dpkg-query -S "$(realpath "$path")" 2>/dev/null) || fail "mqbridge loads $path, which no installed package ships"
		pkg=$(head -n 1 <<<"$owner" | cut -d: -f1)
		grep -qE "(^|, )$pkg \(>= [^)]+\)(,|$)" <<<"$(depends mqbridge)" ||
			fail "mqbridge loads $so (package $pkg), not in Depends (with a version): $(depends mqbridge)"
	done
	grep -qE '(^|, )adduser(,|$)' <<<"$(depends mqbridge)" || fail "mqbridge Depends lacks adduser: $(depends mqbridge)"
	grep -qw nats-server <<<"$(dpkg-deb -f "$(deb mqbridge)" Recommends Suggests)" ||
		fail "mqbridge neither recommends nor suggests nats-server: $(dpkg-deb -f "$(deb mqbridge)" Recommends Suggests)"
	[ "$(dpkg-deb -f "$(deb mqbridge)" Section)" = net ] || fail "mqbridge Section: $(dpkg-deb -f "$(deb mqbridge)" Section)"
	grep -q 'NATS JetStream' <<<"$(dpkg-deb -f "$(deb mqbridge)" Description)" ||
		fail "mqbridge Description: $(dpkg-deb -f "$(deb mqbridge)" Description)"
	[ "$(dpkg-deb --ctrl-tarfile "$(deb mqbridge)" | tar -xO ./conffiles)" = /etc/default/mqbridge ] ||
		fail "mqbridge conffiles: $(dpkg-deb --ctrl-tarfile "$(deb mqbridge)" | tar -xO ./conffiles)"
	for d in usr/sbin/mqbridge lib/systemd/system/mqbridge.service etc/default/mqbridge \
		usr/share/man/man8/mqbridge.8.gz usr/share/doc/mqbridge/copyright \
		usr/share/doc/mqbridge/changelog.Debian.gz; do
		has mqbridge "$d"
	done
	# The unit runs a binary of this package with this package's defaults file.
	unit=$(packaged mqbridge lib/systemd/system/mqbridge.service)
	exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' <<<"$unit")
	[ "$exec_start" = /usr/sbin/mqbridge ] || fail "mqbridge.service: ExecStart=$exec_start"
	dpkg-deb -c "$(deb mqbridge)" | awk -v f=".$exec_start" '$6 == f && $1 ~ /^-..x/ {ok = 1} END {exit !ok}' ||
		fail "mqbridge.service's ExecStart=$exec_start is not an executable of the mqbridge package"
	grep -qxF 'ExecStart=/usr/sbin/mqbridge $MQBRIDGE_OPTS' <<<"$unit" ||
		fail "mqbridge.service does not run the options of MQBRIDGE_OPTS: $(grep ExecStart <<<"$unit")"
	env_file=$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' <<<"$unit")
	[ "$env_file" = /etc/default/mqbridge ] || fail "mqbridge.service's EnvironmentFile is $env_file"
	grep -qF "runs $exec_start " <(packaged mqbridge etc/default/mqbridge) ||
		fail "/etc/default/mqbridge does not name $exec_start"
	for d in Type=exec User=mqbridge Group=mq Restart=on-failure RemoveIPC=no ReadWritePaths=/dev/shm \
		Wants=network-online.target; do
		grep -qx "$d" <<<"$unit" || fail "mqbridge.service lacks $d"
	done
	# (ordered after a local nats-server, never requiring one)
	grep -qE '^After=.*nats-server\.service' <<<"$unit" || fail "mqbridge.service is not ordered after nats-server.service"
	! grep -qE '^(Requires|Wants|BindsTo|Requisite)=.*nats-server' <<<"$unit" ||
		fail "mqbridge.service requires nats-server.service"
	# Nothing the package ships may remove queues: no /dev/shm in its scripts.
	scripts=$(dpkg-deb --ctrl-tarfile "$(deb mqbridge)" | tar -xO)
	! grep -v '^[[:space:]]*#' <<<"$scripts" | grep '/dev/shm' || fail "a maintainer script of mqbridge touches /dev/shm"
}

bridge_installed() {
	local uid gid home shell where
	[ -x /usr/sbin/mqbridge ] || fail "no /usr/sbin/mqbridge after install"
	/usr/sbin/mqbridge --help >"$TMP/bridge-help.txt" 2>&1 || fail "mqbridge --help: $(cat "$TMP/bridge-help.txt")"
	grep -q -- '--nats URL' "$TMP/bridge-help.txt" || fail "mqbridge --help: $(cat "$TMP/bridge-help.txt")"
	# The service user: a system user whose primary group is mq, no login.
	IFS=: read -r _ _ uid gid _ home shell < <(getent passwd mqbridge) || fail "no user mqbridge after install"
	[ "$uid" -lt 1000 ] || fail "mqbridge is not a system user (uid $uid)"
	[ "$gid" = "$(getent group mq | cut -d: -f3)" ] || fail "mqbridge's primary group is not mq"
	[ "$shell" = /usr/sbin/nologin ] && [ "$home" = /nonexistent ] || fail "mqbridge has shell $shell, home $home"
	[ "$uid" != "$(id -u mqbroker)" ] || fail "mqbridge and mqbroker are one user (the bridge could remove the broker's queues)"
	if command -v man >/dev/null; then
		where=$(man -w 8 mqbridge 2>&1) || fail "man -w 8 mqbridge: $where"
		[ "$where" = /usr/share/man/man8/mqbridge.8.gz ] || fail "man -w 8 mqbridge: $where"
		LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$where" \
			>/dev/null 2>"$TMP/man.err" || fail "man -l $where: $(cat "$TMP/man.err")"
		[ ! -s "$TMP/man.err" ] || fail "man warns about the installed mqbridge(8): $(cat "$TMP/man.err")"
	fi
	systemd-analyze verify /lib/systemd/system/mqbridge.service >"$TMP/verify-bridge.txt" 2>&1 ||
		fail "systemd-analyze verify mqbridge.service: $(cat "$TMP/verify-bridge.txt")"
	! grep -i 'mqbridge' "$TMP/verify-bridge.txt" || fail "systemd-analyze verify warns about mqbridge.service: $(cat "$TMP/verify-bridge.txt")"
	grep -qx 'MQBRIDGE_OPTS=""' /etc/default/mqbridge || fail "/etc/default/mqbridge sets MQBRIDGE_OPTS: $(grep MQBRIDGE_OPTS= /etc/default/mqbridge)"
	# Unconfigured, the bridge itself refuses to run (status 2): hence the
	# unit's condition, checked under systemd below.
	RC=0
	/usr/sbin/mqbridge >"$TMP/bridge-bare.txt" 2>&1 || RC=$?
	[ "$RC" = 2 ] || fail "mqbridge without options: status $RC (want 2): $(cat "$TMP/bridge-bare.txt")"
}

# bridge_unit_state: "ActiveState Result ConditionResult NRestarts" of the unit.
bridge_unit_state() {
	local p out=()
	for p in ActiveState Result ConditionResult NRestarts; do
		out+=("$(sd systemctl show -P "$p" mqbridge.service)")
	done
	echo "${out[*]}"
}

# bridge_status: the unit's status and log, for failure messages.
bridge_status() {
	sd systemctl status --no-pager mqbridge.service 2>&1 | tail -n 20
	sd journalctl --no-pager -u mqbridge.service 2>/dev/null | tail -n 20 || true
}

# bridge_write_default CONTENT: /etc/default/mqbridge as the service sees it.
bridge_write_default() {
	sd sh -c 'printf "%s\n" "$1" >/etc/default/mqbridge' sh "$1"
}

# bridge_depth, bridge_queue_empty: the depth of the queue BRIDGE_Q; whether 0.
bridge_depth() {
	MQ_QUEUE=$BRIDGE_Q "${member[@]}" /usr/bin/mqctl stats --json |
		"$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["depth"])'
}
bridge_queue_empty() {
	[ "$(bridge_depth)" = 0 ]
}

# bridge_restarted: systemd restarted the unit once, with another process
# than BRIDGE_MAIN.
bridge_restarted() {
	local m
	[ "$(sd systemctl show -P NRestarts mqbridge.service)" = 1 ] &&
		m=$(sd systemctl show -P MainPID mqbridge.service) && [ "$m" != 0 ] && [ "$m" != "$BRIDGE_MAIN" ]
}

# bridge_exited_2: the unit's process exited with status 2.
bridge_exited_2() {
	[ "$(sd systemctl show -P ExecMainStatus mqbridge.service)" = 2 ]
}

bridge_service() {
	local private=$1 stream subj bq state hport body fwd
	# Installed without configuration: enabled; started as the postinst
	# starts it (on a machine running systemd it did so already; again here,
	# whatever a policy-rc.d allowed), the unit is skipped by its condition:
	# inactive, not failed, never restarted.
	[ "$(sd systemctl is-enabled mqbridge.service)" = enabled ] ||
		fail "mqbridge.service is not enabled after install: $(sd systemctl is-enabled mqbridge.service 2>&1)"
	if [ "$private" = 0 ]; then
		! systemctl is-failed --quiet mqbridge.service || fail "the postinst left mqbridge.service failed: $(bridge_status)"
	fi
	sd systemctl start mqbridge.service || fail "systemctl start mqbridge (not configured) failed: $(bridge_status)"
	state=$(bridge_unit_state)
	[ "$state" = "inactive exec-condition no 0" ] ||
		fail "mqbridge.service not configured: '$state' (want inactive exec-condition no 0: skipped, not failed): $(bridge_status)"
	! sd systemctl is-failed --quiet mqbridge.service || fail "mqbridge.service is failed after install: $(bridge_status)"

	if ! command -v nats-server >/dev/null; then
		echo "note: $TEST: mqbridge.service was not run configured (nats-server is not installed)" >&3
		return 0
	fi
	# A nats-server of the test's own (free loopback ports, store in TMP),
	# a queue of the group mq served by the installed broker as the user
	# mqbroker, and the bridge exporting it.
	# shellcheck source=../bridge/nats.sh
	source "$src/tests/bridge/nats.sh"
	start_nats
	bq=$Q-bridge stream=MQPKG$$ subj=pkg.$$ hport=$(free_port)
	start_broker "$TMP/bridge-broker.log" -n "$bq" -c 64 -l 127.0.0.1:0
	[ "$(stat -c '%U %G %a' "/dev/shm$bq")" = "mqbroker mq 660" ] ||
		fail "the bridge's queue is $(stat -c '%U %G %a' "/dev/shm$bq"), want mqbroker mq 660"
	# (localhost: names resolve under the unit's RestrictAddressFamilies; the
	# HTTP server on a free port, never one a bridge of the machine may use)
	bridge_write_default "MQBRIDGE_OPTS=\"--nats nats://localhost:$NPORT --stream $stream --export $bq=$subj --listen 127.0.0.1:$hport\""
	CLEANUPS=("sd systemctl stop mqbridge.service" "${CLEANUPS[@]}")
	sd systemctl restart mqbridge.service || fail "systemctl restart mqbridge: $(bridge_status)"
	MQ_QUEUE=$bq "${member[@]}" /usr/bin/mqctl send "across the bridge" >"$TMP/bridge-send.log" 2>&1 ||
		fail "mqctl send to $bq: $(cat "$TMP/bridge-send.log")"
	wait_until 20 at_least 1 stream_msgs "$stream" ||
		fail "the service did not export the message into stream $stream (it holds '$(stream_msgs "$stream")'): $(bridge_status)"
	[ "$(stream_msgs "$stream")" = 1 ] || fail "stream $stream holds $(stream_msgs "$stream") messages, want 1"
	BRIDGE_Q=$bq
	wait_until 10 bridge_queue_empty || fail "the exported message is still in $bq (depth $(bridge_depth))"
	sd systemctl is-active --quiet mqbridge.service || fail "mqbridge.service is not active: $(bridge_status)"
	# Its HTTP endpoints, from the hardened unit: healthy, the message counted.
	wait_until 10 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$hport/healthz" ||
		fail "GET /healthz of the service on 127.0.0.1:$hport: not 200: $(bridge_status)"
	body=$(curl -sf --max-time 5 "http://127.0.0.1:$hport/status") || fail "GET /status of the service failed"
	fwd=$("$PYTHON" -c 'import json, sys; print(json.loads(sys.argv[1])["routes"][0]["forwarded_total"])' "$body") ||
		fail "GET /status is not the bridge's JSON: $body"
	[ "$fwd" = 1 ] || fail "GET /status: the route forwarded $fwd messages, want 1: $body"
	body=$(curl -sf --max-time 5 "http://127.0.0.1:$hport/metrics") || fail "GET /metrics of the service failed"
	grep -q '^mq_bridge_messages_forwarded_total{.*} 1$' <<<"$body" ||
		fail "GET /metrics does not count the message: $(grep forwarded <<<"$body")"
	BRIDGE_MAIN=$(sd systemctl show -P MainPID mqbridge.service)
	sd cat "/proc/$BRIDGE_MAIN/status" >"$TMP/bridge-svc-status"
	for want in 'NoNewPrivs:.1' 'Seccomp:.2' 'CapBnd:.0000000000000000' "Uid:.$(id -u mqbridge)[[:space:]].*" \
		"Gid:.$(getent group mq | cut -d: -f3)[[:space:]].*"; do
		grep -qx "$want" "$TMP/bridge-svc-status" || fail "the bridge's process lacks $want: $(cat "$TMP/bridge-svc-status")"
	done
	# Restart=on-failure: SIGKILL it; systemd starts another (RestartSec=5s),
	# which exports the next message; the stream holds each once.
	sd systemctl kill --kill-who=main --signal=KILL mqbridge.service
	wait_until 20 bridge_restarted ||
		fail "mqbridge.service was not restarted after SIGKILL: $(bridge_status)"
	MQ_QUEUE=$bq "${member[@]}" /usr/bin/mqctl send "after the restart" >"$TMP/bridge-send.log" 2>&1 ||
		fail "mqctl send to $bq: $(cat "$TMP/bridge-send.log")"
	wait_until 20 at_least 2 stream_msgs "$stream" || fail "the restarted service did not export: $(bridge_status)"
	sleep 1
	[ "$(stream_msgs "$stream")" = 2 ] || fail "stream $stream holds $(stream_msgs "$stream") messages, want 2"
	# A clean stop: inactive (not failed), and the queue is where it was.
	sd systemctl stop mqbridge.service
	state=$(bridge_unit_state)
	[ "${state%% *}" = inactive ] || fail "mqbridge.service after stop: $state: $(bridge_status)"
	[ "$(stat -c '%U %G %a' "/dev/shm$bq" 2>&1)" = "mqbroker mq 660" ] ||
		fail "after the bridge's stop, $bq is $(stat -c '%U %G %a' "/dev/shm$bq" 2>&1)"
	# A bad command line (no route: status 2) fails the unit, and is not
	# restarted (RestartPreventExitStatus=2).
	bridge_write_default "MQBRIDGE_OPTS=\"--nats nats://localhost:$NPORT\""
	sd systemctl reset-failed mqbridge.service 2>/dev/null || true
	sd systemctl start mqbridge.service 2>/dev/null || true
	wait_until 10 bridge_exited_2 ||
		fail "mqbridge.service with no route: exit status $(sd systemctl show -P ExecMainStatus mqbridge.service), want 2: $(bridge_status)"
	sleep 7 # past RestartSec
	state=$(bridge_unit_state)
	[ "$state" = "failed exit-code yes 0" ] ||
		fail "mqbridge.service with a bad command line: '$state' (want failed exit-code yes 0: not restarted): $(bridge_status)"
	sd systemctl reset-failed mqbridge.service
	bridge_write_default 'MQBRIDGE_OPTS=""'
	stop_broker "$BPID" TERM "$TMP/bridge-broker.log"
	rm -f "/dev/shm$bq"
	echo "note: $TEST: mqbridge.service exported 2 messages to nats-server under systemd (SIGKILL: restarted)" >&3
}

# bridge_removed STAGE: remove (configuration kept) or purge (gone; the user stays).
bridge_removed() {
	if [ "$1" = remove ]; then
		[ "$(dpkg-query -W -f='${db:Status-Abbrev}' mqbridge 2>/dev/null)" = "rc " ] ||
			fail "mqbridge after remove: '$(dpkg-query -W -f='${db:Status-Abbrev}' mqbridge 2>&1)' (want rc: config files)"
		grep -qx '# keep me' /etc/default/mqbridge || fail "/etc/default/mqbridge lost the administrator's change on remove"
		! pgrep -u mqbridge >/dev/null || fail "processes of mqbridge still run after remove: $(pgrep -a -u mqbridge)"
	else
		! dpkg-query -W -f='${db:Status-Abbrev}' mqbridge 2>/dev/null | grep -q '^[ir]' || fail "mqbridge still known to dpkg after purge"
		[ ! -e /etc/default/mqbridge ] || fail "/etc/default/mqbridge left after purge"
		[ ! -e /etc/systemd/system/mqbridge.service ] && [ ! -e /etc/systemd/system/multi-user.target.wants/mqbridge.service ] ||
			fail "systemd links of mqbridge.service left after purge"
		getent passwd mqbridge >/dev/null || fail "purge removed the user mqbridge"
	fi
}
