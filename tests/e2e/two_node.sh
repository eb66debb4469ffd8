#!/usr/bin/env bash
# Pod networking across two berth nodes (CNI bridge + host-local per node, host-gw routes):
# a second berth node joins the cluster from its own network namespace (tests/e2e/lib_node2.sh),
# each node's pods get addresses from its own Node.spec.podCIDR, and a pod on node A fetches
# an HTTP page served by a pod on node B, one served by a pod on node A (same node) and node
# B's pod fetches node A's page. Everything node B made is torn down at the end.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/e2e/lib_node2.sh
source "$(dirname "$0")/lib_node2.sh"
e2e_namespace e2e-two-node
trap 'node2_down || true; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
node2_up

# httpd <pod> <node> <text>: a busybox httpd on port 8080 serving <text> at /, on <node>.
httpd_pod() {
  kubectl apply -n "$E2E_NS" -f - >/dev/null <<POD
apiVersion: v1
kind: Pod
metadata: {name: $1}
spec:
  nodeName: $2
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: $image
    command: ["sh", "-c", "mkdir -p /www && echo '$3' > /www/index.html && exec httpd -f -p 8080 -h /www"]
POD
}
httpd_pod web-a "$node_name" "hello from $node_name"
httpd_pod web-b "$n2_name" "hello from $n2_name"
for p in web-a web-b; do
  wait_for 180 pod_phase_is "$E2E_NS" "$p" Running || fail "pod $p not Running" "$E2E_NS"
done
ip_a=$(jsonpath pod/web-a '{.status.podIP}' "$E2E_NS")
ip_b=$(jsonpath pod/web-b '{.status.podIP}' "$E2E_NS")
in_cidr() { python3 -c 'import ipaddress,sys; sys.exit(ipaddress.ip_address(sys.argv[1]) not in ipaddress.ip_network(sys.argv[2]))' "$1" "$2"; }
in_cidr "$ip_a" "$n2_cidr_a" || fail "web-a IP $ip_a not in $node_name's podCIDR $n2_cidr_a" "$E2E_NS"
in_cidr "$ip_b" "$n2_cidr_b" || fail "web-b IP $ip_b not in $n2_name's podCIDR $n2_cidr_b" "$E2E_NS"
[ "$(jsonpath pod/web-b '{.status.podIPs[0].ip}' "$E2E_NS")" = "$ip_b" ] || fail "web-b podIPs[0] != podIP" "$E2E_NS"
[ "$(jsonpath pod/web-b '{.status.hostIP}' "$E2E_NS")" = "$n2_ip" ] || fail "web-b hostIP != $n2_ip" "$E2E_NS"

# fetch <crictl-fn> <pod> <ip>: the body of http://<ip>:8080/ fetched from inside <pod>'s
# container (CRI ExecSync; busybox nc, as the static busybox's wget crashes in its resolver).
fetch() {
  local fn=$1 pod=$2 ip=$3 id
  id=$("$fn" ps -q --label "io.kubernetes.pod.namespace=$E2E_NS" --label "io.kubernetes.pod.name=$pod" | head -n 1)
  [ -n "$id" ] || return 1
  "$fn" exec -s --timeout 10 "$id" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 $ip 8080" | awk 'NF {last = $0} END {print last}'
}
fetched() { [ "$(fetch "$@" 2>/dev/null)" = "$4" ]; }
wait_for 30 fetched crictl web-a "$ip_b" "hello from $n2_name" ||
  fail "pod web-a on $node_name could not fetch http://$ip_b:8080/ from web-b on $n2_name: $(fetch crictl web-a "$ip_b" 2>&1)" "$E2E_NS"
wait_for 30 fetched crictl_b web-b "$ip_a" "hello from $node_name" ||
  fail "pod web-b on $n2_name could not fetch http://$ip_a:8080/ from web-a: $(fetch crictl_b web-b "$ip_a" 2>&1)" "$E2E_NS"
# Same node: a second pod on node A reaches web-a over the bridge.
kubectl run client-a -n "$E2E_NS" --image="$image" --restart=Never \
  --overrides="{\"spec\":{\"nodeName\":\"$node_name\",\"terminationGracePeriodSeconds\":1}}" -- sleep 3600 >/dev/null
wait_for 120 pod_phase_is "$E2E_NS" client-a Running || fail "pod client-a not Running" "$E2E_NS"
wait_for 30 fetched crictl client-a "$ip_a" "hello from $node_name" ||
  fail "pod client-a could not fetch http://$ip_a:8080/ on the same node" "$E2E_NS"
wait_for 30 fetched crictl client-a "$ip_b" "hello from $n2_name" ||
  fail "pod client-a could not fetch http://$ip_b:8080/ across nodes" "$E2E_NS"

# Node B's pod goes away cleanly: veth and host-local lease removed on B.
leases_b() { find "$n2_dir/lib/cni/networks" -type f -name '10.*' 2>/dev/null | wc -l; }
[ "$(leases_b)" -ge 1 ] || fail "no host-local lease under $n2_dir/lib/cni/networks for web-b" "$E2E_NS"
kubectl delete pod -n "$E2E_NS" web-b --wait=true --timeout=120s >/dev/null || fail "pod web-b not deleted" "$E2E_NS"
veths_b() { ip -n "$n2_netns" -o link show type veth | grep -vc berth-ba || true; }
no_leases_b() { [ "$(leases_b)" = 0 ] && [ "$(veths_b)" = 0 ]; }
wait_for 60 no_leases_b || fail "node B kept $(leases_b) lease(s) and $(veths_b) pod veth(s) after web-b was deleted" "$E2E_NS"
node2_down || fail "node B teardown found leftovers"
n2_netns_exists && fail "netns $n2_netns left behind"
echo "PASS: pod on $node_name <-> pod on $n2_name over host-gw routes ($ip_a <-> $ip_b), same-node pod-to-pod, node B torn down"
