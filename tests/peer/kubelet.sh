#!/usr/bin/env bash
# The upstream kubelet (tests/cluster/bin/kubelet, the pinned k8s release) as a second node
# of the e2e cluster, on any CRI endpoint (containerd.sh's, or berth --runtime-only).
#
# Usage: tests/peer/kubelet.sh start|stop|rss|env <kubelet-state-dir>
#   start  writes a node kubeconfig (tests/cluster/node-kubeconfig.sh) and a
#          KubeletConfiguration, starts the kubelet in the cluster netns, waits until the
#          Node is registered, writes the CNI conflist for its podCIDR (if PEER_CNI_CONF_DIR
#          is set) and waits until the Node is Ready. Idempotent (a live one is left alone).
#   stop   stops the kubelet by PID (TERM, then KILL), kills (by PID) anything left in its
#          own cgroup <root>/kubelet, unmounts what is left under its root dir (volumes),
#          deletes the CNI bridge it configured and its Node object. Pods are the runtime's: stop the runtime afterwards
#          (containerd.sh stop, or stop_berth with the same cgroup root).
#   rss    prints the kubelet's VmRSS (KiB).
#   env    prints PEER_NODE_NAME, PEER_KUBELET_PID, PEER_KUBELET_PORT, PEER_CGROUP_ROOT.
#
# Env:
#   BERTH_E2E_STATE       the cluster's state dir (tests/e2e/cluster_up.sh)      [required]
#   PEER_CRI_ENDPOINT     unix:///path of the CRI socket                          [required at start]
#   PEER_NODE_NAME        Node name (default peer-kubelet)
#   PEER_CGROUP_ROOT      the kubelet's cgroupRoot (pods in <root>/kubepods); default
#                         ${BERTH_CGROUP_ROOT:-/berth}-kubelet. With containerd.sh use its root.
#   PEER_CNI_CONF_DIR     the runtime's CNI conf dir: gets a bridge (PEER_CNI_BRIDGE, default
#                         cni-peer) + host-local conflist for the Node's podCIDR
#   PEER_KUBELET_PORT     kubelet server port (default 10260; berth's node has 10250)
#   PEER_KUBELET_HEALTHZ_PORT  (default 10268, on 127.0.0.1)
#   PEER_KUBELET_FEATURE_GATES e.g. PodAndContainerStatsFromCRI=true,Other=false (config featureGates)
# The Node gets the taint berth.dev/peer=true:NoSchedule, so that the scheduler leaves it
# alone: pods reach it by spec.nodeName (which bypasses the scheduler; the kubelet admits
# NoSchedule taints). PEER_KUBELET_UNTAINTED=1: no taint (the node is the cluster's only one,
# as in the conformance run). PEER_KUBELET_CLUSTER_DNS: clusterDNS (default none).
# Layout under <kubelet-state-dir>: config.yaml, kubelet.log, kubelet.pid, root/ (--root-dir),
# pods-logs/ (podLogsDir), cni-ipam/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo_dir=$(cd "$here/../.." && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$repo_dir/tests/cluster/lib.sh"
# shellcheck source=tests/peer/lib.sh
source "$here/lib.sh"
cmd=${1:-}
[ -n "$cmd" ] && [ -n "${2:-}" ] || die "usage: kubelet.sh start|stop|rss|env <kubelet-state-dir>"
: "${BERTH_E2E_STATE:?BERTH_E2E_STATE must name the e2e cluster state dir}"
mkdir -p "$2"
ks=$(cd "$2" && pwd)
state_init "$BERTH_E2E_STATE"
name=${PEER_NODE_NAME:-peer-kubelet}
port=${PEER_KUBELET_PORT:-10260}
healthz_port=${PEER_KUBELET_HEALTHZ_PORT:-10268}
if [ -f "$ks/cgroup_root" ]; then cg_root=$(cat "$ks/cgroup_root"); else
  cg_root=${PEER_CGROUP_ROOT:-${BERTH_CGROUP_ROOT:-/berth}-kubelet}; echo "$cg_root" >"$ks/cgroup_root"; fi
pidf="$ks/kubelet.pid"
kubelet_bin="$cluster_bin/kubelet"

kubectl() { ip netns exec "$netns" "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }
alive() {
  local pid exe
  pid=$(cat "$pidf" 2>/dev/null) && [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$(readlink -f "$kubelet_bin")" ]
}
running() { local pid; pid=$(cat "$pidf" 2>/dev/null) && [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; }
jsonpath() { kubectl get "$1" -o "jsonpath=$2" 2>/dev/null || true; }
node_ready() { [ "$(jsonpath "node/$name" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }

write_config() {
  local endpoint=$1
  cat >"$ks/config.yaml.tmp" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: $endpoint
address: $node_addr
port: $port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
cgroupRoot: $cg_root
cgroupsPerQOS: true
failSwapOn: false
failCgroupV1: false
podLogsDir: $ks/pods-logs
staticPodPath: ""
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
$(if [ "${PEER_KUBELET_UNTAINTED:-0}" = 1 ]; then echo "registerWithTaints: []"; else
  printf 'registerWithTaints:\n- {key: berth.dev/peer, value: "true", effect: NoSchedule}'; fi)
$([ -z "${PEER_KUBELET_CLUSTER_DNS:-}" ] || echo "clusterDNS: [$PEER_KUBELET_CLUSTER_DNS]")
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
protectKernelDefaults: false
localStorageCapacityIsolation: false
YAML
  if [ -n "${PEER_KUBELET_FEATURE_GATES:-}" ]; then
    echo "featureGates: {$(sed 's/=/: /g; s/,/, /g' <<<"$PEER_KUBELET_FEATURE_GATES")}" >>"$ks/config.yaml.tmp"
  fi
  mv "$ks/config.yaml.tmp" "$ks/config.yaml"
}

# delete_bridge <name>: removes the CNI bridge <name> from the cluster netns if present.
delete_bridge() {
  if ip -n "$netns" link show "$1" >/dev/null 2>&1; then ip -n "$netns" link delete "$1"; fi
}

write_cni_conf() {
  local dir=$1 subnet=$2 bridge=${PEER_CNI_BRIDGE:-cni-peer}
  # A bridge left by an earlier run holds the gateway of an older podCIDR: the bridge plugin
  # refuses to add a second one. It is this node's: delete it (and stale IPAM state).
  delete_bridge "$bridge"
  echo "$bridge" >"$ks/cni_bridge"
  rm -rf "$ks/cni-ipam"
  mkdir -p "$dir" "$ks/cni-ipam"
  cat >"$dir/10-peer.conflist.tmp" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "peer-kubelet",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$subnet"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$ks/cni-ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
CONF
  mv "$dir/10-peer.conflist.tmp" "$dir/10-peer.conflist"
}

start() {
  if alive; then log "kubelet already running (pid $(cat "$pidf"), node $name)"; return 0; fi
  [ -x "$kubelet_bin" ] || die "$kubelet_bin missing: run tests/cluster/build.sh kubelet"
  local endpoint=${PEER_CRI_ENDPOINT:?PEER_CRI_ENDPOINT must name the CRI endpoint (unix:///...)}
  "$repo_dir/tests/cluster/node-kubeconfig.sh" "$state" "$name" >/dev/null
  mkdir -p "$ks/root" "$ks/pods-logs"
  write_config "$endpoint"
  # The kubelet requires its cgroupRoot to exist in every hierarchy; it runs in <root>/kubelet.
  make_cgroup "$cg_root" >/dev/null
  local procs; procs=$(make_cgroup "$cg_root/kubelet")
  (
    for f in $procs; do echo "$BASHPID" >"$f"; done
    exec nsenter --net="/run/netns/$netns" "$kubelet_bin" --config="$ks/config.yaml" \
      --kubeconfig="$state/node-$name.kubeconfig" --root-dir="$ks/root" --cert-dir="$ks/root/pki" \
      --hostname-override="$name" --node-ip="$node_addr" --v="${PEER_KUBELET_V:-1}"
  ) </dev/null >>"$ks/kubelet.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidf"
  log "started kubelet (pid $pid, node $name, CRI $endpoint, cgroup root $cg_root)"
  registered() { running || return 0; kubectl get node "$name"; }
  wait_until 120 "Node $name" registered && running ||
    { tail -n 40 "$ks/kubelet.log" >&2; die "kubelet did not register node $name"; }
  if [ -n "${PEER_CNI_CONF_DIR:-}" ]; then
    has_cidr() { [ -n "$(jsonpath "node/$name" '{.spec.podCIDR}')" ]; }
    wait_until 30 "podCIDR of $name" has_cidr || log "node $name has no podCIDR after 30s"
    local cidr; cidr=$(jsonpath "node/$name" '{.spec.podCIDR}')
    write_cni_conf "$PEER_CNI_CONF_DIR" "${cidr:-10.88.1.0/24}"
    log "CNI conflist for ${cidr:-10.88.1.0/24} in $PEER_CNI_CONF_DIR"
  fi
  wait_until 120 "Node $name Ready" node_ready ||
    { tail -n 40 "$ks/kubelet.log" >&2; die "node $name not Ready within 120s"; }
  log "node $name Ready"
}

stop() {
  local status=0 pid m
  if running; then
    pid=$(cat "$pidf")
    stop_pid "$pid" kubelet running
  fi
  rm -f "$pidf"
  # Children of the kubelet (mount, du, ...) that were exiting with it get a moment; zombies
  # are dead already (init reaps them).
  kill_leftovers "$cg_root/kubelet" 3 || status=1
  remove_cgroup_tree "$cg_root/kubelet" || true
  # Volume mounts (tmpfs of projected service-account tokens ...) under its root dir, then
  # the root dir itself (the kubelet bind-mounts it onto itself to make it shared).
  for m in $(awk -v root="$ks/root" '$5 == root || index($5, root "/") == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  # The CNI bridge of this node (after the runtime removed the pods' veths, or now).
  if [ -f "$ks/cni_bridge" ] && netns_exists; then delete_bridge "$(cat "$ks/cni_bridge")"; rm -f "$ks/cni_bridge"; fi
  if [ -f "$state/admin.kubeconfig" ] && pid_alive kube-apiserver; then
    kubectl delete node "$name" --ignore-not-found --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  return $status
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  rss) alive || die "kubelet is not running"; awk '/^VmRSS:/ {print $2}' "/proc/$(cat "$pidf")/status" ;;
  env)
    echo "export PEER_NODE_NAME=$name"
    echo "export PEER_KUBELET_PID=$(alive && cat "$pidf" || true)"
    echo "export PEER_KUBELET_PORT=$port"
    echo "export PEER_CGROUP_ROOT=$cg_root"
    ;;
  *) die "unknown command $cmd (start|stop|rss|env)" ;;
esac
