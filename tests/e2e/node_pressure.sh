#!/usr/bin/env bash
# Node-pressure eviction and garbage collection on a second berth node (tests/e2e/lib_node2.sh)
# started with its own thresholds:
#   image GC       --image-gc-high-threshold=0 (always over), minimum age 15 s, every 5 s: an
#                  image pulled by crictl and used by no container is removed, the image of a
#                  running pod is kept;
#   container GC   --maximum-dead-containers-per-container=0, every 5 s: the exited container of
#                  a Succeeded pod is removed, the pod stays Succeeded;
#   eviction       --eviction-hard=nodefs.available<(free bytes at start - 1.5 GiB): a pod writing
#                  3 GiB into an emptyDir is evicted (phase Failed, reason Evicted, the upstream
#                  message, an Evicted event), the node reports DiskPressure=True
#                  (KubeletHasDiskPressure) and an EvictionThresholdMet event; the evicted pod's
#                  emptyDir is torn down, so DiskPressure turns False again
#                  (--eviction-pressure-transition-period=20s) and an idle pod, ranked after
#                  the writer, keeps running.
# The threshold is relative to the disk's free space measured at the start, so the test holds on
# a shared disk as long as others do not write 1.5 GiB meanwhile.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_node2.sh
source "$(dirname "$0")/lib_node2.sh"
e2e_namespace e2e-node-pressure
trap 'node2_down || true; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"

mkdir -p "$state"
avail=$(df -B1 --output=avail "$state" | tail -n 1 | tr -d ' ')
margin=$((1536 * 1024 * 1024))
[ "$avail" -gt $((4 * margin)) ] || fail "only $avail bytes free under $state; the test writes 3 GiB"
threshold=$((avail - margin))
log "free bytes at start: $avail; node B evicts below $threshold"
n2_extra_args=(--eviction-hard="nodefs.available<$threshold"
  --eviction-pressure-transition-period=20s
  --image-gc-high-threshold=0 --image-gc-low-threshold=0 --minimum-image-ttl-duration=15s
  --image-gc-period=5s --container-gc-period=5s --maximum-dead-containers-per-container=0
  --fs-usage-period=2)
node2_up

condition() { jsonpath "node/$n2_name" "{.status.conditions[?(@.type==\"$1\")].$2}"; }
condition_is() { [ "$(condition "$1" status)" = "$2" ]; }
wait_for 60 condition_is DiskPressure False || fail "node B: DiskPressure is not False at start"

# --- image GC and dead-container GC ---------------------------------------------------------
unused="$registry/busybox-multi:latest"  # shares a layer with $image
crictl_b pull "$unused" >/dev/null || fail "crictl pull $unused on node B"
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS
apiVersion: v1
kind: Pod
metadata: {name: idle}
spec:
  nodeName: $n2_name
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: $image, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  nodeName: $n2_name
  restartPolicy: Never
  containers:
  - {name: main, image: $image, command: ["true"]}
PODS
wait_for 120 pod_phase_is "$E2E_NS" idle Running || fail "pod idle not Running" "$E2E_NS"
wait_for 120 pod_phase_is "$E2E_NS" done Succeeded || fail "pod done not Succeeded" "$E2E_NS"
has_image() { crictl_b images -q "$1" 2>/dev/null | grep -q .; }
start=$SECONDS
wait_for 90 eval '! has_image "$unused"' || fail "image GC did not remove the unused image $unused"
log "image GC removed $unused after $((SECONDS - start)) s"
has_image "$image" || fail "image GC removed $image, in use by pod idle"

done_uid=$(jsonpath pod/done '{.metadata.uid}' "$E2E_NS")
dead_containers() { crictl_b ps -a -q --label "io.kubernetes.pod.uid=$done_uid" 2>/dev/null | wc -l; }
wait_for 60 eval '[ "$(dead_containers)" -eq 0 ]' ||
  fail "container GC left $(dead_containers) dead container(s) of pod done"
pod_phase_is "$E2E_NS" done Succeeded || fail "pod done is no longer Succeeded after container GC" "$E2E_NS"
log "container GC removed the dead container of pod done"

# --- node-pressure eviction (nodefs.available) ------------------------------------------------
# The node's DiskPressure condition, sampled in the background while the writer runs.
watch_file="$state/node_pressure.conditions"
: >"$watch_file"
( while :; do echo "$(condition DiskPressure status)/$(condition DiskPressure reason)"; sleep 0.5
  done >>"$watch_file" 2>/dev/null ) &
watcher=$!
trap 'kill "$watcher" 2>/dev/null || true; node2_down || true; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  nodeName: $n2_name
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/scratch/blob bs=1M count=3072; sync; sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
POD
evicted() { [ "$(jsonpath pod/writer '{.status.phase}/{.status.reason}' "$E2E_NS")" = Failed/Evicted ]; }
start=$SECONDS
wait_for 150 evicted || fail "pod writer was not evicted for nodefs.available" "$E2E_NS"
log "writer evicted after $((SECONDS - start)) s"
message=$(jsonpath pod/writer '{.status.message}' "$E2E_NS")
case "$message" in
  "The node was low on resource: ephemeral-storage. Threshold quantity: "*", available: "*) ;;
  *) fail "unexpected eviction message: $message" "$E2E_NS" ;;
esac
saw_pressure() { grep -qx 'True/KubeletHasDiskPressure' "$watch_file"; }
wait_for 30 saw_pressure || fail "node B never reported DiskPressure=True (KubeletHasDiskPressure)"
evicted_event() {
  kubectl get events -n "$E2E_NS" --field-selector involvedObject.name=writer,reason=Evicted \
    -o jsonpath='{.items[*].type}' | grep -q Warning
}
wait_for 30 evicted_event || fail "no Warning Evicted event for pod writer" "$E2E_NS"
node_event() {
  kubectl get events -n default \
    --field-selector "involvedObject.kind=Node,involvedObject.name=$n2_name,reason=EvictionThresholdMet" \
    -o jsonpath='{.items[*].message}' | grep -q 'Attempting to reclaim ephemeral-storage'
}
wait_for 30 node_event || fail "no EvictionThresholdMet event for node $n2_name"

# --- recovery: the evicted pod's emptyDir is torn down, the pressure ends ----------------------
start=$SECONDS
wait_for 120 condition_is DiskPressure False || fail "node B: DiskPressure did not recover"
log "DiskPressure False again $((SECONDS - start)) s after the eviction was seen"
kill "$watcher" 2>/dev/null || true
wait "$watcher" 2>/dev/null || true
pod_phase_is "$E2E_NS" idle Running ||
  fail "pod idle (ranked after the writer) was evicted too" "$E2E_NS"
taints=$(jsonpath "node/$n2_name" '{.spec.taints[*].key}')
log "node B taints after recovery: ${taints:-none}"
rm -f "$watch_file"
log "PASS"
