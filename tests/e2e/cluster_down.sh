#!/usr/bin/env bash
# ctest fixture cleanup (e2e_cluster): deletes the test namespaces' pods so that berth tears
# them down, stops berth by PID, kills (by PID) anything left in berth's cgroup, unmounts
# anything left under berth's dirs, and stops the control plane (tests/cluster/down.sh).
# Fails if berth left containers or mounts behind.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
status=0
if [ -f "$state/admin.kubeconfig" ] && pid_alive kube-apiserver && pid_alive berth; then
  for ns in $(kubectl get ns -o name 2>/dev/null | sed -n 's|^namespace/\(e2e-.*\)|\1|p'); do
    kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  done
  kubectl delete pods --all -n default --wait=false >/dev/null 2>&1 || true
  no_pods_on_node() {
    [ -z "$(kubectl get pods -A --field-selector "spec.nodeName=$node_name" -o name)" ]
  }
  wait_for 120 no_pods_on_node || { log "pods still bound to $node_name after 120s"; status=1; }
  no_containers() { [ -z "$(crictl ps -q)" ]; }
  wait_for 60 no_containers || { log "berth still runs containers after pod deletion"; status=1; }
fi
left=$(stop_berth "$cgroup_root")
if [ "$left" != 0 ]; then log "killed $left process(es) left in cgroup $cgroup_root"; status=1; fi
# Mounts of pods berth did not tear down (container rootfs overlays, /dev/shm, netns bind
# mounts) outlive it by design: unmounted here, deepest first, and counted as a failure.
leftover_mounts=$(awk -v root="$berth_dir/" 'index($2, root) == 1 {print $2}' /proc/self/mounts | sort -r)
for m in $leftover_mounts; do umount "$m" 2>/dev/null || umount -l "$m"; done
if [ -n "$leftover_mounts" ]; then
  log "unmounted $(wc -l <<<"$leftover_mounts") mount(s) berth left under $berth_dir"
  status=1
fi
"$repo_dir/tests/cluster/down.sh" "$state"
exit $status
