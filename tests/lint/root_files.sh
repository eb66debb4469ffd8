#!/usr/bin/env bash
# No stray files at the repository root: only the entries listed here may be tracked there,
# and nothing untracked may sit there except the build directories (.gitignore's /build*/).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
allowed=' .ci .clang-format .clang-tidy .gitignore CMakeLists.txt README.md base cmake cni cri csi deploy docs ebpf kubelet metrics tests '
bad=0
while read -r entry; do
  case "$allowed" in *" $entry "*) ;; *) echo "root: unexpected tracked entry '$entry'"; bad=1 ;; esac
done < <(git ls-files | cut -d/ -f1 | sort -u)
while read -r entry; do
  case "$entry" in build*/ | build*) ;; *) echo "root: untracked '$entry'"; bad=1 ;; esac
done < <(git ls-files --others --directory --exclude-standard -- ':/' | grep -v / || true;
         git ls-files --others --directory --exclude-standard -- ':/' | grep -E '^[^/]+/$' || true)
[ "$bad" = 0 ] || { echo "root: move or delete the entries above (or list them in tests/lint/root_files.sh)" >&2; exit 1; }
echo "root: clean"
