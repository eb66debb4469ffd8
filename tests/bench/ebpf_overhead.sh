#!/usr/bin/env bash
# CPU overhead of berth's eBPF collectors under a context-switch-heavy load. Not a pass/fail
# test: prints one JSON object.
#
# berth runs --runtime-only (private dirs, socket and metrics port; no cluster needed), once
# with --ebpf=false and once with the collectors loaded, alternating for R rounds. In each
# round the same workload runs in a pod-like cgroup under berth's cgroup root:
# `perf bench sched pipe -l L` (two tasks ping-ponging over pipes: two context switches and
# two wakeups per op, every one of them through the sched_switch/sched_wakeup programs).
# Measured:
#  - bpf: the kernel's own accounting of time spent in berth's BPF programs
#    (kernel.bpf_stats_enabled=1 for the run, restored after; `bpftool prog show` run_time_ns
#    and run_cnt of the berth_* programs), over the wall time of the loaded rounds: this is
#    machine-wide cost, including every other process's context switches;
#  - workload: usecs/op and CPU seconds (user+sys) of the workload with vs without;
#  - berth: berth's own CPU seconds during the rounds (the OOM ring-buffer poller).
# Usage: tests/bench/ebpf_overhead.sh [ops-per-round (default 200000)] [rounds (default 3)]
# Env: BERTH_BIN (default build/kubelet/berth), BERTH_CGROUP_ROOT (default /berth-bench).
set -euo pipefail
repo_dir=$(cd "$(dirname "$0")/../.." && pwd)
ops=${1:-200000}
rounds=${2:-3}
berth_bin=${BERTH_BIN:-$repo_dir/build/kubelet/berth}
cg_root=${BERTH_CGROUP_ROOT:-/berth-bench}-ebpf
die() { echo "ebpf_overhead: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$berth_bin" ] || die "berth binary $berth_bin not built"
for t in perf bpftool jq; do command -v $t >/dev/null || die "$t missing"; done

work=$(mktemp -d /tmp/berth-ebpf-bench.XXXXXX)
berth_pid=
stats_old=$(sysctl -n kernel.bpf_stats_enabled)
if [ -d /sys/fs/cgroup/unified ]; then v2=/sys/fs/cgroup/unified; else v2=/sys/fs/cgroup; fi
wl_cg="$v2$cg_root/kubepods/workload"
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
  for d in "$wl_cg" "$v2$cg_root/kubepods" "$v2$cg_root"; do rmdir "$d" 2>/dev/null || true; done
  for d in /sys/fs/cgroup/*"$cg_root"; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

port_base=$((20000 + RANDOM % 20000))
start_berth() {  # start_berth <true|false>
  local port=$((port_base)) 
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
# bpf_totals: "<run_time_ns> <run_cnt>" summed over berth's programs.
bpf_totals() {
  bpftool prog show --json | jq -r '[.[] | select(.name | startswith("berth_"))] |
    "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}
# run_workload: prints "<usecs/op> <wall s> <cpu s>" of one perf bench run in the workload cgroup.
run_workload() {
  mkdir -p "$wl_cg"
  local out
  out=$( { TIMEFORMAT='TIMES %R %U %S'; time sh -c 'echo $$ >"$1/cgroup.procs"; exec perf bench sched pipe -l "$2"' \
    _ "$wl_cg" "$ops"; } 2>&1) || die "workload failed: $out"
  local usecs; usecs=$(awk '/usecs\/op/ {print $1}' <<<"$out")
  awk -v u="$usecs" '/^TIMES/ {printf "%s %s %.3f\n", u, $2, $3 + $4}' <<<"$out"
}

hz=$(getconf CLK_TCK)
declare -a with_us without_us with_cpu without_cpu
bpf_ns=0 bpf_cnt=0 with_wall=0 berth_with=0 berth_without=0
sysctl -qw kernel.bpf_stats_enabled=1
for r in $(seq 1 "$rounds"); do
  for mode in false true; do
    start_berth $mode
    t0=$(berth_cpu_ticks)
    [ $mode = false ] || read -r ns0 cnt0 < <(bpf_totals)
    read -r us wall cpu < <(run_workload)
    if [ $mode = true ]; then
      read -r ns1 cnt1 < <(bpf_totals)
      bpf_ns=$((bpf_ns + ns1 - ns0)); bpf_cnt=$((bpf_cnt + cnt1 - cnt0))
      with_wall=$(awk -v a="$with_wall" -v b="$wall" 'BEGIN {print a + b}')
      with_us+=("$us"); with_cpu+=("$cpu")
      berth_with=$((berth_with + $(berth_cpu_ticks) - t0))
    else
      without_us+=("$us"); without_cpu+=("$cpu")
      berth_without=$((berth_without + $(berth_cpu_ticks) - t0))
    fi
    stop_berth
  done
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
sum() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%.3f", s}'; }
jq -n --argjson ops "$ops" --argjson rounds "$rounds" \
  --argjson with_us "$(median "${with_us[@]}")" --argjson without_us "$(median "${without_us[@]}")" \
  --argjson with_cpu "$(sum "${with_cpu[@]}")" --argjson without_cpu "$(sum "${without_cpu[@]}")" \
  --argjson bpf_ns "$bpf_ns" --argjson bpf_cnt "$bpf_cnt" --argjson wall "$with_wall" \
  --argjson berth_with "$(awk -v t="$berth_with" -v hz="$hz" 'BEGIN {print t / hz}')" \
  --argjson berth_without "$(awk -v t="$berth_without" -v hz="$hz" 'BEGIN {print t / hz}')" \
  --arg nproc "$(nproc)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '{
  benchmark: "ebpf_overhead",
  workload: "perf bench sched pipe -l \($ops) in a cgroup under berth'"'"'s cgroup root, \($rounds) rounds per mode",
  machine: {cpus: ($nproc | tonumber), loadavg: $load},
  bpf: {run_time_seconds: ($bpf_ns / 1e9), events: $bpf_cnt,
        ns_per_event: (if $bpf_cnt > 0 then ($bpf_ns / $bpf_cnt) else null end),
        wall_seconds: $wall,
        overhead_cores: (if $wall > 0 then ($bpf_ns / 1e9 / $wall) else null end),
        overhead_percent_of_one_core: (if $wall > 0 then ($bpf_ns / 1e9 / $wall * 100) else null end)},
  workload_usecs_per_op: {with_ebpf: $with_us, without_ebpf: $without_us,
                          slowdown_percent: (($with_us - $without_us) / $without_us * 100)},
  workload_cpu_seconds: {with_ebpf: $with_cpu, without_ebpf: $without_cpu},
  berth_cpu_seconds: {with_ebpf: $berth_with, without_ebpf: $berth_without},
  goal: "eBPF overhead < 1% of one core"
}'
