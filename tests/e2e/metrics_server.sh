#!/usr/bin/env bash
# metrics-server (built unchanged from the pinned sigs.k8s.io/metrics-server in
# tests/cluster/metrics-server, `tests/cluster/build.sh metrics-server`) scrapes berth's
# /metrics/resource on the kubelet port (:10250, HTTPS) and serves metrics.k8s.io through the
# API server's aggregation layer; `kubectl top pods` and `kubectl top nodes` print berth's
# pod and node. metrics-server runs as a process in the cluster netns (by PID), registered
# with a selector-less Service + EndpointSlice + APIService (the API server runs with
# --enable-aggregator-routing); all of it is removed on exit.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
ms_bin="$cluster_bin/metrics-server"
[ -x "$ms_bin" ] || fail "$ms_bin missing: run tests/cluster/build.sh metrics-server"
kubelet_port=$(jsonpath "node/$node_name" '{.status.daemonEndpoints.kubeletEndpoint.Port}')
[ -n "$kubelet_port" ] || fail "node $node_name reports no kubelet port"
kubelet_up() { in_ns curl -sk --max-time 5 -o /dev/null "https://$node_addr:$kubelet_port/healthz"; }
wait_for 30 kubelet_up || fail "berth serves no HTTPS kubelet endpoint on $node_addr:$kubelet_port (metrics-server needs it)"

ms_port=4443
ms_dir="$state/metrics-server.$$"
ms_pid=
e2e_namespace e2e-metrics-server
cleanup() {
  if [ -n "$ms_pid" ]; then
    kill -TERM "$ms_pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$ms_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL "$ms_pid" 2>/dev/null || true
    wait "$ms_pid" 2>/dev/null || true
  fi
  kubectl delete apiservice v1beta1.metrics.k8s.io --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete -n kube-system service/metrics-server endpointslice/metrics-server \
    --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  rm -rf "$ms_dir"
}
trap cleanup EXIT
mkdir -p "$ms_dir"

# The admin kubeconfig stands in for metrics-server's service account (it needs get/list of
# nodes, pods, nodes/metrics, and the extension-apiserver-authentication ConfigMap).
in_ns "$ms_bin" --kubeconfig="$state/admin.kubeconfig" \
  --authentication-kubeconfig="$state/admin.kubeconfig" \
  --authorization-kubeconfig="$state/admin.kubeconfig" \
  --bind-address="$node_addr" --secure-port=$ms_port --cert-dir="$ms_dir" \
  --kubelet-insecure-tls --kubelet-preferred-address-types=InternalIP --kubelet-use-node-status-port \
  --metric-resolution=10s --v=2 </dev/null >"$ms_dir/metrics-server.log" 2>&1 &
ms_pid=$!
ms_ready() { in_ns curl -sk --max-time 3 -o /dev/null "https://$node_addr:$ms_port/livez"; }
wait_for 60 ms_ready || fail "metrics-server not live: $(tail -n 20 "$ms_dir/metrics-server.log")"

kubectl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  ports: [{name: https, port: 443, targetPort: $ms_port, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: metrics-server
  namespace: kube-system
  labels: {kubernetes.io/service-name: metrics-server}
addressType: IPv4
ports: [{name: https, port: $ms_port, protocol: TCP}]
endpoints: [{addresses: ["$node_addr"], conditions: {ready: true}}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  service: {name: metrics-server, namespace: kube-system, port: 443}
  group: metrics.k8s.io
  version: v1beta1
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
YAML

kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: top-me}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "while :; do :; done"]
    resources: {limits: {cpu: 200m, memory: 32Mi}}
POD
wait_for 120 pod_phase_is "$E2E_NS" top-me Running || fail "pod top-me not Running" "$E2E_NS"

api_available() {
  [ "$(jsonpath apiservice/v1beta1.metrics.k8s.io '{.status.conditions[?(@.type=="Available")].status}')" = True ]
}
wait_for 60 api_available || fail "APIService v1beta1.metrics.k8s.io not Available: $(kubectl get apiservice v1beta1.metrics.k8s.io -o yaml | tail -n 15); $(tail -n 20 "$ms_dir/metrics-server.log")"

# metrics-server needs two scrapes (10 s apart) for a CPU rate.
top_has_pod() {
  kubectl top pods -n "$E2E_NS" --no-headers >"$ms_dir/top.txt" 2>&1 && grep -q '^top-me ' "$ms_dir/top.txt"
}
wait_for 90 top_has_pod ||
  fail "kubectl top pods does not list top-me: $(cat "$ms_dir/top.txt"); metrics-server: $(tail -n 20 "$ms_dir/metrics-server.log")" "$E2E_NS"
read -r _ cpu mem < <(grep '^top-me ' "$ms_dir/top.txt")
millicores=${cpu%m}
[ "$millicores" -ge 100 ] && [ "$millicores" -le 300 ] ||
  fail "kubectl top pods: top-me uses $cpu, want 100m..300m (limit 200m, busy loop)" "$E2E_NS"
echo "PASS: kubectl top pods: top-me $cpu $mem"

top_has_node() {
  kubectl top nodes --no-headers >"$ms_dir/top-nodes.txt" 2>&1 && grep -q "^$node_name " "$ms_dir/top-nodes.txt"
}
wait_for 60 top_has_node || fail "kubectl top nodes does not list $node_name: $(cat "$ms_dir/top-nodes.txt")"
echo "PASS: kubectl top nodes: $(grep "^$node_name " "$ms_dir/top-nodes.txt")"
