# shellcheck shell=bash
# Helpers for the e2e scripts (sourced). Every script runs against the state dir in
# $BERTH_E2E_STATE, set up by cluster_up.sh (ctest fixture e2e_cluster).
#
#   kubectl ...                   upstream kubectl inside the cluster netns, as cluster admin
#   crictl ...                    crictl against berth's CRI socket
#   wait_for <timeout> <cmd...>   polls cmd every 0.2 s until it succeeds; 1 on timeout
#   fail <message> [ns]           prints diagnostics (berth.log tail, nodes, pods, events) and exits 1
#   start_berth <node> <cgroup-root> [args...]   starts berth in the netns, PID in berth.pid
#   stop_berth                    TERM/KILL by PID, then kills what is left in its cgroup
set -euo pipefail
e2e_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(cd "$e2e_dir/../.." && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$repo_dir/tests/cluster/lib.sh"

: "${BERTH_E2E_STATE:?BERTH_E2E_STATE must name the e2e state dir (ctest sets it)}"
state_init "$BERTH_E2E_STATE"
berth_bin=${BERTH_BIN:-$repo_dir/build/kubelet/berth}
berth_dir="$state/berth"
berth_sock="$berth_dir/berth.sock"
node_name=${BERTH_NODE_NAME:-berth-e2e}
# The cgroup root is remembered in the state dir like the netns (tests/cluster/lib.sh), so
# two state dirs with their own BERTH_NETNS / BERTH_CGROUP_ROOT can run side by side.
if [ -f "$state/cgroup_root" ]; then cgroup_root=$(cat "$state/cgroup_root"); else
  cgroup_root=${BERTH_CGROUP_ROOT:-/berth-e2e}; echo "$cgroup_root" >"$state/cgroup_root"; fi
registry=$registry_addr
image="$registry/busybox:latest"
# The e2e nodes' node-pressure settings: the shared disk of a test machine is often past the
# kubelet's default thresholds (imagefs.available<15%, image GC at 85% usage), which would
# taint the node (DiskPressure) and remove test images; tests of eviction set their own.
# Dead containers are kept 5 minutes (upstream's MinAge): with the default of none, container
# GC (one dead instance per container, as upstream) removes a crash-looping container's
# previous attempt while its current one is dead too, which `kubectl logs --previous` needs.
e2e_pressure_args=(--eviction-hard="memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi"
  --image-gc-high-threshold=100 --minimum-container-ttl-duration=5m)

kubectl() { ip netns exec "$netns" "$cluster_bin/kubectl" --kubeconfig "$state/admin.kubeconfig" "$@"; }
crictl() {
  local cfg="$state/crictl.yaml"
  [ -f "$cfg" ] || printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 30\n' \
    "$berth_sock" "$berth_sock" >"$cfg"
  "$cluster_bin/crictl" --config "$cfg" "$@"
}

wait_for() {
  local timeout=$1; shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { log "wait_for: ${timeout}s passed without success of: $*"; return 1; }
    sleep 0.2
  done
}

berth_pid() { cat "$state/berth.pid" 2>/dev/null; }

fail() {
  local msg=$1 ns=${2:-}
  {
    echo "FAIL: $msg"
    echo "---- berth.log (last 60 lines)"; tail -n 60 "$state/berth.log" 2>/dev/null || true
    echo "---- nodes"; kubectl get nodes -o wide 2>&1 || true
    if [ -n "$ns" ]; then
      echo "---- kubectl describe pods -n $ns"; kubectl describe pods -n "$ns" 2>&1 | tail -n 80 || true
      echo "---- events in $ns"; kubectl get events -n "$ns" --sort-by=.lastTimestamp 2>&1 | tail -n 30 || true
    else
      echo "---- pods"; kubectl get pods -A -o wide 2>&1 || true
    fi
    echo "---- crictl pods / ps -a"; crictl pods 2>&1 | tail -n 20 || true; crictl ps -a 2>&1 | tail -n 20 || true
  } >&2
  exit 1
}

# jsonpath <kind/name> <jsonpath> [ns]: prints one field of an object ('' on error).
jsonpath() { kubectl get "$1" ${3:+-n "$3"} -o "jsonpath=$2" 2>/dev/null || true; }

node_ready() {
  [ "$(jsonpath "node/$1" '{.status.conditions[?(@.type=="Ready")].status}')" = True ]
}
pod_phase_is() { [ "$(jsonpath "pod/$2" '{.status.phase}' "$1")" = "$3" ]; }

# e2e_namespace <name>: fresh namespace for one test (deleted first if left over), default
# ServiceAccount present; deleted on exit. Sets E2E_NS.
e2e_namespace() {
  E2E_NS=$1
  kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=true --timeout=120s >/dev/null
  kubectl create namespace "$E2E_NS" >/dev/null
  wait_for 60 kubectl get serviceaccount default -n "$E2E_NS" ||
    fail "ServiceAccount default did not appear in namespace $E2E_NS"
  trap 'kubectl delete namespace "$E2E_NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT
}

# write_cni_conf <subnet>: bridge cni0 + host-local (IPAM state in the state dir) + portmap + bandwidth +
# loopback (chained: it brings lo up and passes the bridge result through), CNI 1.0.0.
write_cni_conf() {
  local subnet=$1 dir="$state/cni/net.d"
  mkdir -p "$dir" "$state/cni/ipam"
  cat >"$dir/10-berth.conflist.tmp" <<CONF
{
  "cniVersion": "1.0.0",
  "name": "berth-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$state/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "bandwidth", "capabilities": {"bandwidth": true}},
    {"type": "loopback"}
  ]
}
CONF
  mv "$dir/10-berth.conflist.tmp" "$dir/10-berth.conflist"
}

# start_berth <node-name> <cgroup-root> [extra args]: starts berth inside the netns with the
# flags the e2e suite relies on (disk usage measured every 2 s: eviction and /stats/summary
# tests see writes within seconds; static pods from <state>/manifests); logs to
# <state>/berth.log, PID in <state>/berth.pid (and in pids/berth, so tests/cluster/down.sh
# also stops it).
start_berth() {
  local name=$1 cg=$2; shift 2
  [ -x "$berth_bin" ] || fail "berth binary $berth_bin not built"
  "$repo_dir/tests/cluster/node-kubeconfig.sh" "$state" "$name" >/dev/null
  mkdir -p "$berth_dir/lib" "$berth_dir/run" "$state/cni/net.d" "$state/cni/bin" "$state/manifests"
  # Test-only CNI plugins (tests/e2e/berth-test-plugin) live in a second bin dir.
  install -m 0755 "$e2e_dir/berth-test-plugin" "$state/cni/bin/berth-test-plugin"
  # nsenter (default) joins only the netns and keeps the host mount namespace, which a
  # restarted berth needs to see the mounts of the containers it adopts.
  # BERTH_E2E_LAUNCH=ip-netns uses `ip netns exec`, which also gives berth a private mount
  # namespace (slave of the host's), so its mounts live and die with it.
  local launch=(nsenter --net="/run/netns/$netns")
  [ "${BERTH_E2E_LAUNCH:-nsenter}" != ip-netns ] || launch=(ip netns exec "$netns")
  "${launch[@]}" "$berth_bin" \
    --kubeconfig="$state/node-$name.kubeconfig" --node-name="$name" --node-ip="$node_addr" \
    --root-dir="$berth_dir/lib" --state-dir="$berth_dir/run" --cri-socket="$berth_sock" \
    --cgroup-root="$cg" --cni-conf-dir="$state/cni/net.d" \
    --cni-bin-dir="/usr/lib/cni,$state/cni/bin" --cni-plugin-timeout=20 \
    --insecure-registry=$registry --insecure-registry=127.0.0.1:5001 --metrics-bind-address=127.0.0.1:10249 --pod-cidr-from-node \
    --client-ca-file="$state/pki/ca.crt" --node-labels=berth.dev/e2e=true --container-log-max-size=1Mi --container-log-max-files=3 \
    --fs-usage-period=2 --pod-manifest-path="$state/manifests" "${e2e_pressure_args[@]}" "$@" </dev/null >>"$state/berth.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/berth.pid"
  echo "$pid" >"$state/pids/berth"
  readlink -f "$berth_bin" >"$state/pids/berth.exe"
  log "started berth (pid $pid, node $name)"
}

# cgroup_dirs <cgroup-root>: the berth cgroup root in every mounted hierarchy.
cgroup_dirs() { local d; for d in /sys/fs/cgroup/*"$1" /sys/fs/cgroup"$1"; do [ -d "$d" ] && echo "$d"; done; return 0; }

# stop_berth [cgroup-root]: stops berth by PID, then kills (by PID) any process still in
# berth's cgroup tree (conmon and containers outlive berth by design) and removes the empty
# cgroups. Prints the number of leftover processes it had to kill.
stop_berth() {
  local cg=${1:-$cgroup_root} left=0 d pid
  stop_pid_file berth
  rm -f "$state/berth.pid"
  for d in $(cgroup_dirs "$cg"); do
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null && left=$((left + 1))
    done
  done
  for d in $(cgroup_dirs "$cg"); do
    local deadline=$((SECONDS + 10))
    while [ -d "$d" ] && [ $SECONDS -lt $deadline ]; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
    done
  done
  echo "$left"
}

# counters of node-level resources a pod leaves behind, for before/after comparisons.
count_veths() { ip -n "$netns" -o link show type veth | grep -vc 'berth-node0' || true; }
count_overlay_mounts() {
  local pid; pid=$(berth_pid)
  awk -v root="$berth_dir" '$3=="overlay" && index($2, root)==1' "/proc/$pid/mounts" | wc -l
}
count_netns_mounts() {
  local pid; pid=$(berth_pid)
  # Only berth's own (<state-dir>/netns/<id>): other clusters on the machine mount theirs too.
  awk -v root="$berth_dir/" '$3=="nsfs" && index($2, root)==1' "/proc/$pid/mounts" | wc -l
}
count_pod_cgroups() {
  local d n=0
  for d in $(cgroup_dirs "$cgroup_root"); do
    n=$((n + $(find "$d" -mindepth 1 -type d -name 'pod*' | wc -l)))
  done
  echo "$n"
}

# pod_logs <namespace> <pod> [container]: the logs of a pod's (first or named) container,
# through the API server and berth's kubelet server (`kubectl logs`).
pod_logs() {
  local ns=$1 pod=$2 ctr=${3:-}
  kubectl logs -n "$ns" "$pod" ${ctr:+-c "$ctr"}
}

# count_berth_threads / count_berth_fds: resources of the berth process, for before/after
# comparisons (a stream or request must not leave a thread or fd behind).
count_berth_threads() { ls "/proc/$(berth_pid)/task" | wc -l; }
count_berth_fds() { ls "/proc/$(berth_pid)/fd" | wc -l; }
# count_kubelet_conns / count_kubelet_conn_threads: berth's connections on :10250 from
# clients other than the API server (whose proxy keeps idle keep-alive connections, as it
# does with any kubelet), and the kubelet server's connection threads (named berth-kubelet)
# beyond one per API server connection. (berth's whole thread and fd counts also move with
# the CRI thread pool and pod work.)
apiserver_kubelet_ports() {
  in_ns ss -Htnp state established '( dport = :10250 )' 2>/dev/null |
    awk '/kube-apiserver/ {n = split($3, a, ":"); print a[n]}'
}
count_kubelet_conns() {
  local skip; skip=" $(apiserver_kubelet_ports | tr '\n' ' ') "
  in_ns ss -Htnp state established '( sport = :10250 )' 2>/dev/null | grep "pid=$(berth_pid)," |
    awk -v skip="$skip" '{n = split($4, a, ":"); if (index(skip, " " a[n] " ") == 0) c++} END {print c + 0}'
}
count_kubelet_conn_threads() {
  local pid n api; pid=$(berth_pid)
  n=$(cat /proc/"$pid"/task/*/comm 2>/dev/null | grep -c '^berth-kubelet$' || true)
  api=$(apiserver_kubelet_ports | wc -l)
  echo $((n > api ? n - api : 0))
}

# kubelet_url <path>: https URL of berth's kubelet server (inside the netns).
kubelet_url() { echo "https://$node_addr:10250$1"; }

# percentile <q>: the nearest-rank q-quantile (0 < q <= 1) of the numbers on stdin, one per
# line (the benchmarks in tests/bench/ all report p50/p90/p99 this way).
percentile() {
  sort -g | awk -v q="$1" '{v[NR] = $1} END {if (NR == 0) exit 1; i = int(q * NR + 0.999999); if (i < 1) i = 1; print v[i]}'
}
