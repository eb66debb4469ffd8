#!/usr/bin/env bash
# Self-test of the test harness (no berth needed): up.sh, images, a Pod that stays Pending
# (no node) and is seen by the scheduler, healthy controller-manager and scheduler, default
# ServiceAccount and kube-root-ca.crt, a node identity restricted by the Node authorizer,
# the pushed images' manifest types and layers, then down.sh, up.sh again (data kept),
# down.sh, and nothing left behind.
# Usage: tests/cluster/selftest.sh [state-dir]   (default: a fresh temp dir, removed at the end)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
own_dir=false
st=${1:-}
if [ -z "$st" ]; then st=$(mktemp -d /tmp/berth-harness.XXXXXX); own_dir=true; fi
# shellcheck source=tests/cluster/lib.sh
source "$repo/tests/cluster/lib.sh"
BERTH_NETNS=${BERTH_NETNS:-berth-harness-$$} state_init "$st"
cleanup() {
  "$repo/tests/cluster/down.sh" "$state" >/dev/null 2>&1 || true
  if $own_dir; then rm -rf "$state"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 5 "$state"/logs/*.log >&2 || true; exit 1; }
k() { in_ns "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }

"$repo/tests/cluster/up.sh" "$state" >"$state/up.out"
grep -qx "export BERTH_NETNS=$netns" "$state/up.out" || fail "up.sh printed no BERTH_NETNS line"
grep -qx "export REGISTRY=127.0.0.1:5000" "$state/env" || fail "env lacks REGISTRY"
again=$("$repo/tests/cluster/up.sh" "$state" 2>&1) || fail "second up.sh failed: $again"
grep -q "already running" <<<"$again" || fail "second up.sh did not say already running: $again"

k get serviceaccount default -n default >/dev/null || fail "no default ServiceAccount"
k get configmap kube-root-ca.crt -n default >/dev/null || fail "no kube-root-ca.crt"
for port in 10257 10259; do
  [ "$(in_ns curl -sk --max-time 5 "https://127.0.0.1:$port/healthz")" = ok ] || fail "healthz on $port"
done
k run pending --image=127.0.0.1:5000/busybox:latest --restart=Never -- sleep 1 >/dev/null
unschedulable() {
  [ "$(k get pod pending -o 'jsonpath={.status.conditions[?(@.type=="PodScheduled")].reason}')" = Unschedulable ]
}
wait_until 60 "scheduler to mark pod Unschedulable" unschedulable || fail "scheduler did not act on the pod"
[ "$(k get pod pending -o 'jsonpath={.status.phase}')" = Pending ] || fail "pod not Pending"

# Node identity: may create its own Node (podCIDR gets allocated), not another one.
kc=$("$repo/tests/cluster/node-kubeconfig.sh" "$state" harness-node)
kn() { in_ns "$cluster_bin/kubectl" --kubeconfig "$kc" "$@"; }
echo '{"apiVersion":"v1","kind":"Node","metadata":{"name":"harness-node"}}' | kn create -f - >/dev/null ||
  fail "node identity could not create its Node"
if echo '{"apiVersion":"v1","kind":"Node","metadata":{"name":"other"}}' | kn create -f - >/dev/null 2>&1; then
  fail "node identity created another node's Node object"
fi
has_cidr() { [[ "$(k get node harness-node -o 'jsonpath={.spec.podCIDR}')" == 10.244.*/24 ]]; }
wait_until 30 "podCIDR allocation" has_cidr || fail "no podCIDR allocated to harness-node"
k delete node harness-node >/dev/null

# Images: manifest types, shared first layer, whiteout in the second layer of busybox-multi.
"$repo/tests/images/build.sh" "$state" >/dev/null
manifest() {
  in_ns curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:5000/v2/$1/manifests/$2"
}
m_oci=$(manifest busybox latest); m_v2=$(manifest busybox v2s2); m_multi=$(manifest busybox-multi latest)
[ "$(jq -r .config.mediaType <<<"$m_oci")" = application/vnd.oci.image.config.v1+json ] || fail "busybox:latest not OCI"
[ "$(jq -r .mediaType <<<"$m_v2")" = application/vnd.docker.distribution.manifest.v2+json ] || fail "busybox:v2s2 not schema 2"
[ "$(jq -r '.layers[0].mediaType' <<<"$m_v2")" = application/vnd.docker.image.rootfs.diff.tar.gzip ] || fail "v2s2 layer type"
[ "$(jq '.layers | length' <<<"$m_multi")" = 2 ] || fail "busybox-multi does not have 2 layers"
[ "$(jq -r '.layers[0].digest' <<<"$m_multi")" = "$(jq -r '.layers[0].digest' <<<"$m_oci")" ] ||
  fail "busybox-multi does not share busybox's layer"
l2=$(in_ns curl -sf "http://127.0.0.1:5000/v2/busybox-multi/blobs/$(jq -r '.layers[1].digest' <<<"$m_multi")" | tar tz)
grep -qx 'etc/.wh.berth-base' <<<"$l2" || fail "layer 2 lacks the whiteout: $l2"
grep -qx 'etc/berth-layer2' <<<"$l2" || fail "layer 2 lacks etc/berth-layer2: $l2"
t0=$SECONDS; "$repo/tests/images/build.sh" "$state" >/dev/null
[ $((SECONDS - t0)) -le 5 ] || fail "second images/build.sh took $((SECONDS - t0))s"

# Restart: down, up again (etcd data kept: the pod is still there), down; nothing left.
pids=$(for f in "$state"/pids/*; do [[ $f == *.exe ]] || cat "$f"; done)
"$repo/tests/cluster/down.sh" "$state" 2>/dev/null
running() { [ -d "/proc/$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
for p in $pids; do running "$p" && fail "pid $p still running after down.sh"; done
netns_exists && fail "netns $netns still exists after down.sh"
"$repo/tests/cluster/up.sh" "$state" >/dev/null 2>&1 || fail "up.sh after down.sh failed"
k get pod pending >/dev/null || fail "pod lost across restart"
"$repo/tests/cluster/down.sh" "$state" 2>/dev/null
netns_exists && fail "netns $netns still exists after second down.sh"
echo "PASS: harness up/down/up/down, scheduler, controller-manager, node identity, images"
