#!/usr/bin/env bash
# Checks that every C, C++ and BPF source of berth is formatted by the root .clang-format
# (Google style, 100 columns). `tests/lint/format.sh --fix` formats them in place.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
mapfile -t files < <(git ls-files '*.cc' '*.h' '*.c')
if [ "${1:-}" = --fix ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}" 2>&1 | grep -E '^[^ ].*(error|warning):' |
  cut -d: -f1 | sort | uniq -c && { echo "format: the files above differ from .clang-format (tests/lint/format.sh --fix)" >&2; exit 1; }
echo "format: ${#files[@]} files formatted"
