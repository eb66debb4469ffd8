#!/usr/bin/env bash
# Builds the test images from Debian binaries and pushes them to the cluster's registry.
#
# Usage: tests/images/build.sh <state-dir>     (the registry of that state dir must be up:
#        tests/cluster/up.sh or tests/cluster/registry.sh)
# Images (OCI image layout in <state>/images/oci, built with umoci; pushed with skopeo from
# inside the cluster netns to 127.0.0.1:5000):
#   busybox:latest        OCI manifest, one gzip layer: busybox-static with every applet as a
#                         hard link (MaskedPaths on one applet must not hide the others),
#                         /etc/passwd, /etc/group, /etc/berth-base; Cmd ["sh"], Env PATH
#   busybox:v2s2          the same image as Docker schema 2 (skopeo --format v2s2)
#   busybox-multi:latest  two layers: the busybox layer, then a layer adding
#                         /etc/berth-layer2 and a whiteout of /etc/berth-base
# Digests are written to <state>/images/digests ("<ref> <manifest digest>" per line).
# Idempotent: the layout is rebuilt only when busybox or this script changed, and a tag is
# pushed only when the registry lacks it or holds another digest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/../cluster/lib.sh"
state_init "${1:-}"
# shellcheck source=tests/images/lib.sh
source "$here/lib.sh"
busybox=${BERTH_BUSYBOX:-/bin/busybox}
work="$state/images"
layout="$work/oci"
mkdir -p "$work"

stamp=$(cat "$busybox" "$0" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$work/stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building OCI layout $layout"
  rm -rf "$layout" "$work/rootfs" "$work/bundle"
  # --- base rootfs -------------------------------------------------------------------------
  r="$work/rootfs"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,var/log,home}
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  cp "$busybox" "$r/bin/busybox"; chmod 755 "$r/bin/busybox"
  for applet in $("$busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$r/$(dirname "$applet")"
    ln -f "$r/bin/busybox" "$r/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$r/etc/group"
  echo "berth test image base layer" >"$r/etc/berth-base"
  umoci init --layout "$layout"
  umoci new --image "$layout:busybox"
  # unpack + copy + repack (not `umoci insert dir /`, whose tar starts with an entry "/"):
  # entries come out relative ("bin/", "bin/sh"), as in images built by other tools.
  umoci unpack --image "$layout:busybox" "$work/bundle" >/dev/null
  cp -a "$r/." "$work/bundle/rootfs/"
  umoci repack --image "$layout:busybox" "$work/bundle"
  rm -rf "$work/bundle"
  umoci config --image "$layout:busybox" --os linux --architecture amd64 \
    --config.cmd sh --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --author berth-tests
  # --- two-layer image: same first layer, second adds a file and whites one out ----------
  umoci tag --image "$layout:busybox" busybox-multi
  umoci unpack --image "$layout:busybox-multi" "$work/bundle" >/dev/null
  echo "berth test image second layer" >"$work/bundle/rootfs/etc/berth-layer2"
  rm "$work/bundle/rootfs/etc/berth-base"
  umoci repack --image "$layout:busybox-multi" "$work/bundle"
  rm -rf "$work/bundle" "$r"
  umoci gc --layout "$layout"
  echo "$stamp" >"$work/stamp"
fi

registry_wait
# push <layout tag> <repo:tag> [skopeo args]: copies unless the registry has that content.
push() { local src=$1 dst=$2; shift 2; push_layout "$layout" "$src" "$dst" "$stamp" "$work/pushed-${dst//[:\/]/_}" "$@"; }
{
  push busybox busybox:latest --format oci
  push busybox busybox:v2s2 --format v2s2
  push busybox-multi busybox-multi:latest --format oci
} >"$work/digests.tmp"
mv "$work/digests.tmp" "$work/digests"
cat "$work/digests"
