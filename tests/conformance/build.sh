#!/usr/bin/env bash
# Builds the upstream e2e suite and the binaries of its test images from the pinned
# k8s.io/kubernetes module (go.mod beside this script) into tests/conformance/bin:
#   e2e.test  go test -c k8s.io/kubernetes/test/e2e
#   ginkgo    the CLI of the ginkgo version the module pins (v2.28.1), for parallel runs
#   agnhost   k8s.io/kubernetes/test/images/agnhost, version 2.63.0 as upstream stamps it
#   nnp       k8s.io/kubernetes/test/images/nonewprivs
# Idempotent: a binary newer than go.sum is kept (Go's build cache makes rebuilds cheap).
# Usage: tests/conformance/build.sh [name...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
mkdir -p bin
export GOFLAGS=-buildvcs=false CGO_ENABLED=0
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(ginkgo agnhost nnp e2e.test)
fresh() { [ -x "bin/$1" ] && [ "bin/$1" -nt go.sum ] && [ "bin/$1" -nt go.mod ]; }
for name in "${want[@]}"; do
  fresh "$name" && continue
  echo "conformance/build.sh: building $name" >&2
  case $name in
    ginkgo) go build -trimpath -ldflags=-s -o bin/ginkgo.tmp github.com/onsi/ginkgo/v2/ginkgo ;;
    agnhost) go build -trimpath -ldflags='-s -w -X main.Version=2.63.0' -o bin/agnhost.tmp \
      k8s.io/kubernetes/test/images/agnhost ;;
    nnp) go build -trimpath -ldflags=-s -o bin/nnp.tmp k8s.io/kubernetes/test/images/nonewprivs ;;
    e2e.test) go test -c -trimpath -ldflags='-s -X k8s.io/component-base/version.gitVersion=v1.36.3' \
      -o bin/e2e.test.tmp k8s.io/kubernetes/test/e2e ;;
    *) echo "conformance/build.sh: unknown binary $name" >&2; exit 2 ;;
  esac
  mv "bin/$name.tmp" "bin/$name"
done
