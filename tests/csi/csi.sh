#!/usr/bin/env bash
# CSI on a berth node (csi/, issue 17), with a real CSI node plugin process: the project's
# test driver (tests/csi/driver, built here from its own go.mod) serving the CSI Identity
# and Node services and, like node-driver-registrar, the kubelet's Registration API under
# <kubelet-root>/plugins_registry. It runs as a host process in berth's mount namespace
# (stock drivers run as privileged pods with Bidirectional propagation; not tested here).
#  - the CSINode: owned by the Node, migrated-plugins annotation;
#  - registration: GetInfo -> NodeGetInfo -> NotifyRegistrationStatus(true); CSINode entry
#    (nodeID, topologyKeys, allocatable.count), Node nodeid annotation and topology label;
#  - an inline ephemeral volume (its pod created before the driver runs waits with a FailedMount
#    event naming the driver): NodePublishVolume only, volume ID csi-<sha256(uid+name)>,
#    pod info in the volume context; the pod's write lands in the driver's volume dir;
#  - a PV with a csi source (attachRequired: false): NodeStageVolume at the global mount,
#    then NodePublishVolume with staging set, vol_data.json files; the data outlives the pod
#    (unpublish, then unstage, directories gone) and a second pod reads it;
#  - berth killed (SIGKILL) with the volume mounted and the pod deleted meanwhile: the new
#    berth unpublishes and unstages it (found from vol_data.json) once the driver re-registers;
#  - the registration socket removed: CSINode entry and annotation key gone.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/../e2e/lib.sh"
csi_dir=$repo_dir/tests/csi
kroot=$berth_dir/lib/kubelet
drv=csi.berth.test
drv_bin=$state/bin/berth-csi-testdriver
drv_log=$state/csi-driver.log
vols=$state/csi-volumes
e2e_namespace e2e-csi
drv_pid=
stop_driver() {
  if [ -n "$drv_pid" ]; then kill "$drv_pid" 2>/dev/null || true; wait "$drv_pid" 2>/dev/null || true; fi
  drv_pid=
}
cleanup_csi() {
  if ! pid_alive berth; then start_berth "$node_name" "$cgroup_root"; wait_for 120 node_ready "$node_name" || true; fi
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  kubectl delete pv e2e-csi-pv --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  kubectl delete csidriver "$drv" --ignore-not-found >/dev/null 2>&1 || true
  stop_driver
  rm -f "$kroot/plugins_registry/$drv-reg.sock"
  rm -rf "$vols" "$kroot/plugins/$drv"
}
trap cleanup_csi EXIT

mkdir -p "$state/bin"
log "building the CSI test driver"
(cd "$csi_dir" && go build -o "$drv_bin" ./driver) || fail "building tests/csi/driver failed"

wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
# The CSINode, created at start and owned by the Node.
node_uid=$(jsonpath "node/$node_name" '{.metadata.uid}')
wait_for 30 kubectl get csinode "$node_name" || fail "no CSINode $node_name"
owner=$(jsonpath "csinode/$node_name" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].uid}')
[ "$owner" = "Node/$node_name/$node_uid" ] || fail "CSINode owner is '$owner', want Node/$node_name/$node_uid"
migrated=$(jsonpath "csinode/$node_name" '{.metadata.annotations.storage\.alpha\.kubernetes\.io/migrated-plugins}')
case $migrated in *kubernetes.io/gce-pd*) ;; *) fail "CSINode migrated-plugins annotation is '$migrated'" ;; esac

kubectl apply -f - >/dev/null <<YAML || fail "creating CSIDriver $drv failed"
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: $drv}
spec:
  attachRequired: false
  podInfoOnMount: true
  volumeLifecycleModes: [Persistent, Ephemeral]
YAML

# An inline ephemeral volume, created before the driver runs: the pod waits with a FailedMount
# event naming the driver, and starts once the driver has registered.
kubectl apply -n "$E2E_NS" -f - >/dev/null <<YAML || fail "creating pod inline failed"
apiVersion: v1
kind: Pod
metadata: {name: inline}
spec:
  nodeName: $node_name
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $image
    command: [sh, -c, "echo inline > /data/hello && sleep 3600"]
    volumeMounts: [{name: scratch, mountPath: /data}]
  volumes:
  - name: scratch
    csi: {driver: $drv, volumeAttributes: {size: 1Mi}}
YAML
failed_mount() {
  kubectl get events -n "$E2E_NS" --field-selector involvedObject.name=inline,reason=FailedMount \
    -o 'jsonpath={.items[*].message}' 2>/dev/null | grep -q "driver name $drv not found in the list of registered CSI drivers"
}
wait_for 60 failed_mount || fail "no FailedMount event naming $drv for pod inline" "$E2E_NS"
pod_phase_is "$E2E_NS" inline Pending || fail "pod inline is not Pending without its driver" "$E2E_NS"
log "inline pod: FailedMount while $drv is not registered"

# The driver, in berth's mount namespace (its mounts must be the ones berth's containers see).
rm -f "$drv_log"
mkdir -p "$vols"
nsenter --mount=/proc/"$(berth_pid)"/ns/mnt -- "$drv_bin" --drivername="$drv" \
  --endpoint="$kroot/plugins/$drv/csi.sock" --registration-socket="$kroot/plugins_registry/$drv-reg.sock" \
  --nodeid="node-$node_name" --state-dir="$vols" --log="$drv_log" --max-volumes=7 \
  --topology="topology.$drv/node=$node_name" >>"$state/csi-driver.stderr" 2>&1 &
drv_pid=$!
log "started the CSI test driver (pid $drv_pid)"

# Registration, as the upstream kubelet does it.
methods() { jq -r .method "$drv_log" 2>/dev/null | tr '\n' ' '; }
# logged <jq condition> [args...]: the driver logged a call matching it (jq 1.6's -e is 0
# on empty input, so the output is tested instead).
logged() { local cond=$1; shift; [ -n "$(jq -c "$@" "select($cond)" "$drv_log" 2>/dev/null)" ]; }
registered() { logged '.method=="NotifyRegistrationStatus"'; }
wait_for 30 registered || fail "no NotifyRegistrationStatus from berth; driver saw: $(methods)"
# The pending inline pod's volume calls may come before NotifyRegistrationStatus: as upstream,
# the driver is usable once RegisterPlugin added it, and the status is sent after that. Only
# the registration RPCs' order is checked.
first3=$(jq -r '.method | select(. == "GetInfo" or . == "NodeGetInfo" or . == "NotifyRegistrationStatus")' \
  "$drv_log" | head -n 3 | tr '\n' ' ')
[ "$first3" = "GetInfo NodeGetInfo NotifyRegistrationStatus " ] || fail "registration RPCs: $(methods)"
logged '.method=="NotifyRegistrationStatus" and .request.plugin_registered == true' ||
  fail "registration not accepted: $(grep NotifyRegistrationStatus "$drv_log")"
csinode_driver() { jsonpath "csinode/$node_name" "{.spec.drivers[?(@.name==\"$drv\")].nodeID}"; }
has_entry() { [ "$(csinode_driver)" = "node-$node_name" ]; }
wait_for 30 has_entry || fail "CSINode has no entry for $drv: $(kubectl get csinode "$node_name" -o json)"
keys=$(jsonpath "csinode/$node_name" "{.spec.drivers[?(@.name==\"$drv\")].topologyKeys}")
[ "$keys" = "[\"topology.$drv/node\"]" ] || fail "CSINode topologyKeys are '$keys'"
count=$(jsonpath "csinode/$node_name" "{.spec.drivers[?(@.name==\"$drv\")].allocatable.count}")
[ "$count" = 7 ] || fail "CSINode allocatable.count is '$count', want 7"
ids=$(jsonpath "node/$node_name" '{.metadata.annotations.csi\.volume\.kubernetes\.io/nodeid}')
[ "$(echo "$ids" | jq -r --arg d "$drv" '.[$d]')" = "node-$node_name" ] || fail "Node nodeid annotation is '$ids'"
label=$(jsonpath "node/$node_name" "{.metadata.labels.topology\.csi\.berth\.test/node}")
[ "$label" = "$node_name" ] || fail "Node topology label is '$label'"
log "registered: CSINode entry, nodeid annotation and topology label present"

wait_for 120 pod_phase_is "$E2E_NS" inline Running || fail "pod inline not Running" "$E2E_NS"
uid=$(jsonpath pod/inline '{.metadata.uid}' "$E2E_NS")
volid=csi-$(printf '%s' "${uid}scratch" | sha256sum | cut -d' ' -f1)
target=$kroot/pods/$uid/volumes/kubernetes.io~csi/scratch/mount
pub=$(jq -c 'select(.method=="NodePublishVolume") | .request' "$drv_log" | tail -n 1)
[ "$(echo "$pub" | jq -r .volume_id)" = "$volid" ] || fail "inline NodePublishVolume volume_id: $pub"
[ "$(echo "$pub" | jq -r .target_path)" = "$target" ] || fail "inline NodePublishVolume target_path: $pub"
[ "$(echo "$pub" | jq -r '.staging_target_path // ""')" = "" ] || fail "inline volume staged: $pub"
[ "$(echo "$pub" | jq -r '.volume_context["csi.storage.k8s.io/ephemeral"]')" = true ] || fail "no ephemeral flag: $pub"
[ "$(echo "$pub" | jq -r '.volume_context["csi.storage.k8s.io/pod.name"]')" = inline ] || fail "no pod info: $pub"
[ "$(echo "$pub" | jq -r '.volume_context.size')" = 1Mi ] || fail "volumeAttributes missing: $pub"
! logged '.method=="NodeStageVolume"' || fail "NodeStageVolume for an inline volume"
wait_for 30 test -f "$vols/$volid/hello" || fail "the pod's write is not in $vols/$volid"
[ "$(jq -r .volumeLifecycleMode "$kroot/pods/$uid/volumes/kubernetes.io~csi/scratch/vol_data.json")" = Ephemeral ] ||
  fail "inline vol_data.json: $(cat "$kroot/pods/$uid/volumes/kubernetes.io~csi/scratch/vol_data.json")"
kubectl delete pod -n "$E2E_NS" inline --wait=true --timeout=60s >/dev/null || fail "deleting pod inline failed"
unpublished() { logged '.method=="NodeUnpublishVolume" and .request.target_path==$t' --arg t "$1"; }
wait_for 60 unpublished "$target" || fail "no NodeUnpublishVolume of $target"
wait_for 30 test ! -e "$kroot/pods/$uid/volumes/kubernetes.io~csi/scratch" || fail "inline volume dir left"
log "inline ephemeral volume: published, written, unpublished"

# A PV with a csi source, bound by volumeName.
kubectl apply -f - >/dev/null <<YAML || fail "creating the PV failed"
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-csi-pv}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  mountOptions: [noatime]
  csi: {driver: $drv, volumeHandle: vol-static, volumeAttributes: {kind: static}}
YAML
pod_with_claim() {  # pod_with_claim <name> <command>
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $node_name
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: $image
    command: [sh, -c, "$2"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: claim}
YAML
}
kubectl apply -n "$E2E_NS" -f - >/dev/null <<YAML || fail "creating the claim failed"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: claim}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-csi-pv
  resources: {requests: {storage: 1Gi}}
YAML
pod_with_claim writer "echo persisted > /data/file && sleep 3600" | kubectl apply -n "$E2E_NS" -f - >/dev/null ||
  fail "creating pod writer failed"
wait_for 120 pod_phase_is "$E2E_NS" writer Running || fail "pod writer not Running" "$E2E_NS"
uid=$(jsonpath pod/writer '{.metadata.uid}' "$E2E_NS")
sha=$(printf '%s' vol-static | sha256sum | cut -d' ' -f1)
staging=$kroot/plugins/kubernetes.io/csi/$drv/$sha/globalmount
target=$kroot/pods/$uid/volumes/kubernetes.io~csi/e2e-csi-pv/mount
stage=$(jq -c 'select(.method=="NodeStageVolume") | .request' "$drv_log" | tail -n 1)
[ "$(echo "$stage" | jq -r .staging_target_path)" = "$staging" ] || fail "NodeStageVolume: $stage"
[ "$(echo "$stage" | jq -r .volume_id)" = vol-static ] || fail "NodeStageVolume volume_id: $stage"
[ "$(echo "$stage" | jq -c '.volume_capability.AccessType.Mount.mount_flags')" = '["noatime"]' ] || fail "mount options: $stage"
pub=$(jq -c 'select(.method=="NodePublishVolume") | .request' "$drv_log" | tail -n 1)
[ "$(echo "$pub" | jq -r .target_path)" = "$target" ] || fail "NodePublishVolume target_path: $pub"
[ "$(echo "$pub" | jq -r .staging_target_path)" = "$staging" ] || fail "NodePublishVolume staging: $pub"
[ "$(echo "$pub" | jq -r '.volume_context["csi.storage.k8s.io/ephemeral"]')" = false ] || fail "ephemeral flag: $pub"
[ "$(echo "$pub" | jq -r '.volume_context.kind')" = static ] || fail "volumeAttributes: $pub"
order=$(jq -r 'select(.method|test("^Node(Stage|Publish)Volume$")) | .method' "$drv_log" | tail -n 2 | tr '\n' ' ')
[ "$order" = "NodeStageVolume NodePublishVolume " ] || fail "stage/publish order: $order"
[ "$(jq -r .driverName "$(dirname "$staging")/vol_data.json")" = "$drv" ] || fail "staging vol_data.json missing"
[ "$(jq -r .specVolID "$(dirname "$target")/vol_data.json")" = e2e-csi-pv ] || fail "pod vol_data.json missing"
wait_for 30 test -f "$vols/vol-static/file" || fail "the pod's write is not in $vols/vol-static"
kubectl delete pod -n "$E2E_NS" writer --wait=true --timeout=60s >/dev/null || fail "deleting pod writer failed"
unstaged() { logged '.method=="NodeUnstageVolume"'; }
wait_for 60 unstaged || fail "no NodeUnstageVolume after the last pod; driver saw: $(methods)"
order=$(jq -r 'select(.method|test("^Node(Unstage|Unpublish)Volume$")) | .method' "$drv_log" | tail -n 2 | tr '\n' ' ')
[ "$order" = "NodeUnpublishVolume NodeUnstageVolume " ] || fail "unpublish/unstage order: $order"
wait_for 30 test ! -e "$kroot/plugins/kubernetes.io/csi/$drv/$sha" || fail "staging dir left"
wait_for 30 test ! -e "$(dirname "$target")" || fail "pod volume dir left"
[ "$(cat "$vols/vol-static/file")" = persisted ] || fail "the data did not outlive the pod"
pod_with_claim reader "cat /data/file && sleep 3600" | kubectl apply -n "$E2E_NS" -f - >/dev/null ||
  fail "creating pod reader failed"
wait_for 120 pod_phase_is "$E2E_NS" reader Running || fail "pod reader not Running" "$E2E_NS"
read_back() { [ "$(kubectl logs -n "$E2E_NS" reader 2>/dev/null)" = persisted ]; }
wait_for 30 read_back || fail "pod reader read '$(kubectl logs -n "$E2E_NS" reader 2>&1)'"
log "PV: staged, published, unpublished, unstaged; the data outlived the pod"

# Restart safety: berth killed while the volume is mounted, the pod deleted while it is down.
# The new berth finds the volume from vol_data.json and unpublishes and unstages it once the
# driver has registered again.
uid=$(jsonpath pod/reader '{.metadata.uid}' "$E2E_NS")
target=$kroot/pods/$uid/volumes/kubernetes.io~csi/e2e-csi-pv/mount
count() { jq -r --arg m "$1" 'select(.method==$m) | .method' "$drv_log" | wc -l; }
unstages=$(count NodeUnstageVolume)
regs=$(count NotifyRegistrationStatus)
pid=$(berth_pid)
kill -KILL "$pid"
gone() { ! pid_alive berth; }
wait_for 10 gone || fail "berth (pid $pid) survived SIGKILL"
kubectl delete pod -n "$E2E_NS" reader --wait=false >/dev/null
start_berth "$node_name" "$cgroup_root"
log "restarted berth with pod reader deleted while it was down"
reregistered() { [ "$(count NotifyRegistrationStatus)" -gt "$regs" ]; }
wait_for 60 reregistered || fail "the driver did not register again with the new berth"
more_unstages() { [ "$(count NodeUnstageVolume)" -gt "$unstages" ]; }
wait_for 90 more_unstages || fail "no NodeUnstageVolume after the restart; driver saw: $(methods)"
wait_for 30 unpublished "$target" || fail "no NodeUnpublishVolume of $target after the restart"
wait_for 30 test ! -e "$kroot/plugins/kubernetes.io/csi/$drv/$sha" || fail "staging dir left after the restart"
wait_for 30 test ! -e "$(dirname "$target")" || fail "pod volume dir left after the restart"
reader_gone() { [ -z "$(kubectl get pod -n "$E2E_NS" reader -o name 2>/dev/null)" ]; }
wait_for 60 reader_gone || fail "pod reader not gone after the restart" "$E2E_NS"
[ "$(cat "$vols/vol-static/file")" = persisted ] || fail "the data did not survive the restart"
log "restart: unpublished and unstaged from vol_data.json"

# The driver goes: its registration socket disappears, berth deregisters it.
stop_driver
rm -f "$kroot/plugins_registry/$drv-reg.sock"
no_entry() { [ -z "$(csinode_driver)" ]; }
wait_for 30 no_entry || fail "CSINode entry of $drv left after deregistration"
ids=$(jsonpath "node/$node_name" '{.metadata.annotations.csi\.volume\.kubernetes\.io/nodeid}')
[ -z "$ids" ] || [ "$(echo "$ids" | jq -r --arg d "$drv" '.[$d] // ""')" = "" ] || fail "nodeid annotation still has $drv: $ids"
echo "PASS: CSI registration, CSINode, inline and PV volumes through the test driver"
