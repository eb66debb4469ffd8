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
# node.fs (statvfs of --root-dir) and node.runtime.imageFs/containerFs (usedBytes: the image
# store's size, measured in the background once the summary asks for it).
node_fs_ok() {
  in_ns curl -sf --max-time 10 "$base/stats/summary" -o "$state/summary.json" &&
    jq -e '.node.fs.capacityBytes > 0 and .node.fs.availableBytes > 0 and .node.fs.usedBytes > 0 and
      .node.fs.inodes > 0 and .node.fs.inodesUsed > 0 and .node.runtime.imageFs.usedBytes > 0 and
      .node.runtime.imageFs.capacityBytes > 0 and .node.runtime.containerFs.capacityBytes > 0' \
      "$state/summary.json" >/dev/null
}
wait_for 30 node_fs_ok || fail "/stats/summary node.fs / node.runtime.imageFs missing or zero: $(jq -c '{fs: .node.fs, runtime: .node.runtime}' "$state/summary.json")"
# CRI ImageFsInfo as crictl prints it: image and container filesystems with usage.
crictl imagefsinfo -o json >"$state/imagefsinfo.json" || fail "crictl imagefsinfo failed"
jq -e '(.status.imageFilesystems[0].usedBytes.value | tonumber) > 0 and
  (.status.imageFilesystems[0].inodesUsed.value | tonumber) > 0 and
  (.status.containerFilesystems | length) == 1' "$state/imagefsinfo.json" >/dev/null ||
  fail "crictl imagefsinfo lacks image/container filesystems with usage: $(head -c 1500 "$state/imagefsinfo.json")"
echo "PASS: /stats/summary node.fs $(jq -c '.node.fs | {capacityBytes, usedBytes, inodesUsed}' "$state/summary.json"), imageFs.usedBytes $(jq '.node.runtime.imageFs.usedBytes' "$state/summary.json"); crictl imagefsinfo"
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

# Filesystem usage on /stats/summary: a pod writes 20 MiB into its rootfs (writable layer)
# and 20 MiB into an emptyDir (kubectl exec, after a first measurement); the container's
# rootfs.usedBytes, the volume's usedBytes and the pod's ephemeral-storage move by at least
# that much. berth measures in the background every --fs-usage-period (2 s in the e2e berth).
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
POD
wait_for 120 pod_phase_is "$E2E_NS" writer Running || fail "pod writer not Running" "$E2E_NS"
MiB=1048576
# fs_values: "<rootfs used> <logs used> <volume data used> <ephemeral used>" of pod writer, or nothing.
fs_values() {
  in_ns curl -sf --max-time 10 "$base/stats/summary" -o "$state/summary.json" || return 1
  jq -r --arg ns "$E2E_NS" '.pods[] | select(.podRef.name == "writer" and .podRef.namespace == $ns) |
    [(.containers[] | select(.name == "main") | .rootfs.usedBytes, .logs.usedBytes),
     (.volume[]? | select(.name == "data") | .usedBytes), .["ephemeral-storage"].usedBytes] |
    select(length == 4 and all(. != null)) | map(tostring) | join(" ")' "$state/summary.json"
}
fs_measured() { [ -n "$(fs_values)" ]; }
wait_for 30 fs_measured || fail "pod writer has no rootfs/logs/volume/ephemeral-storage on /stats/summary: $(jq -c --arg ns "$E2E_NS" '.pods[] | select(.podRef.name == "writer")' "$state/summary.json" | head -c 1500)" "$E2E_NS"
read -r root0 logs0 vol0 eph0 <<<"$(fs_values)"
kubectl exec -n "$E2E_NS" writer -- sh -c 'dd if=/dev/zero of=/tmp/f bs=1M count=20 2>/dev/null &&
  dd if=/dev/zero of=/data/f bs=1M count=20 2>/dev/null && sync' || fail "writing in pod writer failed" "$E2E_NS"
grown() {
  local r l v e
  read -r r l v e <<<"$(fs_values)"
  [ -n "$e" ] && [ "$r" -ge $((root0 + 20 * MiB)) ] && [ "$v" -ge $((vol0 + 20 * MiB)) ] &&
    [ "$e" -ge $((eph0 + 40 * MiB)) ]
}
wait_for 120 grown || fail "after writing 20 MiB each: rootfs/logs/volume/ephemeral $(fs_values), before $root0 $logs0 $vol0 $eph0" "$E2E_NS"
after=$(fs_values)
# The same writable layer on /metrics/cadvisor (cAdvisor's container_fs_usage_bytes, with device).
cadvisor_fs() {
  in_ns curl -sf --max-time 10 "$base/metrics/cadvisor" -o "$state/cadvisor.txt" || return 1
  awk -v ns="$E2E_NS" '$1 ~ /^container_fs_usage_bytes\{/ && index($1, "container=\"main\"") &&
    index($1, "pod=\"writer\"") && index($1, "namespace=\"" ns "\"") && index($1, "device=\"/") {print $2}' \
    "$state/cadvisor.txt"
}
fs_in_cadvisor() { local v; v=$(cadvisor_fs); [ -n "$v" ] && awk -v v="$v" -v m=$((root0 + 20 * MiB)) 'BEGIN {exit !(v + 0 >= m)}'; }
wait_for 30 fs_in_cadvisor || fail "container_fs_usage_bytes of writer/main is '$(cadvisor_fs)', want >= $((root0 + 20 * MiB))" "$E2E_NS"
fs_usage=$(cadvisor_fs)
# The node's filesystem as cAdvisor's root container (id="/", with device).
root_fs=$(awk '$1 ~ /^container_fs_limit_bytes\{/ && index($1, "id=\"/\"") && index($1, "device=\"/") {print $2}' "$state/cadvisor.txt")
awk -v v="$root_fs" 'BEGIN {exit !(v + 0 > 0)}' || fail "no container_fs_limit_bytes{id=\"/\",device=...} > 0 on /metrics/cadvisor"
kubectl delete pod -n "$E2E_NS" writer --wait=true --timeout=60s >/dev/null || fail "deleting pod writer failed" "$E2E_NS"
echo "PASS: /stats/summary filesystem usage of pod writer (rootfs logs volume ephemeral-storage): before $root0 $logs0 $vol0 $eph0, after writing 20 MiB + 20 MiB: $after; container_fs_usage_bytes $fs_usage; node container_fs_limit_bytes $root_fs"
