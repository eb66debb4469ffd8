#!/usr/bin/env bash
# The containerd peer: Debian's containerd (1.6) with its CRI plugin, on a private socket,
# with private root/state dirs, for side-by-side benchmarks and tests against berth.
#
# Usage: tests/peer/containerd.sh start|stop|rss|env <state-dir>
#   start  writes <state-dir>/containerd/config.toml (+ certs.d/*/hosts.toml) and starts
#          containerd; returns once its CRI answers. Idempotent (a live one is left alone).
#   stop   removes every pod sandbox through the CRI (CNI DEL, netns, mounts), stops
#          containerd by PID (TERM, then KILL), kills by PID whatever is left in its cgroup
#          root (shims, containers), removes those cgroups and unmounts what is left under
#          the state dir. Fails (exit 1) if it had to kill or unmount leftovers.
#   rss    prints the summed VmRSS (KiB) of containerd and all its shims.
#   env    prints shell lines: PEER_CONTAINERD_SOCK, PEER_CONTAINERD_PID, PEER_CGROUP_ROOT,
#          PEER_CRICTL_CONFIG (crictl --config file for this containerd).
#
# Layout under <state-dir>: containerd/{config.toml,containerd.sock,crictl.yaml,root,state,certs.d,opt}
# (pod netns bind mounts live under containerd/state too: netns_mounts_under_state_dir),
# containerd.log, containerd.pid, cni/net.d (default CNI conf dir), cgroup_root, netns.
# Env (read at the first start, then remembered in the state dir where noted):
#   BERTH_E2E_STATE     an e2e/cluster state dir: containerd runs in its netns (the registry
#                       127.0.0.1:5000 lives there) and its registry gets the pause image
#                       (tests/peer/pause_image.sh)
#   PEER_NETNS          netns to run in (default: the e2e state's netns, else the host's) [remembered]
#   PEER_CGROUP_ROOT    cgroup root (default ${BERTH_CGROUP_ROOT:-/berth}-containerd); containerd
#                       and its shims live in <root>/containerd; give the kubelet the same root
#                       so that pods land in <root>/kubepods                      [remembered]
#   PEER_CNI_CONF_DIR   CNI conf dir (default <state-dir>/cni/net.d)
#   PEER_CNI_BIN_DIR    CNI plugin dir (default /usr/lib/cni)
#   PEER_SANDBOX_IMAGE  (default 127.0.0.1:5000/pause:3.10)
# Registry mirrors: registry.k8s.io, gcr.io, docker.io, public.ecr.aws, quay.io and
# 127.0.0.1:5000 all resolve to http://127.0.0.1:5000 only (plain HTTP); the state dir's
# registry address instead when it moved it (the conformance run: 127.0.0.1:5050).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo_dir=$(cd "$here/../.." && pwd)
cluster_bin=${BERTH_CLUSTER_BIN:-$repo_dir/tests/cluster/bin}
log() { echo "[$(date +%H:%M:%S)] containerd.sh: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=tests/peer/lib.sh
source "$here/lib.sh"

cmd=${1:-}
[ -n "$cmd" ] && [ -n "${2:-}" ] || die "usage: containerd.sh start|stop|rss|env <state-dir>"
mkdir -p "$2"
s=$(cd "$2" && pwd)
c="$s/containerd"
sock="$c/containerd.sock"
pidf="$s/containerd.pid"
mkdir -p "$c"

if [ -f "$s/cgroup_root" ]; then cg_root=$(cat "$s/cgroup_root"); else
  cg_root=${PEER_CGROUP_ROOT:-${BERTH_CGROUP_ROOT:-/berth}-containerd}; echo "$cg_root" >"$s/cgroup_root"; fi
if [ -f "$s/netns" ]; then netns=$(cat "$s/netns"); else
  netns=${PEER_NETNS:-}
  [ -n "$netns" ] || [ -z "${BERTH_E2E_STATE:-}" ] || netns=$(cat "$BERTH_E2E_STATE/netns")
  echo "$netns" >"$s/netns"
fi

# alive: containerd.pid names a live, non-zombie containerd.
alive() {
  local pid exe
  pid=$(cat "$pidf" 2>/dev/null) && [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
  grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null && return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = /usr/bin/containerd ]
}
# cri ...: crictl against this containerd (config <state-dir>/containerd/crictl.yaml).
cri() {
  [ -f "$c/crictl.yaml" ] ||
    printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n' "$sock" "$sock" >"$c/crictl.yaml"
  "$cluster_bin/crictl" --config "$c/crictl.yaml" "$@"
}

write_config() {
  local conf_dir=${PEER_CNI_CONF_DIR:-$s/cni/net.d} bin_dir=${PEER_CNI_BIN_DIR:-/usr/lib/cni}
  # The cluster's registry (127.0.0.1:5000 unless the state dir moved it, see
  # tests/cluster/lib.sh registry_addr).
  local reg=127.0.0.1:5000
  [ -z "${BERTH_E2E_STATE:-}" ] || [ ! -f "$BERTH_E2E_STATE/registry_addr" ] || reg=$(cat "$BERTH_E2E_STATE/registry_addr")
  local image=${PEER_SANDBOX_IMAGE:-$reg/pause:3.10} host
  mkdir -p "$conf_dir" "$c/root" "$c/state" "$c/opt" "$c/certs.d"
  for host in registry.k8s.io gcr.io docker.io public.ecr.aws quay.io "$reg"; do
    mkdir -p "$c/certs.d/$host"
    cat >"$c/certs.d/$host/hosts.toml" <<HOSTS
# $host is served by the local test registry only (plain HTTP); no fallback to $host.
server = "http://$reg"

[host."http://$reg"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
HOSTS
  done
  cat >"$c/config.toml.tmp" <<TOML
version = 2
root = "$c/root"
state = "$c/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$c/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$c/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$image"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$bin_dir"
    conf_dir = "$conf_dir"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$c/certs.d"
TOML
  mv "$c/config.toml.tmp" "$c/config.toml"
}

start() {
  if alive; then log "containerd already running (pid $(cat "$pidf"))"; return 0; fi
  if [ -n "${BERTH_E2E_STATE:-}" ]; then "$here/pause_image.sh" "$BERTH_E2E_STATE" >/dev/null; fi
  write_config
  rm -f "$sock"
  local launch=() procs
  [ -z "$netns" ] || launch=(nsenter --net="/run/netns/$netns")
  procs=$(make_cgroup "$cg_root/containerd")
  # The subshell moves itself into the cgroup, then execs (nsenter execs too): $! is containerd.
  (
    for f in $procs; do echo "$BASHPID" >"$f"; done
    exec "${launch[@]}" /usr/bin/containerd --config "$c/config.toml"
  ) </dev/null >>"$s/containerd.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$pidf"
  local deadline=$((SECONDS + 60))
  until [ -S "$sock" ] && cri version >/dev/null 2>&1; do
    # (not alive(): until the subshell has exec'd, /proc/<pid>/exe is still bash)
    { [ -d "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status"; } || { tail -n 30 "$s/containerd.log" >&2; die "containerd exited during start-up"; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$s/containerd.log" >&2; die "containerd CRI not up in 60s"; }
    sleep 0.2
  done
  alive || die "pid $pid is not containerd after start-up"
  log "started containerd (pid $(cat "$pidf"), socket $sock, cgroup $cg_root, netns ${netns:-host})"
}

stop() {
  local status=0 pid m
  if alive; then
    pid=$(cat "$pidf")
    if [ -S "$sock" ]; then
      local pods; pods=$(cri pods -q 2>/dev/null || true)
      [ -z "$pods" ] || cri rmp -f $pods >/dev/null 2>&1 || { log "crictl rmp failed"; status=1; }
    fi
    stop_pid "$pid" containerd alive
  fi
  rm -f "$pidf"
  # Shims and containers outlive containerd: kill what is left in the cgroup tree, by PID.
  kill_leftovers "$cg_root" 0 || status=1
  remove_cgroup_tree "$cg_root" || status=1
  # Mounts left under the state dir (overlay rootfs, sandbox shm), deepest first.
  for m in $(awk -v root="$s/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    log "unmounting leftover $m"; status=1
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  return $status
}

rss() {
  local pid total=0 kb
  alive || die "containerd is not running"
  for pid in $(cgroup_procs "$cg_root/containerd"); do
    kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  rss) rss ;;
  env)
    echo "export PEER_CONTAINERD_SOCK=$sock"
    echo "export PEER_CONTAINERD_PID=$(alive && cat "$pidf" || true)"
    echo "export PEER_CGROUP_ROOT=$cg_root"
    echo "export PEER_CRICTL_CONFIG=$c/crictl.yaml"
    ;;
  *) die "unknown command $cmd (start|stop|rss|env)" ;;
esac
