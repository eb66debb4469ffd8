# shellcheck shell=bash
# Shared helpers for tests/cluster/*.sh (sourced, not executed).
# Conventions: state dir layout is
#   <state>/pki/          CA, serving and client certificates, service-account keys
#   <state>/pids/<name>   PID of each daemon up.sh/registry.sh started
#   <state>/logs/<name>.log
#   <state>/etcd/         etcd data, <state>/registry/ registry storage
#   <state>/*.kubeconfig, <state>/env

cluster_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cluster_bin=${BERTH_CLUSTER_BIN:-$cluster_dir/bin}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# state_init <state-dir>: sets state, netns, node_ip, registry_addr (globals) from the dir and env.
state_init() {
  [ -n "${1:-}" ] || die "usage: $(basename "$0") <state-dir>"
  mkdir -p "$1"
  state=$(cd "$1" && pwd)
  mkdir -p "$state/pids" "$state/logs" "$state/pki"
  # A cluster remembers its netns and node IP, so later calls need no env.
  if [ -f "$state/netns" ]; then netns=$(cat "$state/netns"); else
    netns=${BERTH_NETNS:-berth-$(basename "$state")}; echo "$netns" >"$state/netns"; fi
  if [ -f "$state/node_ip" ]; then node_ip=$(cat "$state/node_ip"); else
    node_ip=${BERTH_NODE_IP:-10.217.0.1/32}; echo "$node_ip" >"$state/node_ip"; fi
  node_addr=${node_ip%/*}
  # The registry's address inside the netns (BERTH_REGISTRY_ADDR, default 127.0.0.1:5000);
  # the conformance run moves it off :5000, which the e2e suite's fake registry needs.
  if [ -f "$state/registry_addr" ]; then registry_addr=$(cat "$state/registry_addr"); else
    registry_addr=${BERTH_REGISTRY_ADDR:-127.0.0.1:5000}; echo "$registry_addr" >"$state/registry_addr"; fi
}

# pid_alive <name>: true if <state>/pids/<name> names a live process (not a zombie) whose
# executable is still the one recorded at start (guards against PID reuse).
pid_alive() {
  local f="$state/pids/$1" pid exe
  [ -f "$f" ] || return 1
  pid=$(cat "$f"); [ -n "$pid" ] || return 1
  [ -d "/proc/$pid" ] || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  if [ -f "$f.exe" ]; then
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    # A binary rebuilt while its process runs reads as "<path> (deleted)".
    exe=${exe% (deleted)}
    [ "$exe" = "$(cat "$f.exe")" ] || return 1
  fi
  return 0
}

# netns_exists: true if the cluster netns exists. (No `| grep -q` under pipefail: grep's
# early exit gives the writer SIGPIPE and the pipeline a failure status.)
netns_exists() {
  local list; list=$(ip netns list | awk '{print $1}')
  [[ $'\n'"$list"$'\n' == *$'\n'"$netns"$'\n'* ]]
}

# ensure_netns: creates the namespace with lo up and dummy berth-node0 holding the node IP.
ensure_netns() {
  if ! netns_exists; then
    ip netns add "$netns"
  fi
  ip -n "$netns" link set lo up
  if ! ip -n "$netns" link show berth-node0 >/dev/null 2>&1; then
    # Kernels without the dummy driver (no modules here) get a veth pair whose peer stays
    # in the netns too: same effect, a link with carrier that only holds the address.
    ip -n "$netns" link add berth-node0 type dummy 2>/dev/null ||
      { ip -n "$netns" link add berth-node0 type veth peer name berth-node0-p &&
        ip -n "$netns" link set berth-node0-p up; }
  fi
  ip -n "$netns" link set berth-node0 up
  local addrs; addrs=$(ip -n "$netns" -o addr show dev berth-node0)
  if [[ "$addrs" != *" ${node_addr}/"* ]]; then
    ip -n "$netns" addr add "$node_ip" dev berth-node0
  fi
  # A default route lets components that look for "the" host address find the node IP.
  ip -n "$netns" route replace default dev berth-node0 2>/dev/null || true
}

# start_daemon <name> <binary> <args...>: starts the binary inside the netns in the
# background, stdout/stderr to logs/<name>.log, records its PID. `ip netns exec` execs the
# command (no fork), so $! is the daemon's own PID.
start_daemon() {
  local name=$1 bin=$2; shift 2
  [ -x "$bin" ] || die "$name: binary $bin missing (run tests/cluster/build.sh)"
  ip netns exec "$netns" "$bin" "$@" </dev/null >>"$state/logs/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$state/pids/$name"
  readlink -f "$bin" >"$state/pids/$name.exe"
  log "started $name (pid $pid)"
}

# wait_until <timeout-seconds> <what> <cmd...>: polls cmd (every 0.2 s) until it succeeds.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.2
  done
}

# stop_pid_file <name>: TERM, bounded wait (BERTH_STOP_TIMEOUT, default 15 s), then KILL.
stop_pid_file() {
  local name=$1 f="$state/pids/$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if pid_alive "$name"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + ${BERTH_STOP_TIMEOUT:-15}))
    while pid_alive "$name" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if pid_alive "$name"; then
      log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while pid_alive "$name"; do sleep 0.05; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f" "$f.exe"
}

# in_ns <cmd...>: runs a command inside the cluster netns.
in_ns() { ip netns exec "$netns" "$@"; }

# api_get <path>: GET on the API server as cluster admin; prints the body.
api_get() {
  in_ns curl -sf --max-time 5 --cacert "$state/pki/ca.crt" --cert "$state/pki/admin.crt" \
    --key "$state/pki/admin.key" "https://127.0.0.1:6443$1"
}
