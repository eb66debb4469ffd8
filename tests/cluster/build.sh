#!/usr/bin/env bash
# Builds the pinned upstream components into tests/cluster/bin (idempotent: go's build cache
# makes a second run cheap). Usage: tests/cluster/build.sh [component...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
mkdir -p bin
export GOFLAGS=-buildvcs=false CGO_ENABLED=${CGO_ENABLED:-0}
declare -A pkgs=(
  [etcd]=go.etcd.io/etcd/server/v3
  [kube-apiserver]=k8s.io/kubernetes/cmd/kube-apiserver
  [kube-controller-manager]=k8s.io/kubernetes/cmd/kube-controller-manager
  [kube-scheduler]=k8s.io/kubernetes/cmd/kube-scheduler
  [kubectl]=k8s.io/kubernetes/cmd/kubectl
  [kubelet]=k8s.io/kubernetes/cmd/kubelet
  [crictl]=sigs.k8s.io/cri-tools/cmd/crictl
)
want=("$@")
# Default: everything the test suite runs (the kubelet for e2e_upstream_kubelet_berth and the
# benchmarks, critest for the critest test, metrics-server for e2e_metrics_server, kubeadm for
# e2e_kubeadm_join).
[ ${#want[@]} -gt 0 ] || want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl crictl kubelet critest metrics-server kubeadm)
for name in "${want[@]}"; do
  if [ "$name" = critest ]; then
    [ -x bin/critest ] && [ bin/critest -nt go.sum ] && continue
    go test -c -o bin/critest sigs.k8s.io/cri-tools/cmd/critest
    continue
  fi
  if [ "$name" = kubeadm ]; then  # a module of its own: kubeadm/go.mod (../go.sum untouched)
    [ -x bin/kubeadm ] && [ bin/kubeadm -nt kubeadm/go.sum ] && continue
    # The version stamp upstream's hack/lib/version.sh sets: kubeadm checks the control plane's
    # and the kubelet's versions against its own.
    v=k8s.io/component-base/version
    (cd kubeadm && go build -trimpath -o ../bin/kubeadm \
      -ldflags="-s -X $v.gitVersion=v1.36.3 -X $v.gitMajor=1 -X $v.gitMinor=36 -X $v.gitTreeState=clean" \
      k8s.io/kubernetes/cmd/kubeadm)
    continue
  fi
  if [ "$name" = metrics-server ]; then  # a module of its own: metrics-server/go.mod
    [ -x bin/metrics-server ] && [ bin/metrics-server -nt metrics-server/go.sum ] && continue
    (cd metrics-server && go build -trimpath -ldflags=-s -o ../bin/metrics-server \
      sigs.k8s.io/metrics-server/cmd/metrics-server)
    continue
  fi
  [ -x "bin/$name" ] && [ "bin/$name" -nt go.sum ] && continue
  go build -trimpath -ldflags=-s -o "bin/$name" "${pkgs[$name]}"
done
