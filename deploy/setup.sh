#!/usr/bin/env bash
# Installs every Debian package berth and its tests need, and builds the pinned upstream
# tools of tests/cluster. Idempotent and quiet when everything is present.
# Usage: deploy/setup.sh [--no-cluster]   (--no-cluster: skip the Go-built test tools)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(
  # build
  build-essential cmake ninja-build pkg-config golang-go
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  nlohmann-json3-dev libcpp-httplib-dev libssl-dev libsqlite3-dev libarchive-dev zlib1g-dev
  libcli11-dev libzstd-dev libgtest-dev libgmock-dev libbenchmark-dev libboost-dev libbpf-dev bpftool clang
  libyaml-cpp-dev ccache
  # lint (tests/lint): formatting, clang-tidy and clang's -Wthread-safety
  clang-format clang-tidy
  # runtime
  runc conmon containernetworking-plugins iproute2 iptables util-linux mount
  # tests
  docker-registry umoci skopeo busybox-static openssl curl jq psmisc prometheus python3 python3-websocket linux-perf
  apache2-utils
  # the conformance images (agnhost: nc, dig)
  netcat-openbsd bind9-dnsutils
  # peers the benchmarks and critest compare against, and CRI checkpointing
  containerd criu
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The machine's own Go (newer than Debian's) is kept when present.
if command -v go >/dev/null 2>&1; then
  missing=("${missing[@]/golang-go}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# docker-registry's and prometheus' packages start system services (:5000, :9090, ...);
# tests run their own instances.
for svc in docker-registry prometheus prometheus-node-exporter; do
  if systemctl is-enabled --quiet "$svc" 2>/dev/null || systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
    systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
done
# critest's images need the dynamic busybox (its applets exec, so masked paths apply); it
# conflicts with busybox-static, so only its .deb is kept, for tests/critest/images.sh.
if ! ls /var/cache/berth/busybox_*.deb >/dev/null 2>&1; then
  mkdir -p /var/cache/berth
  (cd /var/cache/berth && apt-get download -qq busybox >/dev/null 2>&1) ||
    { apt-get update -qq && (cd /var/cache/berth && apt-get download -qq busybox >/dev/null); }
fi
if [ "${1:-}" != "--no-cluster" ]; then
  "$top/tests/cluster/build.sh"
fi
