#!/usr/bin/env bash
# Ephemeral containers (`kubectl debug`, kubelet/pod_manager.cc; CRI PID namespace TARGET in
# cri/runtime/oci_spec.cc):
#  - `kubectl debug --target=main -c dbg -- ps` (non-interactive): the ephemeral container
#    runs in main's PID namespace, so `kubectl logs -c dbg` shows main's `sleep 3601`;
#    status.ephemeralContainerStatuses reports it terminated (exit 0), it is not restarted
#    and main keeps running;
#  - `kubectl debug -i --target=main -c dbg2 -- sh` with `ps` on stdin: kubectl attaches to
#    the new container and prints main's processes.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-ephemeral
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: target}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3601"]
POD
wait_for 120 pod_phase_is "$E2E_NS" target Running || fail "pod target not Running" "$E2E_NS"
main_id=$(jsonpath pod/target '{.status.containerStatuses[0].containerID}' "$E2E_NS")

# 1. Non-interactive debug container, then its logs.
kubectl debug -n "$E2E_NS" target --image="$image" --target=main -c dbg -- ps >/dev/null ||
  fail "kubectl debug failed" "$E2E_NS"
eph() { jsonpath pod/target "{.status.ephemeralContainerStatuses[?(@.name==\"$1\")].$2}" "$E2E_NS"; }
dbg_done() { [ -n "$(eph dbg state.terminated.finishedAt)" ]; }
wait_for 90 dbg_done || fail "ephemeral container dbg did not run to completion" "$E2E_NS"
[ "$(eph dbg state.terminated.exitCode)" = 0 ] || fail "dbg exit code $(eph dbg state.terminated.exitCode)" "$E2E_NS"
out=$(kubectl logs -n "$E2E_NS" target -c dbg 2>&1 || true)
grep -q 'sleep 3601' <<<"$out" || fail "dbg does not see main's processes (PID namespace TARGET): $out" "$E2E_NS"
# Never restarted (the pod's restartPolicy is Always): still the same instance later.
dbg_id=$(eph dbg containerID)
# A negative check (no restart happens): a pod update forces a sync, then a short grace.
kubectl annotate -n "$E2E_NS" pod/target berth.dev/poke=1 >/dev/null || fail "annotate failed" "$E2E_NS"
sleep 3
[ "$(eph dbg containerID)" = "$dbg_id" ] || fail "ephemeral container dbg was replaced" "$E2E_NS"
[ "$(eph dbg restartCount)" = 0 ] || fail "ephemeral container dbg was restarted" "$E2E_NS"
[ "$(jsonpath pod/target '{.status.containerStatuses[0].containerID}' "$E2E_NS")" = "$main_id" ] ||
  fail "main was replaced" "$E2E_NS"
pod_phase_is "$E2E_NS" target Running || fail "pod target left Running" "$E2E_NS"

# 2. Interactive: kubectl attaches to the debug container's stdin.
out=$(echo ps | timeout 120 ip netns exec "$netns" "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" \
  debug -n "$E2E_NS" -i target --image="$image" --target=main -c dbg2 -- sh 2>&1 || true)
# The container's sh blocks on its stdin (stdin/stdinOnce) until kubectl attaches.
grep -q 'sleep 3601' <<<"$out" || fail "kubectl debug -i: main's processes not shown: $out" "$E2E_NS"
echo "PASS: kubectl debug --target sees the target's processes (logs and attach); ephemeralContainerStatuses reported, not restarted"
