#!/usr/bin/env bash
# Writes <state>/node-<name>.kubeconfig with a client certificate CN=system:node:<name>,
# O=system:nodes signed by the cluster CA (what the Node authorizer and NodeRestriction
# expect of a kubelet). Idempotent.
# Usage: tests/cluster/node-kubeconfig.sh <state-dir> <node-name>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/lib.sh
source "$here/lib.sh"
# shellcheck source=tests/cluster/pki.sh
source "$here/pki.sh"
[ $# -eq 2 ] || die "usage: node-kubeconfig.sh <state-dir> <node-name>"
state_init "$1"
name=$2
[ -s "$state/pki/ca.crt" ] || pki_ca
pki_cert "node-$name" "/O=system:nodes/CN=system:node:$name" client
write_kubeconfig "$state/node-$name.kubeconfig" "system:node:$name" \
  "$state/pki/node-$name.crt" "$state/pki/node-$name.key"
echo "$state/node-$name.kubeconfig"
