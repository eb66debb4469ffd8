#!/usr/bin/env bash
# Attachable CSI volumes on a berth node (issue 17), with the real external-attacher
# (csi-attacher v4.12.0, built from tests/csi/attacher/go.mod) and the kube-controller-manager's
# attach/detach controller, against the project's test driver (tests/csi/driver) serving the
# Controller service (--attach) next to the Node service:
#  - a pod with a CSI PV of a driver with attachRequired: true: berth lists
#    kubernetes.io/csi/<driver>^<handle> in Node.status.volumesInUse, the ADC creates the
#    VolumeAttachment csi-<sha256(handle+driver+node)>, csi-attacher calls
#    ControllerPublishVolume and marks it attached, the ADC lists the volume in
#    Node.status.volumesAttached; only then berth stages and publishes, passing the
#    attachment's attachmentMetadata as publish_context;
#  - volume stats (the driver has GET_VOLUME_STATS and answers sentinel numbers no statfs
#    gives): NodeGetVolumeStats with volume_path = the pod's target path, and the numbers in
#    /stats/summary (the volume with its pvcRef) and kubelet_volume_stats_* on /metrics;
#  - the pod deleted: NodeUnpublishVolume, NodeUnstageVolume, then (the volume no longer in
#    volumesInUse) ControllerUnpublishVolume and the VolumeAttachment is gone: no detach while
#    the volume is mounted.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
csi_dir=$repo_dir/tests/csi
kroot=$berth_dir/lib/kubelet
drv=attach.berth.test
handle=vol-attach
drv_bin=$state/bin/berth-csi-testdriver
att_bin=$state/bin/csi-attacher
drv_log=$state/csi-attach-driver.log
vols=$state/csi-attach-volumes
sock=$kroot/plugins/$drv/csi.sock
e2e_namespace e2e-csi-attach
drv_pid= att_pid=
stop_pid() { if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi; }
cleanup_attach() {
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  kubectl delete pv e2e-csi-attach-pv --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  # A VolumeAttachment left behind (a failed run) keeps the attacher's finalizer: let it go.
  local va
  for va in $(kubectl get volumeattachments -o name 2>/dev/null | grep -F "$(va_name)" || true); do
    kubectl delete "$va" --wait=false >/dev/null 2>&1 || true
    kubectl patch "$va" --type=merge -p '{"metadata":{"finalizers":null}}' >/dev/null 2>&1 || true
  done
  kubectl delete csidriver "$drv" --ignore-not-found >/dev/null 2>&1 || true
  stop_pid "$att_pid"
  stop_pid "$drv_pid"
  rm -f "$kroot/plugins_registry/$drv-reg.sock"
  rm -rf "$vols" "$kroot/plugins/$drv"
}
va_name() { echo "csi-$(printf '%s' "$handle$drv$node_name" | sha256sum | cut -d' ' -f1)"; }
trap cleanup_attach EXIT

mkdir -p "$state/bin"
log "building the CSI test driver and csi-attacher"
(cd "$csi_dir" && go build -o "$drv_bin" ./driver) || fail "building tests/csi/driver failed"
(cd "$csi_dir/attacher" && go build -trimpath -ldflags=-s -o "$att_bin" \
  github.com/kubernetes-csi/external-attacher/v4/cmd/csi-attacher) || fail "building csi-attacher failed"

wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
kubectl apply -f - >/dev/null <<YAML || fail "creating CSIDriver $drv failed"
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: $drv}
spec:
  attachRequired: true
  podInfoOnMount: true
  volumeLifecycleModes: [Persistent]
YAML

rm -f "$drv_log"
mkdir -p "$vols"
# The driver in berth's mount namespace (its mounts are the ones berth's containers see).
nsenter --mount=/proc/"$(berth_pid)"/ns/mnt -- "$drv_bin" --drivername="$drv" --attach --volume-stats \
  --endpoint="$sock" --registration-socket="$kroot/plugins_registry/$drv-reg.sock" \
  --nodeid="node-$node_name" --state-dir="$vols" --log="$drv_log" \
  >>"$state/csi-attach-driver.stderr" 2>&1 &
drv_pid=$!
wait_for 30 test -S "$sock" || fail "the test driver did not create $sock"
# csi-attacher talks to the API server inside the netns and to the driver's socket.
nsenter --net="/run/netns/$netns" -- "$att_bin" --kubeconfig="$state/admin.kubeconfig" \
  --csi-address="$sock" --timeout=15s --retry-interval-max=5s --v=2 \
  >>"$state/csi-attacher.log" 2>&1 &
att_pid=$!
log "started the test driver (pid $drv_pid) and csi-attacher (pid $att_pid)"

logged() { local cond=$1; shift; [ -n "$(jq -c "$@" "select($cond)" "$drv_log" 2>/dev/null)" ]; }
methods() { jq -r .method "$drv_log" 2>/dev/null | tr '\n' ' '; }
has_entry() { [ -n "$(jsonpath "csinode/$node_name" "{.spec.drivers[?(@.name==\"$drv\")].nodeID}")" ]; }
wait_for 30 has_entry || fail "$drv did not register with berth; driver saw: $(methods)"
attacher_ready() { logged '.method=="ControllerGetCapabilities"'; }
wait_for 60 attacher_ready || fail "csi-attacher did not ask the driver's controller capabilities: $(tail -n 20 "$state/csi-attacher.log")"

kubectl apply -f - >/dev/null <<YAML || fail "creating the PV failed"
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-csi-attach-pv}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  csi: {driver: $drv, volumeHandle: $handle}
YAML
kubectl apply -n "$E2E_NS" -f - >/dev/null <<YAML || fail "creating the claim and pod failed"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-csi-attach-pv
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: user}
spec:
  nodeName: $node_name
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $image
    command: [sh, -c, "echo attached > /data/file && sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: claim}
YAML
wait_for 120 pod_phase_is "$E2E_NS" user Running || fail "pod user not Running; driver saw: $(methods)" "$E2E_NS"
vol="kubernetes.io/csi/$drv^$handle"
va=$(va_name)
[ "$(jsonpath "volumeattachment/$va" '{.status.attached}')" = true ] ||
  fail "VolumeAttachment $va not attached: $(kubectl get volumeattachment -o yaml 2>&1 | tail -n 30)"
[ "$(jsonpath "volumeattachment/$va" '{.spec.attacher}/{.spec.nodeName}/{.spec.source.persistentVolumeName}')" = \
  "$drv/$node_name/e2e-csi-attach-pv" ] || fail "VolumeAttachment $va spec: $(kubectl get volumeattachment "$va" -o json)"
in_use=$(jsonpath "node/$node_name" '{.status.volumesInUse}')
echo "$in_use" | jq -e --arg v "$vol" 'index($v) != null' >/dev/null || fail "Node volumesInUse is '$in_use', want $vol"
attached=$(jsonpath "node/$node_name" '{.status.volumesAttached}')
echo "$attached" | jq -e --arg v "$vol" 'map(.name) | index($v) != null' >/dev/null ||
  fail "Node volumesAttached is '$attached', want $vol"
# The order across both services: attached before staged, staged before published (first
# calls: csi-attacher may repeat an idempotent ControllerPublishVolume).
order=$(jq -r 'select(.method|test("^(ControllerPublish|NodeStage|NodePublish)Volume$")) | .method' "$drv_log" |
  awk '!seen[$0]++' | tr '\n' ' ')
[ "$order" = "ControllerPublishVolume NodeStageVolume NodePublishVolume " ] || fail "attach/stage/publish order: $order"
logged '.method=="ControllerPublishVolume" and .request.node_id==$n and .request.volume_id==$h' \
  --arg n "node-$node_name" --arg h "$handle" || fail "ControllerPublishVolume: $(grep ControllerPublish "$drv_log")"
want_ctx=$(jq -cn --arg n "node-$node_name" --arg h "$handle" '{"csi.berth.test/node": $n, "csi.berth.test/volume": $h}')
for m in NodeStageVolume NodePublishVolume; do
  ctx=$(jq -c --arg m "$m" 'select(.method==$m) | .request.publish_context' "$drv_log" | tail -n 1)
  [ "$(echo "$ctx" | jq -cS .)" = "$(echo "$want_ctx" | jq -cS .)" ] || fail "$m publish_context is $ctx, want $want_ctx"
done
meta=$(jsonpath "volumeattachment/$va" '{.status.attachmentMetadata}')
[ "$(echo "$meta" | jq -cS .)" = "$(echo "$want_ctx" | jq -cS .)" ] || fail "attachmentMetadata is $meta"
uid=$(jsonpath pod/user '{.metadata.uid}' "$E2E_NS")
[ "$(jq -r .attachmentID "$kroot/pods/$uid/volumes/kubernetes.io~csi/e2e-csi-attach-pv/vol_data.json")" = "$va" ] ||
  fail "pod vol_data.json attachmentID is not $va"
wait_for 30 test -f "$vols/$handle/file" || fail "the pod's write is not in $vols/$handle"
log "attached: VolumeAttachment $va, volumesInUse and volumesAttached list $vol, publish_context passed on"

# Volume stats from the driver (tests/csi/driver: statsUsed = 4242*4096, statsTotal = 5 GiB,
# statsInodesUsed = 4242).
summary_vol() {
  in_ns curl -sf --max-time 10 http://127.0.0.1:10249/stats/summary |
    jq -ce --arg ns "$E2E_NS" '.pods[] | select(.podRef.namespace == $ns and .podRef.name == "user") | .volume[]
      | select(.pvcRef.name == "claim" and .pvcRef.namespace == $ns and .name == "data")' 2>/dev/null
}
wait_for 30 summary_vol || fail "/stats/summary has no volume with pvcRef claim for pod user" "$E2E_NS"
got=$(summary_vol | jq -c '[.usedBytes, .capacityBytes, .availableBytes, .inodesUsed, .inodes, .inodesFree]')
[ "$got" = "[17375232,5368709120,5351333888,4242,100000,95758]" ] || fail "summary volume stats of claim: $(summary_vol)"
target=$kroot/pods/$uid/volumes/kubernetes.io~csi/e2e-csi-attach-pv/mount
logged '.method=="NodeGetVolumeStats" and .request.volume_id==$h and .request.volume_path==$t' \
  --arg h "$handle" --arg t "$target" || fail "NodeGetVolumeStats: $(grep NodeGetVolumeStats "$drv_log" | tail -n 1)"
metric() {
  in_ns curl -sf --max-time 10 http://127.0.0.1:10249/metrics |
    grep "^$1{namespace=\"$E2E_NS\",persistentvolumeclaim=\"claim\"}" | awk '{print $2}'
}
for m in kubelet_volume_stats_used_bytes:17375232 kubelet_volume_stats_capacity_bytes:5368709120 \
  kubelet_volume_stats_available_bytes:5351333888 kubelet_volume_stats_inodes_used:4242 \
  kubelet_volume_stats_inodes:100000 kubelet_volume_stats_inodes_free:95758; do
  got=$(metric "${m%%:*}")
  [ "$(awk -v g="$got" 'BEGIN { printf "%.0f", g }')" = "${m##*:}" ] || fail "${m%%:*} of claim: '$got', want ${m##*:}"
done
log "volume stats: NodeGetVolumeStats numbers in /stats/summary and kubelet_volume_stats_*"

# The pod goes: unpublish, unstage, and only then detach.
kubectl delete pod -n "$E2E_NS" user --wait=true --timeout=60s >/dev/null || fail "deleting pod user failed"
detached() { logged '.method=="ControllerUnpublishVolume"'; }
wait_for 90 detached || fail "no ControllerUnpublishVolume after the pod went; driver saw: $(methods)"
order=$(jq -r 'select(.method|test("^(ControllerUnpublish|NodeUnstage|NodeUnpublish)Volume$")) | .method' "$drv_log" |
  awk '!seen[$0]++' | tr '\n' ' ')
[ "$order" = "NodeUnpublishVolume NodeUnstageVolume ControllerUnpublishVolume " ] || fail "teardown order: $order"
not_in_use() { ! jsonpath "node/$node_name" '{.status.volumesInUse}' | grep -qF "$vol"; }
wait_for 30 not_in_use || fail "$vol still in volumesInUse"
va_gone() { [ -z "$(kubectl get volumeattachment "$va" -o name 2>/dev/null)" ]; }
wait_for 60 va_gone || fail "VolumeAttachment $va not deleted"
not_attached() { ! jsonpath "node/$node_name" '{.status.volumesAttached}' | grep -qF "$vol"; }
wait_for 30 not_attached || fail "$vol still in volumesAttached"
[ "$(cat "$vols/$handle/file")" = attached ] || fail "the data did not outlive the pod"
echo "PASS: attachable CSI volume: volumesInUse, VolumeAttachment by the ADC and csi-attacher, publish_context, detach after unstage"
