# shellcheck shell=bash
# Shared by tests/critest/run.sh and tests/bench/cri_bench.sh (sourced after
# tests/cluster/lib.sh's state_init, with $repo, $here and $cgroup_root set): a CRI runtime
# (berth --runtime-only, or containerd through the peer script) in netns $netns with the
# registry of $state and the critest images.
#   env_up                 registry + images + CNI conflist (bridge 10.89.0.0/16, portmap)
#   start_runtime <rt>     fresh dirs under $state/rt; starts berth|containerd; sets $sock
#   cleanup_runtime        stops it by PID, kills leftovers in $cgroup_root by PID, unmounts
#   cleanup_all            cleanup_runtime + registry + netns
berth_bin=${BERTH_BIN:-$repo/build/kubelet/berth}
# berth's --root-dir lives outside the state dir: user-namespaced pods need every directory
# above it searchable by their mapped users (o+x), which a checkout under a 0700 dir (mktemp
# -d) is not. /var/tmp is 1777; the dir itself is 0711, like containerd's root.
berth_root="/var/tmp/berth-critest${cgroup_root//\//-}"
peer=${PEER_CONTAINERD:-$repo/tests/peer/containerd.sh}
cleanup_runtime() {
  local d pid
  stop_pid_file runtime
  if [ -f "$state/rt/containerd.pid" ]; then bash "$peer" stop "$state/rt" >>"$state/logs/containerd.log" 2>&1 || true; fi
  # Containers outlive their runtime by design: kill what is left in our cgroup tree, by PID.
  for d in /sys/fs/cgroup/*"$cgroup_root" /sys/fs/cgroup"$cgroup_root"; do
    [ -d "$d" ] || continue
    for pid in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  done
  for d in /sys/fs/cgroup/*"$cgroup_root" /sys/fs/cgroup"$cgroup_root"; do
    local deadline=$((SECONDS + 10))
    while [ -d "$d" ] && [ $SECONDS -lt $deadline ]; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || sleep 0.1
    done
  done
  # Mounts (overlay rootfs, netns bind mounts, shm) under the runtime's dirs, deepest first.
  awk -v root="$state/rt/" -v root2="$berth_root/" 'index($2, root)==1 || index($2, root2)==1 {print $2}' \
    /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$berth_root"
}
cleanup_all() {
  cleanup_runtime
  stop_pid_file registry
  if netns_exists; then ip netns delete "$netns"; fi
}

# env_up: registry, critest images, CNI conflist.
env_up() {
  bash "$repo/tests/cluster/registry.sh" "$state" >/dev/null
  bash "$here/images.sh" "$state"
  mkdir -p "$state/cni/net.d"
  cat >"$state/cni/net.d/10-critest.conflist" <<'JSON'
{ "cniVersion": "1.0.0", "name": "critest",
  "plugins": [
    { "type": "bridge", "bridge": "critest0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.89.0.0/16" }]],
                "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" } ] }
JSON
}

mirrors=(registry.k8s.io k8s.gcr.io gcr.io docker.io)

start_berth() {
  [ -x "$berth_bin" ] || die "berth binary $berth_bin not built"
  : >"$state/logs/berth.log"
  mkdir -p "$berth_root" && chmod 0711 "$berth_root"
  local args=(--runtime-only --root-dir="$berth_root" --state-dir="$state/rt/run"
    --cri-socket="$sock" --cgroup-root="$cgroup_root" --log-root="$state/rt/pods"
    --cni-conf-dir="$state/cni/net.d" --cni-bin-dir=/usr/lib/cni
    --insecure-registry=127.0.0.1:5000 --metrics-bind-address=127.0.0.1:10259)
  local m; for m in "${mirrors[@]}"; do args+=(--registry-mirror="$m=http://127.0.0.1:5000"); done
  # nsenter joins only the netns: berth's mounts stay in the host mount namespace.
  nsenter --net="/run/netns/$netns" "$berth_bin" "${args[@]}" </dev/null \
    >>"$state/logs/berth.log" 2>&1 &
  echo $! >"$state/pids/runtime"; readlink -f "$berth_bin" >"$state/pids/runtime.exe"
}

start_containerd() {
  [ -f "$peer" ] || die "containerd peer script $peer missing"
  # The peer runs containerd with its CRI plugin on a private socket, in our netns and cgroup
  # root, with registry mirrors to 127.0.0.1:5000 and the pause image pushed there.
  PEER_NETNS="$netns" PEER_CGROUP_ROOT="$cgroup_root" PEER_CNI_CONF_DIR="$state/cni/net.d" \
    BERTH_E2E_STATE="$state" bash "$peer" start "$state/rt" >>"$state/logs/containerd.log" 2>&1 ||
    { tail -n 30 "$state/logs/containerd.log" >&2; die "containerd did not start"; }
  # critest also pulls k8s.gcr.io/pause:3.9; the peer maps the other registries.
  local h
  for h in k8s.gcr.io; do
    mkdir -p "$state/rt/containerd/certs.d/$h"
    printf 'server = "http://127.0.0.1:5000"\n\n[host."http://127.0.0.1:5000"]\n  capabilities = ["pull", "resolve"]\n' \
      >"$state/rt/containerd/certs.d/$h/hosts.toml"
  done
}


start_runtime() {
  local rt=$1
  cleanup_runtime
  rm -rf "$state/rt"; mkdir -p "$state/rt/run" "$state/rt/lib" "$state/rt/pods"
  case "$rt" in
    berth) sock="$state/rt/run/cri.sock"; start_berth ;;
    containerd) sock="$state/rt/containerd/containerd.sock"; start_containerd ;;
    *) die "unknown runtime $rt (berth|containerd)" ;;
  esac
  wait_until 60 "$rt CRI socket" test -S "$sock" ||
    { tail -n 30 "$state/logs/$rt.log" >&2; die "$rt did not start"; }
}
