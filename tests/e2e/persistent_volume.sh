#!/usr/bin/env bash
# PersistentVolumeClaims on a berth node (kubelet/volume_manager.cc), with the upstream
# controller-manager's PV binder and ephemeral-volume controller and the scheduler's
# VolumeBinding plugin doing their parts:
#  - a local PV (StorageClass with WaitForFirstConsumer, nodeAffinity to this node) bound
#    when the pod is scheduled, and a hostPath PV pre-bound by volumeName: the pod writes
#    into both, the files land in the PVs' host directories; the same claim mounted with
#    persistentVolumeClaim.readOnly refuses writes;
#  - a generic ephemeral volume: the PVC "<pod>-<volume>" the controller creates, bound to a
#    second local PV;
#  - a pod bound to the node (nodeName) whose claim does not exist yet: a FailedMount event
#    names the claim, the pod stays Pending, and it starts once the claim exists and is bound;
#  - fsGroup: a non-root pod with fsGroup 2000 writes into the local PV and an emptyDir
#    (group 2000, setgid, as SetVolumeOwnership), 2000 among its groups;
#  - subPathExpr expands $(POD_NAME); a subPath that an init container made a symlink to /etc
#    is refused with CreateContainerConfigError;
#  - the local PV's claim has volume stats (/stats/summary pvcRef, kubelet_volume_stats_*);
#  - deleting the pods leaves the volumes' data on the host.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-pv
dir=$(mktemp -d "$state/pv.XXXXXX")
cleanup_pv() {
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  kubectl delete pv e2e-pv-local e2e-pv-eph e2e-pv-host e2e-pv-late --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl delete storageclass e2e-local --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup_pv EXIT
mkdir -p "$dir/local" "$dir/eph" "$dir/late"
hostname_label=$(jsonpath "node/$node_name" '{.metadata.labels.kubernetes\.io/hostname}')
[ -n "$hostname_label" ] || fail "node $node_name has no kubernetes.io/hostname label"

local_pv() {  # local_pv <name> <path>
  cat <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: $1, labels: {e2e-pv: $1}}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: e2e-local
  local: {path: $2}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: ["$hostname_label"]}]
PV
}
host_pv() {  # host_pv <name> <path> <hostPath type> [extra spec line]: a PV without a class
  cat <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: $1}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: "$2", type: $3}
  ${4:-}
PV
}
{
  cat <<SC
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: e2e-local}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
SC
  local_pv e2e-pv-local "$dir/local"
  echo ---
  local_pv e2e-pv-eph "$dir/eph"
  echo ---
  host_pv e2e-pv-host "$dir/host" DirectoryOrCreate
} | kubectl apply -f - >/dev/null || fail "creating the PVs failed"

kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS || fail "creating the claims and pods failed" "$E2E_NS"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: e2e-local
  selector: {matchLabels: {e2e-pv: e2e-pv-local}}
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: static}
spec:
  storageClassName: ""
  volumeName: e2e-pv-host
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo local-data >/data/hello && echo host-data >/static/sub/hello && if echo x 2>/dev/null >/ro/x; then echo ro-writable; else echo ro-refused; fi && sleep 3600"]
    volumeMounts:
    - {name: data, mountPath: /data}
    - {name: static, mountPath: /static/sub, subPath: sub}
    - {name: ro, mountPath: /ro}
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - {name: static, persistentVolumeClaim: {claimName: static}}
  - {name: ro, persistentVolumeClaim: {claimName: static, readOnly: true}}
---
apiVersion: v1
kind: Pod
metadata: {name: grouped}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsUser: 1000, fsGroup: 2000}
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo g >/data/grouped && echo e >/scratch/e && echo \"groups=\$(id -G) data=\$(stat -c %g /data/grouped) scratch=\$(stat -c %g /scratch/e)\" && sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}, {name: scratch, mountPath: /scratch}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - {name: scratch, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: expr}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    command: ["sh", "-c", "echo expr-data >/out/hello && sleep 3600"]
    volumeMounts: [{name: data, mountPath: /out, subPathExpr: "logs/\$(POD_NAME)"}]
  volumes:
  - {name: data, persistentVolumeClaim: {claimName: data}}
---
apiVersion: v1
kind: Pod
metadata: {name: escape}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: plant
    image: $image
    command: ["ln", "-s", "/etc", "/vol/evil"]
    volumeMounts: [{name: scratch, mountPath: /vol}]
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    volumeMounts: [{name: scratch, mountPath: /host-etc, subPath: evil}]
  volumes:
  - {name: scratch, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: eph}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "echo eph-data >/scratch/hello && sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          storageClassName: e2e-local
          selector: {matchLabels: {e2e-pv: e2e-pv-eph}}
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 1Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  nodeName: $node_name
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "cat /late/seed && sleep 3600"]
    volumeMounts: [{name: late, mountPath: /late}]
  volumes:
  - {name: late, persistentVolumeClaim: {claimName: late}}
PODS

wait_for 120 pod_phase_is "$E2E_NS" writer Running || fail "pod writer not Running" "$E2E_NS"
wait_for 30 test -s "$dir/local/hello" || fail "the local PV has no file from the pod" "$E2E_NS"
[ "$(cat "$dir/local/hello")" = local-data ] || fail "local PV file: $(cat "$dir/local/hello")" "$E2E_NS"
wait_for 30 test -s "$dir/host/sub/hello" || fail "the hostPath PV (subPath) has no file from the pod" "$E2E_NS"
[ "$(cat "$dir/host/sub/hello")" = host-data ] || fail "hostPath PV file: $(cat "$dir/host/sub/hello")" "$E2E_NS"
writer_logged() { pod_logs "$E2E_NS" writer | grep -q '^ro-'; }
wait_for 30 writer_logged || fail "writer printed nothing" "$E2E_NS"
logs=$(pod_logs "$E2E_NS" writer)
[ "$logs" = ro-refused ] || fail "a readOnly claim mount: writer printed '$logs', want ro-refused" "$E2E_NS"
[ ! -e "$dir/host/x" ] || fail "a write through the readOnly claim reached the PV" "$E2E_NS"
[ "$(jsonpath pvc/data '{.spec.volumeName}' "$E2E_NS")" = e2e-pv-local ] || fail "claim data not bound to e2e-pv-local" "$E2E_NS"
echo "writer: local PV and hostPath PV written, readOnly claim refused"

# fsGroup: a non-root pod writes into the local PV and an emptyDir through group 2000 (the
# volumes' group, setgid), and 2000 is one of its groups.
wait_for 120 pod_phase_is "$E2E_NS" grouped Running || fail "pod grouped not Running" "$E2E_NS"
grouped_logged() { pod_logs "$E2E_NS" grouped | grep -q '^groups='; }
wait_for 30 grouped_logged || fail "pod grouped printed nothing: $(pod_logs "$E2E_NS" grouped)" "$E2E_NS"
line=$(pod_logs "$E2E_NS" grouped)
case " ${line%% data=*} " in *" 2000 "*) ;; *) fail "fsGroup 2000 is not among the container's groups: $line" "$E2E_NS" ;; esac
[ "${line#* data=}" = "2000 scratch=2000" ] || fail "files written by pod grouped: $line, want group 2000" "$E2E_NS"
[ "$(stat -c %g "$dir/local/grouped")" = 2000 ] && [ -g "$dir/local" ] ||
  fail "the local PV is not group 2000 with setgid: $(stat -c '%g %A' "$dir/local")" "$E2E_NS"
echo "grouped: $line"

# subPathExpr: $(POD_NAME) from the container's env names the directory in the PV.
wait_for 120 pod_phase_is "$E2E_NS" expr Running || fail "pod expr not Running" "$E2E_NS"
wait_for 30 test -s "$dir/local/logs/expr/hello" || fail "subPathExpr logs/\$(POD_NAME): no $dir/local/logs/expr/hello" "$E2E_NS"
echo "expr: subPathExpr wrote $dir/local/logs/expr/hello"

# A subPath that a container turned into a symlink out of its volume is refused
# (CreateContainerConfigError), not bind-mounted from the host.
escape_refused() {
  [ "$(jsonpath pod/escape '{.status.containerStatuses[0].state.waiting.reason}' "$E2E_NS")" = CreateContainerConfigError ] &&
    jsonpath pod/escape '{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS" | grep -q 'outside the volume'
}
wait_for 120 escape_refused || fail "pod escape: subPath through a symlink to /etc was not refused" "$E2E_NS"
[ "$(jsonpath pod/escape '{.status.containerStatuses[0].state.running}' "$E2E_NS")" = "" ] ||
  fail "pod escape's container runs with the host's /etc" "$E2E_NS"
echo "escape: $(jsonpath pod/escape '{.status.containerStatuses[0].state.waiting.message}' "$E2E_NS")"

# Volume stats: the local PV's claim in /stats/summary (pvcRef) and kubelet_volume_stats_*
# on /metrics, with its filesystem's capacity; the hostPath PV's claim has none (as upstream).
fs_bytes=$(($(stat -f -c '%b * %S' "$dir/local")))
summary_pvc() {
  in_ns curl -sf --max-time 10 http://127.0.0.1:10249/stats/summary |
    jq -e --arg ns "$E2E_NS" '.pods[] | select(.podRef.namespace == $ns and .podRef.name == "writer") | .volume[]
      | select(.pvcRef.name == "data" and .pvcRef.namespace == $ns and .name == "data") | .capacityBytes' 2>/dev/null
}
wait_for 30 summary_pvc >/dev/null || fail "/stats/summary has no volume with pvcRef data for pod writer" "$E2E_NS"
[ "$(summary_pvc)" = "$fs_bytes" ] || fail "summary capacityBytes of claim data: $(summary_pvc), want $fs_bytes" "$E2E_NS"
in_ns curl -sf --max-time 10 http://127.0.0.1:10249/stats/summary |
  jq -e --arg ns "$E2E_NS" '[.pods[] | select(.podRef.namespace == $ns) | .volume[]? | select(.pvcRef.name == "static")] | length == 0' >/dev/null ||
  fail "/stats/summary reports the hostPath PV's claim static (upstream hostPath has no volume metrics)" "$E2E_NS"
metric=$(in_ns curl -sf --max-time 10 http://127.0.0.1:10249/metrics |
  grep "^kubelet_volume_stats_capacity_bytes{namespace=\"$E2E_NS\",persistentvolumeclaim=\"data\"}" | awk '{print $2}')
[ -n "$metric" ] && [ "$(awk -v m="$metric" 'BEGIN {printf "%.0f", m}')" = "$fs_bytes" ] ||
  fail "kubelet_volume_stats_capacity_bytes of claim data: '$metric', want $fs_bytes" "$E2E_NS"
echo "volume stats: claim data capacity $fs_bytes bytes in /stats/summary and kubelet_volume_stats_capacity_bytes"

wait_for 120 pod_phase_is "$E2E_NS" eph Running || fail "pod eph not Running" "$E2E_NS"
wait_for 30 test -s "$dir/eph/hello" || fail "the ephemeral volume's PV has no file from the pod" "$E2E_NS"
[ "$(jsonpath pvc/eph-scratch '{.metadata.ownerReferences[0].name}' "$E2E_NS")" = eph ] ||
  fail "PVC eph-scratch is not owned by pod eph" "$E2E_NS"
echo "eph: generic ephemeral volume on PV $(jsonpath pvc/eph-scratch '{.spec.volumeName}' "$E2E_NS")"

# The pod whose claim does not exist: FailedMount naming it, Pending, no container.
failed_mount() {
  kubectl get events -n "$E2E_NS" --field-selector involvedObject.name=late,reason=FailedMount \
    -o 'jsonpath={.items[*].message}' 2>/dev/null | grep -q 'late'
}
wait_for 60 failed_mount || fail "no FailedMount event for pod late" "$E2E_NS"
pod_phase_is "$E2E_NS" late Pending || fail "pod late is not Pending without its claim" "$E2E_NS"
echo "late: FailedMount: $(kubectl get events -n "$E2E_NS" --field-selector involvedObject.name=late,reason=FailedMount -o 'jsonpath={.items[0].message}')"
echo seed >"$dir/late/seed"
host_pv e2e-pv-late "$dir/late" Directory "claimRef: {namespace: $E2E_NS, name: late}" |
  kubectl apply -f - >/dev/null || fail "creating PV e2e-pv-late failed"
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PVC || fail "creating PVC late failed" "$E2E_NS"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: late}
spec:
  storageClassName: ""
  volumeName: e2e-pv-late
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Mi}}
PVC
wait_for 120 pod_phase_is "$E2E_NS" late Running || fail "pod late not Running once its claim is bound" "$E2E_NS"
late_read_seed() { [ "$(pod_logs "$E2E_NS" late)" = seed ]; }
wait_for 30 late_read_seed || fail "pod late did not read its claim: $(pod_logs "$E2E_NS" late)" "$E2E_NS"
echo "late: started once its claim was bound"

# Deleting the pods keeps the data.
kubectl delete pod -n "$E2E_NS" writer grouped expr escape eph late --wait=true --timeout=120s >/dev/null || fail "deleting the pods failed" "$E2E_NS"
[ "$(cat "$dir/local/hello")" = local-data ] && [ "$(cat "$dir/host/sub/hello")" = host-data ] &&
  [ "$(cat "$dir/late/seed")" = seed ] || fail "volume data lost after the pods were deleted" "$E2E_NS"
echo "PASS persistent_volume"
