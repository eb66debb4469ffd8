#!/usr/bin/env bash
# Starts Debian's docker-registry on 127.0.0.1:5000 (BERTH_REGISTRY_ADDR) inside the cluster netns, storage in
# <state>/registry. Idempotent (a live recorded registry is left alone); down.sh stops it.
# Usage: tests/cluster/registry.sh <state-dir>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"
state_init "${1:-}"
ensure_netns
if ! pid_alive registry; then
  mkdir -p "$state/registry/data"
  cat >"$state/registry/config.yml" <<CFG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $state/registry/data
  delete:
    enabled: true
http:
  addr: $registry_addr
  secret: berth-test-registry
CFG
  start_daemon registry /usr/bin/docker-registry serve "$state/registry/config.yml"
fi
wait_until 30 "registry /v2/" in_ns curl -sf --max-time 2 "http://$registry_addr/v2/" ||
  { tail -n 30 "$state/logs/registry.log" >&2; die "registry did not start"; }
echo "REGISTRY=$registry_addr"
