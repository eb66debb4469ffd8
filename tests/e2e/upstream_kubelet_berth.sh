#!/usr/bin/env bash
# The upstream kubelet uses berth as its container runtime: a second berth, --runtime-only on
# its own CRI socket (no kubelet role, no Node of its own), and the upstream kubelet
# (tests/peer/kubelet.sh, k8s release of tests/cluster/go.mod) on that socket as node
# "upstream-kubelet". The node goes Ready (runtime and network ready through berth's CRI
# Status), a pod bound to it by spec.nodeName reaches Running with a pod IP from its CNI
# conflist, its log is readable through berth's CRI (crictl logs) and through the kubelet
# (kubectl logs), and deleting it removes sandbox and containers from berth. Then kubelet
# and berth stop and nothing is left in their cgroup root. The kubelet runs with
# PodAndContainerStatsFromCRI: its /stats/summary shows the pod's CPU and memory from berth's
# CRI stats RPCs, and its /metrics/cadvisor the berth_cgroup_* families of berth's
# ListPodSandboxMetrics (eBPF counters of the pod's cgroups, which berth tracks from
# RunPodSandbox on, under the kubelet's cgroup root).
# Needs tests/cluster/build.sh kubelet.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
[ -x "$cluster_bin/kubelet" ] || fail "$cluster_bin/kubelet missing: run tests/cluster/build.sh kubelet"
ub="$state/upstream-kubelet"           # everything of this test: berth dirs, kubelet dirs
ub_sock="$ub/berth/berth.sock"
ub_node=upstream-kubelet
export BERTH_E2E_STATE=$state PEER_NODE_NAME=$ub_node PEER_CRI_ENDPOINT=unix://$ub_sock
export PEER_CGROUP_ROOT="$cgroup_root-ukb" PEER_CNI_CONF_DIR="$ub/net.d" PEER_CNI_BRIDGE=cni-ukb
export PEER_KUBELET_FEATURE_GATES=PodAndContainerStatsFromCRI=true
ub_crictl() {
  printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' "$ub_sock" "$ub_sock" >"$ub/crictl.yaml"
  "$cluster_bin/crictl" --config "$ub/crictl.yaml" "$@"
}
# ub_kill_cgroup: kills (by PID) what is left in the kubelet's cgroup root (conmon, containers,
# infra processes outlive berth by design), removes the cgroups; prints how many it killed.
ub_kill_cgroup() {
  local d pid n=0 deadline
  for d in $(cgroup_dirs "$PEER_CGROUP_ROOT"); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
    done
  done
  for d in $(cgroup_dirs "$PEER_CGROUP_ROOT"); do
    deadline=$((SECONDS + 10))
    while [ -d "$d" ] && [ $SECONDS -lt $deadline ]; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1; done
  done
  echo "$n"
}
ub_cleanup() {
  kubectl delete pod -n default ukb-pod --ignore-not-found --grace-period=0 --force >/dev/null 2>&1 || true
  "$repo_dir/tests/peer/kubelet.sh" stop "$ub/kubelet" >/dev/null 2>&1 || true
  stop_pid_file upstream-berth 2>/dev/null || true
  ub_kill_cgroup >/dev/null 2>&1 || true
}
trap ub_cleanup EXIT
ub_fail() {
  {
    echo "---- upstream kubelet.log (errors, last 30)"; grep '^E' "$ub/kubelet/kubelet.log" 2>/dev/null | tail -n 30 || true
    echo "---- berth --runtime-only log (last 30)"; tail -n 30 "$ub/berth.log" 2>/dev/null || true
    echo "---- its crictl pods / ps -a"; ub_crictl pods 2>&1 | tail -n 10 || true; ub_crictl ps -a 2>&1 | tail -n 10 || true
  } >&2
  fail "$@"
}

# --- berth --runtime-only ---------------------------------------------------------------------
ub_cleanup
rm -rf "$ub/net.d" "$ub/cni-ipam"
mkdir -p "$ub/berth/lib" "$ub/berth/run" "$ub/net.d"
nsenter --net="/run/netns/$netns" "$berth_bin" --runtime-only \
  --root-dir="$ub/berth/lib" --state-dir="$ub/berth/run" --cri-socket="$ub_sock" \
  --cni-conf-dir="$ub/net.d" --cni-bin-dir=/usr/lib/cni --log-root="$ub/pod-logs" \
  --insecure-registry=$registry --metrics-bind-address=127.0.0.1:10269 \
  </dev/null >>"$ub/berth.log" 2>&1 &
echo $! >"$state/pids/upstream-berth"
readlink -f "$berth_bin" >"$state/pids/upstream-berth.exe"
cri_up() { ub_crictl version | grep -q '^RuntimeName:[[:space:]]*berth'; }
wait_for 30 cri_up || ub_fail "berth --runtime-only did not serve CRI on $ub_sock"
[ -z "$(jsonpath "node/$ub_node" '{.metadata.name}')" ] || ub_fail "node $ub_node exists before the kubelet started"

# --- upstream kubelet on berth's socket ---------------------------------------------------------
"$repo_dir/tests/peer/kubelet.sh" start "$ub/kubelet" || ub_fail "upstream kubelet did not make node $ub_node Ready"
runtime=$(jsonpath "node/$ub_node" '{.status.nodeInfo.containerRuntimeVersion}')
[[ "$runtime" == berth://* ]] || ub_fail "node $ub_node reports runtime '$runtime', want berth://..."
node_ready "$ub_node" || ub_fail "node $ub_node not Ready"

# --- a pod bound to it --------------------------------------------------------------------------
kubectl apply -n default -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: ukb-pod}
spec:
  nodeName: $ub_node
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo hello from berth under the upstream kubelet; exec sleep 3600"]
POD
wait_for 120 pod_phase_is default ukb-pod Running || ub_fail "pod ukb-pod not Running on $ub_node"
log "pod ukb-pod Running on $ub_node"
pod_ip=$(jsonpath pod/ukb-pod '{.status.podIP}' default)
cidr=$(jsonpath "node/$ub_node" '{.spec.podCIDR}')
cidr=${cidr:-10.88.1.0/24}           # kubelet.sh's fallback; the controller-manager gives /24s
net=${cidr%/*}
[ -n "$pod_ip" ] && [ "${pod_ip%.*}" = "${net%.*}" ] ||
  ub_fail "pod IP '$pod_ip' not in the node's podCIDR $cidr"
ctr=$(ub_crictl ps -q --label io.kubernetes.pod.name=ukb-pod --label io.kubernetes.pod.namespace=default --name '^main$')
[ -n "$ctr" ] || ub_fail "berth has no running container main of ukb-pod"
logged() { ub_crictl logs "$ctr" 2>&1 | grep -q "hello from berth under the upstream kubelet"; }
wait_for 30 logged || ub_fail "crictl logs $ctr lacks the container's output"
klogs() { kubectl logs -n default ukb-pod | grep -q "hello from berth under the upstream kubelet"; }
wait_for 30 klogs || ub_fail "kubectl logs (through the upstream kubelet's server) lacks the output"

# --- stats from berth's CRI (PodAndContainerStatsFromCRI) -----------------------------------------
proxy="/api/v1/nodes/$ub_node/proxy"
# summary_has_pod: the kubelet's /stats/summary has ukb-pod with CPU and memory, pod and container.
# ?only_cpu_and_memory=true (metrics-server's query): the full summary also needs the node's
# rootfs from the kubelet's own cAdvisor, which on this VM fails ("cannot find filesystem info
# for device /dev/vda") whatever the runtime.
summary_has_pod() {
  kubectl get --raw "$proxy/stats/summary?only_cpu_and_memory=true" >"$ub/summary.json" 2>"$ub/summary.err" || return 1
  jq -e '.pods[] | select(.podRef.name == "ukb-pod" and .podRef.namespace == "default") |
    select(.cpu.usageCoreNanoSeconds > 0 and .memory.workingSetBytes > 0) |
    .containers[] | select(.name == "main" and .cpu.usageCoreNanoSeconds > 0 and .memory.workingSetBytes > 0)' \
    "$ub/summary.json" >/dev/null
}
wait_for 60 summary_has_pod ||
  ub_fail "upstream kubelet /stats/summary lacks ukb-pod CPU/memory from berth: $(head -c 1500 "$ub/summary.json" 2>/dev/null) $(head -c 500 "$ub/summary.err" 2>/dev/null)"
log "upstream kubelet /stats/summary: ukb-pod cpu $(jq '.pods[] | select(.podRef.name == "ukb-pod") | .cpu.usageCoreNanoSeconds' "$ub/summary.json") ns"
# cadvisor_has_berth: its /metrics/cadvisor has berth's eBPF on-CPU counter for the container.
cadvisor_has_berth() {
  kubectl get --raw "$proxy/metrics/cadvisor" >"$ub/cadvisor.txt" 2>/dev/null || return 1
  grep -E '^berth_cgroup_cpu_nanoseconds_total\{.*container="main".*pod="ukb-pod".*\} [1-9]' "$ub/cadvisor.txt" >/dev/null
}
wait_for 60 cadvisor_has_berth ||
  ub_fail "upstream kubelet /metrics/cadvisor lacks berth_cgroup_cpu_nanoseconds_total of ukb-pod: $(grep -c '' "$ub/cadvisor.txt" 2>/dev/null) lines, $(grep berth_ "$ub/cadvisor.txt" 2>/dev/null | head -n 5)"
log "upstream kubelet /metrics/cadvisor: $(grep -E '^berth_cgroup_cpu_nanoseconds_total\{.*pod="ukb-pod"' "$ub/cadvisor.txt" | head -n 1)"

# --- deletion -----------------------------------------------------------------------------------
log "logs read; deleting pod ukb-pod"
kubectl delete pod -n default ukb-pod --wait=true --timeout=60s >/dev/null || ub_fail "pod ukb-pod not deleted"
# The kubelet stops the sandbox at once; it removes sandbox and containers in its garbage
# collection (containerGC, once a minute).
stopped() { [ -z "$(ub_crictl ps -q)" ] && [ -z "$(ub_crictl pods -q --state ready)" ]; }
wait_for 30 stopped || ub_fail "berth still runs containers or a ready sandbox after the pod was deleted"
log "pod ukb-pod deleted; its sandbox is stopped"
no_sandboxes() { [ -z "$(ub_crictl pods -q)" ] && [ -z "$(ub_crictl ps -a -q)" ]; }
wait_for 90 no_sandboxes || ub_fail "berth still holds sandboxes/containers after the pod was deleted"
log "the kubelet's GC removed the sandbox from berth"

# --- stop: nothing left ---------------------------------------------------------------------------
"$repo_dir/tests/peer/kubelet.sh" stop "$ub/kubelet" || ub_fail "kubelet.sh stop had to clean up"
stop_pid_file upstream-berth
left=$(ub_kill_cgroup)
[ "$left" = 0 ] || fail "$left process(es) left in $PEER_CGROUP_ROOT after kubelet and berth stopped"
[ -z "$(jsonpath "node/$ub_node" '{.metadata.name}')" ] || fail "node $ub_node still registered"
# berth runs in the host mount namespace (nsenter --net): its rootfs, shm and netns mounts,
# and the kubelet's root-dir and volume mounts, would show here.
mounts=$(awk -v root="$ub" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo)
[ -z "$mounts" ] || fail "mounts left under $ub: $mounts"
! ip -n "$netns" link show "$PEER_CNI_BRIDGE" >/dev/null 2>&1 || fail "bridge $PEER_CNI_BRIDGE left in netns $netns"
trap - EXIT
echo "PASS: upstream kubelet on berth --runtime-only: node $ub_node Ready ($runtime), pod ran at $pod_ip, logs via CRI and kubelet, stats and berth metrics via CRI, deleted cleanly"
