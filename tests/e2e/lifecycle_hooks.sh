#!/usr/bin/env bash
# Container lifecycle hooks (kubelet/lifecycle.*, pod_manager.cc StartContainer / StopOne):
#  - postStart exec writes a file that the main container waits for and prints;
#  - preStop exec runs before the stop signal: on pod deletion the hook and then the
#    container's TERM trap append to a shared hostPath file, so the order is "prestop term";
#  - a failing postStart (exit 7) gives a FailedPostStartHook event and a restart.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-hooks
order_dir="$state/hooks-order"
rm -rf "$order_dir"
mkdir -p "$order_dir"
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS
apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  terminationGracePeriodSeconds: 20
  volumes:
  - {name: order, hostPath: {path: $order_dir, type: Directory}}
  containers:
  - name: main
    image: $image
    volumeMounts: [{name: order, mountPath: /order}]
    command: ["sh", "-c", "trap 'echo term >>/order/log; echo TERM-trap; exit 0' TERM;
      until [ -f /tmp/poststart ]; do sleep 0.1; done; echo saw-\$(cat /tmp/poststart);
      while true; do sleep 1 & wait \$!; done"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo poststart-marker >/tmp/poststart"]}
      preStop:
        exec: {command: ["sh", "-c", "echo prestop >>/order/log; sleep 1"]}
---
apiVersion: v1
kind: Pod
metadata: {name: bad-hook}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    lifecycle:
      postStart:
        exec: {command: ["sh", "-c", "echo hook-broken; exit 7"]}
PODS

event_seen() { # event_seen <pod> <reason> <message substring>
  kubectl get events -n "$E2E_NS" --field-selector "involvedObject.name=$1,reason=$2" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null | grep -qF "$3"
}

# 1. postStart ran inside the container.
wait_for 120 pod_phase_is "$E2E_NS" hooked Running || fail "pod hooked not Running" "$E2E_NS"
saw_marker() { kubectl logs -n "$E2E_NS" hooked 2>/dev/null | grep -q saw-poststart-marker; }
wait_for 30 saw_marker || fail "main did not see the postStart file: $(kubectl logs -n "$E2E_NS" hooked 2>&1)" "$E2E_NS"
[ "$(jsonpath pod/hooked '{.status.containerStatuses[0].restartCount}' "$E2E_NS")" = 0 ] ||
  fail "hooked restarted" "$E2E_NS"

# 2. A failing postStart: FailedPostStartHook, container killed and restarted.
restarts() { jsonpath pod/bad-hook '{.status.containerStatuses[0].restartCount}' "$E2E_NS"; }
restarted() { [ "$(restarts)" -ge 1 ] 2>/dev/null; }
wait_for 60 event_seen bad-hook FailedPostStartHook "hook-broken" ||
  fail "no FailedPostStartHook event for bad-hook" "$E2E_NS"
wait_for 60 restarted || fail "bad-hook not restarted after its postStart failed (restartCount $(restarts))" "$E2E_NS"

# 3. preStop before TERM.
kubectl delete pod -n "$E2E_NS" hooked --wait=true --timeout=90s >/dev/null || fail "pod deletion timed out" "$E2E_NS"
order=$(tr '\n' ' ' <"$order_dir/log" 2>/dev/null || true)
[ "$order" = "prestop term " ] || fail "hook/signal order '$order', want 'prestop term '" "$E2E_NS"
rm -rf "$order_dir"
echo "PASS: postStart ran in the container; failing postStart -> FailedPostStartHook + restart ($(restarts)); preStop before TERM ($order)"
