#!/usr/bin/env bash
# clang-tidy over every berth translation unit of a build (its compile_commands.json), with
# the root .clang-tidy (bugprone, performance, modernize, naming) and clang's -Wthread-safety,
# so the absl::Mutex annotations (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED) are checked
# by the compiler that understands them. Any finding fails.
# Usage: tests/lint/tidy.sh <build-dir> [file-regex]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: tidy.sh <build-dir> [file-regex]}
dirs='(base|cni|cri|csi|ebpf|kubelet|metrics|tests)'
files=${2:-^$top/$dirs/.*\.cc$}
[ -f "$build/compile_commands.json" ] || { echo "tidy: no $build/compile_commands.json" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The compile commands are gcc's: clang ignores the warning options it does not know.
if ! run-clang-tidy -p "$build" -j "$(nproc)" -quiet \
    -header-filter="^$top/$dirs/" \
    -extra-arg=-Wthread-safety -extra-arg=-Wno-unknown-warning-option \
    "$files" >"$log" 2>&1; then
  grep -E '(warning|error): ' "$log" | sort -u
  echo "tidy: findings above (full log: rerun tests/lint/tidy.sh $build)" >&2
  exit 1
fi
echo "tidy: $(grep -c '^clang-tidy' "$log") translation units clean"
