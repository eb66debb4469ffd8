#!/usr/bin/env bash
# Streaming benchmark: `kubectl exec <pod> -- true` latency (p50/p90 over N, default 50) and
# `kubectl port-forward` throughput (100 MB echoed through one connection, median of 3 runs,
# with the node's CPU seconds per run) for a pod on the
# berth node and a pod on an upstream kubelet + containerd node (tests/peer/), in the same
# run, against the same API server. The node's own share is measured too: /exec straight to
# each kubelet server (:10250 and the peer's port) over WebSocket v5.channel.k8s.io with the
# API server's kubelet client certificate (tests/bench/kubelet_exec_client.py), N each,
# alternating, with its phases (TLS, upgrade, until the exit status, close).
# Prints one JSON object on stdout. Not a pass/fail test.
# Usage: BERTH_E2E_STATE=<state> tests/bench/exec_latency.sh [N]
#   (tests/e2e/cluster_up.sh ran with the same state dir; the peer is started and stopped here)
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
n=${1:-50}
ns=bench-exec
[ -n "$(berth_pid)" ] && pid_alive berth || fail "berth is not running (start tests/e2e/cluster_up.sh)"
peer="$state/bench-exec-peer"
cleanup() {
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  "$repo_dir/tests/peer/node.sh" stop "$peer" >&2 || true
}
trap cleanup EXIT

"$repo_dir/tests/peer/node.sh" start "$peer" >&2 || fail "the upstream peer node did not start"
eval "$("$repo_dir/tests/peer/node.sh" env "$peer")"

kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null
kubectl create namespace "$ns" >/dev/null
wait_for 60 kubectl get serviceaccount default -n "$ns" || fail "no default ServiceAccount in $ns"
pod() {  # pod <name> <node>
  cat <<POD
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $2
  terminationGracePeriodSeconds: 1
  tolerations: [{key: berth.dev/peer, operator: Exists}]
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "nc -ll -p 8080 -e cat & exec sleep 3600"]
POD
}
{ pod on-berth "$node_name"; echo ---; pod on-peer "$PEER_NODE_NAME"; } | kubectl apply -n "$ns" -f - >/dev/null
for p in on-berth on-peer; do
  wait_for 180 pod_phase_is "$ns" $p Running || fail "pod $p not Running" "$ns"
done

# exec_ms <pod>...: latencies of `kubectl exec <pod> -- true` in ms, N per pod, written to
# $state/bench-exec-<pod>.ms one per line (after 3 warm-ups). The pods take turns, so that
# load from elsewhere on the machine hits both alike. Each round also times `kubectl get pod`
# ($state/bench-exec-baseline.ms): the share of an exec that no node can save.
exec_ms() {
  local i p t0
  for p in "$@"; do
    : >"$state/bench-exec-$p.ms"
    for i in 1 2 3; do kubectl exec -n "$ns" "$p" -- true || fail "kubectl exec $p -- true failed"; done
  done
  : >"$state/bench-exec-baseline.ms"
  for i in $(seq 1 "$n"); do
    # Baseline: kubectl's start and one API server round trip, which every exec pays too.
    t0=$EPOCHREALTIME
    kubectl get pod -n "$ns" "$1" -o name >/dev/null || fail "kubectl get pod $1 failed"
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$state/bench-exec-baseline.ms"
    for p in "$@"; do
      t0=$EPOCHREALTIME
      kubectl exec -n "$ns" "$p" -- true || fail "kubectl exec $p -- true failed"
      awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f\n", (b - a) * 1000}' >>"$state/bench-exec-$p.ms"
    done
  done
}

cat >"$state/bench-pf.py" <<'PY'
import hashlib, os, socket, sys, threading, time
port, size = int(sys.argv[1]), int(sys.argv[2])
data = os.urandom(1 << 20)
s = socket.create_connection(("127.0.0.1", port), timeout=120)
want, got = hashlib.sha256(), hashlib.sha256()
def send():
    left = size
    while left > 0:
        c = data[: min(left, len(data))]; s.sendall(c); want.update(c); left -= len(c)
start = time.time()
t = threading.Thread(target=send); t.start()
n = 0
while n < size:
    b = s.recv(1 << 16)
    if not b: break
    got.update(b); n += len(b)
t.join(); secs = time.time() - start
ok = n == size and want.digest() == got.digest()
print("%.1f" % (size / secs / 1e6) if ok else "corrupt")
PY
# pf_mbps <pod> <local port>: MB/s of 100 MB echoed through kubectl port-forward. Runs in a
# command substitution (a subshell): it stops its own kubectl before returning.
rm -f "$state/bench-pf-on-berth.txt" "$state/bench-pf-on-peer.txt"
pf_listening() { in_ns bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
pf_mbps() {
  local pf rc=0
  ip netns exec "$netns" "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" -n "$ns" \
    port-forward "pod/$1" "$2:8080" >"$state/bench-pf-$1.log" 2>&1 &
  pf=$!
  if wait_for 30 pf_listening "$2"; then
    in_ns python3 "$state/bench-pf.py" "$2" $((100 * 1024 * 1024)) || rc=1
  else
    log "kubectl port-forward $1 did not listen: $(cat "$state/bench-pf-$1.log")"; rc=1
  fi
  kill "$pf" 2>/dev/null || true
  wait "$pf" 2>/dev/null || true
  return $rc
}

exec_ms on-berth on-peer
# Node-side latency: the same `true`, straight to the kubelet servers.
direct=$(in_ns /usr/bin/python3 "$repo_dir/tests/bench/kubelet_exec_client.py" \
  "$state/pki/ca.crt" "$state/pki/apiserver-kubelet-client.crt" \
  "$state/pki/apiserver-kubelet-client.key" "$n" \
  "berth=https://$node_addr:10250/exec/$ns/on-berth/main?command=true&output=1" \
  "upstream=https://$node_addr:$PEER_KUBELET_PORT/exec/$ns/on-peer/main?command=true&output=1") ||
  fail "direct /exec to the kubelet servers failed"
# Node-side CPU (seconds) during one port-forward run: berth's process (kubelet server,
# streaming server and proxy, all in-process) against the upstream kubelet's process plus
# containerd and its shims (their cgroup <peer cgroup root>/containerd, cpuacct.usage).
clk_tck=$(getconf CLK_TCK)
proc_cpu_s() {  # proc_cpu_s <pid>: utime + stime of the process, seconds
  awk -v t="$clk_tck" '{sub(/.*\) /, ""); printf "%.3f\n", ($12 + $13) / t}' "/proc/$1/stat"
}
ctrd_cpuacct="/sys/fs/cgroup/cpuacct$PEER_CGROUP_ROOT/containerd/cpuacct.usage"
[ -r "$ctrd_cpuacct" ] || fail "no cpuacct.usage of the containerd peer at $ctrd_cpuacct"
berth_cpu_s() { proc_cpu_s "$(berth_pid)"; }
peer_cpu_s() {
  awk -v k="$(proc_cpu_s "$PEER_KUBELET_PID")" -v c="$(cat "$ctrd_cpuacct")" 'BEGIN {printf "%.3f\n", k + c / 1e9}'
}
# pf_run <pod> <port> <cpu fn>: "<MB/s> <node CPU seconds>"
pf_run() {
  local c0 mbps
  c0=$($3)
  mbps=$(pf_mbps "$1" "$2") || return 1
  echo "$mbps $(awk -v a="$c0" -v b="$($3)" 'BEGIN {printf "%.2f", b - a}')"
}

berth_ms=$(cat "$state/bench-exec-on-berth.ms")
peer_ms=$(cat "$state/bench-exec-on-peer.ms")
# Three rounds, taking turns; the median round of each side is reported.
for r in 1 2 3; do
  pf_run on-berth 18090 berth_cpu_s >>"$state/bench-pf-on-berth.txt" || fail "port-forward to on-berth failed"
  pf_run on-peer 18091 peer_cpu_s >>"$state/bench-pf-on-peer.txt" || fail "port-forward to on-peer failed"
done
med() { sort -n -k1,1 "$1" | sed -n 2p; }
read -r berth_pf berth_pf_cpu <<<"$(med "$state/bench-pf-on-berth.txt")"
read -r peer_pf peer_pf_cpu <<<"$(med "$state/bench-pf-on-peer.txt")"
base_ms=$(cat "$state/bench-exec-baseline.ms")
jq -n --argjson n "$n" \
  --arg b50 "$(percentile 0.5 <<<"$berth_ms")" --arg b90 "$(percentile 0.9 <<<"$berth_ms")" \
  --arg p50 "$(percentile 0.5 <<<"$peer_ms")" --arg p90 "$(percentile 0.9 <<<"$peer_ms")" \
  --arg g50 "$(percentile 0.5 <<<"$base_ms")" \
  --arg bpf "$berth_pf" --arg ppf "$peer_pf" --arg bcpu "$berth_pf_cpu" --arg pcpu "$peer_pf_cpu" \
  --arg bruns "$(awk '{printf "%s%s", s, $1; s=","}' "$state/bench-pf-on-berth.txt")" \
  --arg pruns "$(awk '{printf "%s%s", s, $1; s=","}' "$state/bench-pf-on-peer.txt")" \
  --argjson direct "$direct" '{
  benchmark: "exec_latency", execs: $n,
  kubectl_get_pod_p50_ms: ($g50 | tonumber),
  berth: {exec_p50_ms: ($b50 | tonumber), exec_p90_ms: ($b90 | tonumber),
          exec_p50_minus_get_ms: ((($b50 | tonumber) - ($g50 | tonumber)) * 10 | round / 10),
          port_forward_100mb_mbps: ($bpf | tonumber), port_forward_runs_mbps: $bruns,
          port_forward_node_cpu_s: ($bcpu | tonumber)},
  upstream_kubelet_containerd: {exec_p50_ms: ($p50 | tonumber), exec_p90_ms: ($p90 | tonumber),
          exec_p50_minus_get_ms: ((($p50 | tonumber) - ($g50 | tonumber)) * 10 | round / 10),
          port_forward_100mb_mbps: ($ppf | tonumber), port_forward_runs_mbps: $pruns,
          port_forward_node_cpu_s: ($pcpu | tonumber)},
  exec_p50_ratio: (($b50 | tonumber) / ($p50 | tonumber) * 100 | round / 100),
  node_exec_websocket: $direct,
  node_exec_p50_ratio: ($direct.berth.total_ms.p50 / $direct.upstream.total_ms.p50 * 100 | round / 100),
  port_forward_ratio: (($bpf | tonumber) / ($ppf | tonumber) * 100 | round / 100)}'
