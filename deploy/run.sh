#!/usr/bin/env bash
# Builds berth and runs it as a Kubernetes node in the foreground.
#   deploy/run.sh --kubeconfig=/path/node.kubeconfig [berth flags...]   join that cluster
#   deploy/run.sh [berth flags...]                                      no cluster given:
#       start the local control plane of tests/cluster (etcd, kube-apiserver, controller-manager,
#       scheduler, a registry with test images) in network namespace "berth-local" and join it.
# Ctrl-C stops berth (pods keep running; a restarted berth adopts them).
# `deploy/run.sh --down` stops the local control plane started by an earlier run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
state=${BERTH_LOCAL_DIR:-/var/lib/berth-local}
export BERTH_NETNS=${BERTH_NETNS:-berth-local}

if [ "${1:-}" = "--down" ]; then
  exec bash tests/cluster/down.sh "$state/cluster"
fi

bash deploy/setup.sh
build=${BERTH_BUILD_DIR:-$top/build}
# Configure once (an existing build dir keeps its settings; `cmake --build` re-configures it
# when a CMakeLists.txt changes).
[ -f "$build/CMakeCache.txt" ] || cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target berth berth-pause
berth=$build/kubelet/berth

for a in "$@"; do
  case "$a" in --kubeconfig|--kubeconfig=*) exec "$berth" "$@" ;; esac
done

bash tests/cluster/up.sh "$state/cluster"
# shellcheck disable=SC1091
source "$state/cluster/env"
bash tests/images/build.sh "$state/cluster" >/dev/null
node=${BERTH_NODE_NAME:-$(hostname -s)}
cri_socket=/run/berth/berth.sock
for a in "$@"; do case "$a" in --cri-socket=*) cri_socket=${a#--cri-socket=} ;; esac; done
bash tests/cluster/node-kubeconfig.sh "$state/cluster" "$node" >/dev/null
mkdir -p "$state/cni/net.d"
cat > "$state/kubectl" <<EOS
#!/bin/sh
exec ip netns exec $BERTH_NETNS $top/tests/cluster/bin/kubectl --kubeconfig $KUBECONFIG "\$@"
EOS
chmod +x "$state/kubectl"
cat <<MSG

berth node "$node" is starting against the local control plane (netns $BERTH_NETNS).
In another shell:
  $state/kubectl get nodes
  $state/kubectl create deployment hello --image=$REGISTRY/busybox:latest -- sleep 3600
  $top/tests/cluster/bin/crictl --runtime-endpoint unix://$cri_socket ps
  ip netns exec $BERTH_NETNS curl -s http://127.0.0.1:10249/metrics
Stop berth with Ctrl-C; stop the control plane with: bash deploy/run.sh --down

MSG
exec nsenter --net="/run/netns/$BERTH_NETNS" "$berth" --kubeconfig="$state/cluster/node-$node.kubeconfig" \
  --node-name="$node" --node-ip="${BERTH_NODE_IP%/*}" --cni-conf-dir="$state/cni/net.d" \
  --pod-cidr-from-node --insecure-registry="${REGISTRY}" \
  --client-ca-file="$state/cluster/pki/ca.crt" "$@"
