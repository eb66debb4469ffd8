#!/usr/bin/env bash
# Installs what is missing, builds berth, and runs every test: ctest labels unit,
# integration (root: runc, conmon, CNI plugins, registry) and e2e (a real control plane
# from tests/cluster and a berth node, shared by all e2e tests of the run).
# Usage: tests/run-all.sh [extra ctest args, e.g. -L unit]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash deploy/setup.sh
build=${BERTH_BUILD_DIR:-$top/build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
