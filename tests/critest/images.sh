#!/usr/bin/env bash
# Builds the images critest (cri-tools v1.36) pulls, under their upstream repository paths,
# and pushes them to the local registry of a state dir (127.0.0.1:5000 inside its netns).
# The runtime under test maps registry.k8s.io, k8s.gcr.io and gcr.io to that registry
# (berth --registry-mirror, containerd hosts.toml), so critest's image names resolve offline.
#
# Usage: tests/critest/images.sh <state-dir>   (registry up: tests/cluster/registry.sh)
#
# Every image is built from Debian binaries:
#   base rootfs   Debian's dynamic busybox (the `busybox` package, fetched by deploy/setup.sh
#                 into /var/cache/berth; the static build runs applets without exec, so a
#                 masked /bin/ls would not be denied) with its libc, every applet a hard link,
#                 plus procps' pgrep and util-linux' ipcs with their libraries.
#   nginx/httpd   tests/critest/webserver.c (static): answers GET / with 200, pid file,
#                 /proc/1/cmdline "nginx: master process nginx", httpd's log line.
#   nonewprivs    tests/critest/nonewprivs.c (static, setuid root): "Effective uid: N".
# Not buildable offline (listed in tests/critest/skip.txt): test-image-digest, whose
# reference pins an upstream manifest digest.
# Idempotent: the OCI layout is rebuilt only when an input changed; a tag is pushed only
# when the registry lacks it or holds another digest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/../cluster/lib.sh"
state_init "${1:-}"
registry=127.0.0.1:5000
work="$state/critest-images"
layout="$work/oci"
mkdir -p "$work"
bb_deb=$(ls /var/cache/berth/busybox_*.deb 2>/dev/null | head -n1 || true)
[ -n "$bb_deb" ] || die "no busybox .deb in /var/cache/berth (run deploy/setup.sh)"
for t in gcc umoci skopeo; do command -v $t >/dev/null || die "$t missing (run deploy/setup.sh)"; done

stamp=$(cat "$bb_deb" "$0" "$here/webserver.c" "$here/nonewprivs.c" /usr/bin/pgrep /usr/bin/ipcs |
  sha256sum | cut -d' ' -f1)

# copy_with_libs <rootfs> <binary>: the binary and the shared libraries ldd names.
copy_with_libs() {
  local r=$1 bin=$2 lib
  install -D -m 755 "$bin" "$r$bin"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$r$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
  done
}

# new_image <tag> <cmd...>: tags the base image and sets its Cmd; an `add_layer` may follow.
new_image() {
  local tag=$1; shift
  umoci tag --image "$layout:base" "$tag"
  local args=(--clear=config.cmd)
  for a in "$@"; do args+=(--config.cmd "$a"); done
  umoci config --image "$layout:$tag" "${args[@]}" --config.label "berth.critest.image=$tag"
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

if [ "$(cat "$work/stamp" 2>/dev/null)" != "$stamp" ]; then
  log "building critest images in $layout"
  rm -rf "$layout" "$work/rootfs" "$work/bundle" "$work/bin"
  mkdir -p "$work/bin"
  gcc -static -Os -Wall -o "$work/bin/webserver" "$here/webserver.c"
  gcc -static -Os -Wall -o "$work/bin/nonewprivs" "$here/nonewprivs.c"
  r="$work/rootfs"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,tmp,proc,sys,dev,var/log,var/run,home}
  chmod 1777 "$r/tmp"; chmod 700 "$r/root"
  dpkg-deb --fsys-tarfile "$bb_deb" | tar -x -C "$work" ./bin/busybox
  mv "$work/bin/busybox" "$work/busybox"
  install -m 755 "$work/busybox" "$r/bin/busybox"
  for lib in $(ldd "$work/busybox" | grep -o '/[^ ]*'); do
    install -D -m 755 "$(readlink -f "$lib")" "$r$lib"
  done
  for applet in $("$work/busybox" --list-full); do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$r/$(dirname "$applet")"
    ln -f "$r/bin/busybox" "$r/$applet"
  done
  copy_with_libs "$r" /usr/bin/pgrep
  copy_with_libs "$r" /usr/bin/ipcs
  cat >"$r/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
  printf 'root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n' >"$r/etc/group"
  umoci init --layout "$layout"
  umoci new --image "$layout:base"
  umoci unpack --image "$layout:base" "$work/bundle" >/dev/null
  cp -a "$r/." "$work/bundle/rootfs/"
  umoci repack --image "$layout:base" "$work/bundle"
  rm -rf "$work/bundle" "$r"
  umoci config --image "$layout:base" --os linux --architecture amd64 \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --author berth-critest

  new_image busybox sh
  new_image pause sleep infinity
  new_image nginx /usr/sbin/nginx
  add_layer nginx 'rm -f "$rootfs/usr/sbin/nginx"; install -m 755 "$work/bin/webserver" "$rootfs/usr/sbin/nginx"'
  new_image hostnet-nginx /usr/sbin/nginx 12003
  add_layer hostnet-nginx 'install -m 755 "$work/bin/webserver" "$rootfs/usr/sbin/nginx"'
  new_image httpd /usr/sbin/httpd
  add_layer httpd 'rm -f "$rootfs/usr/sbin/httpd"; install -m 755 "$work/bin/webserver" "$rootfs/usr/sbin/httpd"'
  new_image nonewprivs /usr/local/bin/nnp
  add_layer nonewprivs 'install -m 4755 "$work/bin/nonewprivs" "$rootfs/usr/local/bin/nnp"'
  for t in test-image-latest test-image-tag-test test-image-tag-all test-image-1 test-image-2 \
    test-image-3 test-image-tags; do
    new_image "$t" sh
  done
  new_image user-uid sh; umoci config --image "$layout:user-uid" --config.user 1002
  new_image user-username sh; umoci config --image "$layout:user-username" --config.user www-data
  new_image user-uid-group sh; umoci config --image "$layout:user-uid-group" --config.user 1003:1003
  new_image user-username-group sh
  umoci config --image "$layout:user-username-group" --config.user www-data:www-data
  new_image predefined-group sh
  add_layer predefined-group 'echo "default-user:x:1000:1000::/home/default-user:/bin/sh" >>"$rootfs/etc/passwd"
    printf "default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n" >>"$rootfs/etc/group"'
  umoci config --image "$layout:predefined-group" --config.user 1000
  umoci gc --layout "$layout"
  echo "$stamp" >"$work/stamp"
fi

wait_until 30 "registry at $registry" in_ns curl -sf --max-time 2 "http://$registry/v2/" ||
  die "registry $registry not reachable in netns $netns (run tests/cluster/registry.sh $state)"

accept='application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'
remote_digest() {
  in_ns curl -sfI --max-time 5 -H "Accept: $accept" "http://$registry/v2/$1/manifests/$2" |
    tr -d '\r' | awk 'tolower($1)=="docker-content-digest:" {print $2}' || true
}
# push <layout tag> <repo:tag>: copies unless the registry has this build's content.
push() {
  local src=$1 dst=$2
  local want_file="$work/pushed-${dst//[:\/]/_}"
  local have; have=$(remote_digest "${dst%%:*}" "${dst##*:}")
  if [ -n "$have" ] && [ "$(cat "$want_file" 2>/dev/null)" = "$stamp $have" ]; then return 0; fi
  in_ns skopeo --insecure-policy copy -q --dest-tls-verify=false --format oci \
    "oci:$layout:$src" "docker://$registry/$dst" >&2
  have=$(remote_digest "${dst%%:*}" "${dst##*:}")
  [ -n "$have" ] || die "push of $dst: registry has no manifest afterwards"
  echo "$stamp $have" >"$want_file"
}
e2e=e2e-test-images
cri=k8s-staging-cri-tools
push busybox $e2e/busybox:1.29-2
push nginx $e2e/nginx:1.14-2
push httpd $e2e/httpd:2.4.39-4
push nonewprivs $e2e/nonewprivs:1.3
push hostnet-nginx $cri/hostnet-nginx-amd64:latest
push pause pause:3.9
push test-image-latest $cri/test-image-latest:latest
push test-image-tag-test $cri/test-image-tag:test
push test-image-tag-all $cri/test-image-tag:all
for i in 1 2 3; do
  push test-image-$i $cri/test-image-$i:latest
  push test-image-tags $cri/test-image-tags:$i
done
push user-uid $cri/test-image-user-uid:latest
push user-username $cri/test-image-user-username:latest
push user-uid-group $cri/test-image-user-uid-group:latest
push user-username-group $cri/test-image-user-username-group:latest
push predefined-group $cri/test-image-predefined-group:latest
log "critest images pushed to $registry"
