#!/usr/bin/env bash
# CNI DEL after a berth restart: berth is killed (SIGKILL) while a pod runs, the conflist
# is changed while berth is down (another network name, so only the result cached on disk
# at ADD time can find the attachment), and the pod is deleted while berth is down. The
# restarted berth tears the pod down with the cached configuration: the host-local lease
# file, the veth and the result cache are gone afterwards.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
e2e_namespace e2e-cni-restart
conf="$state/cni/net.d/10-berth.conflist"
restore_conf() {
  if [ -f "$conf.orig" ]; then mv -f "$conf.orig" "$conf"; fi
  if ! pid_alive berth; then start_berth "$node_name" "$cgroup_root"; wait_for 120 node_ready "$node_name" || true; fi
}
trap 'restore_conf; kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
net_name=$(jq -r .name "$conf")
lease_dir="$state/cni/ipam/$net_name"
cache_dir="$berth_dir/lib/cni/results"
veths0=$(count_veths)

kubectl run victim -n "$E2E_NS" --image="$image" --restart=Never \
  --overrides='{"spec":{"terminationGracePeriodSeconds":1}}' -- sleep 3600 >/dev/null
wait_for 120 pod_phase_is "$E2E_NS" victim Running || fail "pod victim not Running" "$E2E_NS"
ip=$(jsonpath pod/victim '{.status.podIP}' "$E2E_NS")
sid=$(crictl pods --namespace "$E2E_NS" --name victim -q | head -n 1)
[ -n "$ip" ] && [ -n "$sid" ] || fail "pod victim: ip '$ip' sandbox '$sid'" "$E2E_NS"
[ -f "$lease_dir/$ip" ] || fail "no host-local lease $lease_dir/$ip" "$E2E_NS"
[ -f "$cache_dir/$net_name-$sid-eth0" ] || fail "no CNI result cache $cache_dir/$net_name-$sid-eth0" "$E2E_NS"

pid=$(berth_pid)
kill -KILL "$pid"
gone() { ! pid_alive berth; }
wait_for 10 gone || fail "berth (pid $pid) survived SIGKILL"
log "killed berth (pid $pid) with pod victim ($ip, sandbox $sid) running"
cp "$conf" "$conf.orig"
jq '.name = "berth-e2e-renamed"' "$conf.orig" >"$conf.tmp" && mv "$conf.tmp" "$conf"
kubectl delete pod -n "$E2E_NS" victim --wait=false >/dev/null
start_berth "$node_name" "$cgroup_root"
pod_gone() { [ -z "$(kubectl get pod -n "$E2E_NS" victim -o name 2>/dev/null)" ]; }
wait_for 120 pod_gone || fail "pod victim not deleted after berth came back" "$E2E_NS"
sandbox_gone() { [ -z "$(crictl pods -q --id "$sid" 2>/dev/null)" ]; }
wait_for 60 sandbox_gone || fail "sandbox $sid still listed" "$E2E_NS"
lease_gone() { [ ! -e "$lease_dir/$ip" ]; }
wait_for 30 lease_gone || fail "host-local lease $lease_dir/$ip left after DEL by the restarted berth"
[ ! -e "$cache_dir/$net_name-$sid-eth0" ] || fail "CNI result cache of $sid left behind"
[ ! -d "$state/cni/ipam/berth-e2e-renamed" ] || [ -z "$(ls -A "$state/cni/ipam/berth-e2e-renamed" | grep -v lock)" ] ||
  fail "DEL went to the renamed network: $(ls "$state/cni/ipam/berth-e2e-renamed")"
back() { [ "$(count_veths)" = "$veths0" ]; }
wait_for 30 back || fail "veths: $(count_veths), before: $veths0"
echo "PASS: berth killed with pod running, pod deleted while down, conflist renamed: DEL from the cached result freed $ip"
