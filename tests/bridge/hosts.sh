# hosts.sh - "hosts" on one machine for the mqbridge tests (twohost.sh, fanin.sh): each a mount namespace with its own tmpfs on /dev/shm; not a test.
# shellcheck shell=bash
#
# Sourced after ../broker/common.sh and nats.sh. A host is an anchor process
# (unshare --mount, a fresh tmpfs mounted on /dev/shm, then sleep) and every
# process of the host is started inside its mount namespace with nsenter, so
# the hosts share the network (loopback, nats-server) but not their queues.
# The trap kills every process found in a host's namespace (not only those
# started here), after which the kernel frees the namespace and its tmpfs.
# Every process started here dies with the test script (PR_SET_PDEATHSIG).

HOSTS=() # the hosts' names, in the order host_start made them

# need_hosts: exit 77 (skipped), saying why, unless this runs as root and can
# make a mount namespace with a tmpfs on /dev/shm.
need_hosts() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: $TEST: needs root (a mount namespace and a tmpfs on /dev/shm per host)"
		exit 77
	fi
	local tool
	for tool in unshare nsenter mount setpriv; do
		if ! command -v "$tool" >/dev/null; then
			echo "SKIP: $TEST: needs '$tool' (Debian: apt-get install util-linux mount)"
			exit 77
		fi
	done
	if ! unshare --mount --propagation private \
		sh -c 'mount -t tmpfs -o size=1m tmpfs /dev/shm' >"$TMP/unshare.err" 2>&1; then
		echo "SKIP: $TEST: cannot mount a tmpfs on /dev/shm in a new mount namespace: $(cat "$TMP/unshare.err")"
		exit 77
	fi
}

# host_start NAME SIZE: make host NAME (a tmpfs of SIZE, e.g. 64m, on its
# /dev/shm). Sets HOST_NAME (the anchor's pid) and MNTNS_NAME (the namespace,
# as /proc/PID/ns/mnt reads: "mnt:[INODE]").
host_start() {
	local name=$1 size=$2 pid
	: >"$TMP/host-$name.out"
	setpriv --pdeathsig KILL unshare --mount --propagation private sh -c \
		"mount -t tmpfs -o size=$size,mode=1777 tmpfs /dev/shm && echo ready && exec sleep infinity" \
		>"$TMP/host-$name.out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_until 10 grep -qx ready "$TMP/host-$name.out" ||
		fail "host $name: no mount namespace with a tmpfs on /dev/shm: $(cat "$TMP/host-$name.out")"
	printf -v "HOST_$name" '%s' "$pid"
	printf -v "MNTNS_$name" '%s' "$(readlink "/proc/$pid/ns/mnt")"
	HOSTS+=("$name")
	CLEANUPS+=("host_kill_all $name")
}

# host_pids NAME: the pids of every process in host NAME's mount namespace.
host_pids() {
	local ns="MNTNS_$1" p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" != "${!ns}" ] || echo "${p#/proc/}"
	done
}

# host_kill_all NAME: kill -9 every process of host NAME and wait (10 s at
# most) until none is left: the namespace, and its tmpfs, are gone then.
host_kill_all() {
	local pids
	mapfile -t pids < <(host_pids "$1")
	[ "${#pids[@]}" -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null
	wait_until 10 host_empty "$1" || echo "FAIL: $TEST: host $1 keeps processes: $(host_pids "$1")" >&3
}
host_empty() {
	[ -z "$(host_pids "$1")" ]
}

# host_sh NAME COMMAND...: run COMMAND in host NAME, in the foreground.
host_sh() {
	local anchor="HOST_$1"
	shift
	nsenter -t "${!anchor}" -m -- "$@"
}

# host_bg VAR NAME COMMAND...: start COMMAND in host NAME in the background
# (remembered for the trap, dying with this script); its pid goes to VAR.
host_bg() {
	local var=$1 anchor="HOST_$2"
	shift 2
	setpriv --pdeathsig KILL nsenter -t "${!anchor}" -m -- "$@" &
	PIDS+=("$!")
	printf -v "$var" '%s' "$!"
}

# host_broker NAME LOG ARGS...: run mqbroker ARGS in host NAME with stderr to
# LOG and wait until it serves. Sets BPID (as start_broker does).
host_broker() {
	local name=$1 log=$2
	shift 2
	: >"$log"
	host_bg BPID "$name" "$BROKER" "$@" 2>"$log"
	if ! wait_until 20 grep -q ' on http://.*(pid ' "$log"; then
		fail "host $name: mqbroker $* did not say it serves within 20 s: $(cat "$log")"
	fi
}

# host_bridge VAR NAME LOG ARGS...: run $BRIDGE --nats (ours) --stream
# $STREAM --listen 127.0.0.1:0 ARGS in host NAME (pid in VAR, stderr appended to LOG) and wait
# until it runs all its routes (a new "running" line in LOG).
host_bridge() {
	local var=$1 name=$2 log=$3 before
	shift 3
	before=$(running_lines "$log")
	host_bg "$var" "$name" "$BRIDGE" --nats "nats://127.0.0.1:$NPORT" --stream "$STREAM" \
		--listen 127.0.0.1:0 "$@" 2>>"$log"
	wait_until 20 at_least $((${before:-0} + 1)) running_lines "$log" ||
		fail "host $name: mqbridge $* did not start within 20 s: $(tail -n 20 "$log")"
}

# hosts_private QUEUE: each host's /dev/shm is a file system of its own,
# neither the real one nor another host's; QUEUE is in none of them yet, nor
# in the real /dev/shm.
hosts_private() {
	local name devs dev
	devs=" $(stat -c %d /dev/shm) "
	for name in "${HOSTS[@]}"; do
		dev=$(host_sh "$name" stat -c %d /dev/shm) || fail "host $name: cannot stat its /dev/shm"
		[ "$(host_sh "$name" stat -f -c %T /dev/shm)" = tmpfs ] ||
			fail "host $name: its /dev/shm is no tmpfs"
		case $devs in
		*" $dev "*) fail "host $name: its /dev/shm (device $dev) is not its own (devices:$devs)" ;;
		esac
		devs+="$dev "
		! host_sh "$name" test -e "/dev/shm$1" || fail "host $name: /dev/shm$1 exists already"
	done
	[ ! -e "/dev/shm$1" ] || fail "the real /dev/shm has $1 already"
}

# host_has NAME QUEUE: QUEUE is in host NAME's /dev/shm.
host_has() {
	host_sh "$1" test -e "/dev/shm$2"
}
