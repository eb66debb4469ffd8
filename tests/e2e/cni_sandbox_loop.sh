#!/usr/bin/env bash
# 50 pod sandboxes created and removed in a loop through berth's CRI socket (crictl runp /
# stopp / rmp; real bridge + host-local + portmap + bandwidth + loopback plugins, a hostPort
# on every sandbox) leave nothing behind: host veths, netns bind mounts and files, host-local
# leases, CNI result cache files and portmap NAT rules are counted before and after.
# Prints the mean runp+stopp+rmp time per sandbox (informational only).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
n=${BERTH_CNI_LOOP:-50}
ns=e2e-cni-loop
wait_for 120 node_ready "$node_name" || fail "node $node_name not Ready"
work=$(mktemp -d)
cleanup() {
  local id
  for id in $(crictl pods --namespace "$ns" -q 2>/dev/null); do
    crictl stopp "$id" >/dev/null 2>&1 || true; crictl rmp "$id" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
conf="$state/cni/net.d/10-berth.conflist"
net_name=$(jq -r .name "$conf")
leases() { find "$state/cni/ipam/$net_name" -type f -name '10.*' 2>/dev/null | wc -l; }
netns_files() { find "$berth_dir/run/netns" -mindepth 1 2>/dev/null | wc -l; }
cache_files() { find "$berth_dir/lib/cni/results" -type f 2>/dev/null | wc -l; }
nat_rules() { ip netns exec "$netns" iptables-save -t nat | grep -c -- '--dport 19080 ' || true; }
links() { ip -n "$netns" -o link show | wc -l; }
snapshot() { echo "veths=$(count_veths) links=$(links) netns_mounts=$(count_netns_mounts) netns_files=$(netns_files) leases=$(leases) cache=$(cache_files) nat=$(nat_rules)"; }
before=$(snapshot)
log "before: $before"
start=$(date +%s%N)
for i in $(seq 1 "$n"); do
  cat >"$work/pod.json" <<JSON
{"metadata": {"name": "loop-$i", "namespace": "$ns", "uid": "cni-loop-uid-$i", "attempt": 0},
 "hostname": "loop-$i", "log_directory": "$work/logs/loop-$i",
 "port_mappings": [{"protocol": 0, "container_port": 80, "host_port": 19080}],
 "annotations": {"kubernetes.io/ingress-bandwidth": "10M"},
 "linux": {}}
JSON
  id=$(crictl runp "$work/pod.json" 2>"$work/runp.err") || fail "cycle $i: crictl runp failed: $(cat "$work/runp.err")"
  [ "$(leases)" -ge 1 ] || fail "cycle $i: sandbox $id has no host-local lease"
  ip=$(crictl inspectp "$id" | jq -r .status.network.ip)
  [ -n "$ip" ] && [ "$ip" != null ] || fail "cycle $i: sandbox $id has no IP"
  crictl stopp "$id" >/dev/null || fail "cycle $i: crictl stopp $id failed"
  crictl rmp "$id" >/dev/null || fail "cycle $i: crictl rmp $id failed"
done
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
after=$(snapshot)
log "after:  $after"
[ "$after" = "$before" ] || fail "$n sandboxes leaked: before [$before] after [$after]"
echo "PASS: $n sandboxes created and removed, nothing left [$after]; mean $((elapsed_ms / n)) ms per runp+stopp+rmp"
