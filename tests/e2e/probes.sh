#!/usr/bin/env bash
# Container probes (kubelet/prober.*):
#  - readinessProbe exec `cat /tmp/ready`: Running but not Ready (Unhealthy events) until
#    the file is created with kubectl exec, then Ready (ContainersReady / Ready conditions);
#  - a failing livenessProbe: the container is killed (Killing event "failed liveness
#    probe") and restarted (restartCount >= 1, Unhealthy "Liveness probe failed");
#  - readinessProbe httpGet on a named port against busybox httpd: Ready;
#  - a Deployment's rollout completes once its pods turn Ready;
#  - /metrics/probes counts prober_probe_total for them.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-probes
kubectl apply -n "$E2E_NS" -f - >/dev/null <<PODS
apiVersion: v1
kind: Pod
metadata: {name: ready-exec}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: live-fail}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/alive"]}
      periodSeconds: 1
      failureThreshold: 2
      terminationGracePeriodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata: {name: http-ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sh", "-c", "mkdir -p /www && echo ok >/www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: [{name: web, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /index.html, port: web}
      periodSeconds: 1
PODS

cond() { jsonpath "pod/$1" "{.status.conditions[?(@.type==\"$2\")].status}" "$E2E_NS"; }
ready_is() { [ "$(cond "$1" Ready)" = "$2" ] && [ "$(cond "$1" ContainersReady)" = "$2" ]; }
event_seen() { # event_seen <pod> <reason> <message substring>
  kubectl get events -n "$E2E_NS" --field-selector "involvedObject.name=$1,reason=$2" \
    -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' 2>/dev/null | grep -qF "$3"
}

# 1. exec readiness: not Ready while the probe fails.
wait_for 120 pod_phase_is "$E2E_NS" ready-exec Running || fail "pod ready-exec not Running" "$E2E_NS"
wait_for 60 event_seen ready-exec Unhealthy "Readiness probe failed" ||
  fail "no Unhealthy readiness event for ready-exec" "$E2E_NS"
ready_is ready-exec False || fail "ready-exec is Ready although its readiness probe fails" "$E2E_NS"
[ "$(jsonpath pod/ready-exec '{.status.containerStatuses[0].ready}' "$E2E_NS")" = false ] ||
  fail "ready-exec: containerStatuses[0].ready is not false" "$E2E_NS"
kubectl exec -n "$E2E_NS" ready-exec -- touch /tmp/ready || fail "kubectl exec touch failed" "$E2E_NS"
wait_for 30 ready_is ready-exec True || fail "ready-exec not Ready after touch /tmp/ready" "$E2E_NS"
[ "$(jsonpath pod/ready-exec '{.status.containerStatuses[0].ready}' "$E2E_NS")" = true ] ||
  fail "ready-exec: containerStatuses[0].ready is not true" "$E2E_NS"

# 2. httpGet readiness on a named port.
wait_for 60 ready_is http-ready True || fail "http-ready not Ready" "$E2E_NS"

# 3. liveness failure: killed and restarted.
restarts() { jsonpath pod/live-fail '{.status.containerStatuses[0].restartCount}' "$E2E_NS"; }
restarted() { [ "$(restarts)" -ge 1 ] 2>/dev/null; }
wait_for 90 restarted || fail "live-fail not restarted (restartCount $(restarts))" "$E2E_NS"
wait_for 30 event_seen live-fail Unhealthy "Liveness probe failed" ||
  fail "no Unhealthy liveness event for live-fail" "$E2E_NS"
wait_for 30 event_seen live-fail Killing "Container main failed liveness probe, will be restarted" ||
  fail "no Killing event for live-fail" "$E2E_NS"
[ "$(jsonpath pod/live-fail '{.status.containerStatuses[0].lastState.terminated.exitCode}' "$E2E_NS")" != "" ] ||
  fail "live-fail: no lastState.terminated after the restart" "$E2E_NS"

# 4. A Deployment's rollout waits for readiness (the file appears 2 s after start).
kubectl apply -n "$E2E_NS" -f - >/dev/null <<DEPLOY
apiVersion: apps/v1
kind: Deployment
metadata: {name: rollout}
spec:
  replicas: 2
  selector: {matchLabels: {app: rollout}}
  template:
    metadata: {labels: {app: rollout}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: $image
        command: ["sh", "-c", "sleep 2; touch /tmp/ready; exec sleep 3600"]
        readinessProbe:
          exec: {command: ["cat", "/tmp/ready"]}
          periodSeconds: 1
DEPLOY
kubectl rollout status -n "$E2E_NS" deployment/rollout --timeout=90s >/dev/null ||
  fail "deployment rollout did not complete" "$E2E_NS"
[ "$(jsonpath deployment/rollout '{.status.readyReplicas}' "$E2E_NS")" = 2 ] ||
  fail "deployment rollout: readyReplicas not 2" "$E2E_NS"

# 5. /metrics/probes.
probes_metric() {
  in_ns curl -sf --max-time 10 http://127.0.0.1:10249/metrics/probes -o "$state/probes.txt" &&
    grep -E '^prober_probe_total\{probe_type="Readiness",result="successful",container="main",pod="http-ready",namespace="'"$E2E_NS"'"' "$state/probes.txt" &&
    grep -E '^prober_probe_total\{probe_type="Liveness",result="failed",container="main",pod="live-fail"' "$state/probes.txt"
}
wait_for 30 probes_metric || fail "prober_probe_total missing on /metrics/probes: $(grep -c prober "$state/probes.txt" 2>/dev/null)" "$E2E_NS"
echo "PASS: exec readiness gates Ready; httpGet readiness Ready; liveness failure restarts (restartCount $(restarts)); Deployment rollout on readiness; prober_probe_total served"
