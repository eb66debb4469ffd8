#!/usr/bin/env bash
# Stops everything up.sh/registry.sh started (by recorded PID: TERM, bounded wait, KILL) and
# deletes the cluster netns. The state dir stays (certificates, etcd data) and is removable.
# Usage: tests/cluster/down.sh <state-dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"
[ -d "${1:-}" ] || { echo "down.sh: no state dir ${1:-}; nothing to do" >&2; exit 0; }
state_init "$1"
# Anything else a test recorded in pids/ (e.g. berth) goes first, the control plane last.
for f in "$state"/pids/*; do
  [ -e "$f" ] || continue
  case "$f" in *.exe) continue ;; esac
  n=$(basename "$f")
  case "$n" in etcd|kube-apiserver|kube-controller-manager|kube-scheduler|registry) ;;
    *) stop_pid_file "$n" ;; esac
done
for c in kube-scheduler kube-controller-manager kube-apiserver registry etcd; do
  stop_pid_file "$c"
done
if netns_exists; then
  ip netns delete "$netns"
  log "deleted netns $netns"
fi
rm -f "$state/env"
