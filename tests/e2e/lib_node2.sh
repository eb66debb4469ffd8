# shellcheck shell=bash
# A second berth node for multi-node e2e tests (sourced after lib.sh).
#
# Topology ("host-gw"): node B lives in network namespace <cluster netns>-b, joined to the
# cluster netns (node A, the control plane and the registry) by one veth pair:
#
#   cluster netns: berth-ab 10.217.1.1/24  <-- veth -->  berth-ba 10.217.1.2/24 :netns B
#
# Node B's InternalIP is 10.217.1.2; it reaches node A's address 10.217.0.1 through the link.
# The API server and the registry listen on 127.0.0.1 of the cluster netns only, so packets
# from the link to 10.217.0.1:6443/:5000 are DNATed to 127.0.0.1 (route_localnet on
# berth-ab, as kube-proxy does for localhost NodePorts). Node B pulls 127.0.0.1:5000 images
# through --registry-mirror to http://10.217.0.1:5000. Each node's pod subnet is its
# Node.spec.podCIDR (controller-manager --allocate-node-cidrs; berth --pod-cidr-from-node
# writes the bridge conflist), and the harness adds one static route per node to the other
# node's podCIDR via the other node's link address.
#
#   node2_up        starts node B (own cgroup root, state dirs, CRI socket), waits Ready,
#                   sets the routes; sets n2_* globals
#   node2_down      deletes what node2_up made (pods on B first, then berth, cgroups,
#                   mounts, NAT rules, routes, netns, the Node object); safe to call twice
#   node2_start_berth  (re)starts berth on node B with n2_auth_args + the common flags
#   crictl_b ...    crictl against node B's CRI socket
#
# n2_auth_args (array, set before node2_up): node B's credential flags; default a hand-made
# node kubeconfig (tests/cluster/node-kubeconfig.sh) as --kubeconfig. tls_bootstrap.sh sets
# --bootstrap-kubeconfig instead (node-kubeconfig.sh is then not run).
n2_netns="${netns}-b"
n2_name="${node_name}-b"
n2_dir="$state/node-b"
n2_sock="$n2_dir/berth.sock"
n2_cg="${cgroup_root}-b"
n2_ip=10.217.1.2
n2_link_a_ip=10.217.1.1
n2_nat_tag="berth-e2e-node-b"
if ! declare -p n2_auth_args >/dev/null 2>&1; then n2_auth_args=(); fi
# n2_extra_args (array, set before node2_up): node B's eviction and GC flags (node_pressure.sh);
# default e2e_pressure_args (lib.sh).
if ! declare -p n2_extra_args >/dev/null 2>&1; then n2_extra_args=(); fi

crictl_b() {
  local cfg="$state/crictl-b.yaml"
  [ -f "$cfg" ] || printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' \
    "$n2_sock" "$n2_sock" >"$cfg"
  "$cluster_bin/crictl" --config "$cfg" "$@"
}

n2_netns_exists() {
  local list; list=$(ip netns list | awk '{print $1}')
  [[ $'\n'"$list"$'\n' == *$'\n'"$n2_netns"$'\n'* ]]
}

# node_pod_cidr <node>: the Node's spec.podCIDR ('' until the controller-manager set it).
node_pod_cidr() { jsonpath "node/$1" '{.spec.podCIDR}'; }

node2_up() {
  [ -x "$berth_bin" ] || fail "berth binary $berth_bin not built"
  if ! pid_alive berth-b; then
    # A fresh node: its Node object (and podCIDR) is new, so is its state (the conflist
    # written for an earlier podCIDR must go). Nothing may still be mounted there.
    if awk -v root="$n2_dir/" 'index($2, root)==1 {f=1} END {exit !f}' /proc/self/mounts; then
      fail "mounts left under $n2_dir from an earlier run"
    fi
    rm -rf "$n2_dir"
  fi
  mkdir -p "$n2_dir/lib" "$n2_dir/run" "$n2_dir/net.d"
  # --- the link -----------------------------------------------------------------------------
  n2_netns_exists || ip netns add "$n2_netns"
  ip -n "$n2_netns" link set lo up
  if ! ip -n "$netns" link show berth-ab >/dev/null 2>&1; then
    ip -n "$netns" link add berth-ab type veth peer name berth-ba netns "$n2_netns"
  fi
  ip -n "$netns" addr replace "$n2_link_a_ip/24" dev berth-ab
  ip -n "$n2_netns" addr replace "$n2_ip/24" dev berth-ba
  ip -n "$netns" link set berth-ab up
  ip -n "$n2_netns" link set berth-ba up
  ip -n "$n2_netns" route replace default via "$n2_link_a_ip"
  ip netns exec "$netns" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$n2_netns" sysctl -qw net.ipv4.ip_forward=1
  # --- API server and registry reachable from node B at node A's address -----------------
  ip netns exec "$netns" sysctl -qw net.ipv4.conf.berth-ab.route_localnet=1
  local rule=(PREROUTING -i berth-ab -d "$node_addr" -p tcp -m multiport --dports 6443,5000
    -m comment --comment "$n2_nat_tag" -j DNAT --to-destination 127.0.0.1)
  ip netns exec "$netns" iptables -t nat -C "${rule[@]}" 2>/dev/null ||
    ip netns exec "$netns" iptables -t nat -A "${rule[@]}"
  ip netns exec "$n2_netns" curl -sk --max-time 5 -o /dev/null "https://$node_addr:6443/readyz" ||
    fail "node B cannot reach the API server at $node_addr:6443"
  # --- berth on node B ------------------------------------------------------------------------
  if [ ${#n2_auth_args[@]} -eq 0 ]; then
    "$repo_dir/tests/cluster/node-kubeconfig.sh" "$state" "$n2_name" >/dev/null
    sed "s|https://127.0.0.1:6443|https://$node_addr:6443|" "$state/node-$n2_name.kubeconfig" \
      >"$n2_dir/kubeconfig"
  fi
  pid_alive berth-b || node2_start_berth
  wait_for 120 node_ready "$n2_name" || fail "node $n2_name not Ready within 120s: $(tail -n 30 "$state/berth-b.log")"
  # berth --pod-cidr-from-node writes the conflist once it has seen its podCIDR.
  n2_has_conf() { [ -f "$n2_dir/net.d/10-berth.conflist" ]; }
  wait_for 60 n2_has_conf || fail "node $n2_name wrote no CNI conflist: $(tail -n 30 "$state/berth-b.log")"
  # --- routes between the pod subnets (host-gw) ------------------------------------------------
  n2_cidr_a=$(node_pod_cidr "$node_name")
  n2_cidr_b=$(node_pod_cidr "$n2_name")
  [ -n "$n2_cidr_a" ] && [ -n "$n2_cidr_b" ] ||
    fail "nodes without podCIDR: $node_name='$n2_cidr_a' $n2_name='$n2_cidr_b'"
  [ "$n2_cidr_a" != "$n2_cidr_b" ] || fail "both nodes got podCIDR $n2_cidr_a"
  ip -n "$netns" route replace "$n2_cidr_b" via "$n2_ip" dev berth-ab
  ip -n "$n2_netns" route replace "$n2_cidr_a" via "$n2_link_a_ip" dev berth-ba
  log "node $n2_name Ready, podCIDR $n2_cidr_b (node $node_name: $n2_cidr_a)"
}

node2_start_berth() {
  local auth=("${n2_auth_args[@]}")
  [ ${#auth[@]} -gt 0 ] || auth=(--kubeconfig="$n2_dir/kubeconfig")
  local extra=("${n2_extra_args[@]}")
  [ ${#extra[@]} -gt 0 ] || extra=("${e2e_pressure_args[@]}")
  nsenter --net="/run/netns/$n2_netns" "$berth_bin" \
    "${auth[@]}" --node-name="$n2_name" --node-ip="$n2_ip" \
    --root-dir="$n2_dir/lib" --state-dir="$n2_dir/run" --cri-socket="$n2_sock" \
    --cgroup-root="$n2_cg" --cni-conf-dir="$n2_dir/net.d" --cni-bin-dir=/usr/lib/cni \
    --insecure-registry=$registry --insecure-registry="$node_addr:5000" \
    --registry-mirror="$registry=http://$node_addr:5000" \
    --metrics-bind-address=127.0.0.1:10249 --pod-cidr-from-node "${extra[@]}" \
    </dev/null >>"$state/berth-b.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/pids/berth-b"
  readlink -f "$berth_bin" >"$state/pids/berth-b.exe"
  log "started berth node $n2_name (pid $pid, netns $n2_netns)"
}

node2_down() {
  local status=0 d pid
  if pid_alive berth-b && pid_alive kube-apiserver; then
    # Pods bound to B go first so that berth B runs CNI DEL and unmounts what it mounted.
    on_b() { kubectl get pods -A --field-selector "spec.nodeName=$n2_name" -o name 2>/dev/null; }
    local ns pod
    while read -r ns pod; do
      [ -n "$pod" ] && kubectl delete pod -n "$ns" "$pod" --wait=false >/dev/null 2>&1 || true
    done < <(kubectl get pods -A --field-selector "spec.nodeName=$n2_name" \
      -o jsonpath='{range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}' 2>/dev/null)
    no_pods_on_b() { [ -z "$(on_b)" ]; }
    wait_for 120 no_pods_on_b || { log "pods still bound to $n2_name"; status=1; }
    no_sandboxes_b() { [ -z "$(crictl_b pods -q)" ]; }
    wait_for 60 no_sandboxes_b || { log "berth on $n2_name still has sandboxes"; status=1; }
  fi
  stop_pid_file berth-b
  # conmon and containers outlive berth by design: kill (by PID) what is left in B's cgroups.
  for d in $(cgroup_dirs "$n2_cg"); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null && { log "killed leftover pid $pid of $n2_name"; status=1; }
    done
  done
  for d in $(cgroup_dirs "$n2_cg"); do
    local deadline=$((SECONDS + 10))
    while [ -d "$d" ] && [ $SECONDS -lt $deadline ]; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
    done
  done
  # berth B ran in the host mount namespace: unmount whatever it left under its dirs.
  local m
  for m in $(awk -v root="$n2_dir/" 'index($2, root)==1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null && { log "unmounted leftover $m"; status=1; }
  done
  if netns_exists; then
    ip netns exec "$netns" iptables -t nat -S PREROUTING 2>/dev/null | grep -- "$n2_nat_tag" |
      sed 's/^-A /-D /' | while read -r r; do
        # shellcheck disable=SC2086
        ip netns exec "$netns" iptables -t nat $r || true
      done
    [ -z "${n2_cidr_b:-}" ] || ip -n "$netns" route del "$n2_cidr_b" 2>/dev/null || true
    ip -n "$netns" link del berth-ab 2>/dev/null || true
  fi
  if n2_netns_exists; then ip netns delete "$n2_netns"; fi
  if pid_alive kube-apiserver; then kubectl delete node "$n2_name" --ignore-not-found >/dev/null 2>&1 || true; fi
  return $status
}
