#!/usr/bin/env bash
# CRI runtime benchmark, berth vs containerd in one run (same machine, same images, same CNI
# conflist, same netns), printed as one JSON object:
#   - latencies (p50/p99, ms) of RunPodSandbox, PodSandboxStatus, StopPodSandbox,
#     RemovePodSandbox and Create/Start/Status/Stop/RemoveContainer (CRI RPC names; critest
#     calls the pod ones CreatePod/StatusPod/StopPod/RemovePod), measured in process by
#     upstream `critest -benchmark` (cri-tools v1.36, sequential, BENCH_SAMPLES samples: 50
#     by default, so that p99 is the 2nd-largest sample rather than the largest);
#   - memory with BENCH_PODS running pods (one `sleep` container each, created with crictl):
#     the runtime's own processes (berth + conmons; containerd + shims) and the pod
#     infra processes (berth-pause; pause), summed VmRSS in MiB.
# Not a pass/fail test: it exits non-zero only when a run could not be done.
# Last numbers (2 cores shared with four other builds, load average ~10, 50 samples,
# runtimes run one after the other), p50 / p99 ms, berth vs containerd:
#   RunPodSandbox 107 / 296 vs 307 / 1089    StopPodSandbox 64 / 169 vs 256 / 879
#   RemovePodSandbox 9 / 54 vs 48 / 130      CreateContainer 93 / 285 vs 34 / 256
#   StartContainer 13 / 26 vs 155 / 603      StopContainer 14 / 129 vs 139 / 370
#   RemoveContainer 34 / 66 vs 11 / 176
# RSS with 20 pods: berth + 20 conmon 69.6 MiB vs containerd + 20 shims 321 MiB (pause
# processes 18.5 vs 13.0 MiB). CreateContainer is slower by design: berth runs `runc create`
# there (as CRI-O does), containerd only in StartContainer; Create+Start is 106 vs 189 ms.
#
# Usage: tests/bench/cri_bench.sh            Env: BENCH_SAMPLES (50), BENCH_PODS (20),
#        BERTH_BIN, BERTH_NETNS / BERTH_CGROUP_ROOT (suffixed "-bench"), BENCH_RUNTIMES
#        ("berth containerd"), BERTH_CRITEST_STATE (default build/cri-bench-state).
set -euo pipefail
here=$(cd "$(dirname "$0")/../critest" && pwd)
repo=$(cd "$here/../.." && pwd)
export BERTH_NETNS="${BERTH_NETNS:-berth}-bench"
cgroup_root="${BERTH_CGROUP_ROOT:-/berth}-bench"
# shellcheck source=tests/cluster/lib.sh
source "$repo/tests/cluster/lib.sh"
state_init "${BERTH_CRITEST_STATE:-$repo/build/cri-bench-state}"
samples=${BENCH_SAMPLES:-50}
pods=${BENCH_PODS:-20}
critest=$cluster_bin/critest
crictl_bin=$cluster_bin/crictl
for t in "$critest" "$crictl_bin"; do [ -x "$t" ] || die "$t missing: run tests/cluster/build.sh critest crictl"; done
command -v jq >/dev/null || die "jq missing (deploy/setup.sh)"
# shellcheck source=tests/critest/lib.sh
source "$here/lib.sh"
trap cleanup_all EXIT
env_up >&2

image=registry.k8s.io/e2e-test-images/busybox:1.29-2
cat >"$state/bench-params.yaml" <<YAML
podsNumber: $samples
podsNumberParallel: 1
podBenchmarkTimeoutSeconds: 600
containersNumber: $samples
containersNumberParallel: 1
containerBenchmarkTimeoutSeconds: 600
YAML

# rss_kib <pid...>: summed VmRSS of the live ones.
rss_kib() {
  local pid kb total=0
  for pid in "$@"; do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}
# pids_named <comm> [cgroup-substring]: PIDs whose comm is <comm>.
pids_named() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] || continue
    if [ -n "${2:-}" ] && ! grep -q -- "$2" "$p/cgroup" 2>/dev/null; then continue; fi
    echo "${p#/proc/}"
  done
}

results=()
for rt in ${BENCH_RUNTIMES:-berth containerd}; do
  start_runtime "$rt"
  crictl=(in_ns "$crictl_bin" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 120s)
  "${crictl[@]}" pull "$image" >/dev/null
  out="$state/bench-$rt"
  rm -rf "$out"; mkdir -p "$out"
  log "critest -benchmark against $rt ($samples samples)"
  in_ns "$critest" -benchmark -runtime-endpoint="unix://$sock" -image-endpoint="unix://$sock" \
    -benchmarking-params-file="$state/bench-params.yaml" -benchmarking-output-dir="$out" \
    -ginkgo.focus='benchmark about (lifecycle of PodSandbox|basic operations on Container)' \
    >"$state/logs/bench-critest-$rt.log" 2>&1 ||
    { tail -n 30 "$state/logs/bench-critest-$rt.log" >&2; die "critest -benchmark failed against $rt"; }
  for f in pod_benchmark_data.json container_benchmark_data.json; do
    [ -s "$out/$f" ] || die "critest wrote no $f for $rt"
  done
  lat=$(jq -s '
    def pct(p): sort | .[((length - 1) * p | floor)] / 1e6 | . * 1000 | round / 1000;
    def cri: {CreatePod: "RunPodSandbox", StatusPod: "PodSandboxStatus", StopPod: "StopPodSandbox",
              RemovePod: "RemovePodSandbox"}[.] // .;
    [ .[] | . as $set | $set.operationsNames | to_entries[] |
      { (.value | cri): ([$set.datapoints[].operationsDurationsNs[.key]] | {p50_ms: pct(0.5), p99_ms: pct(0.99), n: length}) } ]
    | add' "$out/pod_benchmark_data.json" "$out/container_benchmark_data.json")

  log "starting $pods pods with one container each on $rt"
  # Pod cgroups under $cgroup_root/pods for both (berth prefixes its --cgroup-root itself).
  parent=/pods; [ "$rt" = berth ] || parent="$cgroup_root/pods"
  for i in $(seq 1 "$pods"); do
    printf '{"metadata":{"name":"bench-%s","namespace":"bench","uid":"bench-uid-%s"},"log_directory":"%s","linux":{"cgroup_parent":"%s/pod%s"}}\n' \
      "$i" "$i" "$state/rt/pods/bench-$i" "$parent" "$i" >"$state/pod-$i.json"
    printf '{"metadata":{"name":"sleep"},"image":{"image":"%s"},"command":["sleep","3600"],"log_path":"sleep.log","linux":{}}\n' \
      "$image" >"$state/ctr-$i.json"
    pod=$("${crictl[@]}" runp "$state/pod-$i.json")
    ctr=$("${crictl[@]}" create "$pod" "$state/ctr-$i.json" "$state/pod-$i.json")
    "${crictl[@]}" start "$ctr" >/dev/null
  done
  running=$("${crictl[@]}" ps -q --state running | wc -l)
  [ "$running" -eq "$pods" ] || die "$rt: $running of $pods containers running"
  if [ "$rt" = berth ]; then
    # conmon is a child of nothing of ours once daemonized: find it by its command line.
    runtime_pids=("$(cat "$state/pids/runtime")")
    for p in $(pids_named conmon); do
      tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -- "$state/rt/" && runtime_pids+=("$p")
    done
    infra_pids=($(pids_named berth-pause "$cgroup_root/pods/"))
  else
    runtime_pids=($(cat "$state/rt/containerd.pid") $(pids_named containerd-shim "$cgroup_root/containerd"))
    infra_pids=($(pids_named pause "$cgroup_root/pods/"))
  fi
  runtime_pids=($(printf '%s\n' "${runtime_pids[@]}" | sort -un))
  rt_kib=$(rss_kib "${runtime_pids[@]}")
  infra_kib=$(rss_kib "${infra_pids[@]}")
  "${crictl[@]}" rmp -fa >/dev/null
  results+=("$(jq -nc --arg rt "$rt" --argjson lat "$lat" --argjson pods "$pods" \
    --argjson rtk "$rt_kib" --argjson infk "$infra_kib" --argjson nrt "${#runtime_pids[@]}" \
    --argjson ninf "${#infra_pids[@]}" \
    '{runtime: $rt, latency: $lat,
      memory: {running_pods: $pods, runtime_processes: $nrt, runtime_rss_mib: ($rtk / 1024 | . * 10 | round / 10),
               infra_processes: $ninf, infra_rss_mib: ($infk / 1024 | . * 10 | round / 10)}}')")
  log "$rt done"
done
printf '%s\n' "${results[@]}" | jq -sc '
  (map({(.runtime): .}) | add) as $r |
  $r + (if ($r.berth and $r.containerd) then {ratio_berth_to_containerd: {
     RunPodSandbox_p50: ($r.berth.latency.RunPodSandbox.p50_ms / $r.containerd.latency.RunPodSandbox.p50_ms),
     StartContainer_p50: ($r.berth.latency.StartContainer.p50_ms / $r.containerd.latency.StartContainer.p50_ms),
     runtime_rss: ($r.berth.memory.runtime_rss_mib / $r.containerd.memory.runtime_rss_mib)}} else {} end)'
