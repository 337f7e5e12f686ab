# private_systemd.sh - boot a private systemd, to run the installed
# mqbroker.service under real systemd on a machine where systemd is not PID 1
# (a container). Sourced by test_packages.sh for psd_start, psd and psd_stop;
# psd_start runs this file again as PID 1 of new PID, mount, cgroup and UTS
# namespaces (argument __inner), where it becomes systemd.
# shellcheck shell=bash
#
# The private systemd's / is a throw-away overlay of the host's /, so it sees
# the installed packages, the user mqbroker and the group mq, and nothing it
# writes reaches the host; /dev is private except /dev/shm, which is the
# host's, so the service's queue is the one the host's clients use. The
# network is the host's (the service listens on the host's loopback).
# Needs root with CAP_SYS_ADMIN, overlayfs, and cgroup2 (at /sys/fs/cgroup or,
# on a hybrid host, /sys/fs/cgroup/unified).

if [ "${1:-}" = __inner ]; then
	# PID 1 of the new namespaces. PSD_WORK: a directory for the private
	# tmpfs; PSD_CONSOLE: the log file; PSD_DEFAULT: the contents of
	# /etc/default/mqbroker inside.
	set -e
	N=$PSD_WORK/root
	mount --make-rprivate /
	mount -t tmpfs -o mode=755 psd "$PSD_WORK"
	mkdir "$PSD_WORK"/{upper,work,root}
	mount -t overlay psd -o lowerdir=/,upperdir="$PSD_WORK/upper",workdir="$PSD_WORK/work" "$N"
	mount -t proc -o nosuid,nodev,noexec proc "$N/proc"
	mount --bind "$N/proc/sys" "$N/proc/sys" # shared with the host kernel: read-only
	mount -o remount,bind,ro "$N/proc/sys"
	mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$N/sys" # read-only: udev & co. skip
	mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$N/sys/fs/cgroup"
	mount -t tmpfs -o mode=755,nosuid psd-dev "$N/dev"
	for d in null zero full random urandom tty; do
		touch "$N/dev/$d"
		mount --bind "/dev/$d" "$N/dev/$d"
	done
	mkdir -p "$N/dev/shm" "$N/dev/pts"
	mount --bind /dev/shm "$N/dev/shm"
	touch "$N/dev/console"
	mount --bind "$PSD_CONSOLE" "$N/dev/console"
	mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$N/dev/pts"
	ln -s pts/ptmx "$N/dev/ptmx"
	ln -s /proc/self/fd "$N/dev/fd"
	mount -t tmpfs -o mode=755,nosuid,nodev psd-run "$N/run"
	mount -t tmpfs -o mode=1777,nosuid,nodev psd-tmp "$N/tmp"
	mkdir -p "$N/run/systemd/system"
	# A minimal boot target, and no timers (apt-daily and the like).
	printf '[Unit]\nDescription=private systemd for tests\nDefaultDependencies=no\nAllowIsolate=yes\n' \
		>"$N/run/systemd/system/psd-idle.target"
	ln -s /dev/null "$N/run/systemd/system/timers.target"
	printf '%s\n' "$PSD_DEFAULT" >"$N/etc/default/mqbroker"
	cd "$N"
	mkdir -p .psd-oldroot
	pivot_root . .psd-oldroot
	umount -l /.psd-oldroot
	rmdir /.psd-oldroot
	# container=: systemd's container mode; no CAP_SYS_MODULE: the kernel is shared.
	exec env -i container=psd PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		setpriv --bounding-set -sys_module -- \
		/lib/systemd/systemd --system --unit=psd-idle.target --log-target=journal --show-status=no
fi

PSD_PID=    # systemd, as the host sees it
PSD_UNSHARE=
PSD_CG=

# psd_start WORKDIR DEFAULT: boot it with /etc/default/mqbroker = DEFAULT.
# Returns 1 (with the reason in PSD_WHY) if this machine cannot.
psd_start() {
	local cg2=/sys/fs/cgroup state i
	[ -d /sys/fs/cgroup/unified ] && cg2=/sys/fs/cgroup/unified
	PSD_WHY=
	grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
	grep -qw overlay /proc/filesystems || { PSD_WHY="no overlayfs"; return 1; }
	[ "$(stat -f -c %T "$cg2" 2>/dev/null)" = cgroup2fs ] || { PSD_WHY="no cgroup2 at $cg2"; return 1; }
	mkdir -p "$1/mnt"
	PSD_CONSOLE=$1/console.log
	: >"$PSD_CONSOLE"
	PSD_CG=$cg2/mqbroker-psd-$$
	mkdir "$PSD_CG" || { PSD_WHY="cannot create the cgroup $PSD_CG"; return 1; }
	(
		echo "$BASHPID" >"$PSD_CG/cgroup.procs"
		exec unshare --pid --fork --kill-child --mount --propagation private --cgroup --uts \
			--mount-proc -- env PSD_WORK="$1/mnt" PSD_CONSOLE="$PSD_CONSOLE" PSD_DEFAULT="$2" \
			bash "${BASH_SOURCE[0]}" __inner
	) </dev/null >"$1/unshare.log" 2>&1 &
	PSD_UNSHARE=$!
	for i in $(seq 100); do
		PSD_PID=$(cat /proc/"$PSD_UNSHARE"/task/*/children 2>/dev/null | awk '{print $1}')
		[ -n "$PSD_PID" ] && [ "$(cat /proc/"$PSD_PID"/comm 2>/dev/null)" = systemd ] && break
		PSD_PID=
		kill -0 "$PSD_UNSHARE" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$PSD_PID" ] || { PSD_WHY="systemd did not start: $(cat "$1/unshare.log" "$PSD_CONSOLE")"; return 1; }
	for i in $(seq 100); do
		state=$(psd systemctl is-system-running 2>/dev/null) || true
		case $state in running | degraded) return 0 ;; esac
		sleep 0.1
	done
	PSD_WHY="the private systemd is '$state' after 10 s: $(cat "$PSD_CONSOLE")"
	return 1
}

# psd COMMAND...: run COMMAND inside (systemctl, cat /proc/PID/status, ...).
psd() {
	nsenter -t "$PSD_PID" -m -p -C -u -- "$@"
}

# psd_stop: power it off (SIGKILL after 10 s) and remove its cgroups.
psd_stop() {
	local i
	if [ -n "$PSD_PID" ] && kill -0 "$PSD_PID" 2>/dev/null; then
		kill -RTMIN+4 "$PSD_PID" # poweroff, in container mode
		for i in $(seq 100); do
			kill -0 "$PSD_PID" 2>/dev/null || break
			sleep 0.1
		done
	fi
	if [ -n "$PSD_UNSHARE" ] && kill -0 "$PSD_UNSHARE" 2>/dev/null; then
		kill -KILL "$PSD_UNSHARE" # --kill-child takes the namespace down with it
	fi
	[ -z "$PSD_UNSHARE" ] || wait "$PSD_UNSHARE" 2>/dev/null || true
	[ -z "$PSD_CG" ] || [ ! -d "$PSD_CG" ] || find "$PSD_CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
	PSD_PID= PSD_UNSHARE= PSD_CG=
}
