#!/usr/bin/env bash
# (g) berth serves Prometheus text on 127.0.0.1:10249/metrics (inside the netns) with
# process metrics.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
url=http://127.0.0.1:10249/metrics
serving() { in_ns curl -sf --max-time 5 "$url" -o /dev/null; }
wait_for 60 serving || fail "GET $url failed"
headers=$(in_ns curl -sf --max-time 5 -D - -o "$state/metrics.txt" "$url")
grep -qi '^content-type: text/plain' <<<"$headers" || fail "Content-Type is not text/plain: $headers"
grep -q '^# TYPE process_resident_memory_bytes gauge' "$state/metrics.txt" ||
  fail "no '# TYPE process_resident_memory_bytes gauge' line"
rss=$(awk '$1=="process_resident_memory_bytes" {print $2}' "$state/metrics.txt")
awk -v v="$rss" 'BEGIN {exit !(v + 0 > 0)}' || fail "process_resident_memory_bytes is '$rss'"
# The exposition must parse: every sample line is "<name>[{labels}] <number>[ <timestamp>]".
bad=$(grep -v '^#' "$state/metrics.txt" | grep -v '^$' |
  grep -Evc '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEINanf]+( [0-9]+)?$' || true)
[ "$bad" = 0 ] || fail "$bad malformed sample lines in $url"
echo "PASS: $url serves Prometheus text, process_resident_memory_bytes=$rss"

# A running pod is reported on /metrics/cadvisor (container_* with its pod/namespace labels,
# id = its cgroup path), /metrics/resource and /stats/summary; /metrics has berth_ebpf_up 1.
e2e_namespace e2e-metrics
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: busy}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "while true; do i=0; while [ \$i -lt 2000 ]; do i=\$((i+1)); done; sleep 1; done"]
POD
wait_for 120 pod_phase_is "$E2E_NS" busy Running || fail "pod busy not Running" "$E2E_NS"
base=http://127.0.0.1:10249
cadvisor_has_pod() {
  in_ns curl -sf --max-time 10 "$base/metrics/cadvisor" -o "$state/cadvisor.txt" &&
    grep -E '^container_cpu_usage_seconds_total\{' "$state/cadvisor.txt" |
      grep 'container="main"' | grep "namespace=\"$E2E_NS\"" | grep -q 'pod="busy"'
}
wait_for 30 cadvisor_has_pod || fail "no container_cpu_usage_seconds_total for pod busy on /metrics/cadvisor" "$E2E_NS"
grep -E '^container_cpu_usage_seconds_total\{' "$state/cadvisor.txt" | grep 'pod="busy"' |
  grep -q "id=\"$cgroup_root/" || fail "cadvisor id label of pod busy is not under $cgroup_root"
bad=$(grep -v '^#' "$state/cadvisor.txt" | grep -v '^$' |
  grep -Evc '^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [-+0-9.eEINanf]+( [0-9]+)?$' || true)
[ "$bad" = 0 ] || fail "$bad malformed sample lines in /metrics/cadvisor"
in_ns curl -sf --max-time 10 "$base/metrics/resource" -o "$state/resource.txt" ||
  fail "GET /metrics/resource failed"
grep -E '^pod_memory_working_set_bytes\{' "$state/resource.txt" | grep -q 'pod="busy"' ||
  fail "no pod_memory_working_set_bytes for pod busy on /metrics/resource"
grep -q '^scrape_error ' "$state/resource.txt" || fail "no scrape_error on /metrics/resource"
in_ns curl -sf --max-time 10 "$base/stats/summary" -o "$state/summary.json" ||
  fail "GET /stats/summary failed"
jq -e --arg ns "$E2E_NS" \
  '[.pods[] | select(.podRef.name == "busy" and .podRef.namespace == $ns)] | length == 1' \
  "$state/summary.json" >/dev/null || fail "pod busy not in /stats/summary pods[].podRef: $(head -c 2000 "$state/summary.json")"
in_ns curl -sf --max-time 10 "$base/metrics" -o "$state/metrics.txt" || fail "GET /metrics failed"
grep -q '^berth_ebpf_up 1$' "$state/metrics.txt" ||
  fail "berth_ebpf_up is not 1: $(grep berth_ebpf "$state/metrics.txt"; grep -i ebpf "$state/berth.log" | tail -3)"
ebpf_has_pod() {
  in_ns curl -sf --max-time 10 "$base/metrics" -o "$state/metrics.txt" &&
    grep -E '^berth_cgroup_cpu_seconds_total\{' "$state/metrics.txt" | grep -q 'pod="busy"'
}
wait_for 30 ebpf_has_pod || fail "no berth_cgroup_cpu_seconds_total for pod busy on /metrics"
kubectl delete pod -n "$E2E_NS" busy --wait=true --timeout=60s >/dev/null || fail "deleting pod busy failed" "$E2E_NS"
echo "PASS: pod busy on /metrics/cadvisor, /metrics/resource, /stats/summary; berth_ebpf_up 1"
