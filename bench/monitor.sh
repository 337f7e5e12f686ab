#!/usr/bin/env bash
# monitor.sh - what monitoring costs the queue: a producer/consumer pair (mqbench)
# on a queue served by mqbroker, alone, with /status and /metrics polled at
# ~100 requests/s, and with the broker hammered flat out by wrk; one run.
set -euo pipefail

prog=monitor.sh
rounds=3
seconds=3
rate=100
conns=16
threads=1
pin=0
keep=0

usage() {
	cat <<EOF
Usage: bench/$prog [OPTION]... BUILD_DIR
Measure what monitoring costs the queue (DESIGN.md, Performance: "Monitoring is
free"), in one run, on loopback only:

  1. start BUILD_DIR/broker/mqbroker on a queue of its own (/mqmonitor-PID-N,
     default geometry: 1024 messages of up to 4096 bytes) and a free port on
     127.0.0.1 (--listen 127.0.0.1:0; the port is read from its log);
  2. run the two wrk loads below once each for SECONDS with the queue idle
     (references: the broker's latency when it has the CPUs to itself);
  3. run ROUNDS rounds of three phases, each phase one run of
       BUILD_DIR/bench/mqbench --queue QUEUE --only libmq --workload tput64
                               --seconds SECONDS --reps 1 --json
     (1 producer + 1 consumer process, 64-byte messages, every message checked):
       baseline  the pair alone;
       polled    the pair while wrk -t1 -c1 requests /status and /metrics in
                 turn, paced by a Lua delay() to RATE requests/s;
       flat out  the pair while wrk -tTHREADS -cCONNS requests /status and
                 /metrics in turn as fast as it can;
     the order of the phases rotates from round to round, so no phase always
     runs first or after another; wrk starts just before mqbench and is
     stopped (SIGINT) when mqbench ends, so its figures cover the pair's run;
     halfway through each flat-out phase one curl asks for /status on its own;
  4. print a Markdown report: the pair's msgs/s per phase (median of the
     rounds, and per round), polled / baseline (the target: >= 0.95, i.e.
     monitoring costs less than 5%), the flat-out drop, wrk's requests/s and
     latency p99 (and max) in both wrk phases, non-2xx responses and socket
     errors (both must be 0 for "the broker keeps answering"), the broker's CPU
     time per phase, the references, and anything the broker logged.

Nothing is pinned: mqbench runs with --no-pin, the broker and wrk as they
come, so on a 2-CPU machine the pair, the broker and wrk share the two CPUs
(the report says so). Pinned (mqbench's default: producer on one CPU, consumer
on the other, both spinning), the pair's throughput jumps between modes from
one run to the next (0.6 to 5 M msgs/s seen here, see README), far more than
the 5 % to be measured; unpinned it holds within a few per cent. --pin
measures the pinned pair anyway.

Options:
  --rounds N        rounds of the three phases (default $rounds)
  --seconds S       length of each phase, whole seconds (default $seconds)
  --rate R          requests/s of the polled phase (default $rate)
  --connections C   wrk connections in the flat-out phase (default $conns)
  --threads T       wrk threads in the flat-out phase (default $threads)
  --pin             let mqbench pin the pair (its default) instead of --no-pin
  --keep            keep the work directory (wrk, mqbench and broker logs)
  -h, --help        this text

Needs wrk (apt-get install wrk) and curl (apt-get install curl). Everything it
starts is stopped at exit, the queue is removed from /dev/shm, the Lua scripts
and logs are deleted (also on Ctrl-C).

Exit status: 0 measured (a missed target is reported, not failed); 1 a run
failed (the broker died or refused to start, mqbench or wrk failed); 2 usage,
missing tool or binary.
EOF
}

die() {
	echo "$prog: $*" >&2
	exit 1
}
usage_die() {
	echo "$prog: $*" >&2
	echo "Try 'bench/$prog --help'." >&2
	exit 2
}

posint() { # posint OPT VALUE
	[[ $2 =~ ^[1-9][0-9]{0,5}$ ]] || usage_die "$1 wants a whole number above 0, not '$2'"
}

orig_args="$*"
build=""
while (($#)); do
	case $1 in
	-h | --help)
		usage
		exit 0
		;;
	--rounds | --seconds | --rate | --connections | --threads)
		(($# >= 2)) || usage_die "option '$1' needs a value"
		posint "$1" "$2"
		case $1 in
		--rounds) rounds=$2 ;;
		--seconds) seconds=$2 ;;
		--rate) rate=$2 ;;
		--connections) conns=$2 ;;
		--threads) threads=$2 ;;
		esac
		shift 2
		;;
	--pin)
		pin=1
		shift
		;;
	--keep)
		keep=1
		shift
		;;
	-*) usage_die "unknown option '$1'" ;;
	*)
		[[ -z $build ]] || usage_die "unexpected argument '$1' (one BUILD_DIR only)"
		build=$1
		shift
		;;
	esac
done
[[ -n $build ]] || usage_die "which build directory? e.g. bench/$prog build"
((rate <= 1000)) || usage_die "--rate: at most 1000 requests/s (one connection, ms timer)"
((conns >= threads)) || usage_die "--connections ($conns) must be at least --threads ($threads)"

command -v wrk >/dev/null || {
	echo "$prog: wrk not found: apt-get install wrk" >&2
	exit 2
}
command -v curl >/dev/null || {
	echo "$prog: curl not found: apt-get install curl" >&2
	exit 2
}
broker_bin=$build/broker/mqbroker
bench_bin=$build/bench/mqbench
for b in "$broker_bin" "$bench_bin"; do
	[[ -x $b ]] || {
		echo "$prog: $b not found: cmake --build $build --target mqbroker mqbench" >&2
		exit 2
	}
done

# ---- state and clean-up ----

work=$(mktemp -d /tmp/mqmonitor-XXXXXX)
queue=/mqmonitor-$$-$RANDOM
broker_pid="" wrk_pid="" bench_pid="" probe_pid="" queue_ours=0

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM HUP
	for p in $probe_pid $wrk_pid $bench_pid; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in $probe_pid $wrk_pid $bench_pid; do
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $broker_pid ]] && kill -TERM "$broker_pid" 2>/dev/null; then
		for _ in $(seq 50); do
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	# Ours if this broker created it (also when stopped before it said so).
	if ((queue_ours)) || grep -qs "^mqbroker: created $queue:" "$work/broker.log"; then
		rm -f "/dev/shm$queue"
	fi
	if ((keep)); then
		echo "$prog: logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- the broker ----

"$broker_bin" --name "$queue" --listen 127.0.0.1:0 --mode 0600 2>"$work/broker.log" &
broker_pid=$!
port=""
for _ in $(seq 100); do
	port=$(sed -n "s#^mqbroker: serving $queue on http://127\.0\.0\.1:\([0-9]*\)/.*#\1#p" \
		"$work/broker.log")
	[[ -n $port ]] && break
	kill -0 "$broker_pid" 2>/dev/null || break
	sleep 0.05
done
# The broker says "created" before "serving": made by it, so ours to remove.
grep -q "^mqbroker: created $queue:" "$work/broker.log" && queue_ours=1
if [[ -z $port ]]; then
	cat "$work/broker.log" >&2
	die "mqbroker did not start serving $queue on 127.0.0.1 (its log is above)"
fi
((queue_ours)) || die "mqbroker adopted an existing $queue instead of creating it; not using it"
base=http://127.0.0.1:$port
curl -fsS -m 5 -o /dev/null "$base/status" || die "GET $base/status failed before any load"
broker_log_lines=$(wc -l <"$work/broker.log")

# ---- wrk scripts ----

# Both alternate /status and /metrics. poll.lua paces itself with delay():
# each request is due 1/RATE s after the previous one was due (a clock read
# through LuaJIT's FFI), so the rate holds whatever the response time (after a
# slow answer it catches up, by at most 100 ms); without the FFI it falls back
# to a fixed pause of 1000/RATE ms after each response.
cat >"$work/paths.lua" <<'EOF'
local paths = {"/status", "/metrics"}
local n = 0
request = function()
	n = n + 1
	return wrk.format("GET", paths[n % 2 + 1])
end
EOF
{
	cat "$work/paths.lua"
	cat <<EOF
local interval = 1000 / $rate
EOF
	cat <<'EOF'
local now_ms
local ok, ffi = pcall(require, "ffi")
if ok then
	ffi.cdef [[
		typedef struct { long tv_sec; long tv_nsec; } mqmon_timespec;
		int clock_gettime(int clk, mqmon_timespec *ts);
	]]
	local ts = ffi.new("mqmon_timespec")
	now_ms = function()
		ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
		return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
	end
end
local due
delay = function()
	if not now_ms then
		return interval
	end
	local now = now_ms()
	due = (due or now) + interval
	if due < now - 100 then -- over 100 ms behind (slow answers): start afresh
		due = now
	end
	return due > now and due - now or 0
end
EOF
} >"$work/poll.lua"

# ---- helpers ----

broker_cpu_ns() { # CPU time of all the broker's threads so far, in ns
	cat /proc/"$broker_pid"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

check_broker() {
	kill -0 "$broker_pid" 2>/dev/null || {
		cat "$work/broker.log" >&2
		die "mqbroker (pid $broker_pid) died during the $1 phase (its log is above)"
	}
}

# wrk_field FILE WHAT: one figure from wrk's output.
wrk_field() {
	awk -v what="$2" '
	function ms(v) { # "523.00us", "2.01ms", "1.02s", "1.50m" -> ms
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
		if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
		if (v ~ /h$/) return substr(v, 1, length(v) - 1) * 3600000
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	/^ *99% / { p99 = ms($2) }
	/^ *Latency / && !lat { lat = 1; max = ms($4) }
	/requests in/ { reqs = $1 }
	/Non-2xx or 3xx responses:/ { non2xx = $NF }
	/Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
	END {
		if (what == "rps") print (rps == "" ? "" : rps)
		else if (what == "p99") print (p99 == "" ? "" : p99)
		else if (what == "max") print (max == "" ? "" : max)
		else if (what == "reqs") print (reqs == "" ? 0 : reqs)
		else if (what == "non2xx") print non2xx + 0
		else if (what == "errors") print errs + 0
	}' "$1"
}

# run_phase ROUND PHASE: one mqbench run, with wrk as PHASE wants.
run_phase() {
	local r=$1 ph=$2 out=$work/r$1-$2 t0 t1 w0 w1 rc=0
	local args=(--queue "$queue" --only libmq --workload tput64 --seconds "$seconds" --reps 1
		--json --quiet)
	((pin)) || args+=(--no-pin)
	case $ph in
	poll | idle-poll)
		wrk -t1 -c1 -d1h --latency -s "$work/poll.lua" "$base/" >"$out.wrk" 2>&1 &
		wrk_pid=$!
		;;
	flat | idle-flat)
		wrk -t"$threads" -c"$conns" -d1h --latency -s "$work/paths.lua" "$base/" \
			>"$out.wrk" 2>&1 &
		wrk_pid=$!
		{
			sleep "$(awk -v s="$seconds" 'BEGIN { print s / 2 + 0.2 }')"
			curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}\n' "$base/status" \
				>"$out.probe" 2>&1 || true
		} &
		probe_pid=$!
		;;
	esac
	[[ $ph == base ]] || sleep 0.2 # wrk connected and running
	t0=$(broker_cpu_ns) w0=$EPOCHREALTIME
	if [[ $ph == idle-* ]]; then
		sleep "$seconds"
	else
		"$bench_bin" "${args[@]}" >"$out.json" 2>"$out.err" &
		bench_pid=$!
		wait "$bench_pid" || rc=$?
		bench_pid=""
	fi
	t1=$(broker_cpu_ns) w1=$EPOCHREALTIME
	if [[ -n $wrk_pid ]]; then
		kill -INT "$wrk_pid" 2>/dev/null || true
		wait "$wrk_pid" || die "wrk failed in round $r, $ph phase: $(cat "$out.wrk")"
		wrk_pid=""
		grep -q '^Requests/sec:' "$out.wrk" ||
			die "no figures from wrk in round $r, $ph phase: $(cat "$out.wrk")"
	fi
	if [[ -n $probe_pid ]]; then
		wait "$probe_pid" || true
		probe_pid=""
	fi
	check_broker "$ph"
	awk -v t="$((t1 - t0))" -v a="$w0" -v b="$w1" \
		'BEGIN { printf "%.1f\n", 100 * t / 1e9 / (b - a) }' >"$out.cpu"
	local msg=""
	if [[ $ph != idle-* ]]; then
		if ((rc != 0)) || ! grep -q '"status": "ok"' "$out.json"; then
			cat "$out.err" "$out.json" >&2
			die "mqbench failed in round $r, $ph phase (exit $rc; its output is above)"
		fi
		sed -n 's/.*"figure": {"median": \([^,]*\),.*/\1/p' "$out.json" >"$out.msgs"
		msg="$(awk '{ printf "%.2f M msgs/s", $1 / 1e6 }' "$out.msgs")"
	fi
	[[ $ph == base ]] || msg+="${msg:+, }wrk $(wrk_field "$out.wrk" rps) requests/s"
	if ((r == 0)); then
		echo "$prog: reference $ph (no pair): $msg" >&2
	else
		echo "$prog: round $r/$rounds $ph: $msg" >&2
	fi
}

# ---- the run ----

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

echo "$prog: mqbroker pid $broker_pid serves $queue on $base; 2 reference phases, then" \
	"$rounds round(s) of 3 phases, ${seconds} s each" >&2
# References: the same two wrk loads with the queue idle (no pair), to tell
# the broker's own latency from what sharing the CPUs with the pair adds.
for ph in idle-poll idle-flat; do
	run_phase 0 "$ph"
	sleep 0.3
done
phases_rot=(base poll flat)
for ((r = 1; r <= rounds; r++)); do
	order=()
	for ((k = 0; k < 3; k++)); do
		order+=("${phases_rot[$(((r - 1 + k) % 3))]}")
	done
	echo "${order[*]}" >"$work/r$r.order"
	for ph in "${order[@]}"; do
		run_phase "$r" "$ph"
		sleep 0.3
	done
done

# ---- the report ----

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

col() { # col PHASE SUFFIX [wrk field]: one value per round, one a line
	local r
	for ((r = 1; r <= rounds; r++)); do
		if (($# == 3)); then
			wrk_field "$work/r$r-$1.wrk" "$3"
		else
			cat "$work/r$r-$1.$2"
		fi
	done
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
	else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sum() { awk '{ s += $1 } END { print s + 0 }'; }
mfmt() { awk '{ printf "%.2f M\n", $1 / 1e6 }'; }
join() { paste -sd, - | sed 's/,/, /g'; }

base_med=$(col base msgs | median)
poll_med=$(col poll msgs | median)
flat_med=$(col flat msgs | median)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
poll_ratio=$(ratio "$poll_med" "$base_med")
flat_ratio=$(ratio "$flat_med" "$base_med")
per_round_ratio() { # per_round_ratio PHASE: PHASE / baseline within each round
	local r
	for ((r = 1; r <= rounds; r++)); do
		ratio "$(cat "$work/r$r-$1.msgs")" "$(cat "$work/r$r-base.msgs")"
		echo
	done
}
poll_rr=$(per_round_ratio poll)
flat_rr=$(per_round_ratio flat)
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s .. %s", lo, hi }'; }

poll_verdict=$(awk -v x="$poll_ratio" 'BEGIN { print (x >= 0.95 ? "PASS" : "MISS") }')
# The noise floor: how far apart the baselines of the rounds are, against
# their median. Above 5 %, one run cannot resolve a 5 % cost either way.
base_spread=$(col base msgs | sort -g | awk -v m="$base_med" 'NR == 1 { lo = $1 } { hi = $1 }
	END { printf "%.1f", 100 * (hi - lo) / m }')
if ((rounds == 1)); then
	poll_verdict+=" (one round: the noise is not measured)"
elif awk -v s="$base_spread" 'BEGIN { exit !(s > 5) }'; then
	poll_verdict+=" (inconclusive: the baseline alone varies by $base_spread % between rounds)"
fi
poll_non2xx=$(col poll x non2xx | sum) poll_err=$(col poll x errors | sum)
flat_non2xx=$(col flat x non2xx | sum) flat_err=$(col flat x errors | sum)
flat_reqs=$(col flat x reqs | sum)
probes=$(for ((r = 1; r <= rounds; r++)); do
	awk '{ printf "%s in %.1f ms\n", $1, $2 * 1000 }' "$work/r$r-flat.probe"
done)
probes_ok=$(grep -c '^200 ' <<<"$probes" || true)
answered=no
if ((flat_non2xx == 0 && flat_err == 0 && flat_reqs > 0 && probes_ok == rounds)); then
	answered=yes
fi
moving=$(awk -v x="$flat_med" 'BEGIN { print (x > 0 ? "yes" : "no") }')

pct() { awk -v x="$1" 'BEGIN { printf "%.1f %%", 100 * (1 - x) }'; }
ms() { awk '{ v = $1; printf (v < 10 ? "%.2f ms\n" : "%.0f ms\n"), v }'; }
rps() { awk '{ printf ($1 < 1000 ? "%.1f\n" : "%.0f\n"), $1 }'; }

cpus=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
cat <<EOF
## Monitoring cost (bench/monitor.sh)

- command: \`bench/$prog $orig_args\` \
(in effect: --rounds $rounds --seconds $seconds --rate $rate --connections $conns --threads $threads$( ((pin)) && echo " --pin"))
- date: $(date '+%Y-%m-%d %H:%M:%S %z')
- machine: $cpus CPUs (nproc), ${model:-unknown CPU}, $(uname -sr) $(uname -m); wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }')
- load average (1, 5, 15 min) before: $load_before; after: $load_after (other work on the machine shows here)
- queue: $queue, made by mqbroker (pid $broker_pid, default geometry: 1024 x 4096 B), HTTP on $base (loopback only)
- pair: \`mqbench --queue $queue --only libmq --workload tput64 --seconds $seconds --reps 1\`$( ((pin)) || echo " --no-pin"): 1 producer + 1 consumer process, 64-byte messages, every message checked
- phases: 2 references (no pair), then $rounds round(s), ${seconds} s each phase, order rotated per round ($(for ((r = 1; r <= rounds; r++)); do cat "$work/r$r.order"; done | paste -sd ';' - | sed 's/;/; /g'))
- CPUs: $( ((pin)) && echo "mqbench pins the producer to one CPU and the consumer to the other (--pin); mqbroker and wrk are not pinned" || echo "nothing pinned: not the pair (mqbench --no-pin), nor mqbroker, nor wrk"). With $cpus CPUs the pair, the broker and wrk share them: every request the broker answers (and every one wrk makes) takes CPU time from the pair
- wrk: polled = \`wrk -t1 -c1 --latency\` with a Lua \`delay()\` pacing it to $rate requests/s; flat out = \`wrk -t$threads -c$conns --latency\`; both alternate /status and /metrics; wrk runs over the pair's run (started 0.2 s before, stopped when it ends); wrk's timeout 2 s (slower answers count as errors)

| phase | pair msgs/s (median) | per round | vs baseline (median) | per round | HTTP requests/s (median) | latency p99 (median; worst) | latency max (worst) | non-2xx / socket errors | broker CPU |
|---|--:|---|--:|---|--:|--:|--:|---|--:|
| baseline: the pair alone | $(mfmt <<<"$base_med") | $(col base msgs | mfmt | join) | 1 | - | - | - | - | - | $(col base cpu | median) % |
| polled: ~$rate requests/s | $(mfmt <<<"$poll_med") | $(col poll msgs | mfmt | join) | $poll_ratio (cost $(pct "$poll_ratio")) | $(range <<<"$poll_rr") | $(col poll x rps | median | rps) | $(col poll x p99 | median | ms); $(col poll x p99 | sort -g | tail -1 | ms) | $(col poll x max | sort -g | tail -1 | ms) | $poll_non2xx / $poll_err | $(col poll cpu | median) % |
| flat out: wrk -t$threads -c$conns | $(mfmt <<<"$flat_med") | $(col flat msgs | mfmt | join) | $flat_ratio (drop $(pct "$flat_ratio")) | $(range <<<"$flat_rr") | $(col flat x rps | median | rps) | $(col flat x p99 | median | ms); $(col flat x p99 | sort -g | tail -1 | ms) | $(col flat x max | sort -g | tail -1 | ms) | $flat_non2xx / $flat_err | $(col flat cpu | median) % |
| reference, no pair: polled | - | - | - | - | $(wrk_field "$work/r0-idle-poll.wrk" rps | rps) | $(wrk_field "$work/r0-idle-poll.wrk" p99 | ms) | $(wrk_field "$work/r0-idle-poll.wrk" max | ms) | $(wrk_field "$work/r0-idle-poll.wrk" non2xx) / $(wrk_field "$work/r0-idle-poll.wrk" errors) | $(cat "$work/r0-idle-poll.cpu") % |
| reference, no pair: flat out | - | - | - | - | $(wrk_field "$work/r0-idle-flat.wrk" rps | rps) | $(wrk_field "$work/r0-idle-flat.wrk" p99 | ms) | $(wrk_field "$work/r0-idle-flat.wrk" max | ms) | $(wrk_field "$work/r0-idle-flat.wrk" non2xx) / $(wrk_field "$work/r0-idle-flat.wrk" errors) | $(cat "$work/r0-idle-flat.cpu") % |

| target (DESIGN.md, Performance) | measured | verdict |
|---|---|---|
| polled at ~$rate requests/s: costs the pair < 5 % (polled / baseline >= 0.95) | $poll_ratio (per round $(range <<<"$poll_rr")); achieved $(col poll x rps | rps | join) requests/s | $poll_verdict |
| flat out: the broker keeps answering (all 2xx, no socket error, a lone curl of /status answered 200) | $flat_reqs requests, $flat_non2xx non-2xx, $flat_err socket errors; curl: $(join <<<"$probes") | $answered |
| flat out: the queue keeps moving | $(mfmt <<<"$flat_med") msgs/s, drop $(pct "$flat_ratio") | $moving |

Ratios use the medians of the rounds; "per round" pairs each phase with the
baseline of the same round. "broker CPU" is the CPU time of mqbroker's threads
over the phase (/proc/PID/task/*/schedstat), in % of one CPU. The two
reference rows run the same wrk loads once, before the rounds, with the queue
idle (no pair): the broker with the CPUs to itself. The baselines of the rounds
are $base_spread % apart (max - min, against their median): a cost smaller than
that cannot be told from noise in this run.
EOF
extra=$(tail -n +"$((broker_log_lines + 1))" "$work/broker.log" || true)
if [[ -n $extra ]]; then
	fence='```'
	printf '\nmqbroker logged during the run:\n\n%s\n%s\n%s\n' "$fence" "$extra" "$fence"
else
	printf '\nmqbroker logged nothing during the run.\n'
fi
