#!/usr/bin/env bash
# Starts a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) and a registry inside a network namespace of its own.
#
# Usage: tests/cluster/up.sh <state-dir>
# Env:   BERTH_NETNS   netns name (default berth-<basename of state-dir>)
#        BERTH_NODE_IP node address on dummy link berth-node0 (default 10.217.0.1/32)
#        BERTH_REGISTRY_ADDR registry address in the netns (default 127.0.0.1:5000)
#        BERTH_UP_TIMEOUT seconds to wait for readiness (default 120)
# Idempotent: a component whose recorded PID is alive is left alone; on a dir whose cluster
# runs already, it says so and exits 0. Prints the env lines (also in <state>/env).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/cluster/pki.sh
source "$here/pki.sh"
state_init "${1:-}"
[ "$(id -u)" = 0 ] || die "must run as root (netns, mounts)"
timeout=${BERTH_UP_TIMEOUT:-120}
pki="$state/pki"

all_running=true
for c in etcd kube-apiserver kube-controller-manager kube-scheduler registry; do
  pid_alive "$c" || all_running=false
done
if $all_running && netns_exists; then
  log "cluster in $state is already running (netns $netns)"
  cat "$state/env"
  exit 0
fi

ensure_netns

# --- certificates -------------------------------------------------------------------------
pki_ca
pki_sa_keys
pki_cert apiserver "/CN=kube-apiserver" server \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1,IP:$node_addr"
pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
pki_front_proxy
pki_cert admin "/O=system:masters/CN=kubernetes-admin" client
pki_cert controller-manager "/CN=system:kube-controller-manager" client
pki_cert scheduler "/CN=system:kube-scheduler" client
write_kubeconfig "$state/admin.kubeconfig" admin "$pki/admin.crt" "$pki/admin.key"
write_kubeconfig "$state/controller-manager.kubeconfig" controller-manager \
  "$pki/controller-manager.crt" "$pki/controller-manager.key"
write_kubeconfig "$state/scheduler.kubeconfig" scheduler "$pki/scheduler.crt" "$pki/scheduler.key"

# --- etcd ---------------------------------------------------------------------------------
if ! pid_alive etcd; then
  mkdir -p "$state/etcd" && chmod 700 "$state/etcd"
  start_daemon etcd "$cluster_bin/etcd" \
    --name=berth-test --data-dir="$state/etcd" \
    --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
    --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
    --initial-cluster=berth-test=http://127.0.0.1:2380 --initial-cluster-state=new \
    --unsafe-no-fsync --log-level=warn
fi
wait_until "$timeout" "etcd health" in_ns curl -sf --max-time 2 http://127.0.0.1:2379/health ||
  { tail -n 30 "$state/logs/etcd.log" >&2; die "etcd did not become healthy"; }

# --- registry (Debian's docker-registry) ----------------------------------------------------
"$here/registry.sh" "$state" >/dev/null

# --- kube-apiserver -----------------------------------------------------------------------
if ! pid_alive kube-apiserver; then
  start_daemon kube-apiserver "$cluster_bin/kube-apiserver" \
    --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=127.0.0.1 --secure-port=6443 --advertise-address="$node_addr" \
    --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --service-cluster-ip-range=10.96.0.0/16 \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --enable-bootstrap-token-auth=true \
    --requestheader-client-ca-file="$pki/front-proxy-ca.crt" \
    --requestheader-allowed-names=front-proxy-client \
    --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
    --requestheader-extra-headers-prefix=X-Remote-Extra- \
    --proxy-client-cert-file="$pki/front-proxy-client.crt" \
    --proxy-client-key-file="$pki/front-proxy-client.key" \
    --enable-aggregator-routing=true \
    --allow-privileged=true --profiling=false --v=1
fi
wait_until "$timeout" "kube-apiserver /readyz" api_get /readyz ||
  { tail -n 30 "$state/logs/kube-apiserver.log" >&2; die "kube-apiserver did not become ready"; }

# --- controller-manager and scheduler -----------------------------------------------------
if ! pid_alive kube-controller-manager; then
  start_daemon kube-controller-manager "$cluster_bin/kube-controller-manager" \
    --kubeconfig="$state/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$state/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$state/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
    --allocate-node-cidrs --cluster-cidr=10.244.0.0/16 --node-cidr-mask-size=24 \
    --service-cluster-ip-range=10.96.0.0/16 \
    --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/sa.key" \
    --use-service-account-credentials \
    --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
    --controllers='*,bootstrapsigner,tokencleaner' --profiling=false --v=1
fi
if ! pid_alive kube-scheduler; then
  start_daemon kube-scheduler "$cluster_bin/kube-scheduler" \
    --kubeconfig="$state/scheduler.kubeconfig" \
    --authentication-kubeconfig="$state/scheduler.kubeconfig" \
    --authorization-kubeconfig="$state/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false --v=1
fi
healthz() { in_ns curl -skf --max-time 2 "https://127.0.0.1:$1/healthz"; }
wait_until "$timeout" "kube-controller-manager /healthz" healthz 10257 ||
  { tail -n 30 "$state/logs/kube-controller-manager.log" >&2; die "controller-manager not healthy"; }
wait_until "$timeout" "kube-scheduler /healthz" healthz 10259 ||
  { tail -n 30 "$state/logs/kube-scheduler.log" >&2; die "scheduler not healthy"; }
# The ServiceAccount controller and the root-CA publisher run in the controller-manager; a
# cluster is usable once both have acted on the default namespace.
wait_until "$timeout" "ServiceAccount default/default" \
  api_get /api/v1/namespaces/default/serviceaccounts/default ||
  die "default ServiceAccount did not appear"
wait_until "$timeout" "ConfigMap default/kube-root-ca.crt" \
  api_get /api/v1/namespaces/default/configmaps/kube-root-ca.crt ||
  die "kube-root-ca.crt ConfigMap did not appear"

cat >"$state/env.tmp" <<ENV
export BERTH_NETNS=$netns
export KUBECONFIG=$state/admin.kubeconfig
export BERTH_NODE_IP=$node_addr
export REGISTRY=$registry_addr
ENV
mv "$state/env.tmp" "$state/env"
log "control plane up in $state (netns $netns)"
cat "$state/env"
