#!/usr/bin/env bash
# ctest fixture setup (e2e_cluster): control plane + registry + test images + one berth
# node "berth-e2e", with a CNI conflist for the node's podCIDR. Idempotent: a running
# cluster or berth of this state dir is reused.
# Env: BERTH_E2E_STATE (state dir), BERTH_BIN (berth binary).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "e2e tests need root"
[ -x "$berth_bin" ] || fail "berth binary $berth_bin not built (build target berth first)"
for b in kubectl crictl etcd kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$cluster_bin/$b" ] || fail "$cluster_bin/$b missing: run tests/cluster/build.sh"
done
"$repo_dir/tests/cluster/up.sh" "$state" >/dev/null
"$repo_dir/tests/images/build.sh" "$state" >/dev/null

if pid_alive berth; then
  log "berth already running (pid $(cat "$state/pids/berth"))"
else
  start_berth "$node_name" "$cgroup_root"
fi
wait_for 120 kubectl get node "$node_name" || fail "node $node_name did not register within 120s"

# The controller-manager assigns the podCIDR when the Node is created; fall back to the
# conventional 10.88.0.0/16 if none shows up.
has_pod_cidr() { [ -n "$(jsonpath "node/$node_name" '{.spec.podCIDR}')" ]; }
wait_for 30 has_pod_cidr || log "node $node_name has no podCIDR after 30s"
pod_cidr=$(jsonpath "node/$node_name" '{.spec.podCIDR}')
write_cni_conf "${pod_cidr:-10.88.0.0/16}"
log "CNI conflist written for subnet ${pod_cidr:-10.88.0.0/16}"

wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready within 120s"
log "node $node_name Ready"
cat "$state/env"
