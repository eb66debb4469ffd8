#!/usr/bin/env bash
# The upstream node peer: the upstream kubelet (kubelet.sh) on Debian's containerd
# (containerd.sh) as a second node of the e2e cluster, the side that berth is measured
# against in tests/bench/. One call starts or stops both, in the right order.
#
# Usage: tests/peer/node.sh start|stop|rss|env <peer-dir>
#   start  starts containerd (state <peer-dir>/containerd, a fresh CNI conf dir) and the
#          kubelet on its CRI socket (state <peer-dir>/kubelet); returns once the Node is Ready.
#   stop   stops the kubelet (its Node deleted), then containerd (its pods removed).
#   rss    prints the summed VmRSS (KiB) of the kubelet, containerd and its shims.
#   env    prints the shell lines of both `kubelet.sh env` and `containerd.sh env`.
# Env: as kubelet.sh and containerd.sh (BERTH_E2E_STATE required; PEER_NODE_NAME,
# PEER_CGROUP_ROOT: give both the same root so that pods land in <root>/kubepods).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?usage: node.sh start|stop|rss|env <peer-dir>}
dir=${2:?usage: node.sh start|stop|rss|env <peer-dir>}
ctrd="$dir/containerd"
kubelet="$dir/kubelet"
case "$cmd" in
  start)
    rm -rf "$ctrd/cni"
    "$here/containerd.sh" start "$ctrd" >/dev/null || { echo "node.sh: containerd peer did not start" >&2; exit 1; }
    eval "$("$here/containerd.sh" env "$ctrd")"
    PEER_CRI_ENDPOINT="unix://$PEER_CONTAINERD_SOCK" PEER_CNI_CONF_DIR="$ctrd/cni/net.d" \
      "$here/kubelet.sh" start "$kubelet" >/dev/null ||
      { echo "node.sh: upstream kubelet peer did not become Ready" >&2; exit 1; }
    ;;
  stop)
    rc=0
    "$here/kubelet.sh" stop "$kubelet" || rc=1
    "$here/containerd.sh" stop "$ctrd" || rc=1
    exit $rc
    ;;
  rss) echo $(($("$here/kubelet.sh" rss "$kubelet") + $("$here/containerd.sh" rss "$ctrd"))) ;;
  env)
    "$here/kubelet.sh" env "$kubelet"
    "$here/containerd.sh" env "$ctrd"
    ;;
  *) echo "node.sh: unknown command $cmd (start|stop|rss|env)" >&2; exit 2 ;;
esac
