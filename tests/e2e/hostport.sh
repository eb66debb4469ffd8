#!/usr/bin/env bash
# hostPort (CNI portmap plugin, capability portMappings): a pod's containerPort 8080 with
# hostPort 18080 is reachable at the node address 10.217.0.1:18080 from the cluster netns
# (not through the pod IP); a UDP hostPort gets its DNAT rule too; both rules go away with
# the pod.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-hostport
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
nat_rules() { ip netns exec "$netns" iptables-save -t nat | grep -E -- "--dport (18080|18053) " || true; }
[ -z "$(nat_rules)" ] || fail "DNAT rules for ports 18080/18053 exist before the test: $(nat_rules)"
kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: hp}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $image
    command: ["sh", "-c", "mkdir -p /www && echo hostport-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports:
    - {containerPort: 8080, hostPort: 18080, protocol: TCP}
    - {containerPort: 53, hostPort: 18053, protocol: UDP}
POD
wait_for 120 pod_phase_is "$E2E_NS" hp Running || fail "pod hp not Running" "$E2E_NS"
pod_ip=$(jsonpath pod/hp '{.status.podIP}' "$E2E_NS")
[ -n "$pod_ip" ] && [ "$pod_ip" != "$node_addr" ] || fail "pod hp has IP '$pod_ip'" "$E2E_NS"
get_hostport() { ip netns exec "$netns" curl -sf --max-time 3 "http://$node_addr:18080/"; }
served() { [ "$(get_hostport)" = hostport-ok ]; }
wait_for 30 served || fail "http://$node_addr:18080/ did not serve the pod's page: $(get_hostport 2>&1); rules: $(nat_rules)" "$E2E_NS"
nat_rules | grep -q -- '-p udp .*--dport 18053 ' || fail "no UDP DNAT rule for hostPort 18053: $(nat_rules)" "$E2E_NS"
kubectl delete pod -n "$E2E_NS" hp --wait=true --timeout=120s >/dev/null || fail "pod hp not deleted" "$E2E_NS"
no_rules() { [ -z "$(nat_rules)" ]; }
wait_for 60 no_rules || fail "DNAT rules left after the pod was deleted: $(nat_rules)"
get_hostport >/dev/null 2>&1 && fail "hostPort 18080 still answers after the pod was deleted"
echo "PASS: hostPort 18080/TCP served at $node_addr (pod $pod_ip), 18053/UDP DNAT rule, both removed with the pod"
