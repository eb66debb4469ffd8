#!/usr/bin/env bash
# Pushes a pause image, 127.0.0.1:5000/pause:3.10, to the registry of an e2e/cluster state
# dir, for runtimes that run the pod sandbox from an image (containerd's sandbox_image).
# The image holds one static binary, /pause, compiled from berth's own infra process
# (cri/pause/pause_main.c: waits for signals, reaps children, exits 0 on SIGTERM/SIGINT);
# Entrypoint ["/pause"]. Idempotent: rebuilt when the source or this script changed, pushed
# when the registry lacks that digest.
# Usage: tests/peer/pause_image.sh <state-dir>      (its registry must be up)
# Prints "<ref> <manifest digest>".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo_dir=$(cd "$here/../.." && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$repo_dir/tests/cluster/lib.sh"
state_init "${1:-}"
# shellcheck source=tests/images/lib.sh
source "$repo_dir/tests/images/lib.sh"
src="$repo_dir/cri/pause/pause_main.c"
ref=pause:3.10
work="$state/images/pause"
layout="$work/oci"
mkdir -p "$work"

stamp=$(cat "$src" "$0" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$work/stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building pause image layout $layout"
  rm -rf "$layout" "$work/bundle"
  cc -static -Os -Wall -Werror -o "$work/pause" "$src"
  umoci init --layout "$layout"
  umoci new --image "$layout:pause"
  umoci unpack --image "$layout:pause" "$work/bundle" >/dev/null
  install -m 0755 "$work/pause" "$work/bundle/rootfs/pause"
  umoci repack --image "$layout:pause" "$work/bundle"
  rm -rf "$work/bundle"
  umoci config --image "$layout:pause" --os linux --architecture amd64 \
    --config.entrypoint /pause --config.workingdir / --config.user 65535:65535 \
    --author berth-tests
  umoci gc --layout "$layout"
  echo "$stamp" >"$work/stamp"
fi

registry_wait
push_layout "$layout" pause "$ref" "$stamp" "$work/pushed" --format oci
