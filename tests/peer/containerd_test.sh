#!/usr/bin/env bash
# Integration test of tests/peer/containerd.sh (ctest peer_containerd, label integration):
# a registry in a fresh netns (tests/cluster/registry.sh) with the pause image, containerd
# started in that netns, `crictl version` / `crictl info` (CRI plugin up, runc runtime,
# cgroupfs, restricted oom_score_adj, the mirror config path), one pod sandbox through CNI
# (bridge + host-local) and a busybox container pulled through the docker.io mirror, then
# stop: no process left in its cgroup root, no mount under its state dir, the sandbox's
# netns gone, the bridge's veth gone.
# Usage: tests/peer/containerd_test.sh [state-dir]   (default: a temp dir, removed at the end)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
own_dir=false
st=${1:-}
if [ -z "$st" ]; then st=$(mktemp -d /tmp/berth-peer-ctrd.XXXXXX); own_dir=true; fi
# shellcheck source=tests/cluster/lib.sh
source "$repo/tests/cluster/lib.sh"
# Its own netns (never the e2e cluster's: down.sh deletes it).
BERTH_NETNS=${BERTH_NETNS:-berth}-pctrd state_init "$st"
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$cluster_bin/crictl" ] || die "$cluster_bin/crictl missing: run tests/cluster/build.sh crictl"
ctrd="$state/peer"
export PEER_CGROUP_ROOT=${BERTH_CGROUP_ROOT:-/berth}-ctrd-test-$$
export BERTH_E2E_STATE=$state
cleanup() {
  "$here/containerd.sh" stop "$ctrd" >/dev/null 2>&1 || true
  "$repo/tests/cluster/down.sh" "$state" >/dev/null 2>&1 || true
  if $own_dir; then rm -rf "$state"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 30 "$ctrd/containerd.log" >&2 || true; exit 1; }
cri() { "$cluster_bin/crictl" --config "$ctrd/containerd/crictl.yaml" "$@"; }

"$repo/tests/cluster/registry.sh" "$state" >/dev/null
"$repo/tests/images/build.sh" "$state" >/dev/null
mkdir -p "$ctrd/cni/net.d"
cat >"$ctrd/cni/net.d/10-peer.conflist" <<CONF
{"cniVersion": "1.0.0", "name": "peer-test", "plugins": [
  {"type": "bridge", "bridge": "pctrd0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.219.0.0/24"}]],
            "dataDir": "$ctrd/cni/ipam"}},
  {"type": "loopback"}]}
CONF
"$here/containerd.sh" start "$ctrd" || fail "containerd.sh start"
pid=$(cat "$ctrd/containerd.pid")
[ "$(readlink "/proc/$pid/ns/net")" = "$(ip netns exec "$netns" readlink /proc/self/ns/net)" ] ||
  fail "containerd does not run in netns $netns"
# (Outputs are captured before grep -q: with pipefail, grep -q's early exit can fail the
# writer with SIGPIPE.)
again=$("$here/containerd.sh" start "$ctrd" 2>&1) || fail "second start failed: $again"
grep -q "already running" <<<"$again" || fail "second start did not reuse: $again"

ver=$(cri version 2>&1) || fail "crictl version: $ver"
grep -q '^RuntimeName:[[:space:]]*containerd' <<<"$ver" || fail "crictl version: not containerd: $ver"
info=$(cri info)
jq -e '.status.conditions[] | select(.type=="RuntimeReady") | .status' <<<"$info" | grep -q true ||
  fail "RuntimeReady is not true"
jq -e '.status.conditions[] | select(.type=="NetworkReady") | .status' <<<"$info" | grep -q true ||
  fail "NetworkReady is not true (CNI conf not loaded)"
[ "$(jq -r .config.restrictOOMScoreAdj <<<"$info")" = true ] || fail "restrict_oom_score_adj not set"
[ "$(jq -r '.config.containerd.runtimes.runc.runtimeType' <<<"$info")" = io.containerd.runc.v2 ] ||
  fail "runc runtime type"
[ "$(jq -r '.config.containerd.runtimes.runc.options.SystemdCgroup' <<<"$info")" = false ] ||
  fail "SystemdCgroup not false"
[ "$(jq -r .config.registry.configPath <<<"$info")" = "$ctrd/containerd/certs.d" ] || fail "registry config_path"
[ "$(jq -r .config.netnsMountsUnderStateDir <<<"$info")" = true ] || fail "netns mounts not under the state dir"
[ "$(jq -r .config.sandboxImage <<<"$info")" = 127.0.0.1:5000/pause:3.10 ] || fail "sandbox image"

# A pod sandbox (pause image pulled from the local registry) and a container whose image
# is pulled as docker.io/library/... through the mirror: the local registry has busybox at
# 127.0.0.1:5000/busybox, so use the short-name path that maps onto it.
cat >"$state/pod.json" <<POD
{"metadata": {"name": "peer-test", "namespace": "default", "uid": "peer-test-$$", "attempt": 0},
 "log_directory": "$ctrd/logs", "linux": {"cgroup_parent": "$PEER_CGROUP_ROOT/pods/peer-test-$$"}}
POD
cat >"$state/ctr.json" <<CTR
{"metadata": {"name": "c"}, "image": {"image": "quay.io/busybox:latest"},
 "command": ["sh", "-c", "echo hello from containerd; sleep 3600"], "log_path": "c.log"}
CTR
cri pull quay.io/busybox:latest >/dev/null || fail "pull quay.io/busybox:latest through the mirror"
pod=$(cri runp "$state/pod.json") || fail "crictl runp"
ctr=$(cri create "$pod" "$state/ctr.json" "$state/pod.json") || fail "crictl create"
cri start "$ctr" >/dev/null || fail "crictl start"
logs_ok() { local l; l=$(cri logs "$ctr" 2>&1) && grep -q "hello from containerd" <<<"$l"; }
wait_until 30 "container log line" logs_ok || fail "container log missing"
podip=$(cri inspectp "$pod" | jq -r .status.network.ip)
[[ "$podip" == 10.219.0.* ]] || fail "pod IP '$podip' not from the CNI subnet"
netns_path=$(cri inspectp "$pod" | jq -r '.info.runtimeSpec.linux.namespaces[] | select(.type=="network") | .path')
[ -e "$netns_path" ] || fail "sandbox netns $netns_path missing"
rss=$("$here/containerd.sh" rss "$ctrd")
[ "$rss" -gt 10000 ] || fail "rss of containerd + shim is $rss KiB (containerd alone is > 10 MiB)"
[ -n "$(ip -n "$netns" -o link show master pctrd0)" ] || fail "no veth on bridge pctrd0"

"$here/containerd.sh" stop "$ctrd" || fail "containerd.sh stop reported leftovers"
# (a zombie is dead: its parent, containerd.sh, exited, and init reaps it when it gets to it)
{ [ ! -d "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; } ||
  fail "containerd (pid $pid) still alive"
for d in /sys/fs/cgroup/*"$PEER_CGROUP_ROOT"; do
  [ ! -d "$d" ] || fail "cgroup $d left behind"
done
[ -z "$(awk -v root="$ctrd/" 'index($5, root) == 1' /proc/self/mountinfo)" ] || fail "mounts left under $ctrd"
[ ! -e "$netns_path" ] || fail "sandbox netns $netns_path left behind"
[ -z "$(ip -n "$netns" -o link show master pctrd0 2>/dev/null)" ] || fail "veth left on pctrd0"
echo "PASS: containerd peer: CRI up (rss $rss KiB with one pod), pod $podip ran and logged, stop left nothing"
