#!/usr/bin/env bash
# CPU overhead of berth's eBPF collectors under a context-switch-heavy load. Not a pass/fail
# test: prints one JSON object.
#
# berth runs --runtime-only (private dirs, socket and metrics port; no cluster needed), once
# with --ebpf=false and once with the collectors loaded, alternating for R rounds. In each
# round the same workload, `perf bench sched pipe -l L` (two tasks ping-ponging over pipes:
# at least two context switches per op, each through the sched_switch program; ~500k
# switches/s on this 2-CPU machine, the worst case), runs
#  - in a pod-like cgroup under berth's cgroup root, which berth tracks (counted: the cost per
#    event of a pod's tasks), and, with the collectors loaded, also
#  - in a cgroup outside it (a host process: the programs return before any map access).
# Measured:
#  - bpf (tracked) and bpf_untracked: the kernel's own accounting of time spent in this
#    berth's BPF programs
#    (kernel.bpf_stats_enabled=1 for the run, restored after; `bpftool prog show` run_time_ns
#    and run_cnt of the berth_* programs it loaded), over the wall time of the loaded rounds:
#    machine-wide cost, including every other process's context switches (bpf_stats adds
#    its own timing cost, ~20-40 ns per run, to run_time_ns);
#  - workload: usecs/op and CPU seconds (user+sys) of the workload with vs without; the
#    with-eBPF runs are repeated with kernel.bpf_stats_enabled=0 (workload_usecs_per_op_no_bpf_stats):
#    the slowdown without the accounting's own cost, which dominates the cheap untracked path;
#  - berth: berth's own CPU seconds during the rounds (the OOM ring-buffer poller);
#  - background: the same BPF accounting over 10 s without the workload (the machine's own
#    activity), for scale;
#  - bpf_net.events_per_second_at_1_percent: the switch rate at which the tracked cost per
#    event (net) makes 1% of one core (1e7 / ns per event);
#  - moderate_load: `perf bench sched messaging -g 1 -l 1000` (20 senders, 20 receivers over
#    unix sockets: tens of thousands of switches/s) in the tracked cgroup, once per round
#    and mode: BPF time net of the accounting over its wall time, and its run time with vs
#    without the collectors;
#  - worst_case_pinned: the same ping-pong with both tasks pinned to CPU 0 (taskset): every
#    switch is between two tracked tasks, at the highest rate this CPU can switch (~400-500k/s
#    here); the empty calibration program is attached for the same run, so the accounting's
#    cost is measured over the very same events; overhead_percent_of_one_core_at_that_rate
#    takes the rate of the pinned ping-pong without eBPF and without bpf_stats;
#  - calibration: the same accounting of an empty sched_switch program over the same workload
#    (build/ebpf/bpf_calibrate): the accounting's own cost per run, subtracted per event in
#    the *_net figures (the dispatch of a program is in neither).
# Usage: tests/bench/ebpf_overhead.sh [ops-per-round (default 200000)] [rounds (default 3)]
# Env: BERTH_BIN (default build/kubelet/berth), BERTH_CGROUP_ROOT (default /berth-bench).
set -euo pipefail
repo_dir=$(cd "$(dirname "$0")/../.." && pwd)
ops=${1:-200000}
rounds=${2:-3}
berth_bin=${BERTH_BIN:-$repo_dir/build/kubelet/berth}
calibrate_bin=${BERTH_BPF_CALIBRATE:-$(dirname "$berth_bin")/../ebpf/bpf_calibrate}
cg_root=${BERTH_CGROUP_ROOT:-/berth-bench}-ebpf
die() { echo "ebpf_overhead: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$berth_bin" ] || die "berth binary $berth_bin not built"
[ -x "$calibrate_bin" ] || die "$calibrate_bin not built (target bpf_calibrate)"
for t in perf bpftool jq; do command -v $t >/dev/null || die "$t missing"; done

work=$(mktemp -d /tmp/berth-ebpf-bench.XXXXXX)
berth_pid=
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
if [ -d /sys/fs/cgroup/unified ]; then v2=/sys/fs/cgroup/unified; else v2=/sys/fs/cgroup; fi
wl_cg="$v2$cg_root/kubepods/workload"
host_cg="$v2$cg_root-untracked"
stop_berth() {
  [ -n "$berth_pid" ] || return 0
  kill -TERM "$berth_pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$berth_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -KILL "$berth_pid" 2>/dev/null || true
  wait "$berth_pid" 2>/dev/null || true
  berth_pid=
}
cleanup() {
  stop_berth
  sysctl -qw kernel.bpf_stats_enabled="$stats_old" || true
  local d
  for d in "$wl_cg" "$v2$cg_root/kubepods" "$v2$cg_root" "$host_cg"; do rmdir "$d" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*"$cg_root"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

port_base=$((20000 + RANDOM % 20000))
start_berth() {  # start_berth <true|false>
  local port=$port_base
  mkdir -p "$work/root" "$work/state" "$work/cni"
  "$berth_bin" --runtime-only --ebpf="$1" --root-dir="$work/root" --state-dir="$work/state" \
    --cri-socket="$work/state/berth.sock" --cgroup-root="$cg_root" --cni-conf-dir="$work/cni" \
    --metrics-bind-address="127.0.0.1:$port" </dev/null >>"$work/berth.log" 2>&1 &
  berth_pid=$!
  local deadline=$((SECONDS + 30))
  until curl -sf --max-time 2 "http://127.0.0.1:$port/metrics" -o "$work/metrics.txt"; do
    kill -0 "$berth_pid" 2>/dev/null || die "berth exited: $(tail -n 5 "$work/berth.log")"
    [ $SECONDS -lt $deadline ] || die "berth metrics endpoint not up"
    sleep 0.2
  done
  local up; up=$(awk '$1=="berth_ebpf_up" {print $2}' "$work/metrics.txt")
  [ "$up" = "$([ "$1" = true ] && echo 1 || echo 0)" ] || die "berth_ebpf_up is '$up' with --ebpf=$1: $(grep -i ebpf "$work/berth.log" | tail -n 3)"
}
berth_cpu_ticks() { awk '{print $14 + $15}' "/proc/$berth_pid/stat"; }
# berth_prog_ids: ids of the loaded berth_* BPF programs (of every berth on the machine).
berth_prog_ids() { bpftool prog show --json | jq -c '[.[] | select(.name | startswith("berth_")) | .id]'; }
# bpf_totals: "<run_time_ns> <run_cnt>" summed over this berth's programs ($my_progs: the
# berth_* programs that appeared when it started; other berths on the machine have their own).
bpf_totals() {
  bpftool prog show --json | jq -r --argjson mine "$my_progs" '[.[] | select(.id as $i | $mine | index($i))] |
    "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}
# bpf_by_prog: {name: [run_time_ns, run_cnt]} of this berth's programs.
bpf_by_prog() {
  bpftool prog show --json | jq -c --argjson mine "$my_progs" '[.[] | select(.id as $i | $mine | index($i))] |
    map({key: .name, value: [(.run_time_ns // 0), (.run_cnt // 0)]}) | from_entries'
}
# run_workload <cgroup dir> [perf bench sched args]: prints "<usecs/op> <wall s> <cpu s>" of
# one perf bench run in it (default: pipe -l $ops); PIN="taskset -c 0" runs it on CPU 0.
run_workload() {
  mkdir -p "$1"
  local out
  local -a args=(pipe -l "$ops")
  [ $# -lt 2 ] || args=("${@:2}")
  out=$( { TIMEFORMAT='TIMES %R %U %S'; time sh -c 'echo $$ >"$1/cgroup.procs"; shift; exec $PIN perf bench sched "$@"' \
    _ "$1" "${args[@]}"; } 2>&1) || die "workload failed: $out"
  local usecs; usecs=$(awk '/usecs\/op/ {u = $1} /Total time:/ {t = $3 * 1e6} END {print (u != "" ? u : t)}' <<<"$out")
  awk -v u="$usecs" '/^TIMES/ {printf "%s %s %.3f\n", u, $2, $3 + $4}' <<<"$out"
}

hz=$(getconf CLK_TCK)
# The moderate load: one group of 20 sender and 20 receiver processes over unix sockets.
msg_args=(messaging -g 1 -l 1000)
declare -a with_us without_us with_cpu without_cpu host_us nostats_with_us nostats_host_us nostats_without_us calib
bpf_ns=0 bpf_cnt=0 with_wall=0 progs='{}'  berth_with=0 berth_without=0
host_ns=0 host_cnt=0 host_wall=0
msg_ns=0 msg_cnt=0 msg_wall=0
pin_ns=0 pin_cnt=0 pin_wall=0
declare -a pin_calib pin_without_us
declare -a msg_with_s msg_without_s
sysctl -qw kernel.bpf_stats_enabled=1
for _ in $(seq 1 "$rounds"); do
  for mode in false true; do
    before=$(berth_prog_ids)
    start_berth $mode
    my_progs=$(jq -cn --argjson a "$before" --argjson b "$(berth_prog_ids)" '$b - $a')
    [ $mode = false ] || [ "$(jq length <<<"$my_progs")" -gt 0 ] || die "no BPF programs of this berth found"
    t0=$(berth_cpu_ticks)
    [ $mode = false ] || { read -r ns0 cnt0 < <(bpf_totals); progs0=$(bpf_by_prog); }
    read -r us wall cpu < <(run_workload "$wl_cg")
    if [ $mode = true ]; then
      read -r ns1 cnt1 < <(bpf_totals)
      bpf_ns=$((bpf_ns + ns1 - ns0)); bpf_cnt=$((bpf_cnt + cnt1 - cnt0))
      progs=$(jq -cn --argjson acc "$progs" --argjson a "$progs0" --argjson b "$(bpf_by_prog)" \
        '$acc + ($b | to_entries | map({key: .key, value: [(.value[0] - ($a[.key][0] // 0) + ($acc[.key][0] // 0)),
          (.value[1] - ($a[.key][1] // 0) + ($acc[.key][1] // 0))]}) | from_entries)')
      with_wall=$(awk -v a="$with_wall" -v b="$wall" 'BEGIN {print a + b}')
      with_us+=("$us"); with_cpu+=("$cpu")
      berth_with=$((berth_with + $(berth_cpu_ticks) - t0))
      # The same workload outside the tracked subtree.
      read -r ns0 cnt0 < <(bpf_totals)
      read -r us wall cpu < <(run_workload "$host_cg")
      read -r ns1 cnt1 < <(bpf_totals)
      host_ns=$((host_ns + ns1 - ns0)); host_cnt=$((host_cnt + cnt1 - cnt0))
      host_wall=$(awk -v a="$host_wall" -v b="$wall" 'BEGIN {print a + b}')
      host_us+=("$us")
      # A moderate context-switch-heavy load, tracked: hackbench-style messaging.
      read -r ns0 cnt0 < <(bpf_totals)
      read -r us wall cpu < <(run_workload "$wl_cg" "${msg_args[@]}")
      read -r ns1 cnt1 < <(bpf_totals)
      msg_ns=$((msg_ns + ns1 - ns0)); msg_cnt=$((msg_cnt + cnt1 - cnt0))
      msg_wall=$(awk -v a="$msg_wall" -v b="$wall" 'BEGIN {print a + b}')
      msg_with_s+=("$(awk -v u="$us" 'BEGIN {print u / 1e6}')")
      # The accounting's own cost per run: an empty program over the same workload.
      c=$("$calibrate_bin" "perf bench sched pipe -l $ops >/dev/null") || die "bpf_calibrate failed"
      calib+=("$(jq .ns_per_run <<<"$c")")
      # The worst case: the same ping-pong with both tasks pinned to one CPU (every switch
      # goes from one tracked task to the other, ~500k/s here: the CPU does nothing else),
      # with the empty calibration program attached for the same run, so that the
      # accounting's cost is measured over the very same events.
      read -r ns0 cnt0 < <(bpf_totals)
      c=$("$calibrate_bin" "sh -c 'echo \$\$ >\"$wl_cg/cgroup.procs\"; exec taskset -c 0 perf bench sched pipe -l $ops' >\"$work/pinned.out\"") ||
        die "pinned workload failed: $(cat "$work/pinned.out")"
      read -r ns1 cnt1 < <(bpf_totals)
      pin_ns=$((pin_ns + ns1 - ns0)); pin_cnt=$((pin_cnt + cnt1 - cnt0))
      pin_calib+=("$(jq .ns_per_run <<<"$c")")
      pin_wall=$(awk -v a="$pin_wall" -v t="$(awk '/Total time:/ {print $3}' "$work/pinned.out")" 'BEGIN {print a + t}')
      # Both again without the kernel's per-program accounting.
      sysctl -qw kernel.bpf_stats_enabled=0
      read -r us wall cpu < <(run_workload "$wl_cg"); nostats_with_us+=("$us")
      read -r us wall cpu < <(run_workload "$host_cg"); nostats_host_us+=("$us")
      sysctl -qw kernel.bpf_stats_enabled=1
    else
      sysctl -qw kernel.bpf_stats_enabled=0
      # (No program is loaded: the accounting has nothing to time, so this run is also the
      # baseline of the with-accounting runs.)
      read -r us wall cpu < <(run_workload "$wl_cg"); nostats_without_us+=("$us")
      without_us+=("$us"); without_cpu+=("$cpu")
      read -r us wall cpu < <(PIN="taskset -c 0" run_workload "$wl_cg"); pin_without_us+=("$us")
      sysctl -qw kernel.bpf_stats_enabled=1
      read -r us wall cpu < <(run_workload "$wl_cg" "${msg_args[@]}")
      msg_without_s+=("$(awk -v u="$us" 'BEGIN {print u / 1e6}')")
      berth_without=$((berth_without + $(berth_cpu_ticks) - t0))
    fi
    stop_berth
  done
done

# Background: no workload, the machine's own activity, 10 s with the collectors loaded.
before=$(berth_prog_ids)
start_berth true
my_progs=$(jq -cn --argjson a "$before" --argjson b "$(berth_prog_ids)" '$b - $a')
read -r bg_ns0 bg_cnt0 < <(bpf_totals)
bg_t0=$EPOCHREALTIME
sleep 10
read -r bg_ns1 bg_cnt1 < <(bpf_totals)
bg_wall=$(awk -v a="$bg_t0" -v b="$EPOCHREALTIME" 'BEGIN {print b - a}')
stop_berth

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
sum() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%.3f", s}'; }
jq -n --argjson ops "$ops" --argjson rounds "$rounds" \
  --argjson with_us "$(median "${with_us[@]}")" --argjson without_us "$(median "${without_us[@]}")" \
  --argjson with_cpu "$(sum "${with_cpu[@]}")" --argjson without_cpu "$(sum "${without_cpu[@]}")" \
  --argjson bpf_ns "$bpf_ns" --argjson bpf_cnt "$bpf_cnt" --argjson wall "$with_wall" \
  --argjson berth_with "$(awk -v t="$berth_with" -v hz="$hz" 'BEGIN {print t / hz}')" \
  --argjson berth_without "$(awk -v t="$berth_without" -v hz="$hz" 'BEGIN {print t / hz}')" \
  --argjson progs "$progs" --argjson bg_ns "$((bg_ns1 - bg_ns0))" --argjson bg_cnt "$((bg_cnt1 - bg_cnt0))" \
  --argjson bg_wall "$bg_wall" --argjson host_ns "$host_ns" --argjson host_cnt "$host_cnt" \
  --argjson host_wall "$host_wall" --argjson host_us "$(median "${host_us[@]}")" \
  --argjson ns_with "$(median "${nostats_with_us[@]}")" --argjson ns_host "$(median "${nostats_host_us[@]}")" \
  --argjson msg_ns "$msg_ns" --argjson msg_cnt "$msg_cnt" --argjson msg_wall "$msg_wall" \
  --argjson msg_with "$(median "${msg_with_s[@]}")" --argjson msg_without "$(median "${msg_without_s[@]}")" \
  --arg msg_args "${msg_args[*]}" \
  --argjson pin_ns "$pin_ns" --argjson pin_cnt "$pin_cnt" --argjson pin_wall "$pin_wall" \
  --argjson pin_calib "$(median "${pin_calib[@]}")" --argjson pin_without_us "$(median "${pin_without_us[@]}")" \
  --argjson ns_without "$(median "${nostats_without_us[@]}")" --argjson calib "$(median "${calib[@]}")" --arg nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{
  benchmark: "ebpf_overhead",
  workload: "perf bench sched pipe -l \($ops) in a cgroup under berth'"'"'s cgroup root, \($rounds) rounds per mode",
  machine: {cpus: ($nproc | tonumber), loadavg: $load},
  bpf: {run_time_seconds: ($bpf_ns / 1e9), events: $bpf_cnt,
        ns_per_event: (if $bpf_cnt > 0 then ($bpf_ns / $bpf_cnt) else null end),
        wall_seconds: $wall,
        overhead_cores: (if $wall > 0 then ($bpf_ns / 1e9 / $wall) else null end),
        overhead_percent_of_one_core: (if $wall > 0 then ($bpf_ns / 1e9 / $wall * 100) else null end),
        programs: ($progs | with_entries(select(.value[1] > 0) |
          .value = {runs: .value[1], ns_per_run: (.value[0] / .value[1]), seconds: (.value[0] / 1e9)}))},
  calibration: {what: "bpf_stats accounting cost per program run: an empty tp_btf/sched_switch program over the same workload (median of rounds)",
        ns_per_run: $calib},
  bpf_net: {what: "bpf minus the accounting cost per event (calibration)",
        ns_per_event: (if $bpf_cnt > 0 then ($bpf_ns / $bpf_cnt - $calib) else null end),
        overhead_percent_of_one_core: (if $wall > 0 then (($bpf_ns - $bpf_cnt * $calib) / 1e9 / $wall * 100) else null end),
        events_per_second_at_1_percent: (if $bpf_cnt > 0 and ($bpf_ns / $bpf_cnt - $calib) > 0 then (1e7 / ($bpf_ns / $bpf_cnt - $calib)) else null end),
        events_per_second: (if $wall > 0 then ($bpf_cnt / $wall) else null end)},
  moderate_load: {what: "perf bench sched \($msg_args) in the tracked cgroup (one run per round and mode): BPF time net of the accounting cost, over its wall time",
        events: $msg_cnt, wall_seconds: $msg_wall,
        events_per_second: (if $msg_wall > 0 then ($msg_cnt / $msg_wall) else null end),
        ns_per_event_net: (if $msg_cnt > 0 then ($msg_ns / $msg_cnt - $calib) else null end),
        overhead_percent_of_one_core: (if $msg_wall > 0 then (($msg_ns - $msg_cnt * $calib) / 1e9 / $msg_wall * 100) else null end),
        workload_seconds: {with_ebpf: $msg_with, without_ebpf: $msg_without,
                           slowdown_percent: (($msg_with - $msg_without) / $msg_without * 100)}},
  worst_case_pinned: {what: "perf bench sched pipe -l \($ops) with both tasks on CPU 0 (taskset), in the tracked cgroup, one run per round: every switch is between two tracked tasks at the highest rate the CPU can switch; BPF time net of the accounting cost measured over the same run (empty program attached alongside)",
        events: $pin_cnt, wall_seconds: $pin_wall,
        events_per_second: (if $pin_wall > 0 then ($pin_cnt / $pin_wall) else null end),
        ns_per_event: (if $pin_cnt > 0 then ($pin_ns / $pin_cnt) else null end),
        calibration_ns_per_run: $pin_calib,
        ns_per_event_net: (if $pin_cnt > 0 then ($pin_ns / $pin_cnt - $pin_calib) else null end),
        overhead_percent_of_one_core: (if $pin_wall > 0 then (($pin_ns - $pin_cnt * $pin_calib) / 1e9 / $pin_wall * 100) else null end),
        without_ebpf_usecs_per_op: $pin_without_us,
        switches_per_second_without_ebpf: (2e6 / $pin_without_us),
        overhead_percent_of_one_core_at_that_rate: (if $pin_cnt > 0 then (($pin_ns / $pin_cnt - $pin_calib) * (2e6 / $pin_without_us) / 1e9 * 100) else null end)},
  bpf_untracked_net: {what: "bpf_untracked minus the accounting cost per event (calibration)",
        ns_per_event: (if $host_cnt > 0 then ($host_ns / $host_cnt - $calib) else null end),
        overhead_percent_of_one_core: (if $host_wall > 0 then (($host_ns - $host_cnt * $calib) / 1e9 / $host_wall * 100) else null end)},
  bpf_untracked: {what: "the same workload in a cgroup outside berth'"'"'s tracked subtree (a host process)",
        run_time_seconds: ($host_ns / 1e9), events: $host_cnt,
        ns_per_event: (if $host_cnt > 0 then ($host_ns / $host_cnt) else null end),
        wall_seconds: $host_wall,
        overhead_percent_of_one_core: (if $host_wall > 0 then ($host_ns / 1e9 / $host_wall * 100) else null end)},
  background: {what: "no workload, only the other activity of the machine, collectors loaded",
               wall_seconds: $bg_wall, events: $bg_cnt, events_per_second: ($bg_cnt / $bg_wall),
               overhead_percent_of_one_core: ($bg_ns / 1e9 / $bg_wall * 100)},
  workload_usecs_per_op: {with_ebpf: $with_us, without_ebpf: $without_us, with_ebpf_untracked: $host_us,
                          slowdown_percent: (($with_us - $without_us) / $without_us * 100)},
  workload_usecs_per_op_no_bpf_stats: {with_ebpf: $ns_with, with_ebpf_untracked: $ns_host, without_ebpf: $ns_without,
    slowdown_percent: (($ns_with - $ns_without) / $ns_without * 100),
    slowdown_percent_untracked: (($ns_host - $ns_without) / $ns_without * 100)},
  workload_cpu_seconds: {with_ebpf: $with_cpu, without_ebpf: $without_cpu},
  berth_cpu_seconds: {with_ebpf: $berth_with, without_ebpf: $berth_without},
  goal: "eBPF overhead < 1% of one core"
}'
