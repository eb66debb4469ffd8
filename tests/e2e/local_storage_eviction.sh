#!/usr/bin/env bash
# Local ephemeral-storage eviction (the kubelet eviction manager's localStorageEviction): a pod
# writing 4 MiB into an emptyDir with sizeLimit 1Mi, a pod whose container writes 4 MiB into
# its writable layer past its own ephemeral-storage limit of 1Mi (the pod's total, 9Mi, not
# exceeded), and a pod writing 3 MiB into an unlimited emptyDir past the sum of its
# containers' limits (2Mi) end Failed with reason Evicted, the upstream message and an Evicted
# event, and their containers are killed. A pod writing under its limits keeps running. The e2e berth measures disk usage every 2 s
# (--fs-usage-period=2 in start_berth), so this takes seconds.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-eviction
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS
apiVersion: v1
kind: Pod
metadata: {name: emptydir}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/cache/blob bs=1M count=4 && sync && sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes: [{name: cache, emptyDir: {sizeLimit: 1Mi}}]
---
apiVersion: v1
kind: Pod
metadata: {name: rootfs}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: writer
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/blob bs=1M count=4 && sync && sleep 3600"]
    resources: {limits: {ephemeral-storage: 1Mi}}
  - name: idle
    image: $image
    command: ["sleep", "3600"]
    resources: {limits: {ephemeral-storage: 8Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: podsum}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/scratch/blob bs=1M count=3 && sync && sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    resources: {limits: {ephemeral-storage: 2Mi}}
  volumes: [{name: scratch, emptyDir: {}}]
---
apiVersion: v1
kind: Pod
metadata: {name: within}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/cache/blob bs=1M count=1 && sync && sleep 3600"]
    volumeMounts: [{name: cache, mountPath: /cache}]
    resources: {limits: {ephemeral-storage: 8Mi}}
  volumes: [{name: cache, emptyDir: {sizeLimit: 4Mi}}]
---
apiVersion: v1
kind: Pod
metadata: {name: memory}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "dd if=/dev/zero of=/shm/blob bs=1M count=3 && sleep 3600"]
    volumeMounts: [{name: shm, mountPath: /shm}]
    resources: {limits: {ephemeral-storage: 1Mi}}
  volumes: [{name: shm, emptyDir: {medium: Memory, sizeLimit: 4Mi}}]
PODS

start=$SECONDS
wait_for 120 pod_phase_is "$E2E_NS" emptydir Failed || fail "pod emptydir not Failed" "$E2E_NS"
wait_for 60 pod_phase_is "$E2E_NS" rootfs Failed || fail "pod rootfs not Failed" "$E2E_NS"
wait_for 60 pod_phase_is "$E2E_NS" podsum Failed || fail "pod podsum not Failed" "$E2E_NS"
took=$((SECONDS - start))

# expect_evicted <pod> <message>: status reason/message, an Evicted event with the message, and
# no running container of the pod left (killed without the 30 s grace period).
expect_evicted() {
  local pod=$1 want=$2 reason message
  reason=$(jsonpath "pod/$pod" '{.status.reason}' "$E2E_NS")
  message=$(jsonpath "pod/$pod" '{.status.message}' "$E2E_NS")
  [ "$reason" = Evicted ] || fail "pod $pod: reason '$reason', want Evicted" "$E2E_NS"
  [ "$message" = "$want" ] || fail "pod $pod: message '$message', want '$want'" "$E2E_NS"
  has_event() {
    kubectl get events -n "$E2E_NS" --field-selector "involvedObject.name=$pod,reason=Evicted" \
      -o jsonpath='{range .items[*]}{.type}|{.message}{"\n"}{end}' | grep -qxF "Warning|$want"
  }
  wait_for 30 has_event || fail "pod $pod: no Warning Evicted event '$want'" "$E2E_NS"
  local uid
  uid=$(jsonpath "pod/$pod" '{.metadata.uid}' "$E2E_NS")
  no_running() { [ -z "$(crictl ps -q --label "io.kubernetes.pod.uid=$uid" --state Running)" ]; }
  wait_for 10 no_running || fail "pod $pod: containers still running after eviction" "$E2E_NS"
  [ -n "$(jsonpath "pod/$pod" '{.status.containerStatuses[0].state.terminated.exitCode}' "$E2E_NS")" ] ||
    fail "pod $pod: container status not terminated" "$E2E_NS"
}
expect_evicted emptydir 'Usage of EmptyDir volume "cache" exceeds the limit "1Mi". '
expect_evicted rootfs 'Container writer exceeded its local ephemeral storage limit "1Mi". '
expect_evicted podsum 'Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. '
pod_phase_is "$E2E_NS" within Running || fail "pod within (under its limits) is not Running" "$E2E_NS"
[ -z "$(jsonpath pod/within '{.status.reason}' "$E2E_NS")" ] || fail "pod within has a status reason" "$E2E_NS"
# An emptyDir of medium Memory is a tmpfs of its sizeLimit; its 3 MiB are memory, not
# ephemeral storage (over the pod's 1Mi limit, yet not evicted).
pod_phase_is "$E2E_NS" memory Running || fail "pod memory (tmpfs emptyDir) is not Running" "$E2E_NS"
shm=$(kubectl exec -n "$E2E_NS" memory -- sh -c 'grep " /shm " /proc/mounts; df -k /shm | tail -n 1') ||
  fail "exec in pod memory failed" "$E2E_NS"
grep -q "^tmpfs /shm tmpfs" <<<"$shm" || fail "/shm of pod memory is not a tmpfs: $shm" "$E2E_NS"
[ "$(awk 'END {print $2}' <<<"$shm")" = 4096 ] || fail "/shm of pod memory is not 4096 KiB: $shm" "$E2E_NS"
[ -z "$(jsonpath pod/memory '{.status.reason}' "$E2E_NS")" ] || fail "pod memory was evicted for memory in a tmpfs" "$E2E_NS"
memory_uid=$(jsonpath pod/memory '{.metadata.uid}' "$E2E_NS")
grep -qF "/pods/$memory_uid/volumes/kubernetes.io~empty-dir/shm " "/proc/$(cat "$state/berth.pid")/mountinfo" ||
  fail "no tmpfs mount of pod memory's volume on the node"
uids=$(kubectl get pods -n "$E2E_NS" -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}')
kubectl delete pod -n "$E2E_NS" --all --wait=true --timeout=60s >/dev/null || fail "deleting the pods failed" "$E2E_NS"
# Deleted pods leave no volume mounts (the tmpfs emptyDir, service account tokens).
left=$(grep -F "$berth_dir/lib/kubelet/pods/" "/proc/$(cat "$state/berth.pid")/mountinfo" | grep -F "$uids" || true)
[ -z "$left" ] || fail "volume mounts left after the pods were deleted: $left"
echo "PASS: emptyDir over sizeLimit, container and pod over ephemeral-storage limits -> Failed/Evicted with the kubelet's messages and events, containers killed (${took}s); pod within limits kept; a Memory emptyDir is a 4 MiB tmpfs, not counted as ephemeral storage, unmounted on deletion"
