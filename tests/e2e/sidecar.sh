#!/usr/bin/env bash
# Native sidecar containers (init containers with restartPolicy: Always, kubelet/pod_manager.cc):
#  - the sidecar starts before the main container and serves a file (busybox httpd) that the
#    main container fetches over localhost: the pod runs with initContainerStatuses[0]
#    started=true, ready=true and the Initialized condition True;
#  - the sidecar exits (code 3) while the pod's restartPolicy is Never: it is restarted
#    (restartCount 1, lastState exit code 3) and the main container keeps running (same
#    containerID, restartCount 0);
#  - pod deletion stops main before the sidecar: both TERM traps append to a shared hostPath
#    file, main's after a 2 s delay, so a parallel stop would write "sidecar" first.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-sidecar
order_dir="$state/sidecar-order"
rm -rf "$order_dir"
mkdir -p "$order_dir"
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 20
  volumes:
  - {name: order, hostPath: {path: $order_dir, type: Directory}}
  initContainers:
  - name: proxy
    image: $image
    restartPolicy: Always
    volumeMounts: [{name: order, mountPath: /order}]
    command: ["sh", "-c", "mkdir -p /www && echo served-by-sidecar >/www/data && httpd -p 8080 -h /www &&
      trap 'echo sidecar >>/order/log; exit 0' TERM;
      while [ ! -f /tmp/die ]; do sleep 1 & wait \$!; done; rm /tmp/die; exit 3"]
    startupProbe:
      exec: {command: ["wget", "-qO-", "http://127.0.0.1:8080/data"]}
      periodSeconds: 1
  containers:
  - name: main
    image: $image
    volumeMounts: [{name: order, mountPath: /order}]
    command: ["sh", "-c", "wget -qO- http://127.0.0.1:8080/data || exit 1;
      trap 'sleep 2; echo main >>/order/log; exit 0' TERM;
      while true; do sleep 1 & wait \$!; done"]
POD

init_field() { jsonpath pod/web "{.status.initContainerStatuses[0].$1}" "$E2E_NS"; }
main_field() { jsonpath pod/web "{.status.containerStatuses[0].$1}" "$E2E_NS"; }
cond() { jsonpath pod/web "{.status.conditions[?(@.type==\"$1\")].status}" "$E2E_NS"; }
main_running() { pod_phase_is "$E2E_NS" web Running && [ -n "$(main_field state.running.startedAt)" ]; }

# 1. Sidecar first, serving; main reads its file.
wait_for 120 main_running || fail "pod web not Running with main running" "$E2E_NS"
[ "$(init_field started)" = true ] || fail "sidecar not started: started=$(init_field started)" "$E2E_NS"
[ -n "$(init_field state.running.startedAt)" ] || fail "sidecar not running" "$E2E_NS"
wait_for 30 test "$(init_field ready)" = true || fail "sidecar not ready" "$E2E_NS"
[ "$(cond Initialized)" = True ] || fail "Initialized condition is $(cond Initialized)" "$E2E_NS"
wait_for 30 test "$(cond Ready)" = True || fail "pod not Ready" "$E2E_NS"
sidecar_started=$(init_field state.running.startedAt)
main_started=$(main_field state.running.startedAt)
[[ "$sidecar_started" < "$main_started" || "$sidecar_started" == "$main_started" ]] ||
  fail "main started ($main_started) before the sidecar ($sidecar_started)" "$E2E_NS"
logs_have() { kubectl logs -n "$E2E_NS" web -c main 2>/dev/null | grep -q served-by-sidecar; }
wait_for 30 logs_have || fail "main did not read the sidecar's file: $(kubectl logs -n "$E2E_NS" web -c main 2>&1)" "$E2E_NS"

# 2. The sidecar exits: restarted (restartPolicy Never notwithstanding), main untouched.
main_id=$(main_field containerID)
kubectl exec -n "$E2E_NS" web -c proxy -- touch /tmp/die || fail "kubectl exec into the sidecar failed" "$E2E_NS"
sidecar_restarted() { [ "$(init_field restartCount)" = 1 ] && [ -n "$(init_field state.running.startedAt)" ]; }
wait_for 60 sidecar_restarted || fail "sidecar not restarted (restartCount $(init_field restartCount))" "$E2E_NS"
[ "$(init_field lastState.terminated.exitCode)" = 3 ] ||
  fail "sidecar lastState exit code $(init_field lastState.terminated.exitCode), want 3" "$E2E_NS"
[ "$(main_field containerID)" = "$main_id" ] || fail "main was replaced when the sidecar restarted" "$E2E_NS"
[ "$(main_field restartCount)" = 0 ] || fail "main restarted (restartCount $(main_field restartCount))" "$E2E_NS"
pod_phase_is "$E2E_NS" web Running || fail "pod left Running when the sidecar restarted" "$E2E_NS"

# 3. Deletion: main stops before the sidecar.
kubectl delete pod -n "$E2E_NS" web --wait=true --timeout=90s >/dev/null || fail "pod deletion timed out" "$E2E_NS"
order=$(tr '\n' ' ' <"$order_dir/log" 2>/dev/null || true)
[ "$order" = "main sidecar " ] || fail "termination order '$order', want 'main sidecar '" "$E2E_NS"
rm -rf "$order_dir"
echo "PASS: sidecar started before main and served it; restarted alone after exiting (Never pod); stopped after main ($order)"
