#!/usr/bin/env bash
# Builds, offline, the images the e2e suite's node specs pull (their refs as
# `e2e.test --list-images` prints them) and pushes them under their upstream repository paths
# to the registry of a state dir. berth maps registry.k8s.io to that registry
# (--registry-mirror), so the suite runs with its own image names, unchanged.
#
# Usage: tests/conformance/images.sh <state-dir>
#   (registry up: tests/cluster/up.sh with BERTH_REGISTRY_ADDR; binaries: build.sh)
#
# Every image is built from Debian binaries and the module's test-image sources:
#   base                Debian's dynamic busybox (every applet a hard link, all also in
#                       /bin as in the upstream image) + libc
#   busybox:1.37.0-1, 1.36.1-1  base, Cmd sh
#   pause:3.10.2        base + a static pause (exits on SIGTERM/SIGINT, reaps children)
#   agnhost:2.63.0      base + /agnhost (module test/images/agnhost), /agnhost-2 -> agnhost,
#                       bash, curl, nc (netcat-openbsd), ip, ss, dig with their libraries,
#                       /uploads, porter's localhost.{crt,key}, user-defined-in-image (1000)
#                       in group-defined-in-image (50000), and /var/registry/pause for
#                       `agnhost fake-registry-server` (pause:testing); Entrypoint /agnhost,
#                       Cmd pause, as upstream's Dockerfile
#   agnhost:2.55        the same content under another label (another digest)
#   nginx:1.15-4/1.27-0 base + tests/critest/webserver.c as /usr/sbin/nginx
#   nonewprivs:1.4      base + nnp (module test/images/nonewprivs) setuid root, Cmd nnp
#   nonroot:1.5         base, User 1234
#   kitten:1.8, nautilus:1.8  agnhost + /data.json naming the picture, os-release "Alpine Linux"
#   glibc-dns-testing:2.0.0   base + getent, dig
# Idempotent: the layout is rebuilt only when an input changed; a tag is pushed only when the
# registry lacks it or holds another digest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/../cluster/lib.sh"
state_init "${1:-}"
registry=$registry_addr
# shellcheck source=tests/images/lib.sh
source "$here/../images/lib.sh"
work="$state/conformance-images"
layout="$work/oci"
bin="$here/bin"
mkdir -p "$work"
bb_deb=$(ls /var/cache/berth/busybox_*.deb 2>/dev/null | head -n1 || true)
[ -n "$bb_deb" ] || die "no busybox .deb in /var/cache/berth (run deploy/setup.sh)"
for t in gcc umoci skopeo curl nc.openbsd dig bash; do
  command -v $t >/dev/null || die "$t missing (run deploy/setup.sh)"
done
for b in agnhost nnp; do [ -x "$bin/$b" ] || die "$bin/$b missing (run tests/conformance/build.sh)"; done
K=$(cd "$here" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)

stamp=$(cat "$bb_deb" "$0" "$here/pause.c" "$here/../critest/webserver.c" "$bin/agnhost" "$bin/nnp" |
  sha256sum | cut -d' ' -f1)

# copy_with_libs <rootfs> <binary> [dest]: the binary and the shared libraries ldd names.
copy_with_libs() {
  local r=$1 src=$2 dst=${3:-$2} lib
  install -D -m 755 "$(readlink -f "$src")" "$r$dst"
  for lib in $(ldd "$src" | grep -o '/[^ ]*'); do
    [ -e "$r$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
  done
}
# new_image <tag> <from> [umoci config args...]: a tag of <from> with its own label.
new_image() {
  local tag=$1 from=$2; shift 2
  umoci tag --image "$layout:$from" "$tag"
  umoci config --image "$layout:$tag" --config.label "berth.conformance.image=$tag" "$@"
}
# add_layer <tag> <script>: unpacks the image, runs the script with $rootfs set, repacks.
add_layer() {
  local tag=$1 script=$2
  local rootfs="$work/bundle/rootfs"
  rm -rf "$work/bundle"
  umoci unpack --image "$layout:$tag" "$work/bundle" >/dev/null
  eval "$script"
  umoci repack --image "$layout:$tag" "$work/bundle"
  rm -rf "$work/bundle"
}

# The pause image's content as agnhost's fake-registry-server serves it
# (/var/registry/<name>/manifests/<tag> holds the digest; manifests and blobs under
# <kind>/sha256/<2 hex>/<hex>/data).
fake_registry_tree() {
  local dst=$1 tmp="$work/pause-dir" f hex
  rm -rf "$tmp"
  skopeo --insecure-policy copy -q --format v2s2 "oci:$layout:pause" "dir:$tmp"
  hex=$(sha256sum <"$tmp/manifest.json" | cut -d' ' -f1)
  install -D -m 644 "$tmp/manifest.json" "$dst/pause/manifests/sha256/${hex:0:2}/$hex/data"
  echo "sha256:$hex" >"$dst/pause/manifests/testing"
  for f in "$tmp"/*; do
    case $(basename "$f") in manifest.json|version) continue ;; esac
    hex=$(basename "$f")
    install -D -m 644 "$f" "$dst/pause/blobs/sha256/${hex:0:2}/$hex/data"
  done
  rm -rf "$tmp"
}

if [ "$(cat "$work/stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building conformance images in $layout"
  rm -rf "$layout" "$work/rootfs" "$work/bundle" "$work/bin"
  mkdir -p "$work/bin"
  gcc -static -Os -Wall -o "$work/bin/pause" "$here/pause.c"
  gcc -static -Os -Wall -o "$work/bin/webserver" "$here/../critest/webserver.c"
  r="$work/rootfs"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,tmp,proc,sys,dev,var/log,var/run,home}
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  dpkg-deb --fsys-tarfile "$bb_deb" | tar -x -C "$work" ./bin/busybox
  mv "$work/bin/busybox" "$work/busybox"
  install -m 755 "$work/busybox" "$r/bin/busybox"
  for lib in $(ldd "$work/busybox" | grep -o '/[^ ]*'); do
    install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
  done
  # Every applet in /bin as well, as in the upstream busybox image (specs run /bin/sysctl).
  for applet in $("$work/busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$r/$(dirname "$applet")"
    ln -f "$r/bin/busybox" "$r/$applet"
    [ -e "$r/bin/$(basename "$applet")" ] || ln -f "$r/bin/busybox" "$r/bin/$(basename "$applet")"
  done
  cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
  umoci init --layout "$layout"
  umoci new --image "$layout:base"
  umoci unpack --image "$layout:base" "$work/bundle" >/dev/null
  cp -a "$r/." "$work/bundle/rootfs/"
  umoci repack --image "$layout:base" "$work/bundle"
  rm -rf "$work/bundle" "$r"
  umoci config --image "$layout:base" --os linux --architecture amd64 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --author berth-conformance --config.cmd sh

  new_image busybox base
  new_image pause base --clear=config.cmd --config.entrypoint /pause
  add_layer pause 'install -m 755 "$work/bin/pause" "$rootfs/pause"'

  new_image agnhost base --clear=config.cmd --config.entrypoint /agnhost --config.cmd pause
  fake_registry_tree "$work/var-registry"
  add_layer agnhost '
    install -m 755 "$bin/agnhost" "$rootfs/agnhost"; ln -s agnhost "$rootfs/agnhost-2"
    mkdir -p "$rootfs/uploads"
    install -m 644 "$K/test/images/agnhost/porter/localhost.crt" "$K/test/images/agnhost/porter/localhost.key" "$rootfs/"
    rm -f "$rootfs/bin/bash" "$rootfs/usr/bin/nc" "$rootfs/bin/ip" "$rootfs/usr/bin/dig"
    copy_with_libs "$rootfs" /bin/bash
    copy_with_libs "$rootfs" /usr/bin/curl
    copy_with_libs "$rootfs" "$(command -v nc.openbsd)" /usr/bin/nc
    copy_with_libs "$rootfs" /bin/ip /sbin/ip
    copy_with_libs "$rootfs" /bin/ss /usr/bin/ss
    copy_with_libs "$rootfs" /usr/bin/dig
    copy_with_libs "$rootfs" /usr/bin/getent
    mkdir -p "$rootfs/etc/ssl/certs"
    echo "user-defined-in-image:x:1000:1000::/home/user-defined-in-image:/bin/sh" >>"$rootfs/etc/passwd"
    printf "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n" >>"$rootfs/etc/group"
    mkdir -p "$rootfs/home/user-defined-in-image" && chown 1000:1000 "$rootfs/home/user-defined-in-image"
    mkdir -p "$rootfs/var" && cp -a "$work/var-registry" "$rootfs/var/registry"'
  new_image agnhost-prev agnhost
  for pic in kitten nautilus; do
    new_image "$pic" agnhost --clear=config.cmd --config.cmd test-webserver
    add_layer "$pic" '
      printf "{\"image\": \"%s.jpg\"}\n" '"$pic"' >"$rootfs/data.json"
      printf "%s\n" "berth test picture" >"$rootfs/'"$pic"'.jpg"
      printf "NAME=\"Alpine Linux\"\nID=alpine\n" >"$rootfs/etc/os-release"'
  done
  for t in nginx nginx-new; do
    new_image "$t" base --clear=config.cmd --config.cmd /usr/sbin/nginx
    add_layer "$t" 'rm -f "$rootfs/usr/sbin/nginx"; install -m 755 "$work/bin/webserver" "$rootfs/usr/sbin/nginx"'
  done
  new_image nonewprivs base --clear=config.cmd --config.cmd nnp
  add_layer nonewprivs 'install -m 4755 "$bin/nnp" "$rootfs/usr/local/bin/nnp"'
  new_image nonroot base --config.user 1234
  new_image glibc-dns-testing base
  add_layer glibc-dns-testing '
    rm -f "$rootfs/usr/bin/dig"
    copy_with_libs "$rootfs" /usr/bin/getent
    copy_with_libs "$rootfs" /usr/bin/dig'
  umoci gc --layout "$layout"
  rm -rf "$work/var-registry"
  echo "$stamp" >"$work/stamp"
fi

registry_wait
e2e=e2e-test-images
push() { push_layout "$layout" "$1" "$2" "$stamp" "$work/pushed-${2//[:\/]/_}" --format oci >/dev/null; }
push busybox $e2e/busybox:1.37.0-1
push busybox $e2e/busybox:1.36.1-1
push pause pause:3.10.2
push agnhost $e2e/agnhost:2.63.0
push agnhost-prev $e2e/agnhost:2.55
push kitten $e2e/kitten:1.8
push nautilus $e2e/nautilus:1.8
push nginx $e2e/nginx:1.15-4
push nginx-new $e2e/nginx:1.27-0
push nonewprivs $e2e/nonewprivs:1.4
push nonroot $e2e/nonroot:1.5
push glibc-dns-testing $e2e/glibc-dns-testing:2.0.0
log "conformance images pushed to $registry"
