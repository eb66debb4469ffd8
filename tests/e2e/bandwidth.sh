#!/usr/bin/env bash
# Pod traffic shaping (CNI bandwidth plugin, capability "bandwidth"): a pod annotated with
# kubernetes.io/ingress-bandwidth gets a tbf qdisc at that rate on its host-side veth, and
# the qdisc goes away with the pod.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-bw
count_tbf() { ip netns exec "$netns" tc qdisc show | grep -c ' tbf ' || true; }
before=$(count_tbf)
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata:
  name: shaped
  annotations: {kubernetes.io/ingress-bandwidth: 1M}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $image
    command: ["sleep", "3600"]
POD
wait_for 120 pod_phase_is "$E2E_NS" shaped Running || fail "pod shaped not Running" "$E2E_NS"
tbf_present() { [ "$(count_tbf)" -gt "$before" ]; }
wait_for 10 tbf_present || fail "no tbf qdisc for the shaped pod: $(ip netns exec "$netns" tc qdisc show)" "$E2E_NS"
ip netns exec "$netns" tc qdisc show | grep ' tbf ' | grep -q 'rate 1Mbit' ||
  fail "tbf qdisc without rate 1Mbit: $(ip netns exec "$netns" tc qdisc show | grep ' tbf ')" "$E2E_NS"
kubectl delete pod -n "$E2E_NS" shaped --wait=true --timeout=120s >/dev/null
tbf_gone() { [ "$(count_tbf)" -eq "$before" ]; }
wait_for 60 tbf_gone || fail "tbf qdisc left after the pod was deleted" "$E2E_NS"
echo "PASS: ingress-bandwidth 1M -> tbf rate 1Mbit on the host veth, removed with the pod"
