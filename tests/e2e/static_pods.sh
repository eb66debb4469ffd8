#!/usr/bin/env bash
# Static pods (issue 18): berth runs the pods of <state>/manifests (--pod-manifest-path, set
# by start_berth) and keeps a mirror pod of each in the API server, as the kubelet does:
#  - a manifest -> pod Running; mirror pod <name>-<node> with kubernetes.io/config.mirror =
#    config.hash, config.source=file, config.seen, a controller ownerReference to the Node, and
#    the pod's status;
#  - kubectl delete of the mirror pod -> recreated (new UID), the container not restarted;
#  - kill -9 of berth and a restart -> the container is adopted (same ID, one sandbox);
#  - a malformed manifest -> an error naming the file in berth's log, the other pods run on;
#  - an edited manifest -> a new pod (new UID) replaces the old one, and its mirror pod too;
#  - a removed manifest -> pod stopped, mirror pod deleted.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-static-pods
dir="$state/manifests"
mkdir -p "$dir"
cleanup() {
  rm -f "$dir/web.yaml" "$dir/other.yaml" "$dir/bad.yaml"
  # The pods go when their files go (berth is watching); then the namespace.
  static_gone() { [ -z "$(crictl pods -q --namespace "$E2E_NS" 2>/dev/null)" ]; }
  pid_alive berth && wait_for 60 static_gone
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT

# put <name> <content>: a manifest written as an administrator should (hidden file + rename).
put() { printf '%s\n' "$2" >"$dir/.$1.tmp" && mv "$dir/.$1.tmp" "$dir/$1"; }
manifest() {  # manifest <name> [env value]
  cat <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  namespace: $E2E_NS
  labels: {app: $1}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    env:
    - {name: VERSION, value: "${2:-1}"}
YAML
}

web=web-$node_name
other=other-$node_name
field() { jsonpath "pod/$1" "$2" "$E2E_NS"; }
running() {
  [ "$(field "$1" '{.status.phase}')" = Running ] &&
    [ "$(field "$1" '{.status.containerStatuses[0].ready}')" = true ]
}
# ctr <static uid>: the running container of that static pod in the runtime.
ctr() { crictl ps -q --state running --label "io.kubernetes.pod.uid=$1"; }

t0=$(date +%s.%N)
put web.yaml "$(manifest web)"
put other.yaml "$(manifest other)"
wait_for 120 running "$web" || fail "mirror pod $web not Running with a ready container" "$E2E_NS"
log "manifest written -> mirror pod $web Running: $(echo "$(date +%s.%N) - $t0" | bc) s"
wait_for 60 running "$other" || fail "mirror pod $other not Running" "$E2E_NS"

# The mirror pod: annotations, owner, status.
hash=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.hash}')
mirror_ann=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.mirror}')
source_ann=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.source}')
seen=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.seen}')
[ -n "$hash" ] && [ "$mirror_ann" = "$hash" ] ||
  fail "mirror pod $web: config.mirror '$mirror_ann' is not config.hash '$hash'" "$E2E_NS"
[ "$source_ann" = file ] || fail "mirror pod $web: config.source '$source_ann', want file" "$E2E_NS"
[ -n "$seen" ] || fail "mirror pod $web has no config.seen" "$E2E_NS"
owner=$(field "$web" '{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.metadata.ownerReferences[0].controller}')
[ "$owner" = "Node/$node_name/true" ] || fail "mirror pod $web owner '$owner', want Node/$node_name/true" "$E2E_NS"
node_uid=$(jsonpath "node/$node_name" '{.metadata.uid}')
[ "$(field "$web" '{.metadata.ownerReferences[0].uid}')" = "$node_uid" ] ||
  fail "mirror pod $web is not owned by the Node's uid $node_uid" "$E2E_NS"
mirror_uid=$(field "$web" '{.metadata.uid}')
[ "$mirror_uid" != "$hash" ] || fail "mirror pod $web has the static pod's UID" "$E2E_NS"
cid=$(ctr "$hash")
[ -n "$cid" ] || fail "no running container of static pod $hash" "$E2E_NS"
status_cid=$(field "$web" '{.status.containerStatuses[0].containerID}')
[ "${status_cid#*://}" = "$cid" ] || fail "mirror pod $web status names container '$status_cid', want $cid" "$E2E_NS"
[ -n "$(field "$web" '{.status.podIP}')" ] || fail "mirror pod $web has no podIP" "$E2E_NS"
log "static pod $hash runs container $cid; mirror pod $web ($mirror_uid)"

# kubectl delete of the mirror pod: a new mirror pod, the container untouched.
kubectl delete pod -n "$E2E_NS" "$web" --wait=false >/dev/null
new_mirror() { local u; u=$(field "$web" '{.metadata.uid}'); [ -n "$u" ] && [ "$u" != "$mirror_uid" ]; }
wait_for 60 new_mirror || fail "mirror pod $web not recreated after kubectl delete" "$E2E_NS"
wait_for 30 running "$web" || fail "recreated mirror pod $web has no Running status" "$E2E_NS"
[ "$(ctr "$hash")" = "$cid" ] || fail "container of $web changed from $cid to '$(ctr "$hash")' after the mirror pod was deleted" "$E2E_NS"
[ "$(field "$web" '{.status.containerStatuses[0].restartCount}')" = 0 ] ||
  fail "container of $web restarted after the mirror pod was deleted" "$E2E_NS"
mirror_uid=$(field "$web" '{.metadata.uid}')
log "mirror pod $web recreated ($mirror_uid), container $cid kept"

# kill -9 of berth and a restart: the static pod's container is adopted, not duplicated.
reads() { grep -c "static pod $E2E_NS/$web ($hash) read from" "$state/berth.log" || true; }
reads0=$(reads)
rv=$(field "$web" '{.metadata.resourceVersion}')
pid=$(berth_pid)
kill -KILL "$pid"
gone() { ! pid_alive berth; }
wait_for 10 gone || fail "berth (pid $pid) survived SIGKILL"
start_berth "$node_name" "$cgroup_root"
reread() { [ "$(reads)" -gt "$reads0" ]; }
wait_for 60 reread || fail "the restarted berth did not read static pod $web ($hash)" "$E2E_NS"
# The restarted berth has synced the pod once it wrote its status to the mirror pod.
synced() { [ "$(field "$web" '{.metadata.resourceVersion}')" != "$rv" ] && running "$web"; }
wait_for 60 synced || fail "the restarted berth wrote no Running status to mirror pod $web" "$E2E_NS"
[ "$(field "$web" '{.metadata.uid}')" = "$mirror_uid" ] || fail "mirror pod $web replaced by the restart" "$E2E_NS"
sandboxes=$(crictl pods -q --label "io.kubernetes.pod.uid=$hash" | wc -l)
containers=$(crictl ps -a -q --label "io.kubernetes.pod.uid=$hash" | wc -l)
[ "$sandboxes" = 1 ] && [ "$containers" = 1 ] ||
  fail "static pod $hash has $sandboxes sandboxes and $containers containers after the restart, want 1 and 1" "$E2E_NS"
[ "$(ctr "$hash")" = "$cid" ] || fail "container of $web is '$(ctr "$hash")' after the restart, want $cid" "$E2E_NS"
log "berth killed and restarted: container $cid adopted"

# A malformed manifest: an error naming the file; the other static pods run on.
other_hash=$(field "$other" '{.metadata.annotations.kubernetes\.io/config\.hash}')
other_cid=$(ctr "$other_hash")
put bad.yaml "apiVersion: v1
kind: Pod
metadata: {name: bad
spec: ["
logged() { grep -q "cannot use manifest $dir/bad.yaml" "$state/berth.log"; }
wait_for 30 logged || fail "no error about $dir/bad.yaml in berth.log" "$E2E_NS"
grep "cannot use manifest $dir/bad.yaml" "$state/berth.log" | tail -n 1
[ -z "$(kubectl get pods -n "$E2E_NS" -o name | grep -v -e "/$web\$" -e "/$other\$")" ] ||
  fail "a pod appeared for the malformed manifest" "$E2E_NS"
[ "$(ctr "$hash")" = "$cid" ] && [ "$(ctr "$other_hash")" = "$other_cid" ] ||
  fail "static pods disturbed by a malformed manifest" "$E2E_NS"
running "$web" && running "$other" || fail "static pods not Running next to a malformed manifest" "$E2E_NS"

# Edit the manifest: a new pod (new UID) replaces the old one, and its mirror pod too.
put web.yaml "$(manifest web 2)"
replaced() {
  local h; h=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.hash}')
  [ -n "$h" ] && [ "$h" != "$hash" ] && running "$web"
}
wait_for 90 replaced || fail "mirror pod $web not replaced after the manifest changed" "$E2E_NS"
new_hash=$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.hash}')
[ "$(field "$web" '{.metadata.annotations.kubernetes\.io/config\.mirror}')" = "$new_hash" ] ||
  fail "replaced mirror pod $web: config.mirror is not config.hash $new_hash" "$E2E_NS"
[ "$(field "$web" '{.spec.containers[0].env[0].value}')" = 2 ] || fail "mirror pod $web does not show the edited spec" "$E2E_NS"
old_gone() { [ -z "$(crictl pods -q --label "io.kubernetes.pod.uid=$hash")" ]; }
wait_for 60 old_gone || fail "the old static pod $hash still has a sandbox after the edit" "$E2E_NS"
[ -n "$(ctr "$new_hash")" ] || fail "no running container of the edited static pod $new_hash" "$E2E_NS"
log "edited manifest: static pod $hash replaced by $new_hash"

# Remove the manifest: the pod stops and its mirror pod goes.
rm -f "$dir/web.yaml"
mirror_gone() { [ -z "$(kubectl get pod -n "$E2E_NS" "$web" -o name 2>/dev/null)" ]; }
wait_for 60 mirror_gone || fail "mirror pod $web still there after its manifest was removed" "$E2E_NS"
new_gone() { [ -z "$(crictl pods -q --label "io.kubernetes.pod.uid=$new_hash")" ]; }
wait_for 60 new_gone || fail "static pod $new_hash still has a sandbox after its manifest was removed" "$E2E_NS"
running "$other" || fail "static pod $other not Running after $web was removed" "$E2E_NS"
echo "PASS: static pods run with mirror pods (annotations, Node owner, status); a deleted mirror is recreated without a restart; kill -9 + restart adopts the container; a malformed manifest is logged and skipped; an edit replaces the pod; a removal stops it"
