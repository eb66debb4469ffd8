#!/usr/bin/env bash
# (b) A 3-replica busybox Deployment becomes Available; crictl sees and inspects its pods and
# containers; scaled to 0, nothing is left on the node: no container, overlay mount, pod
# cgroup, netns mount or veth beyond what was there before.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-deploy
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"

veths0=$(count_veths); mounts0=$(count_overlay_mounts); netns0=$(count_netns_mounts)
cgroups0=$(count_pod_cgroups)

kubectl create deployment bb -n "$E2E_NS" --image="$image" --replicas=3 -- sleep 3600 >/dev/null
kubectl wait deployment/bb -n "$E2E_NS" --for=condition=Available --timeout=180s >/dev/null ||
  fail "deployment bb not Available" "$E2E_NS"
ready=$(jsonpath deployment/bb '{.status.readyReplicas}' "$E2E_NS")
[ "$ready" = 3 ] || fail "readyReplicas=$ready, want 3" "$E2E_NS"

label="io.kubernetes.pod.namespace=$E2E_NS"
running=$(crictl ps --state Running --label "$label" -q | wc -l)
[ "$running" = 3 ] || fail "crictl ps shows $running running containers, want 3" "$E2E_NS"
pods=$(crictl pods --namespace "$E2E_NS" --state Ready -q | wc -l)
[ "$pods" = 3 ] || fail "crictl pods shows $pods ready sandboxes, want 3" "$E2E_NS"
images=$(crictl images) || fail "crictl images failed"
grep -Eq "^$registry/busybox[[:space:]]+latest[[:space:]]" <<<"$images" || fail "crictl images lacks $image: $images"
cids=$(crictl ps --label "$label" -q); cid=${cids%%$'\n'*}
sids=$(crictl pods --namespace "$E2E_NS" -q); sid=${sids%%$'\n'*}
state_c=$(crictl inspect "$cid" | jq -r .status.state)
[ "$state_c" = CONTAINER_RUNNING ] || fail "crictl inspect $cid: state $state_c" "$E2E_NS"
[ "$(crictl inspect "$cid" | jq -r '.status.labels["io.kubernetes.container.name"]')" = busybox ] ||
  fail "crictl inspect $cid: container name label missing" "$E2E_NS"
state_p=$(crictl inspectp "$sid" | jq -r .status.state)
[ "$state_p" = SANDBOX_READY ] || fail "crictl inspectp $sid: state $state_p" "$E2E_NS"
pod_ip=$(crictl inspectp "$sid" | jq -r .status.network.ip)
[ -n "$pod_ip" ] && [ "$pod_ip" != null ] || fail "sandbox $sid has no IP" "$E2E_NS"
crictl logs "$cid" >/dev/null || fail "crictl logs $cid failed" "$E2E_NS"
# Every pod IP the API server shows is in the node's podCIDR range and unique.
ips=$(kubectl get pods -n "$E2E_NS" -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort -u | grep -c . || true)
[ "$ips" = 3 ] || fail "want 3 distinct pod IPs, got $ips" "$E2E_NS"
[ "$(count_veths)" -ge $((veths0 + 3)) ] || fail "want >= $((veths0 + 3)) veths, have $(count_veths)" "$E2E_NS"

kubectl scale deployment/bb -n "$E2E_NS" --replicas=0 >/dev/null
no_api_pods() { [ -z "$(kubectl get pods -n "$E2E_NS" -o name)" ]; }
wait_for 120 no_api_pods || fail "pods still present after scale to 0" "$E2E_NS"
no_cri_objects() { [ -z "$(crictl ps -a --label "$label" -q)" ] && [ -z "$(crictl pods --namespace "$E2E_NS" -q)" ]; }
wait_for 120 no_cri_objects || fail "containers or sandboxes left after scale to 0" "$E2E_NS"
back_to() { [ "$("$1")" = "$2" ]; }
wait_for 60 back_to count_overlay_mounts "$mounts0" || fail "overlay mounts: $(count_overlay_mounts), before: $mounts0"
wait_for 60 back_to count_pod_cgroups "$cgroups0" || fail "pod cgroups: $(count_pod_cgroups), before: $cgroups0"
wait_for 60 back_to count_netns_mounts "$netns0" || fail "netns mounts: $(count_netns_mounts), before: $netns0"
wait_for 60 back_to count_veths "$veths0" || fail "veths: $(count_veths), before: $veths0"
echo "PASS: 3 replicas Available with distinct pod IPs, crictl ps/pods/images/inspect/inspectp/logs ok, clean after scale to 0"
