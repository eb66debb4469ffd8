#!/usr/bin/env bash
# A pod whose sandbox dies is given a new one, as the kubelet does (computePodActions: the
# sandbox is not ready, so kill the pod and create sandbox attempt+1), and its status then
# carries the new sandbox's IP only: podIP and podIPs name the new address, once (a status
# patch merging the old and new podIPs would be refused by the API server).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-sandbox-recreate
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
POD
wait_for 120 pod_phase_is "$E2E_NS" web Running || fail "pod web not Running" "$E2E_NS"
old_ip=$(jsonpath pod/web '{.status.podIP}' "$E2E_NS")
[ -n "$old_ip" ] || fail "pod web has no podIP" "$E2E_NS"
uid=$(jsonpath pod/web '{.metadata.uid}' "$E2E_NS")
sandbox=$(crictl pods -q --label "io.kubernetes.pod.uid=$uid" --state ready)
[ -n "$sandbox" ] || fail "no ready sandbox for pod web ($uid)" "$E2E_NS"
crictl stopp "$sandbox" >/dev/null || fail "crictl stopp $sandbox failed" "$E2E_NS"
new_sandbox() { local s; s=$(crictl pods -q --label "io.kubernetes.pod.uid=$uid" --state ready); [ -n "$s" ] && [ "$s" != "$sandbox" ]; }
wait_for 120 new_sandbox || fail "no new sandbox for pod web after its sandbox was stopped" "$E2E_NS"
ips() { jsonpath pod/web '{range .status.podIPs[*]}{.ip}{" "}{end}' "$E2E_NS"; }
moved() { local ip; ip=$(jsonpath pod/web '{.status.podIP}' "$E2E_NS"); [ -n "$ip" ] && [ "$ip" != "$old_ip" ]; }
wait_for 60 moved || fail "podIP still $old_ip after the new sandbox (podIPs: $(ips))" "$E2E_NS"
new_ip=$(jsonpath pod/web '{.status.podIP}' "$E2E_NS")
[ "$(ips)" = "$new_ip " ] || fail "podIPs '$(ips)' is not just the new podIP $new_ip" "$E2E_NS"
running() { pod_phase_is "$E2E_NS" web Running && [ "$(jsonpath pod/web '{.status.containerStatuses[0].ready}' "$E2E_NS")" = true ]; }
wait_for 60 running || fail "pod web not Running/ready in its new sandbox" "$E2E_NS"
echo "PASS: a dead sandbox is replaced; podIP/podIPs move from $old_ip to $new_ip only"
